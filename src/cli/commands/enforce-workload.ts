// `bench enforce --workload FILE --cni X[,Y…] [--change remove:NS/POLICY|add:NS/POLICY]… [--flow …]`: time to
// enforcement of changes to a workload's own policies, on each data plane in turn (src/enforce/workload-run.ts).
// Every input problem — flags, the file, the changes, the flows, what the local backend cannot hold — exits 2
// before anything is built. Local backend only for now.
import type { CniName } from '../../config/schema.js';
import { CNIS } from '../../config/schema.js';
import { BenchError, InputError, type Problem } from '../../errors.js';
import { EXIT_FAIL, EXIT_OK, processIo, reportUsage, type CommandIo } from '../io.js';
import { concurrentRunsWarning, onInterrupt, stepPrinter } from '../process.js';
import { parseEnforceFlags, type EnforceFlags } from './enforce-flags.js';

/** Enforce flags that belong to the synthetic changes, refused with --workload (the file brings its own policies). */
const SYNTHETIC_ONLY: Array<[string, string, string]> = [
  ['policies', '--policies', 'the policies come from the --workload file'],
  ['changes', '--changes', 'with --workload the changes name its policies: --change remove:NS/POLICY or add:NS/POLICY'],
  ['matchPosition', '--match-position', 'belongs to the generated filler policies'],
  ['services', '--services', 'the Service changes run on the synthetic topology only'],
  ['endpointsPerService', '--endpoints-per-service', 'the Service changes run on the synthetic topology only'],
  ['servicePosition', '--service-position', 'the Service changes run on the synthetic topology only'],
  ['dryRun', '--dry-run', 'not yet: the plan of a workload change on kind/cluster (kubectl delete/apply of the prefixed policy) is not built; run it on the local backend'],
];

/** The flags, the file, the changes and the flows, checked before any work; InputError lists every problem. */
export async function prepareWorkloadEnforce(flags: EnforceFlags & { change?: string[]; flow?: string[] }) {
  const problems: Problem[] = [];
  const cnis = String(flags.cni ?? '').split(',').map((c) => c.trim()).filter(Boolean);
  if (!cnis.length) problems.push({ where: '--cni', message: `required: one or more of ${CNIS.join(',')}, comma-separated` });
  for (const c of cnis) if (!(CNIS as readonly string[]).includes(c)) problems.push({ where: '--cni', message: `must be one of ${CNIS.join(', ')}, got "${c}"` });
  if (new Set(cnis).size !== cnis.length) problems.push({ where: '--cni', message: 'names a CNI twice' });
  for (const [key, flag, why] of SYNTHETIC_ONLY) if (flags[key] !== undefined && flags[key] !== false) problems.push({ where: flag, message: `not with --workload: ${why}` });
  if (flags.backend !== undefined && flags.backend !== 'local') problems.push({ where: '--backend', message: `bench enforce --workload runs on the local backend for now, got '${String(flags.backend)}' (kind/cluster: bench run/verify --workload replay it there; timing a change to its policies there is not built yet)` });
  const first = cnis.find((c) => (CNIS as readonly string[]).includes(c)) ?? 'calico';
  const rest: EnforceFlags = { ...flags, change: undefined, flow: undefined, cni: first, backend: 'local', workload: undefined, policies: undefined, changes: undefined, matchPosition: undefined, services: undefined, endpointsPerService: undefined, servicePosition: undefined, dryRun: undefined };
  const parsed = parseEnforceFlags(rest);
  if (!parsed.ok) problems.push(...parsed.problems);
  if (problems.length || !parsed.ok) throw new InputError(problems);
  const config = parsed.value;
  const file = String(flags.workload);
  const { loadWorkload } = await import('../../workload/load.js');
  const { resolveFlowSpecs } = await import('../../workload/flows.js');
  const { parseWorkloadChanges, planWorkloadChanges, watchedFlowsOf } = await import('../../enforce/workload-changes.js');
  const w = loadWorkload(file);
  const parsedChanges = parseWorkloadChanges(flags.change ?? [], w);
  problems.push(...parsedChanges.problems);
  let named;
  if (flags.flow?.length) {
    const r = resolveFlowSpecs(flags.flow, w);
    if (r.flows.some((f) => f.protocol !== 'TCP')) r.problems.push({ where: '--flow', message: 'a watch probes TCP connects: name TCP flows' });
    problems.push(...r.problems);
    named = r.flows;
  }
  if (problems.length) throw new InputError(problems);
  const plan = planWorkloadChanges(w, cnis as CniName[], { changes: parsedChanges.changes, flows: named, seed: config.seed });
  if (plan.problems.length) throw new InputError(plan.problems);
  // What the local backend can hold, before any work: the watched flows' ends become endpoints.
  const { replayWorkload } = await import('../../workload/replay.js');
  try {
    for (const planned of plan.byCni.values()) replayWorkload(w, watchedFlowsOf(planned));
  } catch (e) {
    if (e instanceof BenchError && e.kind === 'capacity') throw new InputError([{ where: file, message: e.message }]);
    throw e;
  }
  return { config, cnis: cnis as CniName[], workload: w, file, plan };
}

