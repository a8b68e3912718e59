// Which CNI a cluster someone else installed runs, from DaemonSet pod templates in every namespace, not from fixed
// namespace/name pairs: installs differ (operator in calico-system, manifests in kube-system, Cilium in its own
// namespace, GKE Dataplane V2's `anetd`, RKE2's `rke2-canal`, k3s' flannel built into the k3s binary with no
// DaemonSet at all). The rules are the profiles' `detect` fields (./cni.ts); what counts:
// - Cilium: a container `cilium-agent` or pod label k8s-app=cilium (GKE's anetd is Cilium: cloud.google.com
//   kubernetes-engine/docs/concepts/dataplane-v2 "GKE Dataplane V2 is implemented using Cilium").
// - Calico: a container `calico-node`; its data plane from the FelixConfiguration `default` (bpfEnabled,
//   nftablesMode), where the Tigera operator writes it (v1.38.6 pkg/controller/installation/bpf.go
//   setBPFEnabledOnFelixConfiguration, core_controller.go setNftablesMode; it sets no FELIX_BPFENABLED or
//   FELIX_NFTABLESMODE env). An env var of that name on calico-node still wins, as in Felix itself
//   (felix/config/config_params.go: SourcesInDescendingOrder puts EnvironmentVariable above DatastoreGlobal):
//   manifest installs may set one. When calico-node runs and the FelixConfiguration cannot be read, the data plane
//   is unknown and the cluster backend refuses rather than guess iptables.
// - Flannel: a container `kube-flannel`; with calico-node in the same template (canal, rke2-canal) or beside a
//   separate calico-node, it is Canal — Calico policy on Flannel — never `flannel` (which would record "not
//   enforced").
// - k3s: nodes whose kubelet version says +k3s and that carry flannel's node annotations run the embedded flannel;
//   k3s also embeds kube-router's NetworkPolicy controller unless started with --disable-network-policy.
// - EKS: `aws-node` (the VPC CNI), with `aws-eks-nodeagent` when its network policy agent is on: named, no profile.
import { CNI_PROFILES, type AgentRef, type CniProfile, type DetectionRule, type FelixConfigurationSpec, type KindCni } from './cni.js';

interface PodTemplateSpec {
  metadata?: { labels?: Record<string, string> };
  spec?: { containers?: Array<{ name?: string; image?: string; env?: Array<{ name?: string; value?: string }> }> };
}

interface DaemonSetList {
  items?: Array<{ metadata?: { name?: string; namespace?: string }; spec?: { template?: PodTemplateSpec } }>;
}

interface NodeInfoList {
  items?: Array<{ metadata?: { annotations?: Record<string, string> }; status?: { nodeInfo?: { kubeletVersion?: string } } }>;
}

export interface DetectedCni {
  cni: KindCni;
  /** The agents as found on this cluster (their namespace and DaemonSet name depend on the install). */
  agents: AgentRef[];
  /** What was found, in words ("kube-system/anetd (GKE Dataplane V2, Cilium)"). */
  found: string;
  /** Set when detection knows better than the profile (k3s: kube-router enforces policy for its flannel). */
  enforcesPolicy?: boolean;
}

export interface CniDetection {
  found: DetectedCni[];
  /** Network agents seen that have no profile here (EKS aws-node …). */
  unsupported: string[];
  /** Agents whose data plane is set where it could not be read (calico-node without its FelixConfiguration). */
  undecided: string[];
}

/** The FelixConfiguration `default` as read: its spec ({} when the cluster has none), or why it could not be read. */
export type FelixRead = { spec: FelixConfigurationSpec } | { unreadable: string };

/** For clusters read without Calico, and tests: no FelixConfiguration (every data-plane setting at its default). */
export const NO_FELIX_CONFIGURATION: FelixRead = { spec: {} };

const envOf = (c: { env?: Array<{ name?: string; value?: string }> } | undefined, name: string) => c?.env?.find((e) => e.name === name)?.value;

/** One agent container seen in a DaemonSet's pod template. */
interface Sighting {
  ref: AgentRef;
  env: (name: string) => string | undefined;
  where: string;
  daemonset: string;
}

