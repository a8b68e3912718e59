// What each real CNI is on a cluster, as data: where its agents run, how to install it from the pinned inputs,
// and how to recognise it on a cluster someone else installed. Nothing branches on a CNI's name: install plans,
// kube-proxy mode, pod subnet, node binaries and detection rules are fields of the profiles below.
import type { CniName } from '../../config/schema.js';
import type { CommandSpec } from '../../exec/runner.js';
import { helm, kubectl, waitSpec, type KubeTarget } from './kubectl.js';
import { CNI_CATALOGUE } from '../../config/cnis.js';
import { POD_SUBNET, renderCalicoInstallation, renderCiliumValues, renderServicesEndpoint, type CalicoDataplane, type NodeBinary } from './manifests.js';
import { validateManifests } from './validate.js';
import type { Versions } from './versions.js';
import { toYaml } from './yaml.js';
import { CILIUM_METRICS, felixMetrics, type AgentMetricsOnCluster } from './agent-metric-setup.js';
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
  /** The kind cluster's name (Cilium reaches the API server at <name>-control-plane). */
  clusterName: string;
  policyMapCapacity: number;
  /**
   * The control plane's address, for a profile with `apiServerByAddress`: kind looks up the node's InternalIP once
   * the cluster exists; a dry run shows a placeholder that says so.
   */
  controlPlaneAddress?: string;
}

