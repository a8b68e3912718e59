// Findings a person can act on, each naming the policy and the field: what in a workload's policy set does not
// do what it was likely meant to, or does something else on some data planes. Pure; fast enough for thousands of
// policies (selectors are compiled once, egress verdicts evaluated once per distinct label set).
import type { CniName } from '../config/schema.js';
import { parseIpv4 } from '../policy/cidr.js';
import { PolicyEvaluator } from '../policy/evaluate.js';
import { effectivePolicyTypes } from '../policy/resolve.js';
import { NAMESPACE_NAME_LABEL, SelectorCache, effectiveNamespaceLabels } from '../policy/selectors.js';
import type { IPBlock, LabelSelector, NetworkPolicy, NetworkPolicyPeer, NetworkPolicyPort, PodInfo } from '../policy/types.js';
import { ipBlockMatcher, type ClusterWorkload } from './cluster.js';
import { podName } from './flows.js';
import { POLICY_SEMANTICS } from './semantics.js';

export type FindingKind = 'or-peers' | 'egress-without-dns' | 'selects-only-host-network' | 'ipblock-covers-pods' | 'selects-no-pod' | 'named-port-undeclared' | 'not-enforced' | 'not-replayed';

export interface Finding {
  kind: FindingKind;
  /** namespace/name of the policy (for not-replayed: the kind and its API group, `CiliumNetworkPolicy.cilium.io`). */
  policy: string;
  /** The field, as kubectl names it (spec.ingress[0].from), where one field is at fault. */
  field?: string;
  message: string;
  fix: string;
  /** The data planes it is about; absent: every one. */
  cnis?: CniName[];
}

export interface FindingOptions {
  /** The data planes in question: not-enforced findings name those among them without a policy engine. */
  cnis?: readonly CniName[];
}

const key = (p: NetworkPolicy) => `${p.metadata.namespace}/${p.metadata.name}`;
const plural = (n: number, what: string) => `${n} ${what}${n === 1 ? '' : 's'}`;
/** The first few of a list, then how many more: `a, b, c and 12 more`. */
function few<T>(items: readonly T[], n = 3, name: (t: T) => string = String): string {
  return `${items.slice(0, n).map(name).join(', ')}${items.length > n ? ` and ${items.length - n} more` : ''}`;
}

/** `{app=cart, tier In (a,b)}`, `{}` for the empty selector. */
export function selectorText(s: LabelSelector): string {
  const parts = [
    ...Object.entries(s.matchLabels ?? {}).map(([k, v]) => `${k}=${v}`),
    ...(s.matchExpressions ?? []).map((e) => `${e.key} ${e.operator}${e.values ? ` (${e.values.join(',')})` : ''}`),
  ];
  return `{${parts.join(', ')}}`;
}

/** The peer lists of a policy with their kubectl field paths. */
function peerLists(p: NetworkPolicy): Array<{ field: string; direction: 'ingress' | 'egress'; peers: NetworkPolicyPeer[] | undefined; ports: NetworkPolicyPort[] | undefined }> {
  return [
    ...(p.spec.ingress ?? []).map((r, i) => ({ field: `spec.ingress[${i}].from`, direction: 'ingress' as const, peers: r.from, ports: r.ports })),
    ...(p.spec.egress ?? []).map((r, i) => ({ field: `spec.egress[${i}].to`, direction: 'egress' as const, peers: r.to, ports: r.ports })),
  ];
}

class Cluster {
  readonly selectors = new SelectorCache();
  readonly podsByNs = new Map<string, PodInfo[]>();
  private readonly nsLabels = new Map<string, Record<string, string>>();
  /** Pod addresses as numbers, for ipBlock tests. */
  readonly ipOf = new Map<PodInfo, number | undefined>();

