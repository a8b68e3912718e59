// `bench enforce`: how long until a policy change or a new pod is enforced, and whether anything leaks
// meanwhile. Thin: validate flags, hand over to src/enforce, print, set the exit code (0 measured, 1 failed or
// not enforced, 2 usage, 130 interrupted).
import { BACKEND_DESCRIPTORS } from '../../backends/factory.js';
import { cniEntry } from '../../config/cnis.js';
import { Command, Option } from 'commander';
import { z } from 'zod';
import { flagName } from '../../config/load.js';
import { CNIS, MAX_POLICIES } from '../../config/schema.js';
import { settingOption } from '../settings-flags.js';
import { EXIT_FAIL, EXIT_OK, processIo, reportUsage, type CommandIo } from '../io.js';
import { onInterrupt, stepPrinter } from '../process.js';
import { CHANGES, type ChangeKind } from '../../enforce/plan.js';
import type { EnforceConfig } from '../../enforce/run.js';
import type { EnforceResult } from '../../enforce/result.js';
import type { Runner } from '../../exec/runner.js';

export interface EnforceFlags {
  cni?: string;
  policies?: string;
  repetitions?: string;
  changes?: string;
  backend?: string;
  intervalUs?: string;
  probeTimeoutMs?: string;
  deadlineMs?: string;
  settle?: string;
  matchPosition?: string;
  seed?: string;
  pinCpu?: string;
  context?: string;
  kubeconfig?: string;
  out?: string;
  json?: boolean;
  dryRun?: boolean;
}

const whole = (min: number, max: number) => z.coerce.number().int().min(min).max(max);

const flagsSchema = z.object({
  cni: z.enum(CNIS, { message: `required, one of ${CNIS.join(', ')}` }),
  policies: whole(0, MAX_POLICIES).default(0),
  repetitions: whole(1, 1000).default(5),
  changes: z
    .string()
    .default(CHANGES.join(','))
    .transform((s) => s.split(',').map((x) => x.trim()).filter(Boolean))
    .pipe(z.array(z.enum(CHANGES, { message: `each must be one of ${CHANGES.join(', ')}` })).min(1)),
  backend: z.enum(['local', 'kind', 'cluster']).default('local'),
  // ≤ 1 ms cadence is the point; below 100 µs the probe's own connects start to load a small machine.
  intervalUs: whole(100, 1000).default(1000),
  probeTimeoutMs: z.union([z.literal('auto'), whole(1, 10_000)]).default('auto'),
  deadlineMs: whole(100, 600_000).default(10_000),
  settle: whole(1, 1000).default(5),
  matchPosition: z.enum(['first', 'last']).default('last'),
  seed: whole(0, 2 ** 31 - 1).default(1),
  pinCpu: whole(0, 1023).optional(),
  context: z.string().min(1).optional(),
  kubeconfig: z.string().min(1).optional(),
  out: z.string().default('results'),
  json: z.boolean().default(false),
  dryRun: z.boolean().default(false),
});

export type ParsedEnforceFlags = z.output<typeof flagsSchema>;

/** Every problem at once, in flag words. */
export function parseEnforceFlags(flags: EnforceFlags): { ok: true; value: ParsedEnforceFlags } | { ok: false; problems: Array<{ where: string; message: string }> } {
  const r = flagsSchema.safeParse({ ...flags, probeTimeoutMs: flags.probeTimeoutMs === 'auto' || flags.probeTimeoutMs === undefined ? flags.probeTimeoutMs : flags.probeTimeoutMs });
  if (!r.success) {
    return {
      ok: false,
      problems: r.error.issues.map((i) => ({ where: flagName(String(i.path[0] ?? '')), message: i.message })),
    };
  }
  const descriptor = BACKEND_DESCRIPTORS[r.data.backend];
  if (descriptor.needsTarget && !r.data.context && !r.data.kubeconfig) {
    return { ok: false, problems: [{ where: '--context', message: 'the cluster backend needs an explicit --context NAME or --kubeconfig FILE; it never uses the current context implicitly' }] };
  }
  const floor = cniEntry(r.data.cni).floor === true;
  if (descriptor.onKubernetes && (floor || r.data.pinCpu !== undefined)) {
    return { ok: false, problems: [{ where: floor ? '--cni' : '--pin-cpu', message: floor ? `--cni ${r.data.cni} has no real CNI on ${r.data.backend}; use the local backend` : `--pin-cpu applies to the local backend only (the probes run in pods)` }] };
  }
  return { ok: true, value: r.data };
}

