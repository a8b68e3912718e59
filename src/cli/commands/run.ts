// `bench run`: one measurement, a CNI at one policy count (or N fresh repetitions of it). Thin: validate flags
// and scenario, pick the backend, hand over to src/run, print, set the exit code (0 ok, 1 the run failed,
// 2 usage, 130 interrupted).
import { Option, type Command } from 'commander';
import { loadScenarioFile, resolveRunConfig, unlessScenarioFailed, wholeNumberFlag } from '../../config/load.js';
import type { BackendName, RunConfig } from '../../config/schema.js';
import { InputError, type Problem } from '../../errors.js';
import type { RunResult } from '../../results/schema.js';
import { ExecRunner, DryRunRunner, renderPlan } from '../../exec/runner.js';
import { selectBackend } from '../../backends/registry.js';
import { backendProblems } from '../checks.js';
import { detectEnvironment, onInterrupt, stepPrinter } from '../process.js';
import { EXIT_FAIL, EXIT_OK, EXIT_USAGE } from '../io.js';
import { outputPathProblem } from '../output-paths.js';
import { MEASUREMENT_SETTINGS, declareFlags, settingValues, settingsOf, type FlagList } from '../settings-flags.js';
import { capacityOverflowOf } from '../../results/capacity-overflow.js';

const runFlags = (): FlagList => [
  'cni',
  'policies',
  ...MEASUREMENT_SETTINGS,
  new Option('--repetitions <n>', 'run the point N times, each a fresh measurement with its own warm-up; CIs then include run-to-run variation (default 1)'),
  'iptablesBackend',
  'endpointLockdownOnPolicyOverflow',
  'bpfPolicyDebug',
  new Option('--scenario <file>', 'YAML scenario; flags given on the command line override it'),
  'out',
  'keep',
  'dryRun',
  'json',
  'context',
  'kubeconfig',
];
const SETTINGS = settingsOf(runFlags());

export async function cmdRun(opts: Record<string, unknown>): Promise<number> {
  const problems: Problem[] = [];
  const scenario = typeof opts.scenario === 'string' ? loadScenarioFile(opts.scenario) : undefined;
  if (scenario) problems.push(...scenario.problems);
  const { config, problems: configProblems } = resolveRunConfig(settingValues(opts, SETTINGS, 'run'), scenario?.scenario ? { path: String(opts.scenario), scenario: scenario.scenario } : undefined);
  problems.push(...unlessScenarioFailed(configProblems, Boolean(scenario?.problems.length)));
  // --repetitions: the flag, else the scenario's repetitions, else 1.
  const repetitions = wholeNumberFlag('--repetitions', opts.repetitions, { min: 1, max: 100 }, scenario?.scenario?.repetitions ?? 1, problems);
  if (!config) throw new InputError(problems);
  if (repetitions > 1 && config.keep) problems.push({ where: '--keep', message: `keeps one run's namespaces up; it cannot be combined with --repetitions ${repetitions} (drop one of them)` });
  if (config.measure === 'enforce') problems.push({ where: 'measure', message: "bench run measures connection latency; for time to enforcement use 'bench enforce' (or 'bench sweep' with measure: enforce)" });
  const selection = selectBackend(config.backend, config.backend === 'auto' ? await detectEnvironment() : { dockerEngine: false, kind: false }, config.cni);
  problems.push(...backendProblems(selection.backend, config));
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
  const { Outputs, summaryOutput } = await import('../../outputs/outputs.js');
  const outputs = new Outputs<{ result: RunResult; path: string | null }>([
    summaryOutput(config.json, process.stdout, { summary: (r) => `\n${formatRunSummary(r.result, r.path)}\n`, document: (r) => summaryJson(r.result) }),
  ]);
  if (!config.dryRun) await outputs.start();
  const { result, path } = await executeRun({ runId, config, backend, outDir, scenarioPath, progress, signal });
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