  constructor(readonly w: ClusterWorkload) {
    for (const p of w.inventory.pods) this.ipOf.set(p, parseIpv4(p.ip));
    this.podNetwork = w.inventory.pods.filter((p) => !p.hostNetwork);
    for (const ns of w.inventory.namespaces) this.nsLabels.set(ns.name, { ...effectiveNamespaceLabels(ns.name, ns.labels) });
    for (const p of w.inventory.pods) {
      if (!this.podsByNs.has(p.namespace)) this.podsByNs.set(p.namespace, []);
      this.podsByNs.get(p.namespace)!.push(p);
      if (!this.nsLabels.has(p.namespace)) this.nsLabels.set(p.namespace, { ...effectiveNamespaceLabels(p.namespace, {}) });
    }
  }

  /** Every pod of `ns` the selector matches, hostNetwork pods included. */
  selected(ns: string, sel: LabelSelector): PodInfo[] {
    const m = this.selectors.matcher(sel);
    return (this.podsByNs.get(ns) ?? []).filter((p) => m(p.labels));
  }

  namespacesMatching(sel: LabelSelector): string[] {
    const m = this.selectors.matcher(sel);
    return [...this.nsLabels.keys()].filter((ns) => m(this.nsLabels.get(ns)!));
  }

  private readonly podNetwork: PodInfo[];

  /** The pod-network pods a peer list reaches (undefined/empty list: every pod; an ipBlock: the pods inside it). */
  peerPods(policyNs: string, peers: NetworkPolicyPeer[] | undefined): PodInfo[] {
    const all = this.podNetwork;
    if (!peers?.length) return all;
    const out = new Set<PodInfo>();
    for (const peer of peers) {
      if (peer.ipBlock) {
        const inside = ipBlockMatcher(peer.ipBlock);
        for (const p of all) if (inside(this.ipOf.get(p))) out.add(p);
      }
      if (!peer.podSelector && !peer.namespaceSelector) continue;
      const namespaces = peer.namespaceSelector ? this.namespacesMatching(peer.namespaceSelector) : [policyNs];
      for (const ns of namespaces) for (const p of this.selected(ns, peer.podSelector ?? {})) if (!p.hostNetwork) out.add(p);
    }
    return [...out];
  }
}

function orPeers(c: Cluster, p: NetworkPolicy, out: Finding[]): void {
  for (const { field, direction, peers } of peerLists(p)) {
    const nsOnly = (peers ?? []).find((x) => x.namespaceSelector && !x.podSelector);
    const podOnly = (peers ?? []).find((x) => x.podSelector && !x.namespaceSelector);
    if (!nsOnly || !podOnly) continue;
    const namespaces = c.namespacesMatching(nsOnly.namespaceSelector!);
    const admitted = namespaces.flatMap((ns) => c.podsByNs.get(ns) ?? []).filter((x) => !x.hostNetwork);
    out.push({
      kind: 'or-peers',
      policy: key(p),
      field,
      message: `${field} lists namespaceSelector ${selectorText(nsOnly.namespaceSelector!)} and podSelector ${selectorText(podOnly.podSelector!)} as two peers: it ${direction === 'ingress' ? 'admits' : 'reaches'} every pod of ${namespaces.length ? few(namespaces) : 'the namespaces it selects'} (${plural(admitted.length, 'pod')}) OR the pods ${selectorText(podOnly.podSelector!)} of ${p.metadata.namespace} — not the pods ${selectorText(podOnly.podSelector!)} of those namespaces`,
      fix: 'if the pods matching both were meant, put namespaceSelector and podSelector in one peer (one list item)',
    });
  }
}

