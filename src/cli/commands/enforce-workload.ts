// `bench enforce --workload FILE --cni X[,Y…] [--change remove:NS/POLICY|add:NS/POLICY]… [--flow …]`: time to
// enforcement of changes to a workload's own policies, on each data plane in turn (src/enforce/workload-run.ts).
// Every input problem — flags, the file, the changes, the flows, what the backend cannot hold — exits 2 before
// anything is built. On kind/cluster the workload is laid out as bench run/verify --workload lay it out
// (src/backends/k8s/workload-layout.ts) and --dry-run prints the plan (./enforce-workload-plan.ts).
import type { BackendName, CniName } from '../../config/schema.js';
import { CNIS } from '../../config/schema.js';
import { BenchError, InputError, type Problem } from '../../errors.js';
import type { Workload } from '../../workload/workload.js';
import { EXIT_FAIL, EXIT_OK, processIo, reportUsage, type CommandIo } from '../io.js';
import { concurrentRunsWarning, onInterrupt, stepPrinter } from '../process.js';
import { parseEnforceFlags, type EnforceFlags } from './enforce-flags.js';

/** Enforce flags that belong to the synthetic changes, refused with --workload (the file brings its own policies). */
const SYNTHETIC_ONLY: Array<[string, string, string]> = [
  ['policies', '--policies', 'the policies come from the --workload file'],
  ['changes', '--changes', 'with --workload the changes name its policies: --change remove:NS/POLICY or add:NS/POLICY'],
  ['matchPosition', '--match-position', 'belongs to the generated filler policies'],
  ['services', '--services', 'the Service changes run on the synthetic topology only (verify --workload probes pod to pod too)'],
  ['kubeProxy', '--kube-proxy', 'the Service changes run on the synthetic topology only; the workload\'s flows are pod to pod'],
  ['endpointsPerService', '--endpoints-per-service', 'the Service changes run on the synthetic topology only'],
  ['servicePosition', '--service-position', 'the Service changes run on the synthetic topology only'],
];
const BACKENDS_WITH_WORKLOAD = ['local', 'kind', 'cluster'] as const;

/** The flags, the file, the changes and the flows, checked before any work; InputError lists every problem. */
export async function prepareWorkloadEnforce(flags: EnforceFlags & { change?: string[]; flow?: string[] }) {
  const problems: Problem[] = [];
  const cnis = String(flags.cni ?? '').split(',').map((c) => c.trim()).filter(Boolean);
  if (!cnis.length) problems.push({ where: '--cni', message: `required: one or more of ${CNIS.join(',')}, comma-separated` });
  for (const c of cnis) if (!(CNIS as readonly string[]).includes(c)) problems.push({ where: '--cni', message: `must be one of ${CNIS.join(', ')}, got "${c}"` });
  if (new Set(cnis).size !== cnis.length) problems.push({ where: '--cni', message: 'names a CNI twice' });
  for (const [key, flag, why] of SYNTHETIC_ONLY) if (flags[key] !== undefined && flags[key] !== false) problems.push({ where: flag, message: `not with --workload: ${why}` });
  const backend = (flags.backend ?? 'local') as BackendName;
  if (!(BACKENDS_WITH_WORKLOAD as readonly string[]).includes(backend)) problems.push({ where: '--backend', message: `must be one of ${BACKENDS_WITH_WORKLOAD.join(', ')} with --workload, got '${String(flags.backend)}'` });
  const { backendDescriptor } = await import('../../backends/factory.js');
  const onK8s = backendDescriptor(backend)?.onKubernetes ?? false;
  if (flags.dryRun && !onK8s) problems.push({ where: '--dry-run', message: 'only for --backend kind|cluster (the local backend builds its data plane from the file directly: nothing to show but the run)' });
  if (onK8s && !backendDescriptor(backend)!.ownsCluster && cnis.length > 1) problems.push({ where: '--cni', message: 'an existing cluster runs one data plane: give the one it runs (several data planes in one command: --backend kind or local)' });
  const first = cnis.find((c) => (CNIS as readonly string[]).includes(c)) ?? 'calico';
  const rest: EnforceFlags = { ...flags, change: undefined, flow: undefined, cni: first, backend: (BACKENDS_WITH_WORKLOAD as readonly string[]).includes(backend) ? backend : 'local', workload: undefined, policies: undefined, changes: undefined, matchPosition: undefined, services: undefined, endpointsPerService: undefined, servicePosition: undefined, kubeProxy: undefined };
  const parsed = parseEnforceFlags(rest);
  if (!parsed.ok) problems.push(...parsed.problems);
  if (parsed.ok && onK8s) {
    const { backendProblems } = await import('../checks.js');
    const seen = new Set(problems.map((p) => `${p.where}: ${p.message}`));
    for (const cni of new Set(cnis.filter((c) => c !== first && (CNIS as readonly string[]).includes(c)))) {
      for (const p of backendProblems(backend, { ...parsed.value, cni: cni as CniName })) if (!seen.has(`${p.where}: ${p.message}`)) problems.push(p);
    }
  }
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
  // What the backend can hold, before any work: the watched flows' ends become endpoints (local) or pods (kind/cluster).
  const { replayWorkload } = await import('../../workload/replay.js');
  const { layoutOnCluster } = await import('../../backends/k8s/workload-layout.js');
  const { flowKey } = await import('../../workload/flows.js');
  const layouts = new Map<CniName, { workload: Workload; notes: string[] }>();
  try {
    for (const [cni, planned] of plan.byCni) {
      const watched = watchedFlowsOf(planned);
      if (!onK8s) {
        replayWorkload(w, watched);
        continue;
      }
      const layout = layoutOnCluster(w, watched, { seed: config.seed, barrier: true });
      // A watched flow whose verdict rests on an ipBlock over snapshot pod addresses says nothing on a cluster.
      for (const l of layout.leftOut) problems.push({ where: flags.flow?.length ? '--flow' : file, message: `${flowKey(l.flow)} cannot be watched on ${backend}: ${l.why}; name another flow with --flow` });
      layouts.set(cni, { workload: layout.workload, notes: layout.notes });
    }
  } catch (e) {
    if (e instanceof BenchError && e.kind === 'capacity') throw new InputError([{ where: file, message: e.message }]);
    throw e;
  }
  if (problems.length) throw new InputError(problems);
  return { config, backend, onK8s, cnis: cnis as CniName[], workload: w, file, plan, layouts };
}

