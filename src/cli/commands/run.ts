// `bench run`: one measurement, a CNI at one policy count (or N fresh repetitions of it). Thin: validate flags
// and scenario, pick the backend, hand over to src/run, print, set the exit code (0 ok, 1 the run failed,
// 2 usage, 130 interrupted).
import { BACKEND_DESCRIPTORS } from '../../backends/factory.js';
import { Option, type Command } from 'commander';
import { loadScenarioFile, resolveRunConfig, unlessScenarioFailed, type RawFlags } from '../../config/load.js';
import { CNIS, MAX_POLICIES, type BackendName, type RunConfig } from '../../config/schema.js';
import { InputError, type Problem } from '../../errors.js';
import type { RunResult } from '../../results/schema.js';
import { ExecRunner, DryRunRunner, renderPlan } from '../../exec/runner.js';
import { checkBackendCni, selectBackend } from '../../backends/registry.js';
import { detectEnvironment, onInterrupt, stepPrinter } from '../process.js';
import { EXIT_FAIL, EXIT_OK, EXIT_USAGE } from '../io.js';
import { outputOption, outputPathProblem } from '../outputs.js';
import { MEASUREMENT_SETTINGS, declareFlags, type FlagList } from '../settings-flags.js';
import { capacityOverflowOf } from '../../results/capacity-overflow.js';

const runFlags = (): FlagList => [
  new Option('--cni <name>', `CNI data plane: ${CNIS.join('|')}`),
  new Option('--policies <n>', `number of NetworkPolicies selecting the server (0..${MAX_POLICIES})`),
  ...MEASUREMENT_SETTINGS,
  new Option('--repetitions <n>', 'run the point N times, each a fresh measurement with its own warm-up; CIs then include run-to-run variation (default 1)'),
  'iptablesBackend',
  'endpointLockdownOnPolicyOverflow',
  'bpfPolicyDebug',
  new Option('--scenario <file>', 'YAML scenario; flags given on the command line override it'),
  outputOption('--out <dir>', 'results directory (default results)', 'dir'),
  new Option('--keep', 'leave the namespaces/cluster up after the run, print how to enter them, and exit (bench gc --run <id> removes them)'),
  new Option('--dry-run', 'print the plan (every command) without running anything'),
  new Option('--json', 'print the summary as JSON on stdout'),
  'context',
  'kubeconfig',
];

/** Everything but what bench run handles itself goes to the config resolver. */
function rawFlags(opts: Record<string, unknown>): RawFlags {
  const { scenario: _s, repetitions: _r, ...rest } = opts;
  return rest as RawFlags;
}

/** --repetitions for bench run: flag, else the scenario's repetitions, else 1. */
function runRepetitions(opts: Record<string, unknown>, scenarioReps: number | undefined, problems: Problem[]): number {
  if (opts.repetitions === undefined) return scenarioReps ?? 1;
  const n = Number(opts.repetitions);
  if (!/^\d+$/.test(String(opts.repetitions)) || n < 1 || n > 100) {
    problems.push({ where: '--repetitions', message: `expected a whole number 1..100, got '${String(opts.repetitions)}'` });
    return 1;
  }
  return n;
}

/** What the chosen backend needs to be told about its target (the cluster backend: which cluster; the others: nothing). */
function targetProblems(backend: BackendName, config: RunConfig): Problem[] {
  if (BACKEND_DESCRIPTORS[backend].needsTarget) {
    return config.context || config.kubeconfig ? [] : [{ where: '--context', message: 'the cluster backend needs an explicit --context NAME (or --kubeconfig FILE); it never guesses which cluster to use' }];
  }
  return (['context', 'kubeconfig'] as const).filter((flag) => config[flag] !== undefined).map((flag) => ({ where: `--${flag}`, message: `only for --backend cluster (this run uses the ${backend} backend)` }));
}

export async function cmdRun(opts: Record<string, unknown>): Promise<number> {
  const problems: Problem[] = [];
  const scenario = typeof opts.scenario === 'string' ? loadScenarioFile(opts.scenario) : undefined;
  if (scenario) problems.push(...scenario.problems);
  const { config, problems: configProblems } = resolveRunConfig(rawFlags(opts), scenario?.scenario ? { path: String(opts.scenario), scenario: scenario.scenario } : undefined);
  problems.push(...unlessScenarioFailed(configProblems, Boolean(scenario?.problems.length)));
  const repetitions = runRepetitions(opts, scenario?.scenario?.repetitions, problems);
  if (!config) throw new InputError(problems);
  if (repetitions > 1 && config.keep) problems.push({ where: '--keep', message: `keeps one run's namespaces up; it cannot be combined with --repetitions ${repetitions} (drop one of them)` });
  if (config.measure === 'enforce') problems.push({ where: 'measure', message: "bench run measures connection latency; for time to enforcement use 'bench enforce' (or 'bench sweep' with measure: enforce)" });
  const selection = selectBackend(config.backend, config.backend === 'auto' ? await detectEnvironment() : { dockerEngine: false, kind: false }, config.cni);
  problems.push(...targetProblems(selection.backend, config));
  const unsupported = checkBackendCni(selection.backend, config.cni);
  if (unsupported) problems.push(unsupported);
  // The scenario file may set out:, so the effective directory is checked here too (flags are checked earlier).
  const outProblem = config.dryRun ? undefined : outputPathProblem(config.out, 'dir');
  if (outProblem) problems.push({ where: '--out', message: outProblem });
  if (problems.length) throw new InputError(problems);
  if (!config.dryRun) {
    const { backendPreflight } = await import('../doctor.js');
    const missing = await backendPreflight(new ExecRunner(), selection.backend);
    if (missing.length) throw new InputError(missing);
  }

  // With --json, stdout carries only the JSON document.
  if (selection.note) (config.json ? process.stderr : process.stdout).write(`${selection.note}\n`);
  const { newRunId } = await import('../../identity/run-id.js');
  const runId = newRunId();
  const scenarioPath = typeof opts.scenario === 'string' ? opts.scenario : undefined;
  const interrupt = onInterrupt('stopping and cleaning up');
  try {
    if (repetitions > 1 && !config.dryRun) return await measureRepetitions(config, selection.backend, runId, repetitions, newRunId, interrupt.signal, scenarioPath);
    return await measureAndReport(config, selection.backend, runId, interrupt.signal, scenarioPath);
  } finally {
    interrupt.dispose();
  }
}

