// What each real CNI is on a cluster, as data: where its agents run, how to install it from the pinned inputs,
// and how to recognise it on a cluster someone else installed. The backends never branch on the CNI's name.
import type { CniName } from '../../config/schema.js';
import type { CommandSpec } from '../../exec/runner.js';
import { helm, kubectl, waitSpec, type KubeTarget } from './kubectl.js';
import { CALICO_DATAPLANE, renderCalicoInstallation, renderCiliumValues, renderServicesEndpoint, type KindCni } from './manifests.js';
import { validateManifests } from './validate.js';
import type { Versions } from './versions.js';
import { toYaml } from './yaml.js';

export interface AgentRef {
  namespace: string;
  daemonset: string;
  /** The agent's container, whose CPU is reported. */
  container: string;
  /** Pod label selector of the agent's pods, for logs. */
  selector: string;
}

export interface CniProfile {
  cni: KindCni;
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
  needsBridgePlugin: boolean;
  /** The version string results name. */
  version: (v: Versions) => string;
}

const calicoOperatorProfile = (cni: KindCni, description: string): CniProfile => ({
  cni,
  description,
  enforcesPolicy: true,
  agents: [{ namespace: 'calico-system', daemonset: 'calico-node', container: 'calico-node', selector: 'k8s-app=calico-node' }],
  deployments: [{ namespace: 'calico-system', name: 'calico-kube-controllers' }],
  namespaces: ['tigera-operator', 'calico-system'],
  needsBrNetfilter: false,
  needsBridgePlugin: false,
  version: (v) => v.calico.version,
});

export const CNI_PROFILES: Record<KindCni, CniProfile> = {
  flannel: {
    cni: 'flannel',
    description: 'Flannel (VXLAN) as installed from its release manifest; accepts NetworkPolicy objects and does not enforce them',
    enforcesPolicy: false,
    agents: [{ namespace: 'kube-flannel', daemonset: 'kube-flannel-ds', container: 'kube-flannel', selector: 'app=flannel' }],
    deployments: [],
    namespaces: ['kube-flannel'],
    needsBrNetfilter: true,
    needsBridgePlugin: true,
    version: (v) => v.flannel.version,
  },
  calico: calicoOperatorProfile('calico', 'Calico (iptables data plane, Tigera operator) as installed from its release manifests'),
  'calico-ebpf': calicoOperatorProfile(
    'calico-ebpf',
    "Calico eBPF data plane (Tigera operator, Installation linuxDataplane: BPF; kube-proxy replaced by Calico's BPF service handling): Felix compiles each endpoint's policies into BPF programs that walk the rules in order",
  ),
  'calico-nftables': calicoOperatorProfile('calico-nftables', 'Calico nftables data plane (Tigera operator, Installation linuxDataplane: Nftables; kube-proxy in nftables mode)'),
  canal: {
    cni: 'canal',
    description: "Canal: Flannel's VXLAN between nodes with Calico's Felix enforcing NetworkPolicy on the pod interfaces (Calico's canal.yaml manifest)",
    enforcesPolicy: true,
    agents: [
      { namespace: 'kube-system', daemonset: 'canal', container: 'calico-node', selector: 'k8s-app=canal' },
      { namespace: 'kube-system', daemonset: 'canal', container: 'kube-flannel', selector: 'k8s-app=canal' },
    ],
    deployments: [{ namespace: 'kube-system', name: 'calico-kube-controllers' }],
    namespaces: ['kube-system'],
    needsBrNetfilter: true,
    needsBridgePlugin: false,
    version: (v) => v.calico.version,
  },
  cilium: {
    cni: 'cilium',
    description: 'Cilium (eBPF, kube-proxy replacement) as installed from its helm chart',
    enforcesPolicy: true,
    agents: [
      { namespace: 'kube-system', daemonset: 'cilium', container: 'cilium-agent', selector: 'k8s-app=cilium' },
      // Since 1.16 the chart runs Envoy as its own DaemonSet by default (envoy.enabled; cilium/cilium@471f19a, seen in
      // rancher/rke2#6682); its CPU is the data plane's too, and the run waits for it.
      { namespace: 'kube-system', daemonset: 'cilium-envoy', container: 'cilium-envoy', selector: 'k8s-app=cilium-envoy' },
    ],
    deployments: [{ namespace: 'kube-system', name: 'cilium-operator' }],
    namespaces: ['kube-system'],
    needsBrNetfilter: false,
    needsBridgePlugin: false,
    version: (v) => v.cilium.version,
  },
};

