// `bench verify`: are NetworkPolicies enforced, and enforced as the specification says? Thin: parse flags,
// load and check the cases, hand over to src/verify, print, set the exit code (0 every case passed, 1 a case
// failed — including "NOT ENFORCED" — 2 usage or case-file errors, 130 interrupted).
import { Command, Option } from 'commander';
import { setMaxListeners } from 'node:events';
import { writeFileSync } from 'node:fs';
import { ConfigError, type Problem } from '../../config/load.js';
import { CNIS, type CniName } from '../../config/schema.js';
import { onInterrupt, stepPrinter } from '../process.js';

interface VerifyFlags {
  cni?: string;
  backend: string;
  cases: string[];
  case: string[];
  timeoutMs?: string;
  retries?: string;
  parallel?: string;
  list?: boolean;
  json?: boolean;
  junit?: string;
}

const collect = (value: string, previous: string[]) => [...previous, value];

function wholeNumber(flag: string, value: string | undefined, min: number, max: number, fallback: number, problems: Problem[]): number {
  if (value === undefined) return fallback;
  if (!/^\d+$/.test(value.trim()) || Number(value) < min || Number(value) > max) {
    problems.push({ where: flag, message: `expected a whole number ${min}..${max}, got '${value}'` });
    return fallback;
  }
  return Number(value);
}

export async function cmdVerify(flags: VerifyFlags): Promise<number> {
  const problems: Problem[] = [];
  const cni = flags.cni as CniName | undefined;
  if (cni === undefined && !flags.list) problems.push({ where: '--cni', message: `required: one of ${CNIS.join(', ')}` });
  if (cni !== undefined && !CNIS.includes(cni)) problems.push({ where: '--cni', message: `must be one of ${CNIS.join(', ')}, got '${cni}'` });
  if (flags.backend !== 'local') {
    problems.push({ where: '--backend', message: `'${flags.backend}' cannot run verify yet; only the local backend implements the verification grid (kind and cluster will run the same case files)` });
  }
  const timeoutMs = wholeNumber('--timeout-ms', flags.timeoutMs, 10, 60_000, 300, problems);
  const retries = wholeNumber('--retries', flags.retries, 0, 10, 2, problems);
  const parallelism = wholeNumber('--parallel', flags.parallel, 1, 256, 32, problems);
  if (problems.length) throw new ConfigError(problems);

  const { BUILTIN_CASES_DIR, loadCases } = await import('../../verify/cases.js');
  const { gridLayout } = await import('../../verify/grid.js');
  const { planLocalGrid, LocalVerifyGrid } = await import('../../verify/local.js');
  const { localModel } = await import('../../backends/local/models.js');
  const layout = gridLayout();
  let model;
  try {
    model = localModel(cni ?? 'none');
  } catch (e) {
    throw new ConfigError([{ where: '--cni', message: (e as Error).message }]);
  }
  // Case templates are checked against the addresses the local grid will have.
  const planned = planLocalGrid(layout, { runId: 'check', model });
  const loaded = loadCases(flags.cases.length ? flags.cases : [BUILTIN_CASES_DIR], { layout, ips: planned.addresses.ips });
  if (loaded.problems.length) throw new ConfigError(loaded.problems);
  let cases = loaded.cases;
  if (flags.case.length) {
    const unknown = flags.case.filter((n) => !cases.some((c) => c.name === n));
    if (unknown.length) throw new ConfigError(unknown.map((n) => ({ where: '--case', message: `no case named '${n}' (known: ${cases.map((c) => c.name).join(', ')})` })));
    cases = cases.filter((c) => flags.case.includes(c.name));
  }

  if (flags.list) return listCases(cases, layout, planned.addresses);

  const { ExecRunner } = await import('../../exec/runner.js');
  const { assertProbeAvailable } = await import('../../probe/native.js');
  const { newRunId } = await import('../../backends/local/topology.js');
  const { runVerify, VerifyAborted } = await import('../../verify/run.js');
  const { renderCase, renderHeader, renderSummary } = await import('../../verify/render.js');
  const { verifyJson, verifyJunit } = await import('../../verify/output.js');
  if (process.getuid?.() !== 0) {
    process.stderr.write('bench verify: the local backend builds network namespaces and needs root (run with sudo)\n');
    return 1;
  }
  assertProbeAvailable();

  const { signal } = onInterrupt('stopping and cleaning up');
  // Every probe in flight holds an abort listener on the signal.
  setMaxListeners(parallelism * 2 + 16, signal);
  const runId = newRunId();
  const progress = stepPrinter(!flags.json);
  const grid = new LocalVerifyGrid({ cni: cni!, runId, signal, runner: new ExecRunner(signal), progress });
  progress.step(`verify run ${runId}: ${cases.length} cases, ${cni}`);
  if (!flags.json) process.stdout.write(`${renderHeader({ cni: cni!, backend: grid.backend, model: grid.model }, layout, cases.length)}\n`);
  try {
    const report = await runVerify({
      grid,
      layout,
      cases,
      timeoutMs,
      retries,
      parallelism,
      signal,
      progress,
      onCase: (r) => {
        if (!flags.json) process.stdout.write(`${renderCase(layout, r)}\n\n`);
      },
    });
    if (flags.junit) writeFileSync(flags.junit, verifyJunit(report, layout));
    if (flags.json) process.stdout.write(`${JSON.stringify({ runId, ...verifyJson(report) }, null, 2)}\n`);
    else process.stdout.write(`${renderSummary(report)}\n${flags.junit ? `  JUnit: ${flags.junit}\n` : ''}`);
    return report.verdict.failed === 0 ? 0 : 1;
  } catch (e) {
    if (e instanceof VerifyAborted || signal.aborted) {
      process.stderr.write(`bench verify: interrupted; the grid was torn down\n`);
      return 130;
    }
    throw e;
  }
}

