// Probes on kind/cluster: the `kubectl exec` each probe runs in its source pod, and the verdict read from its exit
// status and output; plus reading the grid pods' and the cluster DNS pods' addresses. Pure.
import { BenchError } from '../../errors.js';
import type { CommandResult, CommandSpec } from '../../exec/runner.js';
import { podId, type EndpointId, type WorkloadPod } from '../../workload/workload.js';
import type { Attempt } from '../types.js';
import { CLUSTER_NAMESPACE as DNS_NAMESPACE } from './grid-names.js';
import { kubectl, type KubeTarget } from './kubectl.js';

export const DNS_SELECTOR = 'k8s-app=kube-dns';
/** What `kubectl exec` itself may add to a probe's own timeout (API server, kubelet, exec stream). */
const EXEC_OVERHEAD_MS = 30_000;

// ---- reading the cluster ----

interface PodList {
  items?: Array<{
    metadata?: { name?: string; namespace?: string; labels?: Record<string, string>; deletionTimestamp?: string };
    spec?: { nodeName?: string; containers?: Array<{ ports?: Array<{ name?: string; containerPort?: number; protocol?: string }> }> };
    status?: { phase?: string; podIP?: string; conditions?: Array<{ type?: string; status?: string }> };
  }>;
}

const ready = (p: NonNullable<PodList['items']>[number]) =>
  !p.metadata?.deletionTimestamp && p.status?.phase === 'Running' && Boolean(p.status?.podIP) && (p.status?.conditions ?? []).some((c) => c.type === 'Ready' && c.status === 'True');

/** IP and node of each grid pod of one namespace (`kubectl get pods -o json`). */
export function parseGridPods(json: string, namespace: string, expected: readonly WorkloadPod[]): { ips: Record<EndpointId, string>; nodeOf: Record<EndpointId, string> } {
  const items = (JSON.parse(json) as PodList).items ?? [];
  const ips: Record<EndpointId, string> = {};
  const nodeOf: Record<EndpointId, string> = {};
  for (const want of expected) {
    const pod = items.find((i) => i.metadata?.name === want.name);
    if (!pod || !ready(pod) || !pod.spec?.nodeName) throw new BenchError('k8s-step', `pod ${namespace}/${want.name} is not running and ready with an IP`);
    ips[podId(want)] = pod.status!.podIP!;
    nodeOf[podId(want)] = pod.spec.nodeName;
  }
  return { ips, nodeOf };
}

/**
 * One of the cluster's DNS pods (first ready one by name). It must carry the layout's labels (the selector
 * guarantees that) and serve the layout's ports, or the evaluator would reason about a pod that is not there.
 */
export function pickDnsPod(json: string, dns: Pick<WorkloadPod, 'ports'>): { ip: string; node: string; name: string } {
  const items = ((JSON.parse(json) as PodList).items ?? []).filter(ready).sort((a, b) => (a.metadata?.name ?? '').localeCompare(b.metadata?.name ?? ''));
  const pod = items[0];
  if (!pod?.spec?.nodeName) throw new BenchError('k8s-step', `no ready pod labelled ${DNS_SELECTOR} in ${DNS_NAMESPACE}: the DNS cases need the cluster's DNS pods`);
  const served = (pod.spec.containers ?? []).flatMap((c) => c.ports ?? []);
  const missing = dns.ports.filter((cp) => !served.some((s) => s.containerPort === cp.containerPort && (s.protocol ?? 'TCP') === cp.protocol && s.name === cp.name));
  if (missing.length) {
    throw new BenchError('k8s-step', `DNS pod ${DNS_NAMESPACE}/${pod.metadata?.name} does not declare the ports the cases assume: ${missing.map((m) => `${m.name} ${m.containerPort}/${m.protocol}`).join(', ')}`);
  }
  return { ip: pod.status!.podIP!, node: pod.spec.nodeName, name: pod.metadata!.name! };
}

export interface ProbeCommandInput {
  target: KubeTarget;
  namespace: string;
  pod: string;
  container: string;
  ip: string;
  port: number;
  protocol: 'TCP' | 'UDP' | 'SCTP';
  timeoutMs: number;
  /** The destination is a DNS server: UDP is probed with a real query (see planProbeCommand). */
  dns: boolean;
}

export type ProbeTool = 'agnhost' | 'dig';

