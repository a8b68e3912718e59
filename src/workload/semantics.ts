// What a policy set means on each data plane: the expected verdict of a flow between two of a workload's pods
// under the data plane's documented semantics, and the flows whose verdict differs between two data planes (the
// migration question). The semantics are data, in each CNI's catalogue entry, with where they are documented. Pure.
//
// Shared by every data plane that enforces (the spec): traffic from a pod's own node — a hostNetwork pod there —
// is allowed in (NetworkPolicySpec.ingress in k8s.io/api networking/v1 types.go: "traffic is allowed to a pod … if
// the traffic source is the pod's local node"). Calico does not police host to local workload
// (felix/rules/static.go filterOutputChain, v3.30.3; eBPF: felix/bpf-gpl/tc.c "Host to workload traffic always
// allowed"); Cilium allows reserved:host ingress (allow-localhost, see src/backends/local/cilium/compile.ts). The
// reference evaluator (src/policy/evaluate.ts) leaves this out, so it is applied here first.
import { CNI_CATALOGUE, CNIS, type CniName, type PolicySemantics } from '../config/cnis.js';
import { PolicyEvaluator, type ConnectionVerdict } from '../policy/evaluate.js';
import { effectivePolicyTypes } from '../policy/resolve.js';
import type { NetworkPolicy, NetworkPolicyPeer, PodInfo, Protocol } from '../policy/types.js';
import type { ClusterWorkload } from './cluster.js';
import { podName, type Flow } from './flows.js';

export type { PolicySemantics };

/** The documented semantics of each data plane: the CNI catalogue's (config/cnis.ts). */
export const POLICY_SEMANTICS: Readonly<Record<CniName, PolicySemantics>> = Object.fromEntries(CNIS.map((c) => [c, CNI_CATALOGUE[c].policySemantics])) as Record<CniName, PolicySemantics>;

export type ExpectationBasis =
  /** No policy engine: everything passes. */
  | 'not-enforced'
  /** From a hostNetwork pod to a pod on its own node: always allowed. */
  | 'local-node'
  /** The policies decide (allowed by some, denied by all isolating ones, or nothing isolates). */
  | 'policy'
  /** The data plane does not implement rules for this protocol. */
  | 'unsupported-protocol';

export interface FlowExpectation extends Flow {
  /** undefined where the data plane's behaviour is not documented (an unsupported protocol). */
  allowed: boolean | undefined;
  basis: ExpectationBasis;
  /** basis 'policy': the policies allowing it (allowed), or isolating it (denied); empty when nothing isolates. */
  policies: string[];
}

/**
 * A policy set as a data plane that never selects in-cluster addresses by ipBlock reads it, for flows between the
 * workload's pods (both ends in the cluster): ipBlock peers dropped, a rule left without peers dropped (it matches
 * no such flow), policyTypes written out so dropping egress rules changes no isolation.
 */
export function withoutInClusterIpBlocks(policies: readonly NetworkPolicy[]): NetworkPolicy[] {
  const keep = (peers: NetworkPolicyPeer[] | undefined) => peers?.filter((p) => !p.ipBlock);
  return policies.map((p) => {
    const types = effectivePolicyTypes(p);
    const ingress = (p.spec.ingress ?? []).flatMap((r) => (r.from?.length && !keep(r.from)!.length ? [] : [{ ...r, from: keep(r.from) }]));
    const egress = (p.spec.egress ?? []).flatMap((r) => (r.to?.length && !keep(r.to)!.length ? [] : [{ ...r, to: keep(r.to) }]));
    return { ...p, spec: { ...p.spec, policyTypes: [...(types.ingress ? ['Ingress' as const] : []), ...(types.egress ? ['Egress' as const] : [])], ingress, egress } };
  });
}

/** From a hostNetwork pod to a pod on its own node: the spec allows it in whatever the policies say (see header). */
export function fromOwnNode(src: PodInfo, dst: PodInfo): boolean {
  return !!src.hostNetwork && !dst.hostNetwork && src.node === dst.node;
}

/** Expected verdicts of flows between a workload's pods on one data plane. Build once per workload and CNI. */
export class DataPlaneExpectations {
  readonly semantics: PolicySemantics;
  private readonly pods: Map<string, PodInfo>;
  private evaluator?: PolicyEvaluator;

  constructor(
    readonly workload: ClusterWorkload,
    readonly cni: CniName,
  ) {
    this.semantics = POLICY_SEMANTICS[cni];
    this.pods = new Map(workload.inventory.pods.map((p) => [podName(p), p]));
  }

  private policyEvaluator(): PolicyEvaluator {
    if (!this.evaluator) {
      const policies = this.semantics.ipBlockSelects === 'outside-cluster' ? withoutInClusterIpBlocks(this.workload.policies) : this.workload.policies;
      this.evaluator = new PolicyEvaluator(this.workload.inventory, policies);
    }
    return this.evaluator;
  }

