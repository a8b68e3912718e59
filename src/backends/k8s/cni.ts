// What each real CNI is on a cluster, as data: where its agents run, how to install it from the pinned inputs,
// and how to recognise it on a cluster someone else installed. Nothing branches on a CNI's name: install plans,
// kube-proxy mode, pod subnet, node binaries and detection rules are fields of the profiles below.
import type { CniName } from '../../config/schema.js';
import type { CommandSpec } from '../../exec/runner.js';
import { helm, kubectl, waitSpec, type KubeTarget } from './kubectl.js';
import { CNI_CATALOGUE } from '../../config/cnis.js';
import { POD_SUBNET, renderCalicoInstallation, renderCiliumValues, renderServicesEndpoint, type CalicoDataplane } from './manifests.js';
import { validateManifests } from './validate.js';
import type { Versions } from './versions.js';
import { toYaml } from './yaml.js';
import { CILIUM_METRICS, felixMetrics, type AgentMetricsOnCluster } from './agent-metrics.js';
import { BenchError } from '../../errors.js';

export interface AgentRef {
  namespace: string;
  daemonset: string;
  /** The agent's container, whose CPU is reported. */
  container: string;
  /** Pod label selector of the agent's pods, for logs. */
  selector: string;
}

export interface InstallOptions {
  target: KubeTarget;
  versions: Versions;
  /** The kind cluster's name (Cilium and Calico eBPF reach the API server at <name>-control-plane). */
  clusterName: string;
  policyMapCapacity: number;
}

/** Extra binaries a CNI needs on every node that kind's node image lacks. */
export type NodeBinary = 'bridge';

interface ProfileFields {
  cni: CniName;
  /** How results name it (from the CNI catalogue). */
  displayName: string;
  /** One line naming what really runs (results and reports). */
  description: string;
  enforcesPolicy: boolean;
  agents: AgentRef[];
  /** Deployments that must be available besides the agents. */
  deployments: Array<{ namespace: string; name: string }>;
  /** Namespaces whose events and pods go into diagnostics. */
  namespaces: string[];
  /**
   * flanneld exits at start when /proc/sys/net/bridge/bridge-nf-call-iptables is missing (flannel main.go, "Failed
   * to check br_netfilter"); Docker >= 27.3 no longer loads the module (moby#48492). The kind backend loads it
   * on the nodes before the install (kind mounts /lib/modules into each node).
   */
  needsBrNetfilter: boolean;
  /** kube-flannel.yml's CNI config delegates to the `bridge` plugin, which kind's node image lacks. */
  nodeBinaries: NodeBinary[];
  /** The pod network the recipe installs (kind's podSubnet). */
  podSubnet: string;
  /**
   * kube-proxy on kind: undefined keeps kind's default (iptables). Cilium (kubeProxyReplacement=true) and Calico
   * eBPF (its own BPF service handling, docs.tigera.io "Install in eBPF mode": a cluster without kube-proxy) replace
   * it; Calico's nftables mode needs kube-proxy in nftables mode too (docs.tigera.io/calico/latest/getting-started/
   * kubernetes/nftables: "your cluster's kube-proxy must also be in nftables mode").
   */
  kubeProxyMode?: 'nftables' | 'none';
  /** The version string results name. */
  version: (v: Versions) => string;
  /** The commands that install it from its pinned inputs (after the node-level preparation of the kind backend). */
  install: (o: InstallOptions) => CommandSpec[];
  /** How it is recognised on a cluster someone else installed (see detectCnis). */
  detect: DetectionRule;
  /** How a cluster serves its agent's metric of policy changes (the metric itself: the CNI catalogue's agentMetric). */
  agentMetrics?: AgentMetricsOnCluster;
}
/** A profile in CNI_PROFILES: its `cni` is its key. */
export type CniProfile = ProfileFields & { cni: KindCni };