async function listCases(
  cases: Awaited<ReturnType<typeof import('../../verify/cases.js')['loadCases']>>['cases'],
  layout: import('../../verify/grid.js').GridLayout,
  addresses: import('../../verify/grid.js').GridAddresses,
): Promise<number> {
  const { gridInventory, instantiatePolicies, planProbes } = await import('../../verify/grid.js');
  const { expectProbes } = await import('../../verify/expect.js');
  const { legend, renderMatrix } = await import('../../verify/render.js');
  const inventory = gridInventory(layout, addresses);
  process.stdout.write(`${cases.length} cases; expected matrices (what the NetworkPolicy specification says) on the local grid's addresses\n${legend(layout)}\n\n`);
  for (const c of cases) {
    const { policies } = instantiatePolicies(c.policies, addresses.ips);
    const { expectations, notes } = expectProbes(inventory, policies, planProbes(layout, c.probes), addresses);
    const asObserved = expectations.map((e) => ({ ...e, observed: e.allowed ? ('connected' as const) : ('blocked' as const), attempts: [] }));
    const denies = expectations.filter((e) => !e.allowed).length;
    process.stdout.write(`${c.name} — ${c.source}\n  ${c.description.trim()}\n  ${expectations.length} probes, ${denies} expected denies\n`);
    process.stdout.write(`${renderMatrix(layout, asObserved).replace(/^/gm, '  ')}\n`);
    for (const n of notes) process.stdout.write(`  note: ${n}\n`);
    process.stdout.write('\n');
  }
  return 0;
}

export function register(program: Command): void {
  program
    .command('verify')
    .description('are NetworkPolicies enforced, and as the specification says? Probes a grid of pods for each policy case and compares with the reference evaluator')
    .addOption(new Option('--cni <name>', `CNI data plane: ${CNIS.join('|')}`))
    .option('--backend <name>', 'where to run (only local implements verify so far)', 'local')
    .option('--cases <path>', 'case file or directory of *.yaml cases; repeatable (default: the built-in library in scenarios/verify)', collect, [])
    .option('--case <name>', 'run only this case; repeatable', collect, [])
    .option('--timeout-ms <n>', 'per-probe timeout for a TCP connect or a UDP echo (default 300)')
    .option('--retries <n>', 'extra attempts for a probe that disagrees with the specification (default 2)')
    .option('--parallel <n>', 'probes in flight at once (default 32)')
    .option('--list', 'check the case files and print each case with its expected matrix; runs nothing')
    .option('--json', 'print the report as JSON on stdout')
    .option('--junit <file>', 'write a JUnit XML report (one test case per policy case)')
    .action(async (opts: VerifyFlags) => {
      process.exitCode = await cmdVerify(opts);
    });
}
