// CPU accounting on a cluster. Per-container CPU (load pods, CNI agents, the node's root cgroup) from one of:
// - kind: cgroup v2 `cpu.stat` (usage_usec) read directly inside the node containers (kind runs each node in its
//   own cgroup namespace, so the node's /sys/fs/cgroup/cpu.stat is the whole node and each container's cgroup is
//   a directory below it named after its containerd id). Read at the window's edges: exact, not sampled.
// - cluster: cAdvisor (kubelet /metrics/cadvisor through the API server proxy). The kubelet refreshes container
//   stats every 10-15 s, so within a seconds-long window the counters are stale; each series carries the time it
//   was sampled, and the window the two samples really span is recorded next to the measured one
//   (modelState <metric>CadvisorSpanMs / <metric>WindowMs) so a reader can see when the split is meaningless.
// And for the machine:
// - /proc/stat read from a pod: it is not namespaced, so it gives the node kernel's busy and softirq time (on kind
//   every node shares the host kernel, so one read covers all). It counts 10 ms ticks.
// Every figure carries its resolution (issue 20): kind's cgroup counters are in µs, so the involved nodes' cgroups
// are the total there; /proc/stat (the cluster's total) is a tick per CPU at each edge; cAdvisor's per-container
// counters are as old as the kubelet's last refresh (10-15 s), which is their resolution.
import { parseProcStat, USER_HZ, type CpuTimes } from '../../metrics/machine.js';
import type { CommandSpec } from '../../exec/runner.js';
import { kubectl, type KubeTarget } from './kubectl.js';
import { STAT_CONTAINER } from './manifests.js';

export interface ContainerCpu {
  namespace: string;
  pod: string;
  container: string;
  id: string;
  seconds: number;
  /** When cAdvisor sampled it (its exposition's timestamp), if given. */
  timestampMs?: number;
}

const LINE = /^container_cpu_usage_seconds_total\{([^}]*)\}\s+([0-9.eE+-]+)(?:\s+(\d+))?/;
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
    out.push({ namespace: labels.namespace ?? '', pod: labels.pod ?? '', container: labels.container ?? '', id: labels.id ?? '', seconds: Number(m[2]), ...(m[3] ? { timestampMs: Number(m[3]) } : {}) });
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

/** The span the root series' samples cover between two snapshots (cAdvisor), or null when not timestamped. */
export function cadvisorSpanMs(before: CpuSnapshot, after: CpuSnapshot): number | null {
  const ts = (snap: CpuSnapshot) => [...snap.cadvisor.values()].map((rows) => rows.find((r) => r.id === '/')?.timestampMs);
  const a = ts(before);
  const b = ts(after);
  if (!a.length || a.some((x) => x === undefined) || b.some((x) => x === undefined)) return null;
  return Math.min(...b.map((x, i) => x! - a[i]!));
}

// ---- kind: cgroup v2 cpu.stat inside the node containers ----

export interface CgroupTarget {
  namespace: string;
  pod: string;
  container: string;
  /** containerd id (the 64-hex part of status.containerStatuses[].containerID). */
  id: string;
}

/**
 * Reads usage_usec of each container's cgroup and of the node, in one exec into the node container. The ids are
 * positional arguments of a fixed script (no shell interpolation of data).
 */
export const CGROUP_SCRIPT =
  'for id in "$@"; do d=$(find /sys/fs/cgroup -type d -name "*$id*" 2>/dev/null | head -n 1); [ -n "$d" ] && echo "$id $(sed -n "s/^usage_usec //p" "$d/cpu.stat")"; done; echo "node $(sed -n "s/^usage_usec //p" /sys/fs/cgroup/cpu.stat)"';

export function planNodeCgroupRead(provider: string, node: string, ids: readonly string[]): CommandSpec {
  return { argv: [provider, 'exec', node, 'sh', '-c', CGROUP_SCRIPT, 'sh', ...ids], purpose: `read cgroup v2 CPU counters in node ${node}`, timeoutMs: 30_000 };
}

/** The script's output as cAdvisor-shaped rows (the node as id "/"), so one cpuWindow serves both sources. */
export function parseNodeCgroupRead(text: string, targets: readonly CgroupTarget[]): ContainerCpu[] {
  const out: ContainerCpu[] = [];
  for (const line of text.split('\n')) {
    const m = /^(\S+) (\d+)$/.exec(line.trim());
    if (!m) continue;
    const seconds = Number(m[2]) / 1e6;
    if (m[1] === 'node') {
      out.push({ namespace: '', pod: '', container: '', id: '/', seconds });
      continue;
    }
    const t = targets.find((x) => x.id === m[1]);
    if (t) out.push({ namespace: t.namespace, pod: t.pod, container: t.container, id: t.id, seconds });
  }
  return out;
}