/**
 * What marks a CNI in a cluster's DaemonSet pod templates: its agent containers (all of them, in one template or in
 * separate ones) and, for one of several data planes of the same agent, the setting that selects it — the env the
 * operator sets on the agent or the FelixConfiguration field. The most specific matching rule wins.
 */
export interface DetectionRule {
  containers: string[];
  /** A pod label that marks the agent even when its container is named otherwise (GKE's anetd). */
  label?: [string, string];
  dataplane?: { env: string; envValue: string; felix: keyof FelixConfigurationSpec; felixValue: boolean | string; note: string };
  /** Containers of other DaemonSets that belong to it (Cilium's Envoy since 1.16). */
  companions?: AgentRef[];
  /** DaemonSet names that say more about what runs ("anetd": GKE Dataplane V2). */
  knownAs?: Record<string, string>;
  /** Built into a distribution's binary, with no DaemonSet: recognised from the nodes. */
  embedded?: { kubeletVersion: RegExp; nodeAnnotationPrefix: string; found: string; enforcesPolicy: boolean };
}

const calicoOperatorProfile = <N extends CniName>(cni: N, dataplane: CalicoDataplane, description: string, extra: Pick<ProfileFields, 'kubeProxyMode'> & { detect?: DetectionRule['dataplane'] } = {}): ProfileFields & { cni: N } => ({
  cni,
  displayName: CNI_CATALOGUE[cni].displayName,
  description,
  enforcesPolicy: true,
  agents: [{ namespace: 'calico-system', daemonset: 'calico-node', container: 'calico-node', selector: 'k8s-app=calico-node' }],
  deployments: [{ namespace: 'calico-system', name: 'calico-kube-controllers' }],
  namespaces: ['tigera-operator', 'calico-system'],
  needsBrNetfilter: false,
  nodeBinaries: [],
  podSubnet: POD_SUBNET,
  kubeProxyMode: extra.kubeProxyMode,
  version: (v) => v.calico.version,
  install: (o) => {
    const t = o.target;
    const installation = renderCalicoInstallation(dataplane);
    const endpoint = dataplane === 'BPF' ? renderServicesEndpoint(`${o.clusterName}-control-plane`) : undefined;
    validateManifests([installation, ...(endpoint ? [endpoint] : [])]);
    return [
      // `create`, not `apply`: the CRDs exceed the size limit of apply's last-applied-configuration annotation.
      kubectl(t, ['create', '-f', o.versions.calico.operatorCrds], `install calico ${o.versions.calico.version} operator CRDs`, { timeoutMs: 120_000 }),
      kubectl(t, ['create', '-f', o.versions.calico.operator], `install the tigera operator`, { timeoutMs: 120_000 }),
      ...(endpoint
        ? [
            kubectl(t, ['create', '-f', '-'], 'tell the operator and calico-node where the API server is (eBPF mode has no kube-proxy)', { input: toYaml([endpoint]) }),
            // The operator reads the ConfigMap into its environment at start; it may already be running.
            kubectl(t, ['-n', 'tigera-operator', 'rollout', 'restart', 'deployment/tigera-operator'], 'restart the operator so it reads the API server endpoint'),
          ]
        : []),
      waitSpec(t, ['wait', '--for=condition=Established', 'crd/installations.operator.tigera.io'], 60, 'wait for the Installation CRD'),
      kubectl(t, ['create', '-f', '-'], `create the calico Installation (linuxDataplane: ${dataplane})`, { input: toYaml([installation]) }),
    ];
  },
  detect: { containers: ['calico-node'], dataplane: extra.detect },
  agentMetrics: felixMetrics('k8s-app=calico-node'),
});

const CILIUM_ENVOY: AgentRef = { namespace: 'kube-system', daemonset: 'cilium-envoy', container: 'cilium-envoy', selector: 'k8s-app=cilium-envoy' };