/** Most specific first: a rule with more containers (Canal over Calico or Flannel), or a data-plane setting, wins. */
const DETECTION_ORDER: readonly CniProfile[] = [...Object.values(CNI_PROFILES)].reverse();

/** Profile `a` is shadowed by `b` when b matched on a superset of a's containers, or the same ones plus a setting. */
function shadows(b: DetectionRule, a: DetectionRule): boolean {
  const sup = a.containers.every((c) => b.containers.includes(c));
  if (!sup) return false;
  return b.containers.length > a.containers.length || (b.containers.length === a.containers.length && (Boolean(b.dataplane) || !a.dataplane));
}

const same = (a: boolean | string, b: boolean | string) => String(a).toLowerCase() === String(b).toLowerCase();

/**
 * Whether an agent runs the data plane a rule names: the env var on its container if set (it overrides the
 * datastore in Felix), else the FelixConfiguration field; undefined when that could not be read.
 */
function dataplaneHolds(d: NonNullable<DetectionRule['dataplane']>, lead: Sighting, felix: FelixRead): boolean | undefined {
  const env = lead.env(d.env);
  if (env !== undefined) return same(env, d.value);
  if ('unreadable' in felix) return undefined;
  const v = felix.spec[d.felix];
  return v !== undefined && same(v, d.value);
}

/**
 * The CNIs running on a cluster, from `kubectl get daemonsets -A -o json`, `kubectl get nodes -o json` (k3s) and
 * the FelixConfiguration `default`. Derived from the profiles' detection rules.
 */
