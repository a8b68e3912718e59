// Which connections to measure on a workload: by default a few allowed flows that show the spread — the most
// expensive (the most policy rules in its path: the source's egress and the destination's ingress), a
// cross-namespace one, a same-node one, and K seeded random ones — or exactly the flows the user names. A flow is
// allowed when the reference evaluator (src/policy/evaluate.ts) says so. Pure.
//
// Pods with the same namespace, labels, declared ports and membership in every ipBlock of the policy set are
// treated alike by every policy, so allowance is evaluated once per class pair (a 1500-pod cluster has a few
// hundred classes). The default choice leaves hostNetwork pods out: NetworkPolicy does not apply to them, so
// their flows say nothing about what policy costs (a named flow may use them).
import { parseIpv4 } from '../policy/cidr.js';
import { PolicyEvaluator } from '../policy/evaluate.js';
import { resolvePolicySet } from '../policy/resolve.js';
import type { ContainerPort, IPBlock, PodInfo } from '../policy/types.js';
import { seededRandom } from '../stats/summary.js';
import { ipBlockMatcher, type ClusterWorkload } from './cluster.js';
import { flowKey, podName, type Flow } from './flows.js';

/** Policies and rules a new connection of this flow meets: the source's egress and the destination's ingress. */
export interface FlowCost {
  egressPolicies: number;
  egressRules: number;
  ingressPolicies: number;
  ingressRules: number;
  /** egressRules + ingressRules: what ranks flows. */
  rules: number;
}

export type FlowReason = 'most-expensive' | 'cross-namespace' | 'same-node' | 'random' | 'named';

export interface ChosenFlow extends Flow {
  reason: FlowReason;
  cost: FlowCost;
  /** Per the reference evaluator; a named flow may be denied (it will not connect). */
  allowed: boolean;
}

export interface FlowChoice {
  flows: ChosenFlow[];
  /** What could not be chosen and why ("no allowed flow between two pods on one node"). */
  notes: string[];
}

/** The default number of seeded random flows beside the three chosen ones. */
export const DEFAULT_RANDOM_FLOWS = 3;

const ZERO: Omit<FlowCost, 'rules'> = { egressPolicies: 0, egressRules: 0, ingressPolicies: 0, ingressRules: 0 };

/** The workload's policy facts once: evaluator, costs per pod, classes. Reuse it for many choices. */
export class FlowSpace {
  readonly evaluator: PolicyEvaluator;
  readonly pods: Map<string, PodInfo>;
  private readonly costs = new Map<PodInfo, Omit<FlowCost, 'rules'>>();
  private readonly classOf = new Map<PodInfo, number>();
  /** Pods that every policy treats alike, in pod order; a class's index is its id. */
  readonly classes: PodInfo[][] = [];
  private readonly allowedMemo = new Map<string, ContainerPort[]>();

  constructor(readonly workload: ClusterWorkload) {
    const inv = workload.inventory;
    this.evaluator = new PolicyEvaluator(inv, workload.policies);
    this.pods = new Map(inv.pods.map((p) => [podName(p), p]));
    for (const e of resolvePolicySet(inv, workload.policies).endpoints) {
      const count = (ps: typeof e.ingress.policies) => ps.reduce((n, p) => n + p.rules.length, 0);
      this.costs.set(e.pod, { egressPolicies: e.egress.policies.length, egressRules: count(e.egress.policies), ingressPolicies: e.ingress.policies.length, ingressRules: count(e.ingress.policies) });
    }
    const blocks = new Map<string, IPBlock>();
    for (const p of workload.policies) {
      for (const r of [...(p.spec.ingress ?? []).flatMap((x) => x.from ?? []), ...(p.spec.egress ?? []).flatMap((x) => x.to ?? [])]) {
        if (r.ipBlock) blocks.set(JSON.stringify(r.ipBlock), r.ipBlock);
      }
    }
    const blockList = [...blocks.values()].map(ipBlockMatcher);
    const keys = new Map<string, number>();
    for (const p of inv.pods) {
      const labels = Object.entries(p.labels).sort(([a], [b]) => (a < b ? -1 : 1));
      const ip = parseIpv4(p.ip);
      const inBlocks = blockList.map((inside) => (inside(ip) ? '1' : '0')).join('');
      const key = JSON.stringify([p.namespace, labels, p.ports, p.hostNetwork === true, inBlocks]);
      if (!keys.has(key)) {
        keys.set(key, keys.size);
        this.classes.push([]);
      }
      const id = keys.get(key)!;
      this.classOf.set(p, id);
      this.classes[id]!.push(p);
    }
  }

