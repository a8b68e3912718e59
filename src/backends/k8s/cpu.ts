// CPU accounting on a cluster. Two sources:
// - cAdvisor (kubelet /metrics/cadvisor through the API server proxy): cumulative CPU seconds per container,
//   for the CNI agents and the load pods, and for the node's root cgroup (id="/"; on kind, the node container);
// - /proc/stat read from a pod: it is not namespaced, so it gives the node kernel's busy and softirq time, the
//   same accounting as the local backend (on kind every node shares the host kernel, so one read covers all).
import { parseProcStat, type CpuTimes } from '../../metrics/machine.js';
import type { CommandSpec } from '../../exec/runner.js';
import { kubectl, type KubeTarget } from './kubectl.js';
import { STAT_CONTAINER } from './manifests.js';

export interface ContainerCpu {
  namespace: string;
  pod: string;
  container: string;
  id: string;
  seconds: number;
}

const LINE = /^container_cpu_usage_seconds_total\{([^}]*)\}\s+([0-9.eE+-]+)/;
const LABEL = /([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"/g;

export function parseCadvisorCpu(text: string): ContainerCpu[] {
  const out: ContainerCpu[] = [];
  for (const line of text.split('\n')) {
    const m = LINE.exec(line);
    if (!m) continue;
    const labels: Record<string, string> = {};
    for (const l of m[1]!.matchAll(LABEL)) labels[l[1]!] = l[2]!;
    // Per-CPU series exist on some kubelets; "total" (or no cpu label) is the one to sum.
    if (labels.cpu !== undefined && labels.cpu !== 'total') continue;
    out.push({ namespace: labels.namespace ?? '', pod: labels.pod ?? '', container: labels.container ?? '', id: labels.id ?? '', seconds: Number(m[2]) });
  }
  return out;
}

export interface ContainerMatch {
  namespace: string;
  container: string;
  /** Exact pod name, or undefined for every pod of that namespace running that container (agents). */
  pod?: string;
}

export function containerSeconds(rows: readonly ContainerCpu[], m: ContainerMatch): number {
  let s = 0;
  for (const r of rows) if (r.namespace === m.namespace && r.container === m.container && (m.pod === undefined || r.pod === m.pod)) s += r.seconds;
  return s;
}

export function rootSeconds(rows: readonly ContainerCpu[]): number | null {
  const r = rows.find((x) => x.id === '/');
  return r ? r.seconds : null;
}

export function planCadvisor(t: KubeTarget, node: string): CommandSpec {
  return kubectl(t, ['get', '--raw', `/api/v1/nodes/${node}/proxy/metrics/cadvisor`], `read cAdvisor CPU counters of ${node}`);
}

export function planProcStat(t: KubeTarget, namespace: string, pod: string): CommandSpec {
  return kubectl(t, ['exec', '-n', namespace, pod, '-c', STAT_CONTAINER, '--', 'cat', '/proc/stat'], `read the node kernel's CPU time (${pod})`);
}

export interface CpuSnapshot {
  /** cAdvisor rows per node. */
  cadvisor: Map<string, ContainerCpu[]>;
  /** /proc/stat per distinct kernel. */
  kernels: CpuTimes[];
}

export interface CpuWindow {
  totalUsPerOp: number;
  probeClientUsPerOp: number;
  probeServerUsPerOp: number | null;
  dataPlaneUsPerOp: number;
  softirqUsPerOp: number;
  /** CNI agents' containers on the involved nodes (not in the result schema's cpu block; see modelState). */
  agentsUsPerOp: number;
  /** Root cgroups of the involved nodes (on kind: the node containers). */
  nodesUsPerOp: number | null;
}

export interface CpuWho {
  client: ContainerMatch;
  server: ContainerMatch;
  agents: ContainerMatch[];
}

export function cpuWindow(before: CpuSnapshot, after: CpuSnapshot, who: CpuWho, ops: number): CpuWindow {
  const sumNodes = (snap: CpuSnapshot, f: (rows: ContainerCpu[]) => number) => [...snap.cadvisor.values()].reduce((a, rows) => a + f(rows), 0);
  const delta = (f: (rows: ContainerCpu[]) => number) => (sumNodes(after, f) - sumNodes(before, f)) * 1e9;
  const client = delta((r) => containerSeconds(r, who.client));
  const server = delta((r) => containerSeconds(r, who.server));
  const agents = delta((r) => who.agents.reduce((a, m) => a + containerSeconds(r, m), 0));
  const rootsKnown = [...before.cadvisor.values(), ...after.cadvisor.values()].every((r) => rootSeconds(r) !== null);
  const nodes = rootsKnown ? delta((r) => rootSeconds(r) ?? 0) : null;
  const kernel = (k: 'busyNs' | 'softirqNs') => after.kernels.reduce((a, t) => a + t[k], 0) - before.kernels.reduce((a, t) => a + t[k], 0);
  const total = kernel('busyNs');
  const perOp = (ns: number) => (ops > 0 ? ns / 1000 / ops : 0);
  return {
    totalUsPerOp: perOp(total),
    probeClientUsPerOp: perOp(client),
    probeServerUsPerOp: perOp(server),
    dataPlaneUsPerOp: perOp(Math.max(0, total - client - server)),
    softirqUsPerOp: perOp(kernel('softirqNs')),
    agentsUsPerOp: perOp(agents),
    nodesUsPerOp: nodes === null ? null : perOp(nodes),
  };
}

export { parseProcStat };
