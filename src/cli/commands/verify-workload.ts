// `bench verify --workload FILE --cni X[,Y...]`: replay a cluster's pods and policies on each data plane (local
// backend, or kind/cluster: src/backends/k8s/workload*.ts), probe the flows between its pods, compare with the
// documented semantics, print the findings and, with --diff, the flows whose verdict differs between the data
// planes. Every input problem — flags, the file, the flows, what the backend cannot hold — exits 2 before anything
// is built; on kind/cluster --dry-run prints the plan (./workload-plan.ts).
import { setMaxListeners } from 'node:events';
import { resolveRunConfig, wholeNumberFlag } from '../../config/load.js';
import { CNIS, type CniName } from '../../config/schema.js';
import { BenchError, InputError, InterruptedError, type Problem } from '../../errors.js';
import { onInterrupt, stepPrinter } from '../process.js';

export interface WorkloadVerifyFlags {
  workload?: string;
  cni?: string;
  backend?: string;
  flow: string[];
  diff?: boolean;
  maxFlows?: string;
  seed?: string;
  timeoutMs?: string;
  retries?: string;
  parallel?: string;
  json?: boolean;
  iptablesBackend?: string;
  /** Grid-only flags, refused with --workload. */
  cases: string[];
  case: string[];
  list?: boolean;
  junit?: string;
  policies?: string;
  /** Service flags: verify --workload probes pod to pod, so they are refused rather than ignored. */
  services?: string;
  kubeProxy?: string;
  dryRun?: boolean;
  keep?: boolean;
  context?: string;
  kubeconfig?: string;
}

/** Flags that belong to the grid cases, not to a workload. */
const GRID_ONLY: Array<[keyof WorkloadVerifyFlags, string]> = [
  ['list', '--list'],
  ['junit', '--junit'],
  ['policies', '--policies'],
];
/** Flags of the Service dimension: a workload's flows are probed pod to pod, not through ClusterIPs. */
const SERVICE_FLAGS: Array<[keyof WorkloadVerifyFlags, string]> = [
  ['services', '--services'],
  ['kubeProxy', '--kube-proxy'],
];
/** Flags for a workload on a real cluster only. */
const CLUSTER_ONLY: Array<[keyof WorkloadVerifyFlags, string]> = [
  ['dryRun', '--dry-run'],
  ['keep', '--keep'],
  ['context', '--context'],
  ['kubeconfig', '--kubeconfig'],
];