async function measureAndReport(config: RunConfig, backendName: BackendName, runId: string, signal: AbortSignal, scenarioPath: string | undefined): Promise<number> {
  const { executeRun, runDirFor } = await import('../../run/run.js');
  const { formatRunSummary, summaryJson } = await import('../format.js');
  const progress = stepPrinter(!config.json);
  const runner = config.dryRun ? new DryRunRunner() : new ExecRunner(signal);
  const { createBackend } = await import('../../backends/factory.js');
  const outDir = runDirFor(config, runId);
  const backend = await createBackend({ config, backend: backendName, runId, runner, cleanupRunner: config.dryRun ? runner : undefined, signal, progress, outDir });
  progress.step(`run ${runId}: ${config.cni}, ${config.policies} policies, ${backend.model.name}`);
  const { result, path } = await executeRun({ runId, config, backend, outDir, scenarioPath, progress, signal });
  if (config.dryRun) {
    process.stdout.write(`# plan for run ${runId} on the ${backendName} backend (dry run: nothing was executed)\n${renderPlan(runner.log)}\n`);
    // What the planning found out is worth saying even when nothing ran: a policy that would not fit, say.
    const overflow = capacityOverflowOf(result.modelState);
    if (overflow) process.stdout.write(`# CAPACITY OVERFLOW (a real run completes and records it): ${overflow.summary}\n`);
    for (const e of result.errors) process.stdout.write(`# ERROR (${e.stage}${e.kind ? `, ${e.kind}` : ''}): ${e.message}\n`);
    return runExitCode(result);
  }
  if (config.json) process.stdout.write(`${JSON.stringify(summaryJson(result), null, 2)}\n`);
  else process.stdout.write(`\n${formatRunSummary(result, path)}\n`);
  if (config.keep) (config.json ? process.stderr : process.stdout).write(`\n${backend.keepInstructions().join('\n')}\n`);
  const others = result.meta.concurrentRuns ?? [];
  if (others.length) process.stderr.write(`warning: other cni-bench runs were live on this machine during this run (${others.join(', ')}); their load disturbs these numbers (recorded in the result as meta.concurrentRuns)\n`);
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
  const { writeFileAtomic } = await import('../../results/io.js');
  const { createBackend } = await import('../../backends/factory.js');
  const { join } = await import('node:path');
  const progress = stepPrinter(!config.json);
  const groupDir = runDirFor(config, groupId);
  const results: RunResult[] = [];
  for (let k = 1; k <= n && !signal.aborted; k++) {
    const runId = k === 1 ? groupId : newRunId();
    const outDir = join(groupDir, `r${k}`);
    const runner = new ExecRunner(signal);
    const backend = await createBackend({ config, backend: backendName, runId, runner, signal, progress, outDir });
    progress.step(`repetition ${k}/${n} (run ${runId}): ${config.cni}, ${config.policies} policies, ${backend.model.name}`);
    const { result } = await executeRun({ runId, config, backend, outDir, scenarioPath, progress, signal, repetition: { index: k, of: n } });
    results.push(result);
  }
  const summary = summarizeRepetitions(results, { seed: config.seed });
  const json = (v: unknown) => JSON.stringify(v, (_k, x: unknown) => (typeof x === 'number' && !Number.isFinite(x) ? null : x), 2);
  writeFileAtomic(join(groupDir, 'summary.json'), `${json(summary)}\n`);
  if (config.json) process.stdout.write(`${json({ summary, runs: results.map(summaryJson) })}\n`);
  else process.stdout.write(`\n${formatRepetitionSummary(summary, results, groupDir)}\n`);
  if (signal.aborted) return 130;
  return results.length === n && results.every((r) => r.status === 'ok') ? EXIT_OK : EXIT_FAIL;
}

export function register(program: Command): void {
  declareFlags(program.command('run').description('one measurement: a CNI at one policy count'), runFlags()).action(async (opts: Record<string, unknown>) => {
    process.exitCode = await cmdRun(opts);
  });
}
