// `bench run`: one measurement, a CNI at one policy count (or N fresh repetitions of it). Thin: validate flags
// and scenario, pick the backend, hand over to src/run, print, set the exit code (0 ok, 1 the run failed,
// 2 usage, 130 interrupted).
import { Option, type Command } from 'commander';
import { loadScenarioFile, resolveRunConfig, unlessScenarioFailed, wholeNumberFlag } from '../../config/load.js';
import type { BackendName, RunConfig } from '../../config/schema.js';
import { InputError, type Problem } from '../../errors.js';
import type { RunResult } from '../../results/schema.js';
import type { RunCluster } from '../../run/run.js';
import { ExecRunner, DryRunRunner, renderPlan } from '../../exec/runner.js';
import { selectBackend } from '../../backends/registry.js';
import { backendProblems } from '../checks.js';
import { concurrentRunsWarning, detectEnvironment, onInterrupt, stepPrinter } from '../process.js';
import { EXIT_FAIL, EXIT_OK, EXIT_USAGE } from '../io.js';
import { outputPathProblem } from '../output-paths.js';
import { MEASUREMENT_SETTINGS, declareFlags, settingFlag, settingValues, settingsOf, type FlagList } from '../settings-flags.js';
import { givenSettings, inapplicableSettings } from '../applicability.js';
import { capacityOverflowOf } from '../../results/capacity-overflow.js';
import { DEFAULT_ADAPTIVE } from '../../stats/sequential.js';

const runFlags = (): FlagList => [
  'cni',
  'policies',
  ...MEASUREMENT_SETTINGS,
  'metrics',
  new Option('--repetitions <n>', 'run the point N times, each a fresh measurement with its own warm-up; CIs then include run-to-run variation (default 1)'),
  'iptablesBackend',
  'nftSelectorSets',
  'endpointLockdownOnPolicyOverflow',
  'bpfPolicyDebug',
  new Option('--scenario <file>', 'YAML scenario; flags given on the command line override it'),
  'out',
  'keep',
  'dryRun',
  'json',
  'context',
  'kubeconfig',
  'workload',
  new Option('--flow <ns/pod->ns/pod:port>', 'with --workload: measure exactly this TCP flow (repeatable; default: the most expensive, a cross-namespace, a same-node and --flows random allowed flows)').argParser((v: string, prev: string[] = []) => [...prev, v]),
  new Option('--flows <k>', 'with --workload: seeded random allowed flows beside the three chosen ones (default 3; --seed)'),
];
const SETTINGS = settingsOf(runFlags());

