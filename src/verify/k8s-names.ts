// The verification grid's names on kind/cluster: the case files say x/a and ns x, the cluster has
// cb-<runId>-x; this maps one onto the other at the grid's boundary (policies, namespace selectors, inventory),
// a bijection the tests check against the evaluator with the real names. Pure.
import { RUN_LABEL } from '../backends/k8s/manifests.js';
import { runResourceName } from '../identity/run-id.js';
import type { Inventory, LabelSelector, NetworkPolicy, NetworkPolicyPeer } from '../policy/types.js';
import type { VerifyCase } from './cases.js';
import { DNS_NAMESPACE, planProbes, type GridLayout } from './grid.js';
import { BenchError } from '../errors.js';

const NAME_LABEL = 'kubernetes.io/metadata.name';
/** Stand-ins for the external hosts: TEST-NET-2 (RFC 5737), at the same offsets as the local grid's hosts. */
export const EXTERNAL_STANDIN_IPS: Readonly<Record<string, string>> = { ext1: '198.51.100.240', ext2: '198.51.100.241' };

export interface GridNames {
  runId: string;
  runLabel: Record<string, string>;
  /** Case-file namespace (x) -> real namespace (cb-<runId>-x); the grid's namespaces only, not kube-system. */
  namespaceOf: Record<string, string>;
}

/**
 * The real name of a namespace a case names. Every one is the run's own cb-<runId>-<name> — the grid's, and any
 * other a case mentions (a policy in a namespace without pods, a selector naming one) — except kube-system, the
 * cluster's own, which holds the DNS pods.
 */
export function realNamespace(names: GridNames, ns: string): string {
  return ns === DNS_NAMESPACE ? ns : names.namespaceOf[ns] ?? runResourceName(names.runId, ns);
}

export function gridNames(runId: string, layout: GridLayout): GridNames {
  const namespaceOf: Record<string, string> = {};
  for (const ns of layout.namespaces) if (ns.name !== DNS_NAMESPACE) namespaceOf[ns.name] = runResourceName(runId, ns.name);
  return { runId, runLabel: { [RUN_LABEL]: runId }, namespaceOf };
}

/**
 * The grid as it is built on kind/cluster: no external hosts (see the file comment), and the grid namespaces
 * carrying the run label as they will on the cluster, so the evaluator sees the labels the CNI sees.
 */
export function k8sLayout(layout: GridLayout, runId: string): GridLayout {
  return {
    ...layout,
    namespaces: layout.namespaces.map((n) => (n.name === DNS_NAMESPACE ? { ...n, labels: { ...n.labels } } : { ...n, labels: { ...n.labels, [RUN_LABEL]: runId } })),
    pods: layout.pods.map((p) => ({ ...p, labels: { ...p.labels }, ports: p.ports.map((cp) => ({ ...cp })) })),
    externals: [],
  };
}

/** Cases to run on kind/cluster, and the ones left out because every probe they make involves an external host. */
export function casesForK8s(cases: readonly VerifyCase[], layout: GridLayout): { run: VerifyCase[]; skipped: Array<{ name: string; why: string }> } {
  const run: VerifyCase[] = [];
  const skipped: Array<{ name: string; why: string }> = [];
  for (const c of cases) {
    if (planProbes(layout, c.probes).length) run.push(c);
    else skipped.push({ name: c.name, why: 'every probe it makes goes to or from an external host, which the kind/cluster grid does not have' });
  }
  return { run, skipped };
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
  const outside = policies.filter((p) => p.metadata.namespace === DNS_NAMESPACE);
  if (outside.length) {
    throw new BenchError('usage', `policies ${outside.map((p) => `${p.metadata.namespace}/${p.metadata.name}`).join(', ')} would apply to the cluster's own ${DNS_NAMESPACE}; on kind/cluster only the run's namespaces take policies`);
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