/**
 * `kubectl exec` into the source pod. TCP and UDP to grid pods: `/agnhost connect ip:port --timeout=… --protocol=…`
 * as upstream's kubemanager.go. UDP to a DNS server: `dig`, because agnhost's UDP mode sends "hostname\n" and
 * waits for an answer, which a DNS server never gives to a 9-byte message that is not DNS.
 */
export function planProbeCommand(p: ProbeCommandInput): { spec: CommandSpec; tool: ProbeTool } {
  const hostPort = p.ip.includes(':') ? `[${p.ip}]:${p.port}` : `${p.ip}:${p.port}`;
  const exec = ['exec', '-n', p.namespace, p.pod, '-c', p.container, '--'];
  const opts = { allowFailure: true, timeoutMs: p.timeoutMs + EXEC_OVERHEAD_MS };
  if (p.dns && p.protocol === 'UDP') {
    // dig's +time is whole seconds, at least 1. +search: the source pod's search list makes the first name an
    // in-cluster one, which the cluster DNS answers itself (NXDOMAIN counts: any answer is a connection).
    const seconds = Math.max(1, Math.ceil(p.timeoutMs / 1000));
    const argv = ['dig', '+search', '+tries=1', `+time=${seconds}`, `-p`, String(p.port), `@${p.ip}`, 'kubernetes.default'];
    return { spec: kubectl(p.target, [...exec, ...argv], `probe ${p.namespace}/${p.pod} -> ${hostPort} UDP (DNS query)`, opts), tool: 'dig' };
  }
  const argv = ['/agnhost', 'connect', hostPort, `--timeout=${p.timeoutMs / 1000}s`, `--protocol=${p.protocol.toLowerCase()}`];
  return { spec: kubectl(p.target, [...exec, ...argv], `probe ${p.namespace}/${p.pod} -> ${hostPort} ${p.protocol}`, opts), tool: 'agnhost' };
}

/** A grid probe that gave no verdict (kubectl exec failed, agnhost or dig said nothing about the policies). */
export class ProbeError extends BenchError {
  constructor(
    message: string,
    readonly result: CommandResult,
  ) {
    super('probe', message);
  }
}

const tail = (r: CommandResult) => `${r.stderr}\n${r.stdout}`.trim().split('\n').slice(-3).join(' | ');

/**
 * A probe's verdict from its exit status and output. agnhost connect (its connect.go) exits 0 when connected;
 * otherwise 1 with a fixed prefix on stderr: TIMEOUT and REFUSED are verdicts, as is OTHER with "no route to
 * host" (an iptables REJECT with icmp-host-prohibited); DNS, UNKNOWN and any other OTHER say nothing about the
 * policies. kubectl's own failures (pod gone, container not found, API unreachable) also exit 1 but carry none
 * of those prefixes. dig exits 0 on any answer and 9 when no server replied. Anything else throws: no verdict.
 */
export function parseProbeResult(r: CommandResult, tool: ProbeTool): Attempt {
  if (r.timedOut) throw new ProbeError(`kubectl exec did not return in ${Math.round(r.durationMs)} ms: ${tail(r)}`, r);
  if (r.exitCode === 0) return { outcome: 'connected', reason: tool === 'dig' ? 'dns answer' : 'connected' };
  if (tool === 'dig') {
    if (r.exitCode === 9) return { outcome: 'blocked', reason: /refused/i.test(`${r.stdout}${r.stderr}`) ? 'refused (no DNS answer)' : 'timeout (no DNS answer)' };
    throw new ProbeError(`dig gave no verdict (exit ${r.exitCode}): ${tail(r)}`, r);
  }
  if (r.exitCode === 1) {
    const line = r.stderr
      .split('\n')
      .map((l) => l.trim())
      .filter((l) => /^(TIMEOUT|REFUSED|OTHER|DNS|UNKNOWN)\b/.test(l))
      .pop();
    if (line?.startsWith('TIMEOUT')) return { outcome: 'blocked', reason: 'timeout' };
    if (line?.startsWith('REFUSED')) return { outcome: 'blocked', reason: 'refused' };
    if (line?.startsWith('OTHER') && /no route to host|host is unreachable/.test(line)) return { outcome: 'blocked', reason: 'unreachable (ICMP)' };
    if (line) throw new ProbeError(`agnhost connect gave no verdict: ${line}`, r);
  }
  throw new ProbeError(`kubectl exec failed (exit ${r.exitCode}), no probe verdict: ${tail(r)}`, r);
}