function selection(c: Cluster, p: NetworkPolicy, out: Finding[]): PodInfo[] {
  const selected = c.selected(p.metadata.namespace, p.spec.podSelector);
  const sel = selectorText(p.spec.podSelector);
  // A snapshot's pods the replay leaves out (pending, finished, IPv6-only) are selected on the cluster all the same.
  const left = selected.length || c.w.source.kind !== 'snapshot' ? [] : c.w.source.skippedPods.filter((x) => x.pod.startsWith(`${p.metadata.namespace}/`) && x.labels && c.selectors.matcher(p.spec.podSelector)(x.labels));
  if (left.length) {
    out.push({ kind: 'selects-no-pod', policy: key(p), field: 'spec.podSelector', message: `podSelector ${sel} selects only pods the replay leaves out (${few(left, 2, (x) => `${x.pod}: ${x.reason.split(':')[0]}`)}): in the replay the policy has no effect; on your cluster it applies to them`, fix: 'nothing to change if those pods are meant; the replay cannot show what it does to them' });
  } else if (selected.length === 0) {
    out.push({ kind: 'selects-no-pod', policy: key(p), field: 'spec.podSelector', message: `podSelector ${sel} selects no pod in ${p.metadata.namespace}: the policy has no effect`, fix: `check the labels (kubectl get pods -n ${p.metadata.namespace} --show-labels): a typo or a leftover; delete it if it is one` });
  } else if (selected.every((x) => x.hostNetwork)) {
    out.push({ kind: 'selects-only-host-network', policy: key(p), field: 'spec.podSelector', message: `podSelector ${sel} selects only hostNetwork pods (${few(selected, 3, podName)}): NetworkPolicy does not apply to them, on any data plane`, fix: 'delete it; to protect those pods, police the node itself (Calico host endpoint policy, Cilium host policies)' });
  }
  return selected.filter((x) => !x.hostNetwork);
}

function ipBlocks(c: Cluster, p: NetworkPolicy, out: Finding[]): void {
  const pods = c.w.inventory.pods;
  for (const { field, peers } of peerLists(p)) {
    (peers ?? []).forEach((peer, j) => {
      const b: IPBlock | undefined = peer.ipBlock;
      if (!b) return;
      const test = ipBlockMatcher(b);
      const inside = pods.filter((x) => test(c.ipOf.get(x)));
      const covered = inside.filter((x) => !x.hostNetwork);
      const nodes = [...new Set(inside.filter((x) => x.hostNetwork).map((x) => x.node))];
      if (!covered.length && !nodes.length) return;
      const block = `${b.cidr}${b.except?.length ? ` except ${b.except.join(', ')}` : ''}`;
      const what = [...(covered.length ? [`${plural(covered.length, 'pod')} (${few(covered, 3, podName)})`] : []), ...(nodes.length ? [`${plural(nodes.length, 'node')} (${few(nodes)}: their hostNetwork pods)`] : [])].join(' and ');
      out.push({
        kind: 'ipblock-covers-pods',
        policy: key(p),
        field: `${field}[${j}].ipBlock`,
        message: `ipBlock ${block} covers the addresses of ${what}: Calico matches them, Cilium does not (CIDR rules never select pods, nor nodes unless policy-cidr-match-mode=nodes), so what this rule allows inside the cluster differs between the two`,
        fix: 'select pods with podSelector/namespaceSelector, and keep ipBlocks for addresses outside the cluster (add the pod CIDR to except)',
        cnis: (Object.keys(POLICY_SEMANTICS) as CniName[]).filter((n) => POLICY_SEMANTICS[n].enforces),
      });
    });
  }
}

function namedPorts(c: Cluster, p: NetworkPolicy, selected: PodInfo[], out: Finding[]): void {
  for (const { field, direction, peers, ports } of peerLists(p)) {
    const rule = field.replace(/\.(from|to)$/, '');
    (ports ?? []).forEach((port, j) => {
      if (typeof port.port !== 'string') return;
      const protocol = port.protocol ?? 'TCP';
      if (!selected.length) return; // a policy on no pod-network pod: selects-no-pod or selects-only-host-network says so
      const candidates = direction === 'ingress' ? selected : c.peerPods(p.metadata.namespace, peers);
      if (candidates.some((x) => x.ports.some((cp) => cp.name === port.port && cp.protocol === protocol))) return;
      const whose = `the ${plural(candidates.length, 'pod')} ${direction === 'ingress' ? 'it selects' : 'this rule reaches'}`;
      const declared = [...new Set(candidates.flatMap((x) => x.ports.filter((cp) => cp.name).map((cp) => `${cp.name}=${cp.containerPort}/${cp.protocol}`)))];
      out.push({
        kind: 'named-port-undeclared',
        policy: key(p),
        field: `${rule}.ports[${j}]`,
        message: `port '${port.port}' (${protocol}) is declared by none of ${whose}${candidates.length ? ` (${few(candidates, 3, podName)})` : ''}: this port entry matches nothing`,
        fix: declared.length ? `name a port they declare (${few(declared, 5)}) or give the number` : 'give the port number, or name the port in the pods\' containers',
      });
    });
  }
}