export async function cmdVerifyWorkload(flags: WorkloadVerifyFlags): Promise<number> {
  const problems: Problem[] = [];
  const file = flags.workload!;
  const cnis = (flags.cni ?? '').split(',').map((c) => c.trim()).filter(Boolean);
  if (!cnis.length) problems.push({ where: '--cni', message: `required: one or more of ${CNIS.join(',')}, comma-separated` });
  for (const c of cnis) if (!(CNIS as readonly string[]).includes(c)) problems.push({ where: '--cni', message: `must be one of ${CNIS.join(', ')}, got "${c}"` });
  if (new Set(cnis).size !== cnis.length) problems.push({ where: '--cni', message: 'names a CNI twice' });
  if (flags.diff && cnis.length < 2) problems.push({ where: '--diff', message: 'compares data planes: give two or more with --cni, e.g. --cni calico,cilium' });
  const { backendDescriptor } = await import('../../backends/factory.js');
  const backendName = flags.backend ?? 'local';
  const descriptor = backendName === 'auto' ? undefined : backendDescriptor(backendName);
  if (!descriptor) problems.push({ where: '--backend', message: `must be one of local, kind, cluster, got "${backendName}"` });
  const onK8s = descriptor?.verify.onCluster ?? false;
  for (const [key, flag] of GRID_ONLY) if (flags[key] !== undefined && flags[key] !== false) problems.push({ where: flag, message: 'belongs to the grid cases; not with --workload' });
  for (const [key, flag] of SERVICE_FLAGS) if (flags[key] !== undefined) problems.push({ where: flag, message: 'verify --workload probes the flows pod to pod, not through Services (bench verify --services checks policy after a Service\'s DNAT on the grid cases; bench run --workload --services measures a Service beside the workload)' });
  if (!onK8s) for (const [key, flag] of CLUSTER_ONLY) if (flags[key] !== undefined && flags[key] !== false) problems.push({ where: flag, message: 'only for --backend kind|cluster' });
  if (flags.keep && flags.dryRun) problems.push({ where: '--keep', message: 'a dry run builds nothing, so nothing would be kept; drop --keep or --dry-run' });
  if (flags.keep && cnis.length > 1) problems.push({ where: '--keep', message: 'keeps one data plane up: give one --cni' });
  if (descriptor && !descriptor.ownsCluster && descriptor.onKubernetes && cnis.length > 1) problems.push({ where: '--cni', message: `an existing cluster runs one data plane: give the one it runs (--diff across data planes needs --backend kind or local)` });
  if (flags.cases.length || flags.case.length) problems.push({ where: flags.cases.length ? '--cases' : '--case', message: 'the grid cases and --workload are two different questions: give one of them' });
  const first = cnis.find((c) => (CNIS as readonly string[]).includes(c)) ?? 'none';
  const { config, problems: settingProblems } = resolveRunConfig(
    {
      cni: first,
      backend: descriptor?.name ?? 'local',
      ...(flags.context !== undefined ? { context: flags.context } : {}),
      ...(flags.kubeconfig !== undefined ? { kubeconfig: flags.kubeconfig } : {}),
      ...(flags.seed !== undefined ? { seed: flags.seed } : {}),
      ...(flags.timeoutMs !== undefined ? { timeoutMs: flags.timeoutMs } : {}),
      ...(flags.iptablesBackend !== undefined ? { iptablesBackend: flags.iptablesBackend } : {}),
    },
    undefined,
    {},
  );
  problems.push(...settingProblems);
  if (config && descriptor && onK8s) {
    const { backendProblems } = await import('../checks.js');
    for (const cni of new Set(cnis.filter((c) => (CNIS as readonly string[]).includes(c)))) problems.push(...backendProblems(descriptor.name, { ...config, cni: cni as CniName }));
    if (flags.iptablesBackend !== undefined) problems.push({ where: '--iptables-backend', message: 'only for the local backend (a real cluster uses what Felix detects)' });
  }
  const defaults = (descriptor ?? backendDescriptor('local')!).verify;
  const timeoutMs = flags.timeoutMs === undefined ? defaults.timeoutMs : (config?.timeoutMs ?? defaults.timeoutMs);
  const retries = wholeNumberFlag('--retries', flags.retries, { min: 0, max: 10 }, 2, problems);
  const parallelism = wholeNumberFlag('--parallel', flags.parallel, { min: 1, max: 256 }, defaults.parallelism, problems);
  const { DEFAULT_PROBE_FLOW_LIMIT, resolveFlowSpecs } = await import('../../workload/flows.js');
  const maxFlows = wholeNumberFlag('--max-flows', flags.maxFlows, { min: 1, max: 100_000 }, DEFAULT_PROBE_FLOW_LIMIT, problems);
  if (flags.maxFlows !== undefined && flags.flow.length) problems.push({ where: '--max-flows', message: 'samples the default flows; not with --flow' });
  if (problems.length || !config || !descriptor) throw new InputError(problems);

  // The file, the flows and what the backend can hold: all checked before any work.
  const { loadWorkload } = await import('../../workload/load.js');
  const { replayProbeFlows, replayWorkload } = await import('../../workload/replay.js');
  const cluster = loadWorkload(file);
  let flows;
  let flowChoice: string;
  // cb-probe (local) speaks TCP and UDP; agnhost (kind/cluster) SCTP too.
  const probesSctp = onK8s;
  const { K8S_WORKLOAD_POD_CAP, layoutOnCluster } = await import('../../backends/k8s/workload-layout.js');
  if (flags.flow.length) {
    const r = resolveFlowSpecs(flags.flow, cluster);
    const sctp = r.flows.filter((f) => f.protocol === 'SCTP');
    if (sctp.length && !probesSctp) r.problems.push({ where: '--flow', message: 'SCTP flows cannot be probed by the local backend (cb-probe speaks TCP and UDP)' });
    if (r.problems.length) throw new InputError(r.problems);
    flows = r.flows;
    flowChoice = `the ${flows.length} flow${flows.length === 1 ? '' : 's'} named with --flow`;
  } else {
    const sample = replayProbeFlows(cluster, { max: maxFlows, seed: config.seed, ...(onK8s ? { maxEndpoints: K8S_WORKLOAD_POD_CAP } : {}) });
    flows = sample.flows.filter((f) => probesSctp || f.protocol !== 'SCTP');
    const dropped = sample.flows.length - flows.length;
    flowChoice = sample.sampled
      ? `${flows.length} flows, a seeded sample (seed ${config.seed}) of ${sample.total} pod pairs × declared ports${sample.podsSampled ? ' among a seeded choice of pods' : ''} (--max-flows ${maxFlows})`
      : `every pod pair on every port the destination declares: ${flows.length} flows`;
    if (dropped) flowChoice += `; ${dropped} SCTP flows left out (cb-probe speaks TCP and UDP)`;
    if (!flows.length) throw new InputError([{ where: file, message: `no flow to probe: no pod-network pod declares a ${probesSctp ? 'port' : 'TCP or UDP port'}; name flows with --flow` }]);
  }
  let workload;
  const layoutNotes: string[] = [];
  try {
    if (onK8s) {
      const layout = layoutOnCluster(cluster, flows, { seed: config.seed });
      workload = layout.workload;
      layoutNotes.push(...layout.notes);
      if (!workload.flows.length) throw new InputError([{ where: file, message: `no flow left to probe on ${descriptor.name}: ${layout.leftOut[0]?.why ?? 'none chosen'}; name flows with --flow` }]);
    } else {
      workload = replayWorkload(cluster, flows);
      if (cluster.source.kind === 'snapshot' && cluster.source.nodeCidrsNotUsed) layoutNotes.push(`the Nodes' pod CIDRs are not the routes: ${cluster.source.nodeCidrsNotUsed}`);
    }
  } catch (e) {
    if (e instanceof BenchError && e.kind === 'capacity') throw new InputError([{ where: file, message: e.message }]);
    throw e;
  }
  if (onK8s && !flags.dryRun) {
    const [{ backendPreflight, targetPreflight }, { ExecRunner }] = await Promise.all([import('../doctor.js'), import('../../exec/runner.js')]);
    const missing = await backendPreflight(new ExecRunner(), descriptor.name);
    if (missing.length) throw new InputError(missing);
    const target = await targetPreflight(new ExecRunner(), descriptor.name, config);
    if (target.length) throw new InputError(target);
  }
  if (!onK8s && process.getuid?.() !== 0) {
    process.stderr.write('bench verify: the local backend builds network namespaces and needs root (run with sudo)\n');
    return 1;
  }
  if (flags.dryRun) {
    const { planWorkloadVerify } = await import('./workload-plan.js');
    return planWorkloadVerify({ config, backend: descriptor.name, cnis: cnis as CniName[], workload, name: cluster.name, flowChoice, notes: layoutNotes, timeoutMs });
  }

  const { resolve } = await import('node:path');
  const { ExecRunner } = await import('../../exec/runner.js');
  const { newRunId } = await import('../../identity/run-id.js');
  const { createBackend } = await import('../../backends/factory.js');
  const { diffObserved, verifyWorkloadOn } = await import('../../verify/workload.js');
  const { renderWorkloadReport, workloadReportJson } = await import('../../verify/workload-render.js');
  const { findPolicyProblems } = await import('../../workload/findings.js');
  const interrupt = onInterrupt('stopping and cleaning up');
  const { signal } = interrupt;
  setMaxListeners(parallelism * 2 + 16, signal);
  const progress = stepPrinter(!flags.json);
  try {
    const planes = [];
    for (const cni of cnis as CniName[]) {
      const runId = newRunId();
      const plane = await createBackend({ config: { ...config, cni }, backend: descriptor.name, runId, shape: 'cluster', runner: new ExecRunner(signal), cleanupRunner: new ExecRunner(), signal, progress, outDir: resolve(config.out, runId) });
      progress.step(`verify run ${runId}: workload ${cluster.name} on ${cni} (${descriptor.name})`);
      const result = await verifyWorkloadOn({ plane, cluster, workload: plane.fit(workload), parallelism, retries, timeoutMs, signal, progress, keep: flags.keep });
      planes.push({ ...result, notes: [...layoutNotes, ...result.notes] });
      if (flags.keep) process.stderr.write(`${plane.keepInstructions().join('\n')}\n`);
    }
    const report = {
      workload: cluster.name,
      flowChoice,
      planes,
      findings: findPolicyProblems(cluster, { cnis: cnis as CniName[] }),
      ...(flags.diff ? { diff: diffObserved(cluster, planes) } : {}),
    };
    process.stdout.write(flags.json ? `${JSON.stringify(workloadReportJson(report), null, 2)}\n` : renderWorkloadReport(report));
    return planes.every((p) => p.verdict.kind === 'as-documented') ? 0 : 1;
  } catch (e) {
    if (e instanceof InterruptedError || signal.aborted) {
      process.stderr.write(`bench verify: interrupted; ${flags.keep ? 'the workload was left up (--keep)' : 'the workload was torn down'}\n`);
      return 130;
    }
    throw e;
  } finally {
    interrupt.dispose();
  }
}
