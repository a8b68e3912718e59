// What each real CNI is on a cluster, as data: where its agents run, how to install it from the pinned inputs,
// and how to recognise it on a cluster someone else installed. The backends never branch on the CNI's name.
import type { CniName } from '../../config/schema.js';
import type { CommandSpec } from '../../exec/runner.js';
import { helm, kubectl, waitSpec, type KubeTarget } from './kubectl.js';
import { renderCalicoInstallation, renderCiliumValues, type KindCni } from './manifests.js';
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
}

export const CNI_PROFILES: Record<KindCni, CniProfile> = {
  flannel: {
    cni: 'flannel',
    description: 'Flannel (VXLAN) as installed from its release manifest; accepts NetworkPolicy objects and does not enforce them',
    enforcesPolicy: false,
    agents: [{ namespace: 'kube-flannel', daemonset: 'kube-flannel-ds', container: 'kube-flannel', selector: 'app=flannel' }],
    deployments: [],
    namespaces: ['kube-flannel'],
  },
  calico: {
    cni: 'calico',
    description: 'Calico (iptables data plane, Tigera operator) as installed from its release manifests',
    enforcesPolicy: true,
    agents: [{ namespace: 'calico-system', daemonset: 'calico-node', container: 'calico-node', selector: 'k8s-app=calico-node' }],
    deployments: [{ namespace: 'calico-system', name: 'calico-kube-controllers' }],
    namespaces: ['tigera-operator', 'calico-system'],
  },
  cilium: {
    cni: 'cilium',
    description: 'Cilium (eBPF, kube-proxy replacement) as installed from its helm chart',
    enforcesPolicy: true,
    agents: [{ namespace: 'kube-system', daemonset: 'cilium', container: 'cilium-agent', selector: 'k8s-app=cilium' }],
    deployments: [{ namespace: 'kube-system', name: 'cilium-operator' }],
    namespaces: ['kube-system'],
  },
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
  /** The kind cluster's name (Cilium reaches the API server at <name>-control-plane). */
  clusterName: string;
  policyMapCapacity: number;
}

/** The commands that install a CNI from its pinned inputs (after the node-level preparation of the kind backend). */
export function planCniInstall(cni: KindCni, o: InstallOptions): CommandSpec[] {
  const t = o.target;
  switch (cni) {
    case 'flannel':
      return [kubectl(t, ['apply', '-f', o.versions.flannel.manifest], `install flannel ${o.versions.flannel.version}`, { timeoutMs: 120_000 })];
    case 'calico': {
      const installation = renderCalicoInstallation();
      validateManifests([installation]);
      return [
        // `create`, not `apply`: the CRDs exceed the size limit of apply's last-applied-configuration annotation.
        kubectl(t, ['create', '-f', o.versions.calico.operatorCrds], `install calico ${o.versions.calico.version} operator CRDs`, { timeoutMs: 120_000 }),
        kubectl(t, ['create', '-f', o.versions.calico.operator], `install the tigera operator`, { timeoutMs: 120_000 }),
        waitSpec(t, ['wait', '--for=condition=Established', 'crd/installations.operator.tigera.io'], 60, 'wait for the Installation CRD'),
        kubectl(t, ['create', '-f', '-'], 'create the calico Installation', { input: toYaml([installation]) }),
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
  for (const a of p.agents) {
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

interface DaemonSetList {
  items?: Array<{ metadata?: { name?: string; namespace?: string } }>;
}

export interface DetectedCni {
  cni: KindCni;
  /** The agent as found on this cluster (its namespace differs between operator and manifest installs). */
  agent: AgentRef;
}

const KNOWN_AGENTS: Array<{ cni: KindCni; namespace: string; daemonset: string; container: string; selector: string }> = [
  { cni: 'cilium', namespace: 'kube-system', daemonset: 'cilium', container: 'cilium-agent', selector: 'k8s-app=cilium' },
  { cni: 'calico', namespace: 'calico-system', daemonset: 'calico-node', container: 'calico-node', selector: 'k8s-app=calico-node' },
  { cni: 'calico', namespace: 'kube-system', daemonset: 'calico-node', container: 'calico-node', selector: 'k8s-app=calico-node' },
  { cni: 'flannel', namespace: 'kube-flannel', daemonset: 'kube-flannel-ds', container: 'kube-flannel', selector: 'app=flannel' },
  { cni: 'flannel', namespace: 'kube-system', daemonset: 'kube-flannel-ds', container: 'kube-flannel', selector: 'app=flannel' },
  // Canal: Calico policy on Flannel networking, one DaemonSet.
  { cni: 'calico', namespace: 'kube-system', daemonset: 'canal', container: 'calico-node', selector: 'k8s-app=canal' },
  { cni: 'flannel', namespace: 'kube-system', daemonset: 'canal', container: 'kube-flannel', selector: 'k8s-app=canal' },
];

/** The CNIs whose agent DaemonSets run on the cluster (`kubectl get daemonsets -A -o json`), in a fixed order. */
export function detectCnis(daemonsetsJson: string): DetectedCni[] {
  const list = JSON.parse(daemonsetsJson) as DaemonSetList;
  const names = new Set((list.items ?? []).map((d) => `${d.metadata?.namespace}/${d.metadata?.name}`));
  const found: DetectedCni[] = [];
  for (const k of KNOWN_AGENTS) {
    if (!names.has(`${k.namespace}/${k.daemonset}`) || found.some((f) => f.cni === k.cni)) continue;
    found.push({ cni: k.cni, agent: { namespace: k.namespace, daemonset: k.daemonset, container: k.container, selector: k.selector } });
  }
  return found;
}