function egressWithoutDns(c: Cluster, out: Finding[]): void {
  const w = c.w;
  const dnsServers = w.inventory.pods.filter((p) => p.ports.some((cp) => cp.containerPort === 53 && cp.protocol === 'UDP'));
  const egressPolicies = w.policies.filter((p) => effectivePolicyTypes(p).egress);
  if (!egressPolicies.length) return;
  const byNs = new Map<string, Array<{ policy: NetworkPolicy; name: string; selects: (l: Record<string, string>) => boolean }>>();
  for (const p of egressPolicies) {
    if (!byNs.has(p.metadata.namespace)) byNs.set(p.metadata.namespace, []);
    byNs.get(p.metadata.namespace)!.push({ policy: p, name: key(p), selects: c.selectors.matcher(p.spec.podSelector) });
  }
  const evaluator = new PolicyEvaluator(w.inventory, w.policies);
  const groups = new Map<string, { policies: string[]; pods: PodInfo[] }>();
  const memo = new Map<string, boolean>();
  for (const pod of w.inventory.pods) {
    if (pod.hostNetwork) continue;
    const mine = (byNs.get(pod.namespace) ?? []).filter((x) => x.selects(pod.labels));
    if (!mine.length) continue;
    const isolating = mine.map((x) => x.name).sort();
    const id = JSON.stringify([pod.namespace, pod.labels]);
    let ok = memo.get(id);
    if (ok === undefined) {
      ok = dnsServers.length
        ? dnsServers.some((d) => d !== pod && evaluator.evaluate({ src: pod, dst: d, protocol: 'UDP', port: 53 }).egress.decision !== 'denied')
        // No DNS pod in the workload: any egress rule that allows UDP 53 to some peer counts.
        : mine.some(({ policy: p }) => (p.spec.egress ?? []).some((r) => !r.ports?.length || r.ports.some((x) => (x.protocol ?? 'TCP') === 'UDP' && (x.port === undefined || x.port === 53 || (typeof x.port === 'number' && x.endPort !== undefined && x.port <= 53 && x.endPort >= 53)))));
      memo.set(id, ok);
    }
    if (ok) continue;
    const g = groups.get(isolating.join('\u0000')) ?? { policies: isolating, pods: [] };
    g.pods.push(pod);
    groups.set(isolating.join('\u0000'), g);
  }
  for (const g of groups.values()) {
    out.push({
      kind: 'egress-without-dns',
      policy: g.policies[0]!,
      message: `${plural(g.pods.length, 'pod')} (${few(g.pods, 3, podName)}) are egress-restricted by ${few(g.policies, 4)}, and none of these allows UDP 53 to ${dnsServers.length ? `the DNS pods (${few(dnsServers, 2, podName)})` : 'any DNS server'}: their name lookups fail`,
      fix: 'add an egress rule to the kube-dns pods on UDP and TCP 53 (namespaceSelector kubernetes.io/metadata.name=kube-system and podSelector k8s-app=kube-dns in one peer)',
    });
  }
}

