// `bench verify`: are NetworkPolicies enforced, and enforced as the specification says? Thin: parse flags,
// load and check the cases, hand over to src/verify, print, set the exit code (0 every case passed, 1 a case
// failed — including "NOT ENFORCED" — 2 usage or case-file errors, 130 interrupted).
import { Command, Option } from 'commander';
import { setMaxListeners } from 'node:events';
import { writeFileSync } from 'node:fs';
import { InputError, InterruptedError, type Problem } from '../../errors.js';
import { CNIS, IPTABLES_BACKENDS, type CniName, type IptablesBackendName } from '../../config/schema.js';
import { onInterrupt, stepPrinter } from '../process.js';
import { outputOption } from '../outputs.js';

interface VerifyFlags {
  cni?: string;
  backend: string;
  context?: string;
  kubeconfig?: string;
  keep?: boolean;
  dryRun?: boolean;
  out: string;
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
  const backend = flags.backend;
  const { backendDescriptor } = await import('../../backends/factory.js');
  const { CNI_CATALOGUE } = await import('../../config/cnis.js');
  const descriptor = backendDescriptor(backend);
  const onK8s = descriptor?.verify.onCluster ?? false;
  if (!descriptor) problems.push({ where: '--backend', message: `must be local, kind or cluster, got '${backend}'` });
  if (onK8s && cni !== undefined && CNI_CATALOGUE[cni]?.floor) problems.push({ where: '--cni', message: `'${cni}' has no real CNI on ${backend}; use the local backend for the no-policy-engine floor` });
  if (descriptor?.needsTarget && !flags.context && !flags.kubeconfig) {
    problems.push({ where: '--context', message: 'the cluster backend needs an explicit --context NAME (or --kubeconfig FILE); it never guesses which cluster to use' });
  }
  if (!descriptor?.needsTarget && (flags.context || flags.kubeconfig)) problems.push({ where: flags.context ? '--context' : '--kubeconfig', message: 'only for --backend cluster' });
  if (!onK8s && flags.dryRun) problems.push({ where: '--dry-run', message: 'only for --backend kind|cluster (the local grid is planned in-process; --list shows every case)' });
  if (!onK8s && flags.keep) problems.push({ where: '--keep', message: 'only for --backend kind|cluster' });
  // A real cluster answers through `kubectl exec`: upstream's 1 s probe timeout, fewer execs in flight.
  const defaults = (descriptor ?? backendDescriptor('local')!).verify;
  const timeoutMs = wholeNumber('--timeout-ms', flags.timeoutMs, 10, 60_000, defaults.timeoutMs, problems);
  const retries = wholeNumber('--retries', flags.retries, 0, 10, 2, problems);
  const parallelism = wholeNumber('--parallel', flags.parallel, 1, 256, defaults.parallelism, problems);
  const fillers = wholeNumber('--policies', flags.policies, 0, 20_000, 0, problems);
  const iptablesBackend = flags.iptablesBackend as IptablesBackendName | undefined;
  if (iptablesBackend !== undefined && !IPTABLES_BACKENDS.includes(iptablesBackend)) {
    problems.push({ where: '--iptables-backend', message: `must be one of ${IPTABLES_BACKENDS.join(', ')}, got '${iptablesBackend}'` });
  }
  if (iptablesBackend !== undefined && onK8s) problems.push({ where: '--iptables-backend', message: 'only for the local backend (a real cluster uses what Felix detects)' });
  if (onK8s && !flags.dryRun && !flags.list && problems.length === 0) {
    const [{ backendPreflight }, { ExecRunner }] = await Promise.all([import('../doctor.js'), import('../../exec/runner.js')]);
    problems.push(...(await backendPreflight(new ExecRunner(), backend)));
  }
  if (problems.length) throw new InputError(problems);

  const { BUILTIN_CASES_DIR, loadCases } = await import('../../verify/cases.js');
  const { gridLayout } = await import('../../verify/grid.js');
  const { planLocalGrid, LocalVerifyGrid } = await import('../../verify/local.js');
  const { localModel } = await import('../../backends/local/models.js');
  const layout = gridLayout();
  let model;
  try {
    // On kind/cluster only the local grid's addresses are used (to check case templates), not its model: any
    // data plane the k8s backends know is fine there even before it has a local model.
    model = localModel(onK8s ? 'none' : cni ?? 'none');
  } catch (e) {
    throw new InputError([{ where: '--cni', message: (e as Error).message }]);
  }
  // Case templates are checked against the addresses the local grid will have.
  const planned = planLocalGrid(layout, { runId: 'check', model });
  const loaded = loadCases(flags.cases.length ? flags.cases : [BUILTIN_CASES_DIR], { layout, ips: planned.addresses.ips });
  if (loaded.problems.length) throw new InputError(loaded.problems);
  let cases = loaded.cases;
  if (flags.case.length) {
    const unknown = flags.case.filter((n) => !cases.some((c) => c.name === n));
    if (unknown.length) throw new InputError(unknown.map((n) => ({ where: '--case', message: `no case named '${n}' (known: ${cases.map((c) => c.name).join(', ')})` })));
    cases = cases.filter((c) => flags.case.includes(c.name));
  }