  /** Rules of the policies that isolate `p`'s egress / ingress (0 for a hostNetwork pod). */
  egressRules(p: PodInfo): number {
    return (this.costs.get(p) ?? ZERO).egressRules;
  }
  ingressRules(p: PodInfo): number {
    return (this.costs.get(p) ?? ZERO).ingressRules;
  }

  cost(src: PodInfo, dst: PodInfo): FlowCost {
    const s = this.costs.get(src) ?? ZERO;
    const d = this.costs.get(dst) ?? ZERO;
    return { egressPolicies: s.egressPolicies, egressRules: s.egressRules, ingressPolicies: d.ingressPolicies, ingressRules: d.ingressRules, rules: s.egressRules + d.ingressRules };
  }

  allowed(src: PodInfo, dst: PodInfo, port: number, protocol: ContainerPort['protocol']): boolean {
    return this.evaluator.evaluate({ src, dst, port, protocol }).allowed;
  }

  /** The ports `dst` declares that `src` may reach, per the reference evaluator (memoized per class pair). */
  allowedPorts(src: PodInfo, dst: PodInfo): ContainerPort[] {
    const key = `${this.classOf.get(src)}>${this.classOf.get(dst)}`;
    let hit = this.allowedMemo.get(key);
    if (!hit) {
      hit = dst.ports.filter((p) => this.allowed(src, dst, p.containerPort, p.protocol));
      this.allowedMemo.set(key, hit);
    }
    return hit;
  }
}

/** The classes the default choice draws from: pod-network pods as sources, those declaring a port as destinations. */
function candidateClasses(space: FlowSpace): { sources: PodInfo[][]; dests: PodInfo[][] } {
  const sources = space.classes.filter((c) => !c[0]!.hostNetwork);
  return { sources, dests: sources.filter((c) => c[0]!.ports.length > 0) };
}

/** A max-heap of class pairs (i, j) by cost, for walking pairs in falling cost order. */
class PairHeap {
  private readonly items: Array<[number, number, number]> = [];
  get size(): number {
    return this.items.length;
  }
  push(cost: number, i: number, j: number): void {
    const a = this.items;
    a.push([cost, i, j]);
    for (let k = a.length - 1; k > 0; ) {
      const up = (k - 1) >> 1;
      if (a[up]![0] >= a[k]![0]) break;
      [a[up], a[k]] = [a[k]!, a[up]!];
      k = up;
    }
  }
  pop(): [number, number, number] {
    const a = this.items;
    const top = a[0]!;
    const last = a.pop()!;
    if (a.length) {
      a[0] = last;
      for (let k = 0; ; ) {
        const [l, r] = [2 * k + 1, 2 * k + 2];
        let m = k;
        if (l < a.length && a[l]![0] > a[m]![0]) m = l;
        if (r < a.length && a[r]![0] > a[m]![0]) m = r;
        if (m === k) break;
        [a[m], a[k]] = [a[k]!, a[m]!];
        k = m;
      }
    }
    return top;
  }
}

/** Two distinct pods, one of each class (the same class needs two pods). */
function pickPair(s: PodInfo[], d: PodInfo[]): [PodInfo, PodInfo] | undefined {
  const src = s[0]!;
  const dst = d.find((p) => p !== src);
  return dst ? [src, dst] : undefined;
}

/**
 * The allowed flow with the most rules in its path, searched over class pairs in falling cost order (the two
 * cost lists sorted, a heap over the frontier): the first allowed pair is the most expensive.
 */
function mostExpensive(space: FlowSpace, sources: PodInfo[][], dests: PodInfo[][]): ChosenFlow | undefined {
  const byEgress = [...sources].sort((a, b) => space.egressRules(b[0]!) - space.egressRules(a[0]!));
  const byIngress = [...dests].sort((a, b) => space.ingressRules(b[0]!) - space.ingressRules(a[0]!));
  const cost = (i: number, j: number) => space.egressRules(byEgress[i]![0]!) + space.ingressRules(byIngress[j]![0]!);
  const heap = new PairHeap();
  const queued = new Set<number>();
  const push = (i: number, j: number) => {
    if (i < byEgress.length && j < byIngress.length && !queued.has(i * byIngress.length + j)) {
      queued.add(i * byIngress.length + j);
      heap.push(cost(i, j), i, j);
    }
  };
  push(0, 0);
  while (heap.size) {
    const [, i, j] = heap.pop();
    const pair = pickPair(byEgress[i]!, byIngress[j]!);
    const port = pair ? space.allowedPorts(pair[0], pair[1])[0] : undefined;
    if (pair && port) return { from: podName(pair[0]), to: podName(pair[1]), port: port.containerPort, protocol: port.protocol, reason: 'most-expensive', cost: space.cost(pair[0], pair[1]), allowed: true };
    push(i + 1, j);
    push(i, j + 1);
  }
  return undefined;
}

