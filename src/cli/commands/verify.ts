// `bench verify`: are NetworkPolicies enforced, and enforced as the specification says? Thin: parse flags,
// load and check the cases, hand over to src/verify, print, set the exit code (0 every case passed, 1 a case
// failed — including "NOT ENFORCED" — 2 usage or case-file errors, 130 interrupted).
import { Command, Option } from 'commander';
import { setMaxListeners } from 'node:events';
import { resolveRunConfig, wholeNumberFlag } from '../../config/load.js';
import type { BackendName, RunConfig } from '../../config/schema.js';
import { InputError, InterruptedError, type Problem } from '../../errors.js';
import { backendProblems, localOnlyProblem } from '../checks.js';
import { onInterrupt, stepPrinter } from '../process.js';
import { outputOption } from '../output-paths.js';
import { commandDefaults, declareFlags, settingValues, settingsOf, type FlagList } from '../settings-flags.js';

interface VerifyFlags extends Record<string, unknown> {
  cni?: string;
  backend?: string;
  context?: string;
  kubeconfig?: string;
  keep?: boolean;
  dryRun?: boolean;
  out?: string;
  cases: string[];
  case: string[];
  timeoutMs?: string;
  retries?: string;
  parallel?: string;
  list?: boolean;
  json?: boolean;
  junit?: string;
  policies?: string;
  iptablesBackend?: string;
  workload?: string;
  flow?: string[];
  diff?: boolean;
  maxFlows?: string;
  seed?: string;
}

const collect = (value: string, previous: string[]) => [...previous, value];

const verifyFlags = (): FlagList => [
  'cni',
  'backend',
  'context',
  'kubeconfig',
  'keep',
  'dryRun',
  'out',
  new Option('--cases <path>', 'case file or directory of *.yaml cases; repeatable (default: the built-in library in scenarios/verify)').argParser(collect).default([]),
  new Option('--case <name>', 'run only this case; repeatable').argParser(collect).default([]),
  'timeoutMs',
  new Option('--retries <n>', 'extra attempts for a probe that disagrees with the specification (default 2)'),
  new Option('--parallel <n>', 'probes in flight at once (default 32 local, 8 kind/cluster: each is a kubectl exec)'),
  'policies',
  new Option('--list', 'check the case files and print each case with its expected matrix; runs nothing'),
  'json',
  outputOption('--junit <file>', 'write a JUnit XML report (one test case per policy case)', 'file'),
  'iptablesBackend',
  'services',
  'kubeProxy',
  'workload',
  new Option('--flow <ns/pod->ns/pod:port[/proto]>', 'with --workload: probe exactly this flow (repeatable; default every pod pair on its declared ports, a seeded sample above --max-flows)').argParser(collect).default([]),
  new Option('--max-flows <n>', 'with --workload: probe at most this many flows, a seeded sample (--seed) above it (default 2000)'),
  'seed',
  new Option('--diff', 'with --workload and several --cni: list the flows whose verdict differs between the data planes'),
];
const SETTINGS = settingsOf(verifyFlags());