  private pod(name: string): PodInfo {
    const p = this.pods.get(name);
    if (!p) throw new Error(`expectations: no pod ${name} in workload ${this.workload.name}`);
    return p;
  }

  /** The reference evaluator's verdict under this data plane's ipBlock reading (undefined when it does not enforce). */
  verdict(flow: Flow): ConnectionVerdict | undefined {
    if (!this.semantics.enforces) return undefined;
    return this.policyEvaluator().evaluate({ src: this.pod(flow.from), dst: this.pod(flow.to), port: flow.port, protocol: flow.protocol });
  }

  expect(flow: Flow): FlowExpectation {
    const f: Flow = { from: flow.from, to: flow.to, port: flow.port, protocol: flow.protocol };
    if (!this.semantics.enforces) return { ...f, allowed: true, basis: 'not-enforced', policies: [] };
    if (this.semantics.unsupportedProtocols.includes(flow.protocol)) return { ...f, allowed: undefined, basis: 'unsupported-protocol', policies: [] };
    const src = this.pod(flow.from);
    const dst = this.pod(flow.to);
    if (fromOwnNode(src, dst)) return { ...f, allowed: true, basis: 'local-node', policies: [] };
    const v = this.verdict(flow)!;
    const sides = [v.egress, v.ingress];
    const policies = v.allowed ? sides.flatMap((s) => s.allowedBy) : sides.filter((s) => s.decision === 'denied').flatMap((s) => s.isolatedBy);
    return { ...f, allowed: v.allowed, basis: 'policy', policies };
  }
}

export function expectFlows(w: ClusterWorkload, cni: CniName, flows: readonly Flow[]): FlowExpectation[] {
  const e = new DataPlaneExpectations(w, cni);
  return flows.map((f) => e.expect(f));
}

export interface VerdictDiff extends Flow {
  expected: Record<string, FlowExpectation>;
  /** Why the two differ, in words. */
  reason: string;
}

function explain(cni: CniName, e: FlowExpectation): string {
  const verb = e.allowed === undefined ? 'is undocumented on' : e.allowed ? 'allowed on' : 'denied on';
  const why =
    e.basis === 'not-enforced' ? 'no policy engine'
    : e.basis === 'local-node' ? "from the pod's own node"
    : e.basis === 'unsupported-protocol' ? `${e.protocol} rules are not implemented`
    : e.allowed ? (e.policies.length ? `by ${e.policies.join(', ')}` : 'nothing isolates it')
    : `isolated by ${e.policies.join(', ')}, none allows it`;
  return `${verb} ${cni} (${why})`;
}

/** Which side's ipBlock makes the difference, and whose address it covers. */
function ipBlockReason(f: Flow, ea: DataPlaneExpectations, eb: DataPlaneExpectations): string {
  const [va, vb] = [ea.verdict(f)!, eb.verdict(f)!];
  const blind = ea.semantics.ipBlockSelects === 'outside-cluster' ? ea.cni : eb.cni;
  const parts: string[] = [];
  for (const side of ['egress', 'ingress'] as const) {
    const only = [va, vb].map((v) => v[side].allowedBy);
    const extra = only[0]!.filter((p) => !only[1]!.includes(p)).concat(only[1]!.filter((p) => !only[0]!.includes(p)));
    if (extra.length) parts.push(`${side === 'egress' ? `egress of ${f.from}` : `ingress of ${f.to}`}: an ipBlock in ${extra.join(', ')} covers ${side === 'egress' ? f.to : f.from}'s address, which ${blind} never selects by ipBlock`);
  }
  return parts.length ? ` — ${parts.join('; ')}` : '';
}

/**
 * The flows whose expected verdict differs between data planes `a` and `b`, with the reason. A flow with an
 * undocumented verdict on either side is listed too: the migration cannot be promised there.
 */
export function diffExpectations(w: ClusterWorkload, a: CniName, b: CniName, flows: readonly Flow[]): VerdictDiff[] {
  const ea = new DataPlaneExpectations(w, a);
  const eb = new DataPlaneExpectations(w, b);
  const out: VerdictDiff[] = [];
  for (const f of flows) {
    const x = ea.expect(f);
    const y = eb.expect(f);
    if (x.allowed === y.allowed && x.allowed !== undefined) continue;
    let reason = `${explain(a, x)}; ${explain(b, y)}`;
    if (x.basis === 'policy' && y.basis === 'policy' && ea.semantics.ipBlockSelects !== eb.semantics.ipBlockSelects) reason += ipBlockReason(f, ea, eb);
    out.push({ from: f.from, to: f.to, port: f.port, protocol: f.protocol, expected: { [a]: x, [b]: y }, reason });
  }
  return out;
}
