// A workload's names on kind/cluster: the workload says x/a and ns x, the cluster has cb-<runId>-x; this maps one
// onto the other at the data plane's boundary (policies, namespace selectors, inventory), a bijection the tests
// check against the evaluator with the real names. The cluster's own namespace (kube-system) keeps its name:
// pods there are the cluster's, found by their labels, never created. Pure.
import { BenchError } from '../../errors.js';
import { runResourceName } from '../../identity/run-id.js';
import type { Inventory, LabelSelector, NamespaceInfo, NetworkPolicy, NetworkPolicyPeer } from '../../policy/types.js';
import { RUN_LABEL } from './manifests.js';

const NAME_LABEL = 'kubernetes.io/metadata.name';
/** The cluster's own namespace: a workload's pods there are the cluster's (its DNS pods), read, never created. */
export const CLUSTER_NAMESPACE = 'kube-system';
const DNS_NAMESPACE = CLUSTER_NAMESPACE;
/** Hosts a cluster does not have get an address nothing answers: TEST-NET-2 (RFC 5737), at the local grid's offsets. */
export const standInIp = (i: number) => `198.51.100.${240 + i}`;
export const EXTERNAL_STANDIN_IPS: Readonly<Record<string, string>> = { ext1: standInIp(0), ext2: standInIp(1) };

export interface GridNames {
  runId: string;
  runLabel: Record<string, string>;
  /** Case-file namespace (x) -> real namespace (cb-<runId>-x); the grid's namespaces only, not kube-system. */
  namespaceOf: Record<string, string>;
  /**
   * Namespaces that keep their name: the cluster's own (the grid: kube-system, whose DNS pods are read); none for a
   * replayed workload (./workload.ts), whose kube-system is the run's cb-<runId>-kube-system like its others.
   */
  shared: readonly string[];
}

/**
 * The real name of a namespace a case names. Every one is the run's own cb-<runId>-<name> — the grid's, and any
 * other a case mentions (a policy in a namespace without pods, a selector naming one) — except kube-system, the
 * cluster's own, which holds the DNS pods.
 */
export function realNamespace(names: GridNames, ns: string): string {
  return names.shared.includes(ns) ? ns : names.namespaceOf[ns] ?? runResourceName(names.runId, ns);
}

export function gridNames(runId: string, layout: { namespaces: readonly NamespaceInfo[] }, shared: readonly string[] = [DNS_NAMESPACE]): GridNames {
  const namespaceOf: Record<string, string> = {};
  for (const ns of layout.namespaces) if (!shared.includes(ns.name)) namespaceOf[ns.name] = runResourceName(runId, ns.name);
  return { runId, runLabel: { [RUN_LABEL]: runId }, namespaceOf, shared };
}

// ---- policies: case-file names -> real names ----

function rewriteSelector(sel: LabelSelector | undefined, names: GridNames): LabelSelector | undefined {
  if (!sel) return sel;
  const map = (v: string) => realNamespace(names, v);
  const out: LabelSelector = {};
  if (sel.matchLabels) out.matchLabels = Object.fromEntries(Object.entries(sel.matchLabels).map(([k, v]) => [k, k === NAME_LABEL ? map(v) : v]));
  if (sel.matchExpressions) out.matchExpressions = sel.matchExpressions.map((e) => (e.key === NAME_LABEL && e.values ? { ...e, values: e.values.map(map) } : { ...e }));
  return out;
}

function rewritePeers(peers: NetworkPolicyPeer[] | undefined, names: GridNames): NetworkPolicyPeer[] | undefined {
  return peers?.map((p) => {
    const out: NetworkPolicyPeer = { ...p };
    // Only namespace selectors name namespaces; a pod label called kubernetes.io/metadata.name is just a label.
    if (p.namespaceSelector) out.namespaceSelector = rewriteSelector(p.namespaceSelector, names);
    return out;
  });
}

/**
 * A case's policies (templates already substituted) as they go to the cluster: in the run's own namespaces
 * (realNamespace), namespace names in namespaceSelectors mapped the same way (labels such as ns=x stay), and the
 * run label on each so the next case can delete them. Refuses a policy in kube-system: on a shared cluster it
 * would reach the cluster's own DNS pods.
 */
export function rewritePolicies(policies: readonly NetworkPolicy[], names: GridNames): NetworkPolicy[] {
  const outside = policies.filter((p) => names.shared.includes(p.metadata.namespace));
  if (outside.length) {
    throw new BenchError('usage', `policies ${outside.map((p) => `${p.metadata.namespace}/${p.metadata.name}`).join(', ')} would apply to the cluster's own ${outside[0]!.metadata.namespace}; on kind/cluster only the run's namespaces take policies`);
  }
  return policies.map((p) => {
    const copy = structuredClone(p) as NetworkPolicy;
    copy.metadata = { ...copy.metadata, namespace: realNamespace(names, p.metadata.namespace), labels: { ...p.metadata.labels, ...names.runLabel } };
    copy.spec.ingress = copy.spec.ingress?.map((r) => ({ ...r, from: rewritePeers(r.from, names) }));
    copy.spec.egress = copy.spec.egress?.map((r) => ({ ...r, to: rewritePeers(r.to, names) }));
    if (!copy.spec.ingress) delete copy.spec.ingress;
    if (!copy.spec.egress) delete copy.spec.egress;
    for (const r of [...(copy.spec.ingress ?? []), ...(copy.spec.egress ?? [])] as Array<{ from?: unknown; to?: unknown }>) {
      if ('from' in r && r.from === undefined) delete r.from;
      if ('to' in r && r.to === undefined) delete r.to;
    }
    return copy;
  });
}

/** The inventory with the real namespace names, as the CNI sees it (tests: the mapping must not change a verdict). */
export function realInventory(inventory: Inventory, names: GridNames): Inventory {
  const map = (ns: string) => realNamespace(names, ns);
  return {
    namespaces: inventory.namespaces.map((n) => ({ name: map(n.name), labels: { ...n.labels } })),
    pods: inventory.pods.map((p) => ({ ...p, namespace: map(p.namespace), labels: { ...p.labels }, ports: p.ports.map((cp) => ({ ...cp })) })),
  };
}