export async function cmdEnforceWorkload(flags: EnforceFlags & { change?: string[]; flow?: string[] }, io: CommandIo = processIo()): Promise<number> {
  let prepared;
  try {
    prepared = await prepareWorkloadEnforce(flags);
  } catch (e) {
    if (e instanceof InputError) return reportUsage(io, e.problems);
    throw e;
  }
  const { config, backend, onK8s, cnis, workload, file, plan, layouts } = prepared;
  if (config.dryRun) {
    const { planWorkloadEnforce } = await import('./enforce-workload-plan.js');
    io.stdout.write(await planWorkloadEnforce({ config, backend, cnis, cluster: workload, plan, layouts }));
    return EXIT_OK;
  }
  if (onK8s) {
    // As run does: a backend whose tools or target are missing is refused before a run id, a lock or a directory exists.
    const [{ backendPreflight, targetPreflight }, { ExecRunner }] = await Promise.all([import('../doctor.js'), import('../../exec/runner.js')]);
    const missing = await backendPreflight(new ExecRunner(), backend);
    if (missing.length) return reportUsage(io, missing);
    const target = await targetPreflight(new ExecRunner(), backend, config);
    if (target.length) return reportUsage(io, target);
  } else if (process.getuid?.() !== 0) {
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
    for (const n of new Set([...layouts.values()].flatMap((l) => l.notes))) io.stderr.write(`note: ${n}\n`);
    for (const cni of cnis) {
      if (interrupt.signal.aborted) break;
      const runId = newRunId();
      runIds.push(runId);
      const outDir = resolve(config.out, runId);
      const changes = plan.byCni.get(cni) ?? [];
      progress.step(`enforce run ${runId}: workload ${workload.name} on ${cni} (${backend}), ${e.repetitions} repetitions of ${changes.map((c) => `${c.change.op}:${c.change.policy}`).join(', ') || 'no change'}`);
      const plane = await createBackend({ config: { ...config, cni }, backend, runId, shape: 'cluster', workloadChanges: onK8s, runner: new ExecRunner(interrupt.signal), cleanupRunner: new ExecRunner(), signal: interrupt.signal, progress, outDir });
      if (!plane.changes) {
        io.stderr.write(`bench enforce: ${cni}: the ${plane.model.name} has no incremental update(); skipped\n`);
        failed = true;
        continue;
      }
      const { result, path } = await executeWorkloadEnforce({ runId, backend, cni, workload, file, changes, replay: layouts.get(cni)?.workload, plane, outDir, progress, signal: interrupt.signal, settings: { repetitions: e.repetitions, intervalUs: e.intervalUs, probeTimeoutMs: e.probeTimeoutMs, deadlineMs: e.deadlineMs, settle: e.settle, seed: e.seed } });
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

