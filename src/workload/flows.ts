// Connections between a workload's pods: a flow is `from` pod to `to` pod on one port and protocol, pods named
// `namespace/pod` as in the workload file. Here: the `--flow ns/pod->ns/pod:port[/proto]` syntax with exact
// errors, and the flows verify probes — every ordered pod pair on every port the destination declares, or a
// seeded sample of them above a size. Pure.
import type { Problem } from '../errors.js';
import { seededRandom } from '../stats/summary.js';
import type { ContainerPort, PodInfo, Protocol } from '../policy/types.js';
import type { ClusterWorkload } from './cluster.js';
import { podId, type Flow } from './workload.js';

/** A flow is the one every data plane probes (./workload.ts): `from` and `to` are `namespace/pod`. */
export type { Flow };

export const flowKey = (f: Flow): string => `${f.from}->${f.to}:${f.port}/${f.protocol}`;
/** `namespace/name`: a pod's id in a workload. */
export const podName: (p: Pick<PodInfo, 'namespace' | 'name'>) => string = podId;

/** What `--flow` says before it is checked against a workload. */
export interface FlowSpec {
  from: string;
  to: string;
  /** A number, or the name of a port the destination declares. */
  port: number | string;
  protocol?: Protocol;
}

export const FLOW_SYNTAX = 'namespace/pod->namespace/pod:port[/protocol], e.g. shop/cart-0->payments/api-1:8443/TCP';
const SIDE = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?\/[a-z0-9]([-a-z0-9.]*[a-z0-9])?$/;
const PROTOCOLS: readonly Protocol[] = ['TCP', 'UDP', 'SCTP'];

/** Parses one `--flow` value; the message says exactly what is wrong. */
export function parseFlowSpec(text: string): { spec?: FlowSpec; problem?: string } {
  const t = text.trim();
  const arrow = t.indexOf('->');
  if (arrow < 0) return { problem: `'${text}' has no '->' between the two pods; expected ${FLOW_SYNTAX}` };
  const from = t.slice(0, arrow).trim();
  const rest = t.slice(arrow + 2).trim();
  const colon = rest.lastIndexOf(':');
  if (colon < 0) return { problem: `'${text}' has no ':port' after the destination; expected ${FLOW_SYNTAX}` };
  const to = rest.slice(0, colon).trim();
  const [portText = '', protoText, extra] = rest.slice(colon + 1).split('/');
  for (const [side, value] of [['source', from], ['destination', to]] as const) {
    if (!SIDE.test(value)) return { problem: `the ${side} '${value}' is not namespace/pod (lowercase names, one '/'); expected ${FLOW_SYNTAX}` };
  }
  if (extra !== undefined) return { problem: `'${rest.slice(colon + 1)}' has more than one '/'; the port is port[/protocol]` };
  let protocol: Protocol | undefined;
  if (protoText !== undefined) {
    protocol = protoText.toUpperCase() as Protocol;
    if (!PROTOCOLS.includes(protocol)) return { problem: `protocol '${protoText}' must be TCP, UDP or SCTP` };
  }
  let port: number | string;
  if (/^\d+$/.test(portText)) {
    port = Number(portText);
    if (port < 1 || port > 65535) return { problem: `port ${portText} must be 1-65535` };
  } else if (/^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/.test(portText) && /[a-z]/.test(portText) && portText.length <= 15) port = portText;
  else return { problem: `port '${portText}' must be a number 1-65535 or the name of a port the destination declares` };
  if (from === to) return { problem: `'${text}' goes from a pod to itself, which never crosses the data plane` };
  return { spec: { from, to, port, ...(protocol ? { protocol } : {}) } };
}

const describePorts = (ports: readonly ContainerPort[]) => (ports.length ? ports.map((p) => `${p.name ? `${p.name}=` : ''}${p.containerPort}/${p.protocol}`).join(', ') : 'none');