/** What in a snapshot the replay leaves out and a cluster enforces: other engines' policies (per kind), IPv6. */
function notReplayed(w: ClusterWorkload, out: Finding[]): void {
  if (w.source.kind !== 'snapshot') return;
  const all = w.source.unreplayedPolicies ?? [];
  for (const u of all) {
    out.push({
      kind: 'not-replayed',
      policy: `${u.kind}.${u.group}`,
      message: `this snapshot holds ${plural(u.names.length, u.kind).replace(/ys$/, 'ies')} (${u.engine}: ${few(u.names, 4)}): only Kubernetes NetworkPolicy is replayed, so verdicts on your cluster may differ from these`,
      fix: `read these verdicts as what the NetworkPolicies alone mean; ${u.group === 'policy.networking.k8s.io' ? 'an AdminNetworkPolicy is evaluated before NetworkPolicy (and can deny or allow past it), a BaselineAdminNetworkPolicy after it' : `${u.engine} evaluates its own policies together with NetworkPolicy`}: to replay what they do, express it as NetworkPolicy in a copy of the snapshot`,
    });
  }
  const unlabelled = w.source.namespacesWithoutNameLabel ?? [];
  if (unlabelled.length) {
    for (const p of w.policies) {
      for (const { field, peers } of peerLists(p)) {
        (peers ?? []).forEach((peer, j) => {
          const sel = peer.namespaceSelector;
          if (!sel || !(NAMESPACE_NAME_LABEL in (sel.matchLabels ?? {}) || (sel.matchExpressions ?? []).some((e) => e.key === NAMESPACE_NAME_LABEL))) return;
          out.push({
            kind: 'not-replayed',
            policy: key(p),
            field: `${field}[${j}].namespaceSelector`,
            message: `namespaceSelector ${selectorText(sel)} selects by the label ${NAMESPACE_NAME_LABEL}, which ${plural(unlabelled.length, 'namespace')} of this snapshot (${few(unlabelled)}) do not have: the cluster it came from predates 1.21, where the API server sets it. The replay sets it (as every cluster from 1.21 on does), so its verdicts are those after an upgrade; on your cluster as it is, the selector does not see that label on them and selects other namespaces than in the replay`,
            fix: `label the namespaces yourself (kubectl label namespace ${unlabelled[0]} ${NAMESPACE_NAME_LABEL}=${unlabelled[0]}), or select them by a label they have`,
          });
        });
      }
    }
  }
  const v6Pods = w.source.skippedPods.filter((p) => p.reason.startsWith('IPv6 only'));
  const v6Peers = w.source.ipv6Peers ?? [];
  if (!v6Pods.length && !v6Peers.length) return;
  const what = [...(v6Peers.length ? [`${plural(v6Peers.length, 'IPv6 ipBlock peer')} (${few(v6Peers, 3)})`] : []), ...(v6Pods.length ? [`${plural(v6Pods.length, 'IPv6-only pod')} (${few(v6Pods, 3, (p) => p.pod)})`] : [])].join(' and ');
  out.push({
    kind: 'not-replayed',
    policy: 'IPv6',
    message: `the replay is IPv4: ${what} are left out (an IPv6 ipBlock matches no IPv4 address; a rule whose peers were all IPv6 ipBlocks is dropped, the policy still isolates), so IPv6 connections on your cluster are not verified`,
    fix: 'nothing to change in the policies for IPv4; check IPv6 connections on the cluster itself (bench verify --backend cluster)',
  });
}

/** Every finding, sorted by policy, then kind. */
export function findPolicyProblems(w: ClusterWorkload, opts: FindingOptions = {}): Finding[] {
  const c = new Cluster(w);
  const out: Finding[] = [];
  const silent = (opts.cnis ?? []).filter((n) => !POLICY_SEMANTICS[n].enforces);
  for (const p of w.policies) {
    const selected = selection(c, p, out);
    orPeers(c, p, out);
    ipBlocks(c, p, out);
    namedPorts(c, p, selected, out);
    if (silent.length) out.push({ kind: 'not-enforced', policy: key(p), message: `on ${silent.join(', ')} this policy is accepted and has no effect: no policy engine`, fix: 'choose a data plane that enforces NetworkPolicy (Calico, Cilium, or Canal over Flannel)', cnis: [...silent] });
  }
  egressWithoutDns(c, out);
  notReplayed(w, out);
  return out.sort((a, b) => (a.policy < b.policy ? -1 : a.policy > b.policy ? 1 : a.kind < b.kind ? -1 : a.kind > b.kind ? 1 : 0));
}