export async function cmdVerify(flags: VerifyFlags): Promise<number> {
  if (flags.workload !== undefined) return (await import('./verify-workload.js')).cmdVerifyWorkload({ ...flags, flow: flags.flow ?? [] });
  const problems: Problem[] = [];
  for (const [set, flag] of [[(flags.flow?.length ?? 0) > 0, '--flow'], [flags.maxFlows !== undefined, '--max-flows'], [flags.diff, '--diff']] as const) {
    if (set) problems.push({ where: flag, message: 'only with --workload FILE' });
  }
  // --list needs no data plane: any CNI stands in for the one not given.
  const given = settingValues(flags, SETTINGS, 'verify');
  const { config, problems: settingProblems } = resolveRunConfig({ ...given, ...(flags.list && given.cni === undefined ? { cni: 'none' } : {}) }, undefined, { defaults: commandDefaults('verify') });
  problems.push(...settingProblems);
  const { backendDescriptor } = await import('../../backends/factory.js');
  const { MAX_VERIFY_FILLERS } = await import('../../verify/fillers.js');
  const backend = config?.backend;
  if (backend === 'auto') problems.push({ where: '--backend', message: 'must be one of local, kind, cluster, got "auto"' });
  const descriptor = backend && backend !== 'auto' ? backendDescriptor(backend) : undefined;
  const onK8s = descriptor?.verify.onCluster ?? false;
  if (config && descriptor && !flags.list) problems.push(...backendProblems(descriptor.name, config));
  if (config?.services !== undefined && descriptor && !descriptor.verifyServices) problems.push({ where: '--services', message: `verify probes through Services on the local backend only for now (the ${descriptor.name} grid connects to the pods), got ${config.services}` });
  if (!onK8s && flags.dryRun) problems.push({ where: '--dry-run', message: 'only for --backend kind|cluster (the local grid is planned in-process; --list shows every case)' });
  if (!onK8s && flags.keep) problems.push({ where: '--keep', message: 'only for --backend kind|cluster' });
  // A real cluster answers through `kubectl exec`: upstream's 1 s probe timeout, fewer execs in flight.
  const defaults = (descriptor ?? backendDescriptor('local')!).verify;
  const timeoutMs = flags.timeoutMs === undefined ? defaults.timeoutMs : (config?.timeoutMs ?? defaults.timeoutMs);
  const retries = wholeNumberFlag('--retries', flags.retries, { min: 0, max: 10 }, 2, problems);
  const parallelism = wholeNumberFlag('--parallel', flags.parallel, { min: 1, max: 256 }, defaults.parallelism, problems);
  const fillers = config?.policies ?? 0;
  if (fillers > MAX_VERIFY_FILLERS) problems.push({ where: '--policies', message: `must be at most ${MAX_VERIFY_FILLERS} on verify (fillers go on every isolated pod group), got ${fillers}` });
  if (flags.iptablesBackend !== undefined && onK8s) problems.push(localOnlyProblem('--iptables-backend', 'iptablesBackend', backend as BackendName));
  if (onK8s && !flags.dryRun && !flags.list && problems.length === 0) {
    const [{ backendPreflight, targetPreflight }, { ExecRunner }] = await Promise.all([import('../doctor.js'), import('../../exec/runner.js')]);
    problems.push(...(await backendPreflight(new ExecRunner(), backend!)));
    if (problems.length === 0 && config) problems.push(...(await targetPreflight(new ExecRunner(), backend!, config)));
  }
  if (problems.length || !config) throw new InputError(problems);

  const { BUILTIN_CASES_DIR, loadCases } = await import('../../verify/cases.js');
  const { gridLayout, gridWorkload } = await import('../../verify/grid.js');
  const { plannedAddresses } = await import('../../backends/factory.js');
  const layout = gridLayout();
  // Case templates are checked against the addresses the local grid will have, on every backend.
  const addresses = await plannedAddresses(gridWorkload(layout));
  const loaded = loadCases(flags.cases.length ? flags.cases : [BUILTIN_CASES_DIR], { layout, ips: addresses.ips });
  if (loaded.problems.length) throw new InputError(loaded.problems);
  let cases = loaded.cases;
  if (flags.case.length) {
    const unknown = flags.case.filter((n) => !cases.some((c) => c.name === n));
    if (unknown.length) throw new InputError(unknown.map((n) => ({ where: '--case', message: `no case named '${n}' (known: ${cases.map((c) => c.name).join(', ')})` })));
    cases = cases.filter((c) => flags.case.includes(c.name));
  }

  if (flags.list) return listCases(cases, layout, addresses);
  {
    // Cases that expect no denied connection pass on a data plane that enforces nothing: refuse to call that "enforced".
    const { gridInventory, instantiatePolicies, planProbes } = await import('../../verify/grid.js');
    const { expectProbes } = await import('../../verify/expect.js');
    const inventory = gridInventory(layout, addresses);
    const denies = cases.reduce((n, c) => n + expectProbes(inventory, instantiatePolicies(c.policies, addresses.ips).policies, planProbes(layout, c.probes), addresses).expectations.filter((e) => !e.allowed).length, 0);
    if (denies === 0) {
      throw new InputError([{ where: flags.case.length ? '--case' : '--cases', message: `the selected cases (${cases.map((c) => c.name).join(', ')}) expect no denied connection, so they cannot show whether policies are enforced; add a case that denies something (e.g. --case default-deny-ingress)` }]);
    }
  }
  if (!onK8s && process.getuid?.() !== 0) {
    process.stderr.write('bench verify: the local backend builds network namespaces and needs root (run with sudo)\n');
    return 1;
  }
  return verifyOn(flags, { config, backend: descriptor!.name, layout, cases, timeoutMs, retries, parallelism, fillers });
}