export async function cmdRun(opts: Record<string, unknown>): Promise<number> {
  const problems: Problem[] = [];
  const scenario = typeof opts.scenario === 'string' ? loadScenarioFile(opts.scenario) : undefined;
  if (scenario) problems.push(...scenario.problems);
  const { config, problems: configProblems } = resolveRunConfig(settingValues(opts, SETTINGS, 'run'), scenario?.scenario ? { path: String(opts.scenario), scenario: scenario.scenario } : undefined);
  problems.push(...unlessScenarioFailed(configProblems, Boolean(scenario?.problems.length)));
  // --repetitions: the flag, else the scenario's repetitions, else 1. A sweep scenario's 'auto' (adaptive
  // repetitions) has no verdict to decide in one point: it runs the repetitions a sweep starts every point with.
  const fromScenario = scenario?.scenario?.repetitions;
  const repetitions = wholeNumberFlag('--repetitions', opts.repetitions, { min: 1, max: 100 }, fromScenario === 'auto' ? DEFAULT_ADAPTIVE.min : (fromScenario ?? 1), problems);
  if (!config) throw new InputError(problems);
  if (repetitions > 1 && config.keep) problems.push({ where: '--keep', message: `keeps one run's namespaces up; it cannot be combined with --repetitions ${repetitions} (drop one of them)` });
  const { prepareRunCluster, workloadConflicts, workloadFlagProblems } = await import('./run-workload.js');
  problems.push(...workloadFlagProblems(config, opts), ...workloadConflicts(config, settingValues(opts, SETTINGS, 'run')));
  if (config.workload !== undefined && repetitions > 1) problems.push({ where: '--repetitions', message: 'not with --workload yet (run it again for another repetition)' });
  if (config.measure === 'enforce') problems.push({ where: 'measure', message: "bench run measures connection latency; for time to enforcement use 'bench enforce' (or 'bench sweep' with measure: enforce)" });
  else {
    const scenarioKeys = scenario?.scenario ? { path: String(opts.scenario), keys: Object.keys(scenario.scenario) } : undefined;
    problems.push(...inapplicableSettings(givenSettings(settingValues(opts, SETTINGS, 'run'), (k) => settingFlag(k, 'run'), scenarioKeys), { cnis: [config.cni], measure: 'latency', command: 'run', services: config.services !== undefined }).problems);
  }
  if (config.workload !== undefined && problems.length) throw new InputError(problems);
  // The workload file, its flows and what the local backend can hold: checked before any work.
  const prepared = config.workload !== undefined ? await prepareRunCluster(config, opts) : undefined;
  if (prepared && config.backend === 'auto') config.backend = 'local';
  const selection = selectBackend(config.backend, config.backend === 'auto' ? await detectEnvironment() : { dockerEngine: false, kind: false }, config.cni);
  const given = givenSettings(settingValues(opts, SETTINGS, 'run'), (k) => settingFlag(k, 'run'), scenario?.scenario ? { path: String(opts.scenario), keys: Object.keys(scenario.scenario) } : undefined);
  problems.push(...backendProblems(selection.backend, config, given));
  // The scenario file may set out:, so the effective directory is checked here too (flags are checked earlier).
  const outProblem = config.dryRun ? undefined : outputPathProblem(config.out, 'dir');
  if (outProblem) problems.push({ where: '--out', message: outProblem });
  if (config.keep && config.dryRun) problems.push({ where: '--keep', message: 'a dry run builds nothing, so nothing would be kept; drop --keep or --dry-run' });
  if (problems.length) throw new InputError(problems);
  if (!config.dryRun) {
    const { backendPreflight, targetPreflight } = await import('../doctor.js');
    const missing = await backendPreflight(new ExecRunner(), selection.backend);
    if (missing.length) throw new InputError(missing);
    const target = await targetPreflight(new ExecRunner(), selection.backend, config);
    if (target.length) throw new InputError(target);
  }

  // With --json, stdout carries only the JSON document.
  if (selection.note) (config.json ? process.stderr : process.stdout).write(`${selection.note}\n`);
  const { newRunId } = await import('../../identity/run-id.js');
  const runIds = [newRunId()];
  const runId = runIds[0]!;
  const scenarioPath = typeof opts.scenario === 'string' ? opts.scenario : undefined;
  // The run being measured (the latest repetition's): the one a forced exit leaves up.
  const interrupt = onInterrupt('stopping and cleaning up', undefined, () => runIds.slice(-1));
  const nextRunId = () => (runIds.push(newRunId()), runIds.at(-1)!);
  try {
    if (repetitions > 1 && !config.dryRun) return await measureRepetitions(config, selection.backend, runId, repetitions, nextRunId, interrupt.signal, scenarioPath);
    if (prepared) for (const n of prepared.notes) (config.json ? process.stderr : process.stdout).write(`note: ${n}\n`);
    return await measureAndReport(config, selection.backend, runId, interrupt.signal, scenarioPath, prepared?.cluster);
  } finally {
    interrupt.dispose();
  }
}