  if (flags.list) return listCases(cases, layout, planned.addresses);
  {
    // Cases that expect no denied connection pass on a data plane that enforces nothing: refuse to call that "enforced".
    const { gridInventory, instantiatePolicies, planProbes } = await import('../../verify/grid.js');
    const { expectProbes } = await import('../../verify/expect.js');
    const inventory = gridInventory(layout, planned.addresses);
    const denies = cases.reduce((n, c) => n + expectProbes(inventory, instantiatePolicies(c.policies, planned.addresses.ips).policies, planProbes(layout, c.probes), planned.addresses).expectations.filter((e) => !e.allowed).length, 0);
    if (denies === 0) {
      throw new InputError([{ where: flags.case.length ? '--case' : '--cases', message: `the selected cases (${cases.map((c) => c.name).join(', ')}) expect no denied connection, so they cannot show whether policies are enforced; add a case that denies something (e.g. --case default-deny-ingress)` }]);
    }
  }
  if (onK8s) return verifyOnK8s({ ...flags, backend: descriptor!.name }, { cni: cni!, layout, cases, timeoutMs, retries, parallelism, fillers });

  const { ExecRunner } = await import('../../exec/runner.js');
  const { assertProbeAvailable } = await import('../../probe/native.js');
  const { newRunId } = await import('../../identity/run-id.js');
  const { runVerify } = await import('../../verify/run.js');
  const { renderCase, renderHeader, renderSummary } = await import('../../verify/render.js');
  const { verifyJson, verifyJunit } = await import('../../verify/output.js');
  if (process.getuid?.() !== 0) {
    process.stderr.write('bench verify: the local backend builds network namespaces and needs root (run with sudo)\n');
    return 1;
  }
  assertProbeAvailable();

  const interrupt = onInterrupt('stopping and cleaning up');
  const { signal } = interrupt;
  // Every probe in flight holds an abort listener on the signal.
  setMaxListeners(parallelism * 2 + 16, signal);
  const runId = newRunId();
  const progress = stepPrinter(!flags.json);
  const grid = new LocalVerifyGrid({ cni: cni!, runId, signal, runner: new ExecRunner(signal), progress, iptablesBackend });
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
      fillers,
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
    if (e instanceof InterruptedError || signal.aborted) {
      process.stderr.write(`bench verify: interrupted; the grid was torn down\n`);
      return 130;
    }
    throw e;
  } finally {
    interrupt.dispose();
  }
}