export type { NodeBinary };

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
   * flanneld exits at start when /proc/sys/net/bridge/bridge-nf-call-iptables is missing (flannel v0.27.4 main.go,
   * "Failed to check br_netfilter"; the check came with v0.26, flannel-io/flannel#2082); Docker >= 27.3 no longer
   * loads the module (moby#48492). The kind backend loads it on the nodes before the install (kind mounts
   * /lib/modules into each node).
   */
  needsBrNetfilter: boolean;
  /**
   * Its agents reach the API server before any Service or cluster DNS works: no kube-proxy, and hostNetwork pods
   * with dnsPolicy ClusterFirstWithHostNet (tigera-operator.yaml v3.30.3; the operator gives calico-node the same,
   * tigera/operator pkg/render/node.go), so a node's name does not resolve (projectcalico/calico#10683). The kind
   * provider looks up the control plane's InternalIP at run time and hands it to install().
   */
  apiServerByAddress: boolean;
  /**
   * Felix enforces with iptables chains of this prefix, in the flavour (nft or legacy) it detects from kube-proxy's
   * chains (felix/environment/feature_detect_linux.go DetectBackend): the kind provider records which one it chose,
   * as the local models record theirs (modelState.iptablesBackend).
   */
  felixIptablesChains?: string;
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

/** The FelixConfiguration fields that select Calico's data plane (crd.projectcalico.org/v1, `default`). */
export interface FelixConfigurationSpec {
  bpfEnabled?: boolean;
  nftablesMode?: string;
}

/**
 * What marks a CNI in a cluster's DaemonSet pod templates: its agent containers (all of them, in one template or in
 * separate ones) and, for one of several data planes of the same agent, the setting that selects it. The most
 * specific matching rule wins (./detect.ts).
 */
export interface DetectionRule {
  containers: string[];
  /** A pod label that marks the agent even when its container is named otherwise (GKE's anetd). */
  label?: [string, string];
  /**
   * The FelixConfiguration `default` field and value that select this data plane (where the operator writes it),
   * and the env var that overrides the field in Felix when set on calico-node (felix/config/config_params.go).
   */
  dataplane?: { felix: keyof FelixConfigurationSpec; value: boolean | string; env: string; note: string };
  /** Containers of other DaemonSets that belong to it (Cilium's Envoy since 1.16). */
  companions?: AgentRef[];
  /** DaemonSet names that say more about what runs ("anetd": GKE Dataplane V2). */
  knownAs?: Record<string, string>;
  /** Built into a distribution's binary, with no DaemonSet: recognised from the nodes. */
  embedded?: { kubeletVersion: RegExp; nodeAnnotationPrefix: string; found: string; enforcesPolicy: boolean };
}

type CalicoExtra = Pick<ProfileFields, 'kubeProxyMode' | 'felixIptablesChains'> & { detect?: DetectionRule['dataplane'] };

const calicoOperatorProfile = <N extends CniName>(cni: N, dataplane: CalicoDataplane, description: string, extra: CalicoExtra = {}): ProfileFields & { cni: N } => ({
  cni,
  displayName: CNI_CATALOGUE[cni].displayName,
  description,
  enforcesPolicy: true,
  agents: [{ namespace: 'calico-system', daemonset: 'calico-node', container: 'calico-node', selector: 'k8s-app=calico-node' }],
  deployments: [{ namespace: 'calico-system', name: 'calico-kube-controllers' }],
  namespaces: ['tigera-operator', 'calico-system'],
  needsBrNetfilter: false,
  // eBPF mode has no kube-proxy: the operator and calico-node reach the API server through the
  // kubernetes-services-endpoint ConfigMap, which needs an address they can use before any DNS.
  apiServerByAddress: dataplane === 'BPF',
  felixIptablesChains: extra.felixIptablesChains,
  nodeBinaries: [],
  podSubnet: POD_SUBNET,
  kubeProxyMode: extra.kubeProxyMode,
  version: (v) => v.calico.version,
  install: (o) => {
    const t = o.target;
    const installation = renderCalicoInstallation(dataplane);
    if (dataplane === 'BPF' && !o.controlPlaneAddress) throw new BenchError('internal', `${cni} needs the control plane's address for the kubernetes-services-endpoint ConfigMap; none was looked up`);
    const endpoint = dataplane === 'BPF' ? renderServicesEndpoint(o.controlPlaneAddress!) : undefined;
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
    apiServerByAddress: false,
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
  calico: calicoOperatorProfile('calico', 'Iptables', 'Calico (iptables data plane, Tigera operator) as installed from its release manifests', { felixIptablesChains: 'cali-' }),
  'calico-ebpf': calicoOperatorProfile(
    'calico-ebpf',
    'BPF',
    "Calico eBPF data plane (Tigera operator, Installation linuxDataplane: BPF; kube-proxy replaced by Calico's BPF service handling): Felix compiles each endpoint's policies into BPF programs that walk the rules in order",
    // For linuxDataplane BPF the operator sets bpfEnabled: true in FelixConfiguration default once calico-node has
    // rolled out with its BPF volumes (tigera/operator v1.38.6 pkg/controller/installation/bpf.go).
    { kubeProxyMode: 'none', detect: { felix: 'bpfEnabled', value: true, env: 'FELIX_BPFENABLED', note: 'eBPF data plane' } },
  ),
  'calico-nftables': calicoOperatorProfile('calico-nftables', 'Nftables', 'Calico nftables data plane (Tigera operator, Installation linuxDataplane: Nftables; kube-proxy in nftables mode)', {
    kubeProxyMode: 'nftables',
    // nftablesMode: Enabled for linuxDataplane Nftables (tigera/operator v1.38.6 core_controller.go setNftablesMode).
    detect: { felix: 'nftablesMode', value: 'Enabled', env: 'FELIX_NFTABLESMODE', note: 'nftables data plane' },
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
    // canal.yaml v3.30.3 runs flannel v0.24.4, whose main.go has no br_netfilter check (it came in v0.26), and its
    // CNI chain is calico + portmap (routed veths, no `bridge` plugin): nothing of it needs bridge netfilter.
    needsBrNetfilter: false,
    apiServerByAddress: false,
    felixIptablesChains: 'cali-',
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
    // The chart's agents are hostNetwork with no dnsPolicy unless set (templates/cilium-agent/daemonset.yaml), so
    // the node's resolv.conf (the engine's DNS on kind) answers <cluster>-control-plane, as Cilium's kind guide has it.
    apiServerByAddress: false,
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
  // The data plane is on only once the operator has written it into the FelixConfiguration: for BPF that happens
  // after calico-node has rolled out with its BPF volumes (tigera/operator v1.38.6 bpf.go), i.e. after the waits above.
  const d = p.detect.dataplane;
  if (d) {
    const fc = `${FELIX_CONFIGURATION}/default`;
    out.push(waitSpec(t, ['wait', '--for=create', fc], s, 'wait for the FelixConfiguration default to exist'));
    out.push(waitSpec(t, ['wait', `--for=jsonpath={.spec.${d.felix}}=${String(d.value)}`, fc], s, `wait until the operator has switched Felix to the ${d.note} (${d.felix}: ${String(d.value)})`));
  }
  return out;
}

/** Calico's FelixConfiguration resource, by its CRD's full name (a projectcalico.org API server may also serve it). */
export const FELIX_CONFIGURATION = 'felixconfigurations.crd.projectcalico.org';

export function planNodesReady(t: KubeTarget, s: number): CommandSpec {
  return waitSpec(t, ['wait', '--for=condition=Ready', 'nodes', '--all'], s, 'wait for every node to be Ready');
}

export function planDnsReady(t: KubeTarget, s: number): CommandSpec {
  return waitSpec(t, ['-n', 'kube-system', 'rollout', 'status', 'deployment/coredns'], s, 'wait for CoreDNS');
}