/** Flows named on the command line, checked against the workload: every problem at once, under `where`. */
export function resolveFlowSpecs(texts: readonly string[], w: ClusterWorkload, where = '--flow'): { flows: Flow[]; problems: Problem[] } {
  const pods = new Map(w.inventory.pods.map((p) => [podName(p), p]));
  const flows: Flow[] = [];
  const problems: Problem[] = [];
  for (const text of texts) {
    const { spec, problem } = parseFlowSpec(text);
    if (!spec) {
      problems.push({ where, message: problem! });
      continue;
    }
    const missing = [spec.from, spec.to].filter((k) => !pods.has(k));
    for (const k of missing) {
      const ns = k.split('/')[0]!;
      const inNs = w.inventory.pods.filter((p) => p.namespace === ns).map((p) => p.name);
      problems.push({ where, message: `'${text}': no pod ${k} in workload ${w.name}${inNs.length ? ` (pods in ${ns}: ${inNs.slice(0, 6).join(', ')}${inNs.length > 6 ? ', …' : ''})` : ` (it has no namespace ${ns} with pods)`}` });
    }
    if (missing.length) continue;
    const dst = pods.get(spec.to)!;
    if (typeof spec.port === 'string') {
      const named = dst.ports.filter((p) => p.name === spec.port && (!spec.protocol || p.protocol === spec.protocol));
      if (named.length !== 1) {
        problems.push({ where, message: `'${text}': ${spec.to} declares no ${spec.protocol ? `${spec.protocol} ` : ''}port named '${spec.port}' (its ports: ${describePorts(dst.ports)})` });
        continue;
      }
      flows.push({ from: spec.from, to: spec.to, port: named[0]!.containerPort, protocol: named[0]!.protocol });
    } else flows.push({ from: spec.from, to: spec.to, port: spec.port, protocol: spec.protocol ?? 'TCP' });
  }
  return { flows, problems };
}

// ---- the flows verify probes ----

export interface ProbeFlowSample {
  flows: Flow[];
  /** Every ordered pod pair on every port the destination declares. */
  total: number;
  /** True when `flows` is a seeded sample of `total`. */
  sampled: boolean;
}

/** The default number of flows verify probes before it samples. */
export const DEFAULT_PROBE_FLOW_LIMIT = 2000;

/**
 * Every ordered pair of distinct pods on every port (and protocol) the destination declares, in pod order; above
 * `max` of them, `max` drawn without replacement with `seed` (the same seed gives the same sample), kept in the
 * same order.
 */
export function probeFlows(w: ClusterWorkload, opts: { max?: number; seed?: number } = {}): ProbeFlowSample {
  const max = opts.max ?? DEFAULT_PROBE_FLOW_LIMIT;
  const pods = w.inventory.pods;
  const n = pods.length;
  const dsts = pods.map((p, i) => ({ i, ports: p.ports })).filter((d) => d.ports.length > 0);
  const starts: number[] = [];
  let total = 0;
  for (const d of dsts) {
    starts.push(total);
    total += (n - 1) * d.ports.length;
  }
  const flowAt = (index: number): Flow => {
    let lo = 0;
    let hi = dsts.length - 1;
    while (lo < hi) {
      const mid = (lo + hi + 1) >> 1;
      if (starts[mid]! <= index) lo = mid;
      else hi = mid - 1;
    }
    const d = dsts[lo]!;
    const r = index - starts[lo]!;
    let s = Math.floor(r / d.ports.length);
    if (s >= d.i) s++;
    const port = d.ports[r % d.ports.length]!;
    return { from: podName(pods[s]!), to: podName(pods[d.i]!), port: port.containerPort, protocol: port.protocol };
  };
  if (total <= max) return { flows: Array.from({ length: total }, (_, i) => flowAt(i)), total, sampled: false };
  // Floyd's algorithm: `max` distinct indexes out of `total`, without building the whole list.
  const rand = seededRandom(opts.seed ?? 1);
  const chosen = new Set<number>();
  for (let j = total - max; j < total; j++) {
    const t = Math.floor(rand() * (j + 1));
    chosen.add(chosen.has(t) ? j : t);
  }
  return { flows: [...chosen].sort((a, b) => a - b).map(flowAt), total, sampled: true };
}
