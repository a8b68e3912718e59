#!/usr/bin/env node
// The `bench` command. Commands stay thin: parse, validate, hand over to the modules that do the work, set
// the exit code. Usage errors exit 2; a failed run or check exits 1.
import { Command, CommanderError, Option } from 'commander';
import { stringify } from 'yaml';
import { readFileSync, realpathSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { ConfigError, loadScenarioFile, resolveRunConfig, unlessScenarioFailed, type Problem, type RawFlags } from '../config/load.js';
import { BACKENDS, CNIS, MAX_POLICIES, type BackendName, type RunConfig } from '../config/schema.js';
import type { RunResult } from '../results/schema.js';
import { ExecRunner, DryRunRunner, renderPlan } from '../exec/runner.js';
import { checkBackendCni, selectBackend } from '../backends/registry.js';
import { BACKEND_DESCRIPTORS, backendDescriptor } from '../backends/factory.js';
import { detectEnvironment, onInterrupt, stepPrinter } from './process.js';
import { EXIT_FAIL, EXIT_OK, EXIT_USAGE } from './io.js';
import { GuardError, installGuards } from './guards.js';
import { outputOption, outputPathProblem } from './outputs.js';
import { register as registerVerify } from './commands/verify.js';
import { register as registerSweep } from './commands/sweep.js';
import { register as registerReport } from './commands/report.js';
import { register as registerCompare } from './commands/compare.js';
import { register as registerEnforce } from './commands/enforce.js';

export { EXIT_OK, EXIT_FAIL, EXIT_USAGE };

class UsageError extends Error {
  constructor(readonly problems: Problem[]) {
    super(problems.map((p) => `${p.where}: ${p.message}`).join('\n'));
  }
}

const runFlags = (cmd: Command) =>
  cmd
    .addOption(new Option('--cni <name>', `CNI data plane: ${CNIS.join('|')}`))
    .option('--policies <n>', `number of NetworkPolicies selecting the server (0..${MAX_POLICIES})`)
    .addOption(new Option('--backend <name>', `where to run: ${BACKENDS.join('|')} (default auto)`))
    .option('--samples <n>', 'measured operations per metric (default 10000)')
    .option('--warmup <n>', 'warm-up operations per metric, not recorded (default 1000)')
    .option('--concurrency <n>', 'parallel probe workers (default 1)')
    .option('--placement <where>', 'cross-node|same-node (default cross-node)')
    .option('--match-position <pos>', "where the client's allowing policy sits in evaluation order: first|last (default last)")
    .option('--seed <n>', 'seed for the policy generator and bootstrap (default 1)')
    .option('--timeout-ms <n>', 'per-connection timeout (default 1000)')
    .option('--policy-map-capacity <n>', "Cilium: policy map entries per endpoint, 256..65536 (default 16384, Cilium's bpf.policyMapMax)")
    .option('--pin-cpu <n|auto|off>', "local backend: CPU for probe client, server and the veths' softirq work; auto (default) picks one, off leaves it to the scheduler")
    .option('--repetitions <n>', 'run the point N times, each a fresh measurement with its own warm-up; CIs then include run-to-run variation (default 1)')
    .option('--iptables-backend <name>', 'Calico/Canal models: nft|legacy, the iptables flavour Felix writes with (default nft, what Felix picks on current nodes)')
    .option('--endpoint-lockdown-on-policy-overflow', "Cilium: lock an endpoint down (deny all) when its policy map overflows, instead of Cilium's default (map left stale)")
    .option('--scenario <file>', 'YAML scenario; flags given on the command line override it')
    .addOption(outputOption('--out <dir>', 'results directory (default results)', 'dir'))
    .option('--keep', 'leave the namespaces/cluster up after the run, print how to enter them, and exit (bench gc --run <id> removes them)')
    .option('--dry-run', 'print the plan (every command) without running anything')
    .option('--json', 'print the summary as JSON on stdout')
    .option('--context <name>', 'cluster backend: kubeconfig context to use (required for --backend cluster)')
    .option('--kubeconfig <file>', 'cluster backend: kubeconfig file');

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

async function cmdRun(opts: Record<string, unknown>): Promise<number> {
  const problems: Problem[] = [];
  const scenario = typeof opts.scenario === 'string' ? loadScenarioFile(opts.scenario) : undefined;
  if (scenario) problems.push(...scenario.problems);
  const { config, problems: configProblems } = resolveRunConfig(rawFlags(opts), scenario?.scenario ? { path: String(opts.scenario), scenario: scenario.scenario } : undefined);
  problems.push(...unlessScenarioFailed(configProblems, Boolean(scenario?.problems.length)));
  const repetitions = runRepetitions(opts, scenario?.scenario?.repetitions, problems);
  if (!config) throw new UsageError(problems);
  if (repetitions > 1 && config.keep) problems.push({ where: '--keep', message: `keeps one run's namespaces up; it cannot be combined with --repetitions ${repetitions} (drop one of them)` });
  if (config.measure === 'enforce') problems.push({ where: 'measure', message: "bench run measures connection latency; for time to enforcement use 'bench enforce' (or 'bench sweep' with measure: enforce)" });
  const selection = selectBackend(config.backend, config.backend === 'auto' ? await detectEnvironment() : { dockerEngine: false, kind: false }, config.cni);
  if (BACKEND_DESCRIPTORS[selection.backend].needsTarget && !config.context && !config.kubeconfig) {
    problems.push({ where: '--context', message: 'the cluster backend needs an explicit --context NAME (or --kubeconfig FILE); it never guesses which cluster to use' });
  }
  if (!BACKEND_DESCRIPTORS[selection.backend].needsTarget) {
    for (const flag of ['context', 'kubeconfig'] as const) {
      if (config[flag] !== undefined) problems.push({ where: `--${flag}`, message: `only for --backend cluster (this run uses the ${selection.backend} backend)` });
    }
  }
  const unsupported = checkBackendCni(selection.backend, config.cni);
  if (unsupported) problems.push(unsupported);
  // The scenario file may set out:, so the effective directory is checked here too (flags are checked earlier).
  const outProblem = config.dryRun ? undefined : outputPathProblem(config.out, 'dir');
  if (outProblem) problems.push({ where: '--out', message: outProblem });
  if (problems.length) throw new UsageError(problems);
  if (!config.dryRun) {
    const { backendPreflight } = await import('./doctor.js');
    const missing = await backendPreflight(new ExecRunner(), selection.backend);
    if (missing.length) throw new UsageError(missing);
  }

  // With --json, stdout carries only the JSON document.
  if (selection.note) (config.json ? process.stderr : process.stdout).write(`${selection.note}\n`);
  const { newRunId } = await import('../identity/run-id.js');
  const runId = newRunId();
  const interrupt = onInterrupt('stopping and cleaning up');
  try {
    if (repetitions > 1 && !config.dryRun) return await measureRepetitions(config, selection.backend, runId, repetitions, newRunId, interrupt.signal, typeof opts.scenario === 'string' ? opts.scenario : undefined);
    return await measureAndReport(config, selection.backend, runId, interrupt.signal, typeof opts.scenario === 'string' ? opts.scenario : undefined);
  } finally {
    interrupt.dispose();
  }
}

async function measureAndReport(config: RunConfig, backendName: BackendName, runId: string, signal: AbortSignal, scenarioPath: string | undefined): Promise<number> {
  const { executeRun, runDirFor } = await import('../run/run.js');
  const { formatRunSummary, summaryJson } = await import('./format.js');
  const progress = stepPrinter(!config.json);
  const runner = config.dryRun ? new DryRunRunner() : new ExecRunner(signal);
  const { createBackend } = await import('../backends/factory.js');
  const outDir = runDirFor(config, runId);
  const backend = await createBackend({ config, backend: backendName, runId, runner, cleanupRunner: config.dryRun ? runner : undefined, signal, progress, outDir });
  progress.step(`run ${runId}: ${config.cni}, ${config.policies} policies, ${backend.model.name}`);
  const { result, path } = await executeRun({ runId, config, backend, outDir, scenarioPath, progress, signal });
  if (config.dryRun) {
    process.stdout.write(`# plan for run ${runId} on the ${backendName} backend (dry run: nothing was executed)\n${renderPlan(runner.log)}\n`);
    // What the planning found out is worth saying even when nothing ran: a policy map that would overflow, say.
    const overflow = result.modelState.policyMapOverflow;
    if (typeof overflow === 'string') process.stdout.write(`# POLICY MAP OVERFLOW (a real run completes and records it): ${overflow}\n`);
    for (const e of result.errors) process.stdout.write(`# ERROR (${e.stage}${e.kind ? `, ${e.kind}` : ''}): ${e.message}\n`);
    return result.status === 'ok' ? EXIT_OK : EXIT_FAIL;
  }
  if (config.json) process.stdout.write(`${JSON.stringify(summaryJson(result), null, 2)}\n`);
  else process.stdout.write(`\n${formatRunSummary(result, path)}\n`);
  if (config.keep) (config.json ? process.stderr : process.stdout).write(`\n${backend.keepInstructions().join('\n')}\n`);
  const others = result.meta.concurrentRuns ?? [];
  if (others.length) process.stderr.write(`warning: other cni-bench runs were live on this machine during this run (${others.join(', ')}); their load disturbs these numbers (recorded in the result as meta.concurrentRuns)\n`);
  if (signal.aborted) return 130;
  return result.status === 'ok' ? EXIT_OK : EXIT_FAIL;
}

/** N fresh runs of one point into <out>/<first run id>/r<k>/, summarised at run level (summary.json). */
async function measureRepetitions(config: RunConfig, backendName: BackendName, groupId: string, n: number, newRunId: () => string, signal: AbortSignal, scenarioPath: string | undefined): Promise<number> {
  const { executeRun, runDirFor } = await import('../run/run.js');
  const { summarizeRepetitions } = await import('../run/repetitions.js');
  const { formatRepetitionSummary, summaryJson } = await import('./format.js');
  const { writeFileAtomic } = await import('../results/io.js');
  const { createBackend } = await import('../backends/factory.js');
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

async function cmdPolicies(opts: Record<string, unknown>): Promise<number> {
  const { config, problems } = resolveRunConfig({ cni: 'none', ...rawFlags({ policies: opts.policies, matchPosition: opts.matchPosition, seed: opts.seed }) });
  const format = String(opts.output ?? 'yaml');
  if (!['yaml', 'json'].includes(format)) problems.push({ where: '-o', message: `must be yaml or json, got '${format}'` });
  if (!config || problems.length) throw new UsageError(problems);
  const { benchmarkPolicySet } = await import('../workload/workload.js');
  const { policies } = benchmarkPolicySet(config);
  if (format === 'json') process.stdout.write(`${JSON.stringify({ apiVersion: 'v1', kind: 'List', items: policies }, null, 2)}\n`);
  else process.stdout.write(policies.map((p) => stringify(p)).join('---\n'));
  return EXIT_OK;
}

async function cmdGc(opts: Record<string, unknown>): Promise<number> {
  const gc = backendDescriptor(opts.backend === undefined ? 'local' : String(opts.backend))?.gc;
  if (!gc) throw new UsageError([{ where: '--backend', message: `must be ${Object.values(BACKEND_DESCRIPTORS).filter((d) => d.gc).map((d) => d.name).join(' or ')}, got '${String(opts.backend)}'` }]);
  if (typeof opts.run === 'string' && !/^[a-z][a-z0-9]{4}$/.test(opts.run)) throw new UsageError([{ where: '--run', message: `not a run id: '${opts.run}' (5 characters, e.g. k3f9a)` }]);
  for (const line of await gc({ run: opts.run as string | undefined, force: Boolean(opts.force), dryRun: Boolean(opts.dryRun) })) process.stdout.write(`${line}\n`);
  return EXIT_OK;
}

async function cmdDoctor(): Promise<number> {
  const { runDoctor, formatChecks } = await import('./doctor.js');
  const checks = await runDoctor(new ExecRunner());
  process.stdout.write(`${formatChecks(checks)}\n`);
  return checks.filter((c) => BACKEND_DESCRIPTORS[c.for].doctorGate).every((c) => c.ok) ? EXIT_OK : EXIT_FAIL;
}

function packageVersion(): string {
  // main.ts sits two levels below the package root both as src/cli/main.ts and as dist/cli/main.js.
  return (JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { version: string }).version;
}

export function buildProgram(): Command {
  const program = new Command('bench')
    .description('Measure Kubernetes CNI data planes: is NetworkPolicy enforced, and what does a new connection cost as policies grow?')
    .version(packageVersion(), '-V, --version', 'print the version of cni-bench')
    .exitOverride()
    .showHelpAfterError('(run with --help for usage)');
  const wrap = (fn: (opts: Record<string, unknown>) => Promise<number>) => async (opts: Record<string, unknown>) => {
    process.exitCode = await fn(opts);
  };
  runFlags(program.command('run').description('one measurement: a CNI at one policy count')).action(wrap(cmdRun));
  program
    .command('policies')
    .description('print the generated NetworkPolicy set')
    .option('--policies <n>', 'number of filler policies', '3')
    .option('--match-position <pos>', 'first|last', 'last')
    .option('--seed <n>', 'generator seed', '1')
    .option('-o, --output <format>', 'yaml|json', 'yaml')
    .action(wrap(cmdPolicies));
  program
    .command('gc')
    .description('remove what killed runs left behind (namespaces, BPF pins), found by the cb-<runid>- prefix')
    .option('--backend <name>', 'local (namespaces, BPF pins) or kind (clusters named cb-<runid>)', 'local')
    .option('--run <id>', 'only this run id')
    .option('--force', 'also remove runs whose process still runs')
    .option('--dry-run', 'list what would be removed')
    .action(wrap(cmdGc));
  program.command('doctor').description('check what this machine needs for each backend and how to fix what is missing').action(wrap(async () => cmdDoctor()));
  registerSweep(program);
  registerVerify(program);
  registerReport(program);
  registerCompare(program);
  registerEnforce(program);
  installGuards(program);
  return program;
}

export async function main(argv: string[]): Promise<number> {
  const program = buildProgram();
  try {
    await program.parseAsync(argv);
    return typeof process.exitCode === 'number' ? process.exitCode : EXIT_OK;
  } catch (e) {
    if (e instanceof CommanderError) return e.exitCode === 0 ? EXIT_OK : EXIT_USAGE;
    if (e instanceof UsageError || e instanceof ConfigError || e instanceof GuardError) {
      const lines = e instanceof ConfigError ? e.problems.map((p) => `${p.where}: ${p.message}`) : e.message.split('\n');
      process.stderr.write(`bench: invalid input\n${lines.map((l) => `  ${l}`).join('\n')}\n`);
      return EXIT_USAGE;
    }
    process.stderr.write(`bench: ${(e as Error).message}\n`);
    return EXIT_FAIL;
  }
}

function invokedDirectly(): boolean {
  try {
    return process.argv[1] !== undefined && realpathSync(process.argv[1]) === fileURLToPath(import.meta.url);
  } catch {
    return false;
  }
}
if (invokedDirectly()) {
  main(process.argv).then((code) => {
    process.exitCode = code;
  });
}