export function enforceConfigOf(p: ParsedEnforceFlags): EnforceConfig {
  return {
    cni: p.cni,
    policies: p.policies,
    repetitions: p.repetitions,
    changes: p.changes as ChangeKind[],
    matchPosition: p.matchPosition,
    seed: p.seed,
    intervalUs: p.intervalUs,
    probeTimeoutMs: p.probeTimeoutMs,
    deadlineMs: p.deadlineMs,
    settle: p.settle,
  };
}

export async function cmdEnforce(flags: EnforceFlags, io: CommandIo = processIo()): Promise<number> {
  const parsed = parseEnforceFlags(flags);
  if (!parsed.ok) return reportUsage(io, parsed.problems);
  const p = parsed.value;
  const config = enforceConfigOf(p);
  const [{ resolve }, { ExecRunner, DryRunRunner, renderPlan }, { newRunId }, { LocalEnforcePlane, EnforceUnsupportedError }, { executeEnforce, planEnforceDry }, { formatEnforceSummary }, { assertProbeAvailable }] =
    await Promise.all([
      import('node:path'),
      import('../../exec/runner.js'),
      import('../../identity/run-id.js'),
      import('../../enforce/local.js'),
      import('../../enforce/run.js'),
      import('../../enforce/format.js'),
      import('../../probe/native.js'),
    ]);
  const runId = newRunId();
  if (BACKEND_DESCRIPTORS[p.backend].onKubernetes) return cmdEnforceK8s(p, config, runId, io);
  if (p.dryRun) {
    const runner = new DryRunRunner();
    let plane;
    try {
      plane = new LocalEnforcePlane({ cni: p.cni, runId, runner, cleanupRunner: runner, config: { matchPosition: p.matchPosition, seed: p.seed } });
    } catch (e) {
      if (e instanceof EnforceUnsupportedError) return reportUsage(io, [{ where: '--cni', message: e.message }]);
      throw e;
    }
    const watches = await planEnforceDry(plane, config);
    io.stdout.write(`# enforce plan for run ${runId} on the local backend (dry run: nothing was executed)\n${renderPlan(runner.log)}\n# watch probes (one per change, started before it):\n${watches.map((w) => `#   ${w}`).join('\n')}\n`);
    return EXIT_OK;
  }
  if (process.getuid?.() !== 0) {
    io.stderr.write('bench enforce: the local backend builds network namespaces and needs root (run with sudo)\n');
    return EXIT_FAIL;
  }
  assertProbeAvailable();
  const interrupt = onInterrupt('stopping and cleaning up');
  try {
    const progress = stepPrinter(!p.json);
    let plane;
    try {
      plane = new LocalEnforcePlane({ cni: p.cni, runId, signal: interrupt.signal, runner: new ExecRunner(interrupt.signal), progress, pinCpu: p.pinCpu, config: { matchPosition: p.matchPosition, seed: p.seed } });
    } catch (e) {
      if (e instanceof EnforceUnsupportedError) return reportUsage(io, [{ where: '--cni', message: e.message }]);
      throw e;
    }
    progress.step(`enforce run ${runId}: ${p.cni}, ${p.policies} policies, ${p.repetitions} repetitions of ${config.changes.join(', ')}`);
    const { result, path } = await executeEnforce({ runId, backend: 'local', config, plane, outDir: resolve(p.out, runId), progress, signal: interrupt.signal });
    return printEnforceResult(io, p.json, result, path, interrupt.signal.aborted, formatEnforceSummary);
  } finally {
    interrupt.dispose();
  }
}

/** The summary (or JSON) and the exit code: 0 measured, 1 failed or not enforced, 130 interrupted. */
function printEnforceResult(io: CommandIo, json: boolean, result: EnforceResult, path: string | null, aborted: boolean, format: (r: EnforceResult, p: string | null) => string): number {
  if (json) io.stdout.write(`${JSON.stringify({ runId: result.runId, status: result.status, path, notEnforced: result.notEnforced, summary: result.summary, errors: result.errors }, null, 2)}\n`);
  else io.stdout.write(`\n${format(result, path)}\n`);
  if (aborted) return 130;
  return result.status === 'ok' ? EXIT_OK : EXIT_FAIL;
}

/** kind/cluster: the real agents, changes through the API server, watches from the client node's pods (src/enforce/k8s.ts). */
async function cmdEnforceK8s(p: ParsedEnforceFlags, config: EnforceConfig, runId: string, io: CommandIo): Promise<number> {
  const [{ resolve }, { ExecRunner, DryRunRunner, renderPlan }, { runConfigSchema }, { K8sEnforcePlane }, { executeEnforce, planEnforceDry }, { formatEnforceSummary }] = await Promise.all([
    import('node:path'),
    import('../../exec/runner.js'),
    import('../../config/schema.js'),
    import('../../enforce/k8s.js'),
    import('../../enforce/run.js'),
    import('../../enforce/format.js'),
  ]);
  const backend = p.backend as 'kind' | 'cluster';
  const runConfig = runConfigSchema.parse({ cni: p.cni, backend, policies: p.policies, matchPosition: p.matchPosition, seed: p.seed, context: p.context, kubeconfig: p.kubeconfig });
  const outDir = resolve(p.out, runId);
  const make = (o: { runner?: Runner; cleanupRunner?: Runner; signal?: AbortSignal; progress?: ReturnType<typeof stepPrinter> }) => {
    try {
      return new K8sEnforcePlane({ backend, runId, config: runConfig, outDir, ...o });
    } catch (e) {
      if ((e as { kind?: string }).kind === 'usage') return e as Error;
      throw e;
    }
  };
  if (p.dryRun) {
    const runner = new DryRunRunner();
    const plane = make({ runner, cleanupRunner: runner });
    if (plane instanceof Error) return reportUsage(io, [{ where: '--backend', message: plane.message }]);
    const watches = await planEnforceDry(plane, config);
    io.stdout.write(`# enforce plan for run ${runId} on the ${backend} backend (dry run: nothing was executed)\n# clock: ${plane.clockDescription}\n${renderPlan(runner.log)}\n# watch probes (kubectl exec -i, one per change, started before it; new-pod: started on the pod's address once it has one):\n${watches.map((w) => `#   ${w}`).join('\n')}\n`);
    return EXIT_OK;
  }
  const interrupt = onInterrupt('stopping and cleaning up');
  try {
    const progress = stepPrinter(!p.json);
    const plane = make({ runner: new ExecRunner(interrupt.signal), signal: interrupt.signal, progress });
    if (plane instanceof Error) return reportUsage(io, [{ where: '--backend', message: plane.message }]);
    progress.step(`enforce run ${runId} on ${backend}: ${p.cni}, ${p.policies} policies, ${p.repetitions} repetitions of ${config.changes.join(', ')}`);
    const { result, path } = await executeEnforce({ runId, backend, config, plane, outDir, progress, signal: interrupt.signal });
    return printEnforceResult(io, p.json, result, path, interrupt.signal.aborted, formatEnforceSummary);
  } finally {
    interrupt.dispose();
  }
}

export function register(program: Command): void {
  program
    .command('enforce')
    .description('how long until a policy change or a new pod is enforced (ms, one clock), and whether anything leaks meanwhile')
    .addOption(new Option('--cni <name>', `CNI data plane: ${CNIS.join('|')}`))
    .option('--policies <n>', `filler policies selecting the server, in place during every change (0..${MAX_POLICIES}, default 0)`)
    .option('--repetitions <n>', 'repetitions of each change (default 5)')
    .option('--changes <list>', `comma-separated subset of ${CHANGES.join(',')} (default all)`)
    .option('--backend <name>', 'local (default), kind (a throw-away kind cluster) or cluster (an existing one: --context/--kubeconfig)')
    .option('--interval-us <n>', 'probe cadence, µs: a new connect starts this often (100..1000, default 1000)')
    .option('--probe-timeout-ms <n>', "each probe's timeout, ms, or auto: 5 × p99 of an allowed connect, at least 10 (default auto)")
    .option('--deadline-ms <n>', 'longest wait for a change to be seen before it counts as not enforced (default 10000)')
    .option('--settle <n>', 'consecutive probes with the new verdict that count as enforced (default 5)')
    .addOption(settingOption('matchPosition'))
    .addOption(settingOption('seed'))
    .option('--pin-cpu <n>', 'run the watch probes on this CPU (local)')
    .option('--context <name>', 'cluster backend: the kubeconfig context to use (never the current one implicitly)')
    .option('--kubeconfig <file>', 'cluster backend: the kubeconfig file')
    .option('--out <dir>', 'results directory (default results)')
    .option('--json', 'print the summary as JSON on stdout')
    .option('--dry-run', 'print the plan (every command) without running anything')
    .action(async (opts: EnforceFlags) => {
      process.exitCode = await cmdEnforce(opts);
    });
}