export function detectCnis(daemonsetsJson: string, nodesJson: string | undefined, felix: FelixRead): CniDetection {
  const items = (JSON.parse(daemonsetsJson) as DaemonSetList).items ?? [];
  const sightings = new Map<string, Sighting[]>();
  const see = (container: string, s: Sighting) => sightings.set(container, [...(sightings.get(container) ?? []), s]);
  const unsupported: string[] = [];
  for (const ds of items) {
    const ns = ds.metadata?.namespace ?? '';
    const name = ds.metadata?.name ?? '';
    const where = `${ns}/${name}`;
    const tpl = ds.spec?.template;
    const labels = tpl?.metadata?.labels ?? {};
    const containers = tpl?.spec?.containers ?? [];
    const names = containers.map((c) => c.name ?? '');
    const selector = Object.entries(labels)
      .filter(([k]) => k === 'k8s-app' || k === 'app' || k === 'app.kubernetes.io/name')
      .map(([k, v]) => `${k}=${v}`)[0];
    const ref = (container: string): AgentRef => ({ namespace: ns, daemonset: name, container, selector: selector ?? `name=${name}` });
    const seen = new Set<string>();
    for (const p of DETECTION_ORDER) {
      const [first, ...rest] = p.detect.containers;
      for (const c of [first!, ...rest]) {
        const labelled = c === first && p.detect.label !== undefined && labels[p.detect.label[0]] === p.detect.label[1];
        const container = names.includes(c) ? c : labelled ? names[0] ?? c : undefined;
        if (container === undefined || seen.has(c)) continue;
        seen.add(c);
        const spec = containers.find((x) => x.name === container);
        const known = p.detect.knownAs?.[name];
        see(c, { ref: ref(container), env: (e) => envOf(spec, e), where: known ? `${where} (${known})` : where, daemonset: where });
      }
      for (const comp of p.detect.companions ?? []) {
        if (names.includes(comp.container) && !seen.has(comp.container)) {
          seen.add(comp.container);
          see(comp.container, { ref: { namespace: ns, daemonset: name, container: comp.container, selector: comp.selector }, env: () => undefined, where, daemonset: where });
        }
      }
    }
    const other = UNPROFILED_AGENTS.find((u) => names.includes(u.container));
    if (other) unsupported.push(`${where} (${other.describe(names)})`);
  }
  const matched: Array<{ profile: CniProfile; found: DetectedCni }> = [];
  const undecided = new Set<string>();
  for (const p of DETECTION_ORDER) {
    const r = p.detect;
    const firsts = sightings.get(r.containers[0]!) ?? [];
    // A single-container rule is one CNI per DaemonSet that runs it; a combination is one CNI for the cluster.
    for (const lead of r.containers.length === 1 ? firsts : firsts.slice(0, 1)) {
      if (r.dataplane) {
        const holds = dataplaneHolds(r.dataplane, lead, felix);
        if (holds === undefined && 'unreadable' in felix) {
          undecided.add(
            `cannot tell which data plane ${lead.where} runs: it is set in Calico's FelixConfiguration "default" (bpfEnabled, nftablesMode; the Tigera operator sets no FELIX_* env for them), and reading it failed: ${felix.unreadable}`,
          );
        }
        if (!holds) continue;
      }
      const parts = r.containers.slice(1).map((c) => {
        const all = sightings.get(c) ?? [];
        return all.find((x) => x.daemonset === lead.daemonset) ?? all[0];
      });
      if (parts.some((x) => x === undefined)) continue;
      const all = [lead, ...(parts as Sighting[])];
      const oneTemplate = all.every((x) => x.daemonset === lead.daemonset);
      const foundText =
        all.length > 1 ? (oneTemplate ? `${lead.where} (${r.containers.join(' + ')})` : all.map((x) => x.where).join(' + ')) : `${lead.where}${r.dataplane ? ` (${r.dataplane.note})` : ''}`;
      const companions = (r.companions ?? []).flatMap((c) => (sightings.get(c.container) ?? []).slice(0, 1).map((x) => x.ref));
      matched.push({ profile: p, found: { cni: p.cni, agents: [...all.map((x) => x.ref), ...companions], found: foundText } });
    }
  }
  // Two settings that shadow each other (both of Calico's data-plane switches on): the profile listed first wins.
  const rank = (p: CniProfile) => Object.values(CNI_PROFILES).indexOf(p);
  const beats = (o: CniProfile, m: CniProfile) => o !== m && shadows(o.detect, m.detect) && (!shadows(m.detect, o.detect) || rank(o) < rank(m));
  const found = matched.filter((m) => !matched.some((o) => beats(o.profile, m.profile))).map((m) => m.found);
  if (!found.length && nodesJson) {
    const nodes = (JSON.parse(nodesJson) as NodeInfoList).items ?? [];
    for (const p of DETECTION_ORDER) {
      const e = p.detect.embedded;
      if (!e) continue;
      const embedded = nodes.length > 0 && nodes.every((n) => e.kubeletVersion.test(n.status?.nodeInfo?.kubeletVersion ?? ''));
      const annotated = nodes.some((n) => Object.keys(n.metadata?.annotations ?? {}).some((k) => k.startsWith(e.nodeAnnotationPrefix)));
      if (embedded && annotated) found.push({ cni: p.cni, agents: [], found: e.found, enforcesPolicy: e.enforcesPolicy });
    }
  }
  return { found, unsupported, undecided: [...undecided] };
}

/** Network agents seen on clusters that have no profile here: named in refusals, never measured. */
const UNPROFILED_AGENTS: Array<{ container: string; describe: (containers: string[]) => string }> = [
  { container: 'aws-node', describe: (names) => `AWS VPC CNI${names.includes('aws-eks-nodeagent') ? ', with its eBPF network policy agent' : ', no network policy agent'}` },
];

/** Why a --cni cannot be confirmed on this cluster, naming everything that was found. */
export function detectionRefusal(d: CniDetection, wanted: KindCni): string {
  const seen = [...d.found.map((f) => `${f.cni} (${f.found})`), ...d.unsupported];
  if (!seen.length) {
    return `no known CNI agent on the cluster (looked in every namespace for DaemonSets running cilium-agent, calico-node, kube-flannel or aws-node, and for k3s' embedded flannel); cannot confirm --cni ${wanted}`;
  }
  const hint = d.found.length ? `; run with --cni ${d.found[0]!.cni}` : '; bench has no profile for it (no install recipe or detection of what it enforces); measure it with --backend local models or add a profile';
  return `--cni ${wanted} contradicts the cluster, which runs ${seen.join(' + ')}${hint}`;
}