const PROFILES = {
  flannel: {
    cni: 'flannel',
    displayName: CNI_CATALOGUE.flannel.displayName,
    description: 'Flannel (VXLAN) as installed from its release manifest; accepts NetworkPolicy objects and does not enforce them',
    enforcesPolicy: false,
    agents: [{ namespace: 'kube-flannel', daemonset: 'kube-flannel-ds', container: 'kube-flannel', selector: 'app=flannel' }],
    deployments: [],
    namespaces: ['kube-flannel'],
    needsBrNetfilter: true,
    nodeBinaries: ['bridge'],
    podSubnet: POD_SUBNET,
    version: (v) => v.flannel.version,
    install: (o) => [kubectl(o.target, ['apply', '-f', o.versions.flannel.manifest], `install flannel ${o.versions.flannel.version}`, { timeoutMs: 120_000 })],
    detect: {
      containers: ['kube-flannel'],
      // k3s: nodes whose kubelet version says +k3s and that carry flannel's node annotations run the embedded flannel;
      // k3s also embeds kube-router's NetworkPolicy controller unless started with --disable-network-policy.
      embedded: {
        kubeletVersion: /\+k3s/,
        nodeAnnotationPrefix: 'flannel.alpha.coreos.com/',
        found: "k3s' embedded flannel (no DaemonSet; k3s also embeds kube-router's NetworkPolicy controller unless --disable-network-policy)",
        enforcesPolicy: true,
      },
    },
  },
  calico: calicoOperatorProfile('calico', 'Iptables', 'Calico (iptables data plane, Tigera operator) as installed from its release manifests'),
  'calico-ebpf': calicoOperatorProfile(
    'calico-ebpf',
    'BPF',
    "Calico eBPF data plane (Tigera operator, Installation linuxDataplane: BPF; kube-proxy replaced by Calico's BPF service handling): Felix compiles each endpoint's policies into BPF programs that walk the rules in order",
    // FELIX_BPFENABLED=true for linuxDataplane BPF (tigera/operator pkg/render/node.go and its controller tests).
    { kubeProxyMode: 'none', detect: { env: 'FELIX_BPFENABLED', envValue: 'true', felix: 'bpfEnabled', felixValue: true, note: 'eBPF data plane' } },
  ),
  'calico-nftables': calicoOperatorProfile('calico-nftables', 'Nftables', 'Calico nftables data plane (Tigera operator, Installation linuxDataplane: Nftables; kube-proxy in nftables mode)', {
    kubeProxyMode: 'nftables',
    // FELIX_NFTABLESMODE=Enabled for linuxDataplane Nftables.
    detect: { env: 'FELIX_NFTABLESMODE', envValue: 'enabled', felix: 'nftablesMode', felixValue: 'enabled', note: 'nftables data plane' },
  }),
  canal: {
    cni: 'canal',
    displayName: CNI_CATALOGUE.canal.displayName,
    description: "Canal: Flannel's VXLAN between nodes with Calico's Felix enforcing NetworkPolicy on the pod interfaces (Calico's canal.yaml manifest)",
    enforcesPolicy: true,
    agents: [
      { namespace: 'kube-system', daemonset: 'canal', container: 'calico-node', selector: 'k8s-app=canal' },
      { namespace: 'kube-system', daemonset: 'canal', container: 'kube-flannel', selector: 'k8s-app=canal' },
    ],
    deployments: [{ namespace: 'kube-system', name: 'calico-kube-controllers' }],
    namespaces: ['kube-system'],
    needsBrNetfilter: true,
    nodeBinaries: [],
    podSubnet: POD_SUBNET,
    version: (v) => v.calico.version,
    // `create`: canal.yaml carries Calico's CRDs, too large for client-side apply's last-applied annotation.
    install: (o) => [kubectl(o.target, ['create', '-f', o.versions.calico.canal], `install canal (calico ${o.versions.calico.version} policy on flannel)`, { timeoutMs: 180_000 })],
    // calico-node with kube-flannel, in one template (canal, rke2-canal) or beside each other: Calico policy on
    // Flannel, never `flannel` (which would record "not enforced").
    detect: { containers: ['calico-node', 'kube-flannel'] },
    agentMetrics: felixMetrics('k8s-app=canal'),
  },
  cilium: {
    cni: 'cilium',
    displayName: CNI_CATALOGUE.cilium.displayName,
    description: 'Cilium (eBPF, kube-proxy replacement) as installed from its helm chart',
    enforcesPolicy: true,
    agents: [
      { namespace: 'kube-system', daemonset: 'cilium', container: 'cilium-agent', selector: 'k8s-app=cilium' },
      // Since 1.16 the chart runs Envoy as its own DaemonSet by default (envoy.enabled; cilium/cilium@471f19a, seen in
      // rancher/rke2#6682); its CPU is the data plane's too, and the run waits for it.
      CILIUM_ENVOY,
    ],
    deployments: [{ namespace: 'kube-system', name: 'cilium-operator' }],
    namespaces: ['kube-system'],
    needsBrNetfilter: false,
    nodeBinaries: [],
    podSubnet: POD_SUBNET,
    kubeProxyMode: 'none',
    version: (v) => v.cilium.version,
    install: (o) => {
      const values = renderCiliumValues(o.clusterName, o.policyMapCapacity);
      const v = o.versions.cilium;
      return [
        helm(o.target, ['install', 'cilium', v.chart, '--repo', v.chartRepo, '--version', v.version, '--namespace', 'kube-system', '--values', '-'], `install cilium ${v.version} (helm)`, {
          input: toYaml([values]),
          timeoutMs: 300_000,
        }),
      ];
    },
    // GKE's anetd is Cilium (cloud.google.com kubernetes-engine/docs/concepts/dataplane-v2: "GKE Dataplane V2 is
    // implemented using Cilium"), labelled k8s-app=cilium.
    detect: { containers: ['cilium-agent'], label: ['k8s-app', 'cilium'], companions: [CILIUM_ENVOY], knownAs: { anetd: 'GKE Dataplane V2, Cilium' } },
    agentMetrics: CILIUM_METRICS,
  },
} satisfies { [N in CniName]?: ProfileFields & { cni: N } };