interface PodStatusList {
  items?: Array<{ metadata?: { name?: string; namespace?: string }; status?: { containerStatuses?: Array<{ name?: string; containerID?: string }> } }>;
}

/** The containers of one node's pods (`kubectl get pods -A --field-selector spec.nodeName=<node> -o json`) that `want` keeps. */
export function cgroupTargets(podsJson: string, want: (t: Omit<CgroupTarget, 'id'>) => boolean): CgroupTarget[] {
  const out: CgroupTarget[] = [];
  for (const p of (JSON.parse(podsJson) as PodStatusList).items ?? []) {
    for (const c of p.status?.containerStatuses ?? []) {
      const id = /^[a-z]+:\/\/([0-9a-f]{12,})$/.exec(c.containerID ?? '')?.[1];
      const t = { namespace: p.metadata?.namespace ?? '', pod: p.metadata?.name ?? '', container: c.name ?? '' };
      if (id && want(t)) out.push({ ...t, id });
    }
  }
  return out;
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
  source: 'cgroup' | 'cadvisor';
  /** Of the total, µs per operation; the client/server split's own (coarser for cAdvisor) in partsResolutionUsPerOp. */
  resolutionUsPerOp: number;
  partsResolutionUsPerOp: number;
  includes: string;
  dataPlane: string;
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

/** How stale a cAdvisor counter may be: the kubelet refreshes container stats every 10-15 s. */
const CADVISOR_REFRESH_S = 15;

export function cpuWindow(before: CpuSnapshot, after: CpuSnapshot, who: CpuWho, ops: number): CpuWindow {
  const sumNodes = (snap: CpuSnapshot, f: (rows: ContainerCpu[]) => number) => [...snap.cadvisor.values()].reduce((a, rows) => a + f(rows), 0);
  const delta = (f: (rows: ContainerCpu[]) => number) => (sumNodes(after, f) - sumNodes(before, f)) * 1e9;
  const client = delta((r) => containerSeconds(r, who.client));
  const server = delta((r) => containerSeconds(r, who.server));
  const agents = delta((r) => who.agents.reduce((a, m) => a + containerSeconds(r, m), 0));
  const rootsKnown = [...before.cadvisor.values(), ...after.cadvisor.values()].every((r) => rootSeconds(r) !== null);
  const nodes = rootsKnown ? delta((r) => rootSeconds(r) ?? 0) : null;
  const kernel = (k: 'busyNs' | 'softirqNs') => after.kernels.reduce((a, t) => a + t[k], 0) - before.kernels.reduce((a, t) => a + t[k], 0);
  // cAdvisor rows carry the time the kubelet sampled them; kind's cgroup reads are taken at the window's edges.
  const source = [...before.cadvisor.values(), ...after.cadvisor.values()].some((rows) => rows.some((r) => r.timestampMs !== undefined)) ? 'cadvisor' : 'cgroup';
  const kernelCpus = Math.max(1, before.kernels.reduce((a, t) => a + (t.cpus ?? 1), 0));
  const tickNs = 1e9 / USER_HZ;
  const counters = 2 + who.agents.length + before.cadvisor.size;
  // kind: the involved nodes' cgroups (µs counters) are the total; otherwise the node kernels' /proc/stat.
  const fromNodes = source === 'cgroup' && nodes !== null;
  const total = fromNodes ? nodes : kernel('busyNs');
  const perOp = (ns: number) => (ops > 0 ? ns / 1000 / ops : 0);
  const totalResNs = fromNodes ? 2 * 1000 * counters : 2 * tickNs * kernelCpus;
  const partsResNs = source === 'cgroup' ? 2 * 1000 * counters : 2 * CADVISOR_REFRESH_S * 1e9 * kernelCpus;
  return {
    totalUsPerOp: perOp(total),
    probeClientUsPerOp: perOp(client),
    probeServerUsPerOp: perOp(server),
    dataPlaneUsPerOp: perOp(Math.max(0, total - client - server)),
    softirqUsPerOp: perOp(kernel('softirqNs')),
    source,
    resolutionUsPerOp: perOp(totalResNs),
    partsResolutionUsPerOp: perOp(Math.max(totalResNs, partsResNs)),
    includes: fromNodes
      ? "CPU of the involved kind nodes' containers (cgroup v2 usage_usec, µs): the load pods, the CNI agents, kubelet and containerd, and softirq work charged to their tasks"
      : `all CPUs' busy time of the node kernels (/proc/stat, 10 ms ticks); the client and server split from ${source === 'cgroup' ? 'cgroup v2 usage_usec' : "cAdvisor, whose counters are as old as the kubelet's last refresh (10-15 s)"}`,
    dataPlane: 'total − load client − load server: the CNI agents, the data plane and the rest of the involved nodes',
    agentsUsPerOp: perOp(agents),
    nodesUsPerOp: nodes === null ? null : perOp(nodes),
  };
}

export { parseProcStat };