async function measureAndReport(config: RunConfig, backendName: BackendName, runId: string, signal: AbortSignal, scenarioPath: string | undefined, cluster?: RunCluster): Promise<number> {
  const { executeRun, runDirFor } = await import('../../run/run.js');
  const { formatRunSummary, summaryJson } = await import('../format.js');
  const progress = stepPrinter(!config.json);
  const runner = config.dryRun ? new DryRunRunner() : new ExecRunner(signal);
  const { createBackend } = await import('../../backends/factory.js');
  const outDir = runDirFor(config, runId);
  const backend = await createBackend({ config, backend: backendName, runId, runner, cleanupRunner: config.dryRun ? runner : undefined, signal, progress, outDir, ...(cluster ? { shape: 'cluster' as const } : {}) });
  progress.step(cluster ? `run ${runId}: ${config.cni}, workload ${cluster.name} (${cluster.workload.policies.policies.length} policies, ${cluster.flows.length} flows), ${backend.model.name}` : `run ${runId}: ${config.cni}, ${config.policies} policies, ${backend.model.name}`);
  const { Outputs, summaryOutput } = await import('../../outputs/outputs.js');
  const outputs = new Outputs<{ result: RunResult; path: string | null }>([
    summaryOutput(config.json, process.stdout, { summary: (r) => `\n${formatRunSummary(r.result, r.path)}\n`, document: (r) => summaryJson(r.result) }),
  ]);
  if (!config.dryRun) await outputs.start();
  const { result, path } = await executeRun({ runId, config, backend, outDir, scenarioPath, progress, signal, cluster });
  if (config.dryRun) {
    process.stdout.write(`# plan for run ${runId} on the ${backendName} backend (dry run: nothing was executed)\n${renderPlan(runner.log)}\n`);
    // What the planning found out is worth saying even when nothing ran: a policy that would not fit, say.
    const overflow = capacityOverflowOf(result.modelState);
    if (overflow) process.stdout.write(`# CAPACITY OVERFLOW (a real run completes and records it): ${overflow.summary}\n`);
    for (const e of result.errors) process.stdout.write(`# ERROR (${e.stage}${e.kind ? `, ${e.kind}` : ''}): ${e.message}\n`);
    return runExitCode(result);
  }
  await outputs.stop({ result, path });
  if (config.keep) (config.json ? process.stderr : process.stdout).write(`\n${backend.keepInstructions().join('\n')}\n`);
  const others = result.meta.concurrentRuns ?? [];
  if (others.length) process.stderr.write(`${concurrentRunsWarning(others)}\n`);
  if (signal.aborted) return 130;
  return runExitCode(result);
}

/** 0 ok; 2 when the run stopped on something the user fixes (a --cni the cluster contradicts, missing RBAC); else 1. */
export function runExitCode(result: Pick<RunResult, 'status' | 'errors'>): number {
  if (result.status === 'ok') return EXIT_OK;
  return result.errors.some((e) => e.kind === 'usage') ? EXIT_USAGE : EXIT_FAIL;
}

/** N fresh runs of one point into <out>/<first run id>/r<k>/, summarised at run level (summary.json). */
async function measureRepetitions(config: RunConfig, backendName: BackendName, groupId: string, n: number, newRunId: () => string, signal: AbortSignal, scenarioPath: string | undefined): Promise<number> {
  const { executeRun, runDirFor } = await import('../../run/run.js');
  const { summarizeRepetitions } = await import('../../run/repetitions.js');
  const { formatRepetitionSummary, summaryJson } = await import('../format.js');
  const { Outputs, fileOutput, jsonText, summaryOutput } = await import('../../outputs/outputs.js');
  const { createBackend } = await import('../../backends/factory.js');
  const { join } = await import('node:path');
  const progress = stepPrinter(!config.json);
  const groupDir = runDirFor(config, groupId);
  const results: RunResult[] = [];
  type Summary = ReturnType<typeof summarizeRepetitions>;
  const outputs = new Outputs<Summary>([
    fileOutput<Summary>(join(groupDir, 'summary.json'), 'run-level summary', (summary) => jsonText(summary)),
    summaryOutput<Summary>(config.json, process.stdout, { summary: (summary) => `\n${formatRepetitionSummary(summary, results, groupDir)}\n`, document: (summary) => ({ summary, runs: results.map(summaryJson) }) }),
  ]);
  await outputs.start();
  for (let k = 1; k <= n && !signal.aborted; k++) {
    const runId = k === 1 ? groupId : newRunId();
    const outDir = join(groupDir, `r${k}`);
    const runner = new ExecRunner(signal);
    const backend = await createBackend({ config, backend: backendName, runId, runner, signal, progress, outDir });
    progress.step(`repetition ${k}/${n} (run ${runId}): ${config.cni}, ${config.policies} policies, ${backend.model.name}`);
    const { result } = await executeRun({ runId, config, backend, outDir, scenarioPath, progress, signal, repetition: { index: k, of: n } });
    results.push(result);
  }
  await outputs.stop(summarizeRepetitions(results, { seed: config.seed }));
  if (signal.aborted) return 130;
  return results.length === n && results.every((r) => r.status === 'ok') ? EXIT_OK : EXIT_FAIL;
}

export function register(program: Command): void {
  declareFlags(program.command('run').description('one measurement: a CNI at one policy count'), runFlags(), 'run').action(async (opts: Record<string, unknown>) => {
    process.exitCode = await cmdRun(opts);
  });
}