/** The CNIs with a profile: a real install recipe on kind and a detection rule on a cluster (`none` has none: kind's own kindnet enforces policies). */
export type KindCni = keyof typeof PROFILES;
export const CNI_PROFILES: Readonly<Record<KindCni, CniProfile>> = PROFILES;
export const PROFILED_CNIS = Object.keys(CNI_PROFILES) as KindCni[];

export function cniProfile(cni: CniName): CniProfile {
  const profile = (CNI_PROFILES as Partial<Record<CniName, CniProfile>>)[cni];
  if (!profile && CNI_CATALOGUE[cni].floor) throw new BenchError('usage', "--cni none has no real CNI to install on kind (kind's default kindnet enforces policies); use the local backend");
  if (!profile) throw new BenchError('usage', `--cni ${cni} has no install recipe on kind or cluster yet; use the local backend`);
  return profile;
}

/** The commands that install a CNI from its pinned inputs (after the node-level preparation of the kind backend). */
export function planCniInstall(cni: KindCni, o: InstallOptions): CommandSpec[] {
  return CNI_PROFILES[cni].install(o);
}

export interface ReadinessTimeouts {
  nodesS: number;
  cniS: number;
  dnsS: number;
}

export const DEFAULT_READINESS: ReadinessTimeouts = { nodesS: 300, cniS: 300, dnsS: 180 };

