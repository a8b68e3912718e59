// bench sweep: CNIs × policy counts (× Service counts) × repetitions, interleaved, each point a real run; results and a manifest
// under <out>/<sweep-id>/; --resume finishes what a killed or interrupted sweep left; analysis at the end.
import { Command, Option } from 'commander';
import { existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { loadScenarioFile, unlessScenarioFailed } from '../../config/load.js';
import type { BackendName } from '../../config/schema.js';
import type { Problem } from '../../errors.js';
import { EXIT_FAIL, EXIT_OK, processIo, reportUsage, type CommandIo } from '../io.js';
import { detectEnvironment, onInterrupt } from '../process.js';
import { MEASUREMENT_SETTINGS, declareFlags, settingFlag, settingValues, settingsOf, type FlagList } from '../settings-flags.js';
import { givenSettings, inapplicableSettings } from '../applicability.js';

const sweepFlags = (): FlagList => [
  'cni',
  'policies',
  new Option('--repetitions <n|auto>', "auto (default): 3 interleaved passes, then 3 more at a time only for data planes whose verdict is still open, up to --max-repetitions; n: exactly n passes over the whole matrix, each in its own shuffled order"),
  new Option('--max-repetitions <n>', 'with --repetitions auto: the most repetitions any point gets (default 12)'),
  new Option('--scenario <file>', 'YAML scenario (cni and policies may be lists); flags override it'),
  new Option('--resume <sweep-id>', 'finish a killed or interrupted sweep: runs only its missing points'),
  new Option('--retry-failed', 'with --resume: also run points that failed (by default a failed point stays recorded)'),
  ...MEASUREMENT_SETTINGS,
  'out',
  'iptablesBackend',
  'nftSelectorSets',
  'bpfPolicyDebug',
  'measure',
  'workload',
  new Option('--flow <ns/pod->ns/pod:port>', 'with --workload: measure exactly this TCP flow on every data plane (repeatable; default: the most expensive, a cross-namespace, a same-node and --flows random allowed flows, chosen per data plane)').argParser((v: string, prev: string[] = []) => [...prev, v]),
  new Option('--flows <k>', 'with --workload: seeded random allowed flows beside the three chosen ones (default 3; --seed)'),
  'dryRun',
  'json',
];

/** Settings flags shared with `bench run` (same declarations, same validation). */
const SETTINGS = settingsOf(sweepFlags());
/** What a resumed sweep keeps from its sweep.json: every setting but where its output goes and how it is shown. */
const KEPT_ON_RESUME = SETTINGS.filter((k) => !['out', 'json', 'dryRun'].includes(k));

export interface SweepCliOptions extends Record<string, unknown> {
  resume?: string;
  retryFailed?: boolean;
  scenario?: string;
  out?: string;
  json?: boolean;
  dryRun?: boolean;
  flow?: string[];
  flows?: string;
}

export interface SweepDeps {
  /** Replaces the real per-point runner (tests). */
  runPoint?: import('../../sweep/sweep.js').PointRunner;
  /** Replaces a workload sweep's real verify runs (tests). */
  runVerify?: import('../../sweep/verify-step.js').VerifyRunner;
  signal?: AbortSignal;
  /** Skips the docker/kind probe for --backend auto (tests). */
  environment?: { dockerEngine: boolean; kind: boolean };
}

/** What points of a killed sweep left behind on its backend (the local backend's namespaces; kind clusters are not swept here). */
async function removeLeftovers(backend: BackendName, runIds: string[]): Promise<void> {
  const removeRun = (await import('../../backends/factory.js')).BACKEND_DESCRIPTORS[backend].removeRun;
  if (removeRun) for (const runId of runIds) await removeRun(runId);
}

/** Why the backend's probe cannot run here (the local backend runs the native probe), or undefined. */
async function probeMissing(backend: BackendName): Promise<string | undefined> {
  if (!(await import('../../backends/factory.js')).BACKEND_DESCRIPTORS[backend].needsNativeProbe) return undefined;
  const { assertProbeAvailable } = await import('../../probe/native.js');
  try {
    assertProbeAvailable();
    return undefined;
  } catch (e) {
    return (e as Error).message;
  }
}

export async function cmdSweep(opts: SweepCliOptions, io: CommandIo = processIo(), deps: SweepDeps = {}): Promise<number> {
  const [{ SWEEP_ID_RE, newSweepId, planSweep }, manifestMod, { runSweep, localPointRunner }, { progressPrinter, formatDuration }, { newRunId }] = await Promise.all([
    import('../../sweep/plan.js'),
    import('../../sweep/manifest.js'),
    import('../../sweep/sweep.js'),
    import('../../sweep/progress.js'),
    import('../../identity/run-id.js'),
  ]);
  const { newManifest, readManifest, pointsToRun, staleRunIds, counts, sweepSettingsSchema } = manifestMod;
  const outRoot = resolve(typeof opts.out === 'string' ? opts.out : 'results');
  let manifest: import('../../sweep/manifest.js').SweepManifest;
  let dir: string;

  if (typeof opts.resume === 'string') {
    const problems: Problem[] = [];
    if (!SWEEP_ID_RE.test(opts.resume)) problems.push({ where: '--resume', message: `not a sweep id: '${opts.resume}' (e.g. sweep-20250131-235959-k3f9)` });
    const given = [...Object.keys(settingValues(opts, KEPT_ON_RESUME, 'sweep')), ...['repetitions', 'maxRepetitions', 'scenario', 'flow', 'flows'].filter((k) => opts[k] !== undefined)];
    for (const k of given) problems.push({ where: settingFlag(k, 'sweep'), message: 'not allowed with --resume: a resumed sweep keeps the settings in its sweep.json' });
    if (problems.length) return reportUsage(io, problems);
    dir = resolve(outRoot, opts.resume);
    try {
      manifest = readManifest(dir);
    } catch (e) {
      return reportUsage(io, [{ where: '--resume', message: `${(e as Error).message}${typeof opts.out === 'string' ? '' : ' (pass --out if the sweep was written elsewhere)'}` }]);
    }
    const { lockLive, lockHolder } = await import('../../identity/locks.js');
    const lockFile = resolve(dir, manifestMod.SWEEP_LOCK_FILE);
    if (lockLive(lockFile)) {
      const pid = lockHolder(readFileSync(lockFile, 'utf8'))?.pid;
      return reportUsage(io, [{ where: '--resume', message: `sweep ${manifest.id} is still running (pid ${pid}); resuming it now would run its points twice at once. Wait for it, or stop it (kill ${pid}) and resume then` }]);
    }
    const stale = staleRunIds(manifest);
    if (stale.length && !deps.runPoint) await removeLeftovers(manifest.backend, stale);
  } else {
    const problems: Problem[] = [];
    if (opts.retryFailed) problems.push({ where: '--retry-failed', message: 'only with --resume <sweep-id> (a new sweep has no failed points yet)' });
    const scenario = typeof opts.scenario === 'string' ? loadScenarioFile(opts.scenario) : undefined;
    if (scenario) problems.push(...scenario.problems);
    const flags = { ...settingValues(opts, SETTINGS, 'sweep'), ...(opts.repetitions !== undefined ? { repetitions: opts.repetitions as string } : {}), ...(opts.maxRepetitions !== undefined ? { maxRepetitions: opts.maxRepetitions as string } : {}) };
    const { resolveSweepConfig } = await import('../../sweep/config.js');
    const { config, problems: cfgProblems } = resolveSweepConfig(flags, scenario?.scenario ? { path: String(opts.scenario), scenario: scenario.scenario } : undefined);
    problems.push(...unlessScenarioFailed(cfgProblems, Boolean(scenario?.problems.length)));
    let notes: string[] = [];
    if (config) {
      const scenarioKeys = scenario?.scenario ? { path: String(opts.scenario), keys: Object.keys(scenario.scenario) } : undefined;
      const na = inapplicableSettings(givenSettings(settingValues(opts, SETTINGS, 'sweep'), (k) => settingFlag(k, 'sweep'), scenarioKeys), { cnis: config.matrix.cnis, measure: config.base.measure, command: 'sweep', services: config.matrix.services !== undefined });
      problems.push(...na.problems);
      notes = na.notes;
    }
    const { workloadFlagProblems, workloadConflicts } = await import('./run-workload.js');
    if (config) problems.push(...workloadFlagProblems(config.base, opts), ...workloadConflicts(config.base, settingValues(opts, SETTINGS, 'sweep')));
    // bench run --workload also runs on kind/cluster; a workload sweep and its verify runs are on the local backend so far.
    if (config?.base.workload !== undefined && config.base.backend !== 'auto' && config.base.backend !== 'local') problems.push({ where: '--backend', message: `a workload sweep runs on the local backend only so far, got "${config.base.backend}" (bench run --workload takes kind and cluster)` });
    if (config?.base.workload !== undefined && config.base.measure === 'enforce') problems.push({ where: 'measure', message: "a workload sweep measures its flows' latency; time to enforcement on a workload is not built yet" });
    if (!config || problems.length) return reportUsage(io, problems);
    // A workload: read, its flows chosen for every data plane and laid out — all before any work (exit 2).
    if (config.base.workload !== undefined) {
      const { prepareWorkloadMatrix } = await import('./sweep-workload.js');
      const prepared = await prepareWorkloadMatrix(config, opts);
      if ('problems' in prepared) return reportUsage(io, prepared.problems);
      notes.push(...prepared.notes);
    }
    for (const note of notes) io.stderr.write(`${note}\n`);
    const { selectBackend, checkBackendCni } = await import('../../backends/registry.js');
    // Every CNI of the matrix: auto must not pick a backend that runs only some of them.
    const selection = selectBackend(config.base.backend, config.base.backend === 'auto' ? (deps.environment ?? (await detectEnvironment())) : { dockerEngine: false, kind: false }, config.matrix.cnis);
    const unsupported = config.matrix.cnis.map((c) => checkBackendCni(selection.backend, c)).filter((p): p is Problem => p !== undefined);
    const { backendProblems, isLocalOnlySetting } = await import('../checks.js');
    const given = givenSettings(settingValues(opts, SETTINGS, 'sweep'), (k) => settingFlag(k, 'sweep'), scenario?.scenario ? { path: String(opts.scenario), keys: Object.keys(scenario.scenario) } : undefined);
    // The Service checks and the local-only settings; the target and the CNI are checked above, per CNI.
    const own = (p: Problem) => p.where === '--services' || p.where === '--endpoints-per-service' || given.some((g) => isLocalOnlySetting(g.key) && g.where === p.where);
    unsupported.push(...backendProblems(selection.backend, { ...config.base, services: config.matrix.services?.[0] }, given).filter(own));
    if (unsupported.length) return reportUsage(io, unsupported);
    if (selection.note) io.stderr.write(`${selection.note}\n`);
    if (!opts.dryRun) {
      const { outputPathProblem } = await import('../output-paths.js');
      const outProblem = outputPathProblem(outRoot, 'dir');
      if (outProblem) return reportUsage(io, [{ where: '--out', message: outProblem }]);
      if (!deps.runPoint) {
        const { backendPreflight } = await import('../doctor.js');
        const { ExecRunner } = await import('../../exec/runner.js');
        const missing = await backendPreflight(new ExecRunner(), selection.backend);
        if (missing.length) return reportUsage(io, missing);
      }
    }
    const { cni: _c, policies: _p, services: _s, out: _o, json: _j, dryRun: _d, keep: _k, ...rest } = config.base;
    const settings = sweepSettingsSchema.parse({ ...rest, backend: selection.backend as BackendName });
    const id = newSweepId();
    dir = resolve(outRoot, id);
    if (existsSync(dir)) return reportUsage(io, [{ where: dir, message: 'already exists; not overwriting it' }]);
    manifest = newManifest({ id, backend: selection.backend, scenario: typeof opts.scenario === 'string' ? opts.scenario : null, matrix: config.matrix, settings, points: planSweep(config.matrix) });
    if (opts.dryRun) {
      const a = config.matrix.adaptive;
      io.stdout.write(
        a
          ? `# sweep plan (dry run: nothing was executed): ${manifest.points.length} points in the first batch (${a.min} repetitions), then ${a.step} more at a time for data planes whose verdicts are open, at most ${a.max}; backend ${selection.backend}\n`
          : `# sweep plan (dry run: nothing was executed): ${manifest.points.length} points, ${config.matrix.repetitions} repetitions, ${config.matrix.workload ? `workload ${config.matrix.workload.name} (${config.base.workload}, ${config.matrix.policies[0]} policies; flows ${config.matrix.workload.flow ? 'named with --flow' : `chosen per data plane, ${config.matrix.workload.flows ?? 3} random`}), ` : ''}backend ${selection.backend}\n`,
      );
      for (const p of manifest.points) io.stdout.write(`${String(p.order + 1).padStart(4)}  ${p.key}\n`);
      for (const v of manifest.verify ?? []) io.stdout.write(`verify  ${v.cni}: probe the workload's flows, compare with the spec (verify-${v.cni}.json)\n`);
      return EXIT_OK;
    }
    const missingProbe = deps.runPoint ? undefined : await probeMissing(selection.backend);
    if (missingProbe) {
      io.stderr.write(`bench sweep: ${missingProbe}\n`);
      return EXIT_FAIL;
    }
  }

  const todo = pointsToRun(manifest, dir, { retryFailed: Boolean(opts.retryFailed) });
  const m = manifest.matrix;
  io.stderr.write(
    `sweep ${manifest.id}: ${todo.length} of ${manifest.points.length} points to run (${m.cnis.join(',')} × ${m.workload ? `workload ${m.workload.name} (${m.policies[0]} policies)` : `${m.policies.length} policy counts`}${m.services ? ` × ${m.services.length} Service counts` : ''} × ${m.adaptive ? `${m.adaptive.min}–${m.adaptive.max} adaptive repetitions` : `${m.repetitions} repetitions`}), backend ${manifest.backend}\n  results: ${dir}\n`,
  );
  // The current point's run: the one a forced exit leaves up.
  const pointRunIds: string[] = [];
  const pointRunId = () => (pointRunIds.push(newRunId()), pointRunIds.at(-1)!);
  const interrupt = deps.signal ? null : onInterrupt('stopping after the current point is torn down', (t) => io.stderr.write(t), () => pointRunIds.slice(-1));
  const signal = deps.signal ?? interrupt!.signal;
  const t0 = performance.now();
  const { lockContent } = await import('../../identity/locks.js');
  const lockFile = resolve(dir, manifestMod.SWEEP_LOCK_FILE);
  mkdirSync(dir, { recursive: true });
  writeFileSync(lockFile, lockContent());
  try {
    await runSweep({ dir, manifest, runPoint: deps.runPoint ?? localPointRunner, ...(deps.runVerify ? { runVerify: deps.runVerify } : {}), newRunId: pointRunId, signal, progress: progressPrinter(io.stderr), retryFailed: Boolean(opts.retryFailed) });
  } finally {
    rmSync(lockFile, { force: true });
    interrupt?.dispose();
  }
  const wallMs = performance.now() - t0;
  const c = counts(manifest);
  const resumeHint = `bench sweep --resume ${manifest.id}${typeof opts.out === 'string' ? ` --out ${opts.out}` : ''}`;

  const [{ analyzeInputs }, { sweepDocument }, { sweepSummary }, { Outputs, summaryOutput }] = await Promise.all([import('../../report/write.js'), import('../../report/json.js'), import('../../report/summary.js'), import('../../outputs/outputs.js')]);
  const analysis = c.ok > 0 ? analyzeInputs([dir], { seed: manifest.settings.seed }) : null;
  const outcome = { manifest, dir, wallMs, analysis };
  const outputs = new Outputs<typeof outcome>([
    summaryOutput(Boolean(opts.json), io.stdout, {
      summary: (o) => `\n${sweepSummary(o.manifest, o.analysis, o.wallMs)}\n${o.manifest.status !== 'complete' ? `\nnot finished: resume with\n  ${resumeHint}\n` : `\nreport: bench report ${o.dir}\n`}`,
      document: sweepDocument,
    }),
  ]);
  await outputs.start();
  await outputs.stop(outcome);
  if (signal.aborted) {
    if (opts.json) io.stderr.write(`interrupted after ${formatDuration(wallMs)}; resume with: ${resumeHint}\n`);
    return 130;
  }
  const verifyFailed = (manifest.verify ?? []).some((v) => v.status === 'failed');
  return c.failed > 0 || verifyFailed || manifest.status !== 'complete' ? EXIT_FAIL : EXIT_OK;
}

export function register(program: Command): void {
  declareFlags(program.command('sweep').description('the curve: every CNI × policy count × repetition, interleaved; results and sweep.json under <out>/<sweep-id>/'), sweepFlags(), 'sweep').action(async (opts: SweepCliOptions) => {
    process.exitCode = await cmdSweep(opts);
  });
}