async function verifyOnK8s(
  flags: VerifyFlags & { backend: import('../../config/schema.js').BackendName },
  o: { cni: CniName; layout: import('../../verify/grid.js').GridLayout; cases: import('../../verify/cases.js').VerifyCase[]; timeoutMs: number; retries: number; parallelism: number; fillers: number },
): Promise<number> {
  const { resolve } = await import('node:path');
  const { DryRunRunner, ExecRunner, renderPlan } = await import('../../exec/runner.js');
  const { newRunId } = await import('../../identity/run-id.js');
  const { casesForK8s, k8sLayout, planK8sVerify } = await import('../../verify/k8s.js');
  const { BACKEND_DESCRIPTORS } = await import('../../backends/factory.js');
  const { runVerify } = await import('../../verify/run.js');
  const { renderCase, renderHeader, renderSummary } = await import('../../verify/render.js');
  const { verifyJson, verifyJunit } = await import('../../verify/output.js');
  const runId = newRunId();
  const layout = k8sLayout(o.layout, runId);
  const { run: cases, skipped } = casesForK8s(o.cases, layout);
  const interrupt = onInterrupt('stopping and cleaning up');
  const { signal } = interrupt;
  setMaxListeners(o.parallelism * 2 + 16, signal);
  const progress = stepPrinter(!flags.json && !flags.dryRun);
  const runner = flags.dryRun ? new DryRunRunner() : new ExecRunner(signal);
  const grid = await BACKEND_DESCRIPTORS[flags.backend].verify.clusterGrid!({
    cni: o.cni,
    runId,
    outDir: resolve(flags.out, runId),
    context: flags.context,
    kubeconfig: flags.kubeconfig,
    keep: flags.keep,
    runner,
    cleanupRunner: flags.dryRun ? runner : new ExecRunner(),
    signal,
    progress,
  });
  const notes = [
    'external hosts ext1/ext2 do not exist on kind/cluster: probes to and from them are skipped; {{ ext1 }}/{{ ext2 }} in ipBlocks stand for TEST-NET-2 addresses (198.51.100.240/241) that nothing answers',
    ...skipped.map((s) => `case ${s.name} skipped: ${s.why}`),
  ];
  if (flags.dryRun) {
    const counts = await planK8sVerify(grid, layout, cases, o.timeoutMs);
    const total = Object.values(counts).reduce((a, b) => a + b, 0);
    process.stdout.write(
      `# verify plan for run ${runId} on the ${flags.backend} backend (dry run: nothing was executed)\n` +
        `# ${cases.length} cases, ${total} probes in all (${Object.entries(counts).map(([n, c]) => `${n}: ${c}`).join(', ')}); the example probes below stand for the rest\n` +
        notes.map((n) => `# note: ${n}\n`).join('') +
        `${renderPlan(runner.log)}\n`,
    );
    interrupt.dispose();
    return 0;
  }
  progress.step(`verify run ${runId}: ${cases.length} cases, ${o.cni} on ${flags.backend}`);
  if (!flags.json) process.stdout.write(`${renderHeader({ cni: o.cni, backend: grid.backend, model: grid.model }, layout, cases.length)}\n${notes.map((n) => `note: ${n}`).join('\n')}\n\n`);
  try {
    const report = await runVerify({
      grid,
      layout,
      cases,
      timeoutMs: o.timeoutMs,
      retries: o.retries,
      parallelism: o.parallelism,
      fillers: o.fillers,
      signal,
      progress,
      onCase: (r) => {
        if (!flags.json) process.stdout.write(`${renderCase(layout, r)}\n\n`);
      },
    });
    if (flags.junit) writeFileSync(flags.junit, verifyJunit(report, layout));
    if (flags.json) process.stdout.write(`${JSON.stringify({ runId, notes, ...verifyJson(report) }, null, 2)}\n`);
    else process.stdout.write(`${renderSummary(report)}\n${flags.junit ? `  JUnit: ${flags.junit}\n` : ''}`);
    if (flags.keep) process.stdout.write(`\n${grid.keepInstructions().join('\n')}\n`);
    return report.verdict.failed === 0 ? 0 : 1;
  } catch (e) {
    if (e instanceof InterruptedError || signal.aborted) {
      process.stderr.write(`bench verify: interrupted; ${flags.keep ? 'the grid was left up (--keep)' : 'the grid was torn down'}\n`);
      return 130;
    }
    throw e;
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
  program
    .command('verify')
    .description('are NetworkPolicies enforced, and as the specification says? Probes a grid of pods for each policy case and compares with the reference evaluator')
    .addOption(new Option('--cni <name>', `CNI data plane: ${CNIS.join('|')}`))
    .option('--backend <name>', 'where to run: local (namespaces on this kernel, CNI models), kind (a throw-away cluster with the real CNI) or cluster (an existing one)', 'local')
    .option('--context <name>', 'cluster backend: kubeconfig context to use (this or --kubeconfig is required)')
    .option('--kubeconfig <file>', 'cluster backend: kubeconfig file')
    .option('--keep', 'kind/cluster: leave the cluster or the grid namespaces up afterwards and print how to enter them')
    .option('--dry-run', 'kind/cluster: print the plan (every command and manifest) without running anything')
    .addOption(outputOption('--out <dir>', 'kind/cluster: where the kind kubeconfig and diagnostics go (<dir>/<run id>)', 'dir', { default: 'results' }))
    .option('--cases <path>', 'case file or directory of *.yaml cases; repeatable (default: the built-in library in scenarios/verify)', collect, [])
    .option('--case <name>', 'run only this case; repeatable', collect, [])
    .option('--timeout-ms <n>', 'per-probe timeout for a TCP connect or a UDP echo (default 300 local, 1000 kind/cluster)')
    .option('--retries <n>', 'extra attempts for a probe that disagrees with the specification (default 2)')
    .option('--parallel <n>', 'probes in flight at once (default 32 local, 8 kind/cluster: each is a kubectl exec)')
    .option('--policies <n>', 'filler policies on every pod group a case isolates, built so no verdict changes (0..20000, default 0): is the data plane still right at scale?')
    .option('--list', 'check the case files and print each case with its expected matrix; runs nothing')
    .option('--json', 'print the report as JSON on stdout')
    .addOption(outputOption('--junit <file>', 'write a JUnit XML report (one test case per policy case)', 'file'))
    .option('--iptables-backend <name>', 'local Calico/Canal models: nft|legacy (default nft)')
    .action(async (opts: VerifyFlags) => {
      process.exitCode = await cmdVerify(opts);
    });
}