/** CNI agents and their controllers rolled out; `--for=create` first because operators create them later (kubectl >= 1.31). */
export function planCniReady(p: CniProfile, t: KubeTarget, s: number): CommandSpec[] {
  const out: CommandSpec[] = [];
  const daemonsets = [...new Map(p.agents.map((a) => [`${a.namespace}/${a.daemonset}`, a])).values()];
  for (const a of daemonsets) {
    out.push(waitSpec(t, ['-n', a.namespace, 'wait', '--for=create', `daemonset/${a.daemonset}`], s, `wait for ${a.daemonset} to exist`));
    out.push(waitSpec(t, ['-n', a.namespace, 'rollout', 'status', `daemonset/${a.daemonset}`], s, `wait for ${a.daemonset} pods to be ready`));
  }
  for (const d of p.deployments) {
    out.push(waitSpec(t, ['-n', d.namespace, 'wait', '--for=create', `deployment/${d.name}`], s, `wait for ${d.name} to exist`));
    out.push(waitSpec(t, ['-n', d.namespace, 'rollout', 'status', `deployment/${d.name}`], s, `wait for ${d.name} to be available`));
  }
  return out;
}

export function planNodesReady(t: KubeTarget, s: number): CommandSpec {
  return waitSpec(t, ['wait', '--for=condition=Ready', 'nodes', '--all'], s, 'wait for every node to be Ready');
}

export function planDnsReady(t: KubeTarget, s: number): CommandSpec {
  return waitSpec(t, ['-n', 'kube-system', 'rollout', 'status', 'deployment/coredns'], s, 'wait for CoreDNS');
}

// ---- detection on an existing cluster ----
//
// From pod templates, in every namespace, not from fixed namespace/name pairs: installs differ (operator in
// calico-system, manifests in kube-system, Cilium in its own namespace, GKE Dataplane V2's `anetd`, RKE2's
// `rke2-canal`, k3s' flannel built into the k3s binary with no DaemonSet at all). What counts:
// - Cilium: a container `cilium-agent` or pod label k8s-app=cilium (GKE's anetd is Cilium: cloud.google.com
//   kubernetes-engine/docs/concepts/dataplane-v2 "GKE Dataplane V2 is implemented using Cilium").
// - Calico: a container `calico-node`; its data plane from the env the operator sets on it — FELIX_BPFENABLED=true
//   for linuxDataplane BPF and FELIX_NFTABLESMODE=Enabled for Nftables (tigera/operator pkg/render/node.go and
//   its controller tests) — or from the FelixConfiguration `default` (bpfEnabled, nftablesMode) when readable.
// - Flannel: a container `kube-flannel`; with calico-node in the same template (canal, rke2-canal) or beside a
//   separate calico-node, it is Canal — Calico policy on Flannel — never `flannel` (which would record "not
//   enforced").
// - k3s: nodes whose kubelet version says +k3s and that carry flannel's node annotations run the embedded flannel;
//   k3s also embeds kube-router's NetworkPolicy controller unless started with --disable-network-policy.
// - EKS: `aws-node` (the VPC CNI), with `aws-eks-nodeagent` when its network policy agent is on: named, no profile.

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
}

export interface FelixConfigurationSpec {
  bpfEnabled?: boolean;
  nftablesMode?: string;
}

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

const settingHolds = (value: string | undefined, want: string) => value?.toLowerCase() === want;

/**
 * The CNIs running on a cluster, from `kubectl get daemonsets -A -o json`, `kubectl get nodes -o json` (k3s) and,
 * optionally, the FelixConfiguration `default`. Derived from the profiles' detection rules.
 */
export function detectCnis(daemonsetsJson: string, nodesJson?: string, felix?: FelixConfigurationSpec): CniDetection {
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
  for (const p of DETECTION_ORDER) {
    const r = p.detect;
    const firsts = sightings.get(r.containers[0]!) ?? [];
    // A single-container rule is one CNI per DaemonSet that runs it; a combination is one CNI for the cluster.
    for (const lead of r.containers.length === 1 ? firsts : firsts.slice(0, 1)) {
      if (r.dataplane) {
        const d = r.dataplane;
        const fromFelix = felix?.[d.felix];
        if (!settingHolds(lead.env(d.env), d.envValue) && !(typeof fromFelix === 'string' ? settingHolds(fromFelix, String(d.felixValue)) : fromFelix === d.felixValue)) continue;
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
  return { found, unsupported };
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