/** How results and reports name each real data plane. */
export const DISPLAY_NAME: Record<KindCni, string> = {
  flannel: 'Flannel',
  calico: 'Calico',
  cilium: 'Cilium',
  'calico-ebpf': 'Calico eBPF',
  'calico-nftables': 'Calico nftables',
  canal: 'Canal',
};

export function cniProfile(cni: CniName): CniProfile {
  if (cni === 'none') throw new Error("--cni none has no real CNI to install on kind (kind's default kindnet enforces policies); use the local backend");
  const profile = (CNI_PROFILES as Partial<Record<CniName, CniProfile>>)[cni];
  if (!profile) throw new Error(`--cni ${cni} has no install recipe on kind or cluster yet; use the local backend`);
  return profile;
}

export interface InstallOptions {
  target: KubeTarget;
  versions: Versions;
  /** The kind cluster's name (Cilium and Calico eBPF reach the API server at <name>-control-plane). */
  clusterName: string;
  policyMapCapacity: number;
}

/** The commands that install a CNI from its pinned inputs (after the node-level preparation of the kind backend). */
export function planCniInstall(cni: KindCni, o: InstallOptions): CommandSpec[] {
  const t = o.target;
  switch (cni) {
    case 'flannel':
      return [kubectl(t, ['apply', '-f', o.versions.flannel.manifest], `install flannel ${o.versions.flannel.version}`, { timeoutMs: 120_000 })];
    case 'canal':
      // `create`: canal.yaml carries Calico's CRDs, too large for client-side apply's last-applied annotation.
      return [kubectl(t, ['create', '-f', o.versions.calico.canal], `install canal (calico ${o.versions.calico.version} policy on flannel)`, { timeoutMs: 180_000 })];
    case 'calico':
    case 'calico-ebpf':
    case 'calico-nftables': {
      const dataplane = CALICO_DATAPLANE[cni]!;
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
    }
    case 'cilium': {
      const values = renderCiliumValues(o.clusterName, o.policyMapCapacity);
      const v = o.versions.cilium;
      return [
        helm(t, ['install', 'cilium', v.chart, '--repo', v.chartRepo, '--version', v.version, '--namespace', 'kube-system', '--values', '-'], `install cilium ${v.version} (helm)`, {
          input: toYaml([values]),
          timeoutMs: 300_000,
        }),
      ];
    }
  }
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

/**
 * The CNIs running on a cluster, from `kubectl get daemonsets -A -o json`, `kubectl get nodes -o json` (k3s) and,
 * optionally, the FelixConfiguration `default`.
 */
export function detectCnis(daemonsetsJson: string, nodesJson?: string, felix?: FelixConfigurationSpec): CniDetection {
  const items = (JSON.parse(daemonsetsJson) as DaemonSetList).items ?? [];
  const calico: Array<{ ref: AgentRef; env: { bpf?: string; nft?: string }; withFlannel: boolean; where: string }> = [];
  const flannel: Array<{ ref: AgentRef; where: string }> = [];
  const cilium: Array<{ refs: AgentRef[]; where: string }> = [];
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
    const hasFlannel = names.includes('kube-flannel');
    if (names.includes('cilium-agent') || labels['k8s-app'] === 'cilium') {
      const container = names.includes('cilium-agent') ? 'cilium-agent' : names[0] ?? 'cilium-agent';
      cilium.push({ refs: [ref(container)], where: name === 'anetd' ? `${where} (GKE Dataplane V2, Cilium)` : where });
    }
    if (names.includes('calico-node')) {
      const c = containers.find((x) => x.name === 'calico-node');
      calico.push({ ref: ref('calico-node'), env: { bpf: envOf(c, 'FELIX_BPFENABLED'), nft: envOf(c, 'FELIX_NFTABLESMODE') }, withFlannel: hasFlannel, where });
    }
    if (hasFlannel) flannel.push({ ref: ref('kube-flannel'), where });
    if (names.includes('aws-node')) {
      unsupported.push(`${where} (AWS VPC CNI${names.includes('aws-eks-nodeagent') ? ', with its eBPF network policy agent' : ', no network policy agent'})`);
    }
  }
  const envoy = items.find((d) => (d.spec?.template?.spec?.containers ?? []).some((c) => c.name === 'cilium-envoy'));
  const found: DetectedCni[] = [];
  for (const c of cilium) {
    const refs = [...c.refs];
    if (envoy) refs.push({ namespace: envoy.metadata?.namespace ?? '', daemonset: envoy.metadata?.name ?? '', container: 'cilium-envoy', selector: 'k8s-app=cilium-envoy' });
    found.push({ cni: 'cilium', agents: refs, found: c.where });
  }
  const calicoAgent = calico[0];
  if (calicoAgent) {
    const flannelAgent = calicoAgent.withFlannel ? { ref: { ...calicoAgent.ref, container: 'kube-flannel' }, where: calicoAgent.where } : flannel[0];
    if (flannelAgent) {
      found.push({ cni: 'canal', agents: [calicoAgent.ref, flannelAgent.ref], found: calicoAgent.withFlannel ? `${calicoAgent.where} (calico-node + kube-flannel)` : `${calicoAgent.where} + ${flannelAgent.where}` });
    } else {
      const bpf = calicoAgent.env.bpf?.toLowerCase() === 'true' || felix?.bpfEnabled === true;
      const nft = calicoAgent.env.nft?.toLowerCase() === 'enabled' || felix?.nftablesMode?.toLowerCase() === 'enabled';
      const cni: KindCni = bpf ? 'calico-ebpf' : nft ? 'calico-nftables' : 'calico';
      found.push({ cni, agents: [calicoAgent.ref], found: `${calicoAgent.where}${bpf ? ' (eBPF data plane)' : nft ? ' (nftables data plane)' : ''}` });
    }
  } else if (flannel[0]) {
    found.push({ cni: 'flannel', agents: [flannel[0].ref], found: flannel[0].where });
  }
  if (!found.some((f) => f.cni === 'flannel' || f.cni === 'canal') && nodesJson) {
    const nodes = (JSON.parse(nodesJson) as NodeInfoList).items ?? [];
    const k3s = nodes.length > 0 && nodes.every((n) => /\+k3s/.test(n.status?.nodeInfo?.kubeletVersion ?? ''));
    const flannelAnnotated = nodes.some((n) => Object.keys(n.metadata?.annotations ?? {}).some((k) => k.startsWith('flannel.alpha.coreos.com/')));
    if (k3s && flannelAnnotated && !found.length) {
      found.push({ cni: 'flannel', agents: [], found: "k3s' embedded flannel (no DaemonSet; k3s also embeds kube-router's NetworkPolicy controller unless --disable-network-policy)", enforcesPolicy: true });
    }
  }
  return { found, unsupported };
}

/** Why a --cni cannot be confirmed on this cluster, naming everything that was found. */
export function detectionRefusal(d: CniDetection, wanted: KindCni): string {
  const seen = [...d.found.map((f) => `${f.cni} (${f.found})`), ...d.unsupported];
  if (!seen.length) {
    return `no known CNI agent on the cluster (looked in every namespace for DaemonSets running cilium-agent, calico-node, kube-flannel or aws-node, and for k3s' embedded flannel); cannot confirm --cni ${wanted}`;
  }
  const hint = d.found.length ? `; run with --cni ${d.found[0]!.cni}` : '; bench has no profile for it (no install recipe or detection of what it enforces); measure it with --backend local models or add a profile';
  return `--cni ${wanted} contradicts the cluster, which runs ${seen.join(' + ')}${hint}`;
}