export async function cmdEnforceWorkload(flags: EnforceFlags & { change?: string[]; flow?: string[] }, io: CommandIo = processIo()): Promise<number> {
  let prepared;
  try {
    prepared = await prepareWorkloadEnforce(flags);
  } catch (e) {
    if (e instanceof InputError) return reportUsage(io, e.problems);
    throw e;
  }
  const { config, cnis, workload, file, plan } = prepared;
  if (process.getuid?.() !== 0) {
    io.stderr.write('bench enforce: the local backend builds network namespaces and needs root (run with sudo)\n');
    return EXIT_FAIL;
  }
  const [{ resolve }, { ExecRunner }, { newRunId }, { createBackend }, { executeWorkloadEnforce }, { formatWorkloadEnforce, workloadEnforceDocument }, { enforceConfigOf }] = await Promise.all([
    import('node:path'),
    import('../../exec/runner.js'),
    import('../../identity/run-id.js'),
    import('../../backends/factory.js'),
    import('../../enforce/workload-run.js'),
    import('../../enforce/workload-format.js'),
    import('../../enforce/run.js'),
  ]);
  const e = enforceConfigOf(config);
  const runIds: string[] = [];
  const interrupt = onInterrupt('stopping and cleaning up', undefined, () => runIds);
  const docs = [];
  let failed = false;
  try {
    const progress = stepPrinter(!config.json);
    for (const n of plan.notes) io.stderr.write(`note: ${n}\n`);
    for (const cni of cnis) {
      if (interrupt.signal.aborted) break;
      const runId = newRunId();
      runIds.push(runId);
      const outDir = resolve(config.out, runId);
      const changes = plan.byCni.get(cni) ?? [];
      progress.step(`enforce run ${runId}: workload ${workload.name} on ${cni}, ${e.repetitions} repetitions of ${changes.map((c) => `${c.change.op}:${c.change.policy}`).join(', ') || 'no change'}`);
      const plane = await createBackend({ config: { ...config, cni }, backend: 'local', runId, shape: 'cluster', runner: new ExecRunner(interrupt.signal), cleanupRunner: new ExecRunner(), signal: interrupt.signal, progress, outDir });
      if (!plane.changes) {
        io.stderr.write(`bench enforce: ${cni}: the ${plane.model.name} has no incremental update(); skipped\n`);
        failed = true;
        continue;
      }
      const { result, path } = await executeWorkloadEnforce({ runId, backend: 'local', cni, workload, file, changes, plane, outDir, progress, signal: interrupt.signal, settings: { repetitions: e.repetitions, intervalUs: e.intervalUs, probeTimeoutMs: e.probeTimeoutMs, deadlineMs: e.deadlineMs, settle: e.settle, seed: e.seed } });
      // As the synthetic changes: a data plane that enforces nothing, or a failed run, exits 1.
      if (result.status !== 'ok') failed = true;
      if (config.json) docs.push(workloadEnforceDocument(result, path));
      else io.stdout.write(`\n${formatWorkloadEnforce(result, path)}\n`);
      if (result.meta.concurrentRuns.length) io.stderr.write(`${concurrentRunsWarning(result.meta.concurrentRuns)}\n`);
    }
    if (config.json) io.stdout.write(`${JSON.stringify({ workload: { name: workload.name, file }, notes: plan.notes, runs: docs }, null, 2)}\n`);
    if (interrupt.signal.aborted) return 130;
    return failed ? EXIT_FAIL : EXIT_OK;
  } finally {
    interrupt.dispose();
  }
}