/** The grid on the backend's data plane: the plan (dry run), or every case run and reported. */
async function verifyOn(
  flags: VerifyFlags,
  o: { config: RunConfig; backend: BackendName; layout: import('../../verify/grid.js').GridLayout; cases: import('../../verify/cases.js').VerifyCase[]; timeoutMs: number; retries: number; parallelism: number; fillers: number },
): Promise<number> {
  const { resolve } = await import('node:path');
  const { DryRunRunner, ExecRunner, renderPlan } = await import('../../exec/runner.js');
  const { newRunId } = await import('../../identity/run-id.js');
  const { createBackend } = await import('../../backends/factory.js');
  const { gridLayoutOf, gridWorkload } = await import('../../verify/grid.js');
  const { casesOnGrid, planVerify, runVerify } = await import('../../verify/run.js');
  const { renderCase, renderHeader, renderSummary } = await import('../../verify/render.js');
  const { verifyJson, verifyJunit } = await import('../../verify/output.js');
  const { Outputs, fileOutput, summaryOutput } = await import('../../outputs/outputs.js');
  const runId = newRunId();
  const interrupt = onInterrupt('stopping and cleaning up', undefined, () => [runId]);
  const { signal } = interrupt;
  // Every probe in flight holds an abort listener on the signal.
  setMaxListeners(o.parallelism * 2 + 16, signal);
  const progress = stepPrinter(!flags.json && !flags.dryRun);
  const runner = flags.dryRun ? new DryRunRunner() : new ExecRunner(signal);
  const { config, backend } = o;
  const cni = config.cni;
  try {
    const plane = await createBackend({ config, backend, runId, shape: 'verify-grid', runner, cleanupRunner: flags.dryRun ? runner : new ExecRunner(), signal, progress, outDir: resolve(config.out, runId) });
    const workload = plane.fit(gridWorkload(o.layout));
    const layout = gridLayoutOf(workload);
    const { run: cases, skipped } = casesOnGrid(o.cases, layout);
    const notes = [
      ...(workload.hosts.some((h) => h.presence === 'address')
        ? [`external hosts ${workload.hosts.map((h) => h.id).join('/')} do not exist on kind/cluster: probes to and from them are skipped; ${workload.hosts.map((h) => `{{ ${h.id} }}`).join('/')} in ipBlocks stand for TEST-NET-2 addresses (${workload.hosts.map((h) => h.ip).join('/').replace(/\/198\.51\.100\./g, '/')}) that nothing answers`]
        : []),
      ...skipped.map((s) => `case ${s.name} skipped: ${s.why}`),
    ];
    if (flags.dryRun) {
      const counts = await planVerify(plane, workload, cases, o.timeoutMs);
      const total = Object.values(counts).reduce((a, b) => a + b, 0);
      process.stdout.write(
        `# verify plan for run ${runId} on the ${backend} backend (dry run: nothing was executed)\n` +
          `# ${cases.length} cases, ${total} probes in all (${Object.entries(counts).map(([n, c]) => `${n}: ${c}`).join(', ')}); the example probes below stand for the rest\n` +
          notes.map((n) => `# note: ${n}\n`).join('') +
          `${renderPlan(runner.log)}\n`,
      );
      return 0;
    }
    progress.step(`verify run ${runId}: ${cases.length} cases, ${cni} on ${backend}`);
    type Report = import('../../verify/run.js').VerifyReport;
    const outputs = new Outputs<Report, import('../../verify/expect.js').CaseResult>([
      ...(flags.junit ? [fileOutput<Report>(flags.junit, 'JUnit', (r) => verifyJunit(r, layout))] : []),
      summaryOutput(Boolean(flags.json), process.stdout, {
        header: () => `${renderHeader({ cni, backend: plane.name, model: plane.model }, layout, cases.length)}\n${notes.length ? `${notes.map((n) => `note: ${n}`).join('\n')}\n\n` : ''}`,
        piece: (r) => `${renderCase(layout, r)}\n\n`,
        summary: (r) => `${renderSummary(r)}\n${flags.junit ? `  JUnit: ${flags.junit}\n` : ''}${flags.keep ? `\n${plane.keepInstructions().join('\n')}\n` : ''}`,
        document: (r) => ({ runId, ...(notes.length ? { notes } : {}), ...verifyJson(r) }),
      }),
    ]);
    await outputs.start();
    try {
      const report = await runVerify({ plane, workload, cases, timeoutMs: o.timeoutMs, retries: o.retries, parallelism: o.parallelism, fillers: o.fillers, keep: flags.keep, signal, progress, onCase: (r) => outputs.add(r) });
      await outputs.stop(report);
      return report.verdict.failed === 0 ? 0 : 1;
    } catch (e) {
      await outputs.abort();
      if (e instanceof InterruptedError || signal.aborted) {
        process.stderr.write(`bench verify: interrupted; ${flags.keep ? 'the grid was left up (--keep)' : 'the grid was torn down'}\n`);
        return 130;
      }
      throw e;
    }
  } finally {
    interrupt.dispose();
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
  declareFlags(
    program.command('verify').description('are NetworkPolicies enforced, and as the specification says? Probes a grid of pods for each policy case and compares with the reference evaluator'),
    verifyFlags(),
    'verify',
  ).action(async (opts: VerifyFlags) => {
    process.exitCode = await cmdVerify(opts);
  });
}