/**
 * A seeded random allowed flow among pod pairs that pass `filter`, not in `taken`: random draws first; when they
 * keep missing (allowed pairs are rare), every allowed class pair in a seeded order, so a flow that exists is
 * always found.
 */
function randomAllowed(space: FlowSpace, classes: { sources: PodInfo[][]; dests: PodInfo[][] }, rand: () => number, taken: Set<string>, reason: FlowReason, filter: (s: PodInfo, d: PodInfo) => boolean): ChosenFlow | undefined {
  const flowOf = (src: PodInfo, dst: PodInfo): ChosenFlow | undefined => {
    if (src === dst || !filter(src, dst)) return undefined;
    const ports = space.allowedPorts(src, dst).filter((p) => !taken.has(flowKey({ from: podName(src), to: podName(dst), port: p.containerPort, protocol: p.protocol })));
    if (!ports.length) return undefined;
    const port = ports[Math.floor(rand() * ports.length)]!;
    return { from: podName(src), to: podName(dst), port: port.containerPort, protocol: port.protocol, reason, cost: space.cost(src, dst), allowed: true };
  };
  const sources = classes.sources.flat();
  const dests = classes.dests.flat();
  if (!sources.length || !dests.length) return undefined;
  for (let tries = 0; tries < 2000; tries++) {
    const f = flowOf(sources[Math.floor(rand() * sources.length)]!, dests[Math.floor(rand() * dests.length)]!);
    if (f) return f;
  }
  const offset = Math.floor(rand() * classes.sources.length);
  for (let k = 0; k < classes.sources.length; k++) {
    const s = classes.sources[(offset + k) % classes.sources.length]!;
    for (const d of classes.dests) {
      const pair = pickPair(s, d);
      if (!pair || !space.allowedPorts(pair[0], pair[1]).length) continue;
      for (const src of s) for (const dst of d) {
        const f = flowOf(src, dst);
        if (f) return f;
      }
    }
  }
  return undefined;
}

export interface ChooseOptions {
  /** Seeded random flows beside the most expensive, cross-namespace and same-node ones. */
  random?: number;
  seed?: number;
  /** Exactly these flows instead (from resolveFlowSpecs). */
  named?: readonly Flow[];
}

export function chooseFlows(w: ClusterWorkload | FlowSpace, opts: ChooseOptions = {}): FlowChoice {
  const space = w instanceof FlowSpace ? w : new FlowSpace(w);
  if (opts.named) {
    return {
      flows: opts.named.map((f) => {
        const src = space.pods.get(f.from)!;
        const dst = space.pods.get(f.to)!;
        return { ...f, reason: 'named', cost: space.cost(src, dst), allowed: space.allowed(src, dst, f.port, f.protocol) };
      }),
      notes: [],
    };
  }
  const classes = candidateClasses(space);
  const rand = seededRandom(opts.seed ?? 1);
  const flows: ChosenFlow[] = [];
  const notes: string[] = [];
  const taken = new Set<string>();
  const add = (f: ChosenFlow | undefined, missing: string) => {
    if (f) {
      flows.push(f);
      taken.add(flowKey(f));
    } else notes.push(missing);
  };
  add(mostExpensive(space, classes.sources, classes.dests), 'no allowed flow between two pod-network pods on a port the destination declares');
  add(randomAllowed(space, classes, rand, taken, 'cross-namespace', (s, d) => s.namespace !== d.namespace), 'cross-namespace: no allowed flow between pods of two namespaces');
  add(randomAllowed(space, classes, rand, taken, 'same-node', (s, d) => s.node === d.node), 'same-node: no allowed flow between two pods on one node');
  const k = opts.random ?? DEFAULT_RANDOM_FLOWS;
  for (let i = 0; i < k; i++) {
    const f = randomAllowed(space, classes, rand, taken, 'random', () => true);
    if (!f) {
      notes.push(`random: ${i} of ${k} found; the workload has no other allowed flow`);
      break;
    }
    add(f, '');
  }
  return { flows, notes };
}
