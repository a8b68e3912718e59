// The objects a kind/cluster run creates, as plain data from pure functions. Names are deterministic from the
// run id; every object carries the run label so a run's objects can be found (and removed) together.
import type { CniName } from '../../config/schema.js';
import type { NetworkPolicy } from '../../policy/types.js';
import { CLIENT_LABELS, SERVER_LABELS, SERVER_PORT } from '../local/topology.js';
import type { Versions } from './versions.js';
import { validateCiliumValues, validateManifests } from './validate.js';
import type { Manifest } from './yaml.js';

export const RUN_LABEL = 'cni-bench/run';
export const DENIED_LABELS = { app: 'bench-denied' } as const;
export const SERVER_NAME = 'bench-server';
export const CLIENT_POD = 'bench-client';
/** A client the policies do not allow: the enforcement check expects its connections to fail. */
export const DENIED_POD = 'bench-denied';
export const FORTIO_CONTAINER = 'fortio';
export const STAT_CONTAINER = 'stat';
export const POLICY_BATCH_SIZE = 500;

export interface RunNames {
  runId: string;
  serverNamespace: string;
  clientNamespace: string;
  runLabel: Record<string, string>;
}

export function runNames(runId: string): RunNames {
  return { runId, serverNamespace: `cb-${runId}-server`, clientNamespace: `cb-${runId}-client`, runLabel: { [RUN_LABEL]: runId } };
}

// ---- kind cluster configs ----

/** CNIs with a real install recipe on kind/cluster (the others are not built there yet). */
export type KindCni = Extract<CniName, 'flannel' | 'calico' | 'cilium'>;
export const KIND_CNIS: readonly KindCni[] = ['flannel', 'calico', 'cilium'];

/** Pod subnets as each CNI's upstream kind recipe expects them. */
export const POD_SUBNET: Record<KindCni, string> = {
  // kube-flannel.yml's net-conf.json Network.
  flannel: '10.244.0.0/16',
  // The Installation below uses the same CIDR for its pool (Calico's kind guide uses 192.168.0.0/16).
  calico: '192.168.0.0/16',
  // ipam.mode=kubernetes takes each node's podCIDR from this range.
  cilium: '10.244.0.0/16',
};

export function renderKindConfig(cni: KindCni, v: Versions, workers = 2): Manifest {
  const node = (role: 'control-plane' | 'worker') => ({ role, image: v.kind.nodeImage });
  return {
    kind: 'Cluster',
    apiVersion: 'kind.x-k8s.io/v1alpha4',
    networking: {
      disableDefaultCNI: true,
      podSubnet: POD_SUBNET[cni],
      // Cilium replaces kube-proxy (kubeProxyReplacement=true): services are eBPF, as in a Cilium production setup.
      ...(cni === 'cilium' ? { kubeProxyMode: 'none' as const } : {}),
    },
    nodes: [node('control-plane'), ...Array.from({ length: workers }, () => node('worker'))],
  };
}

/** kind's node container names: <cluster>-control-plane, <cluster>-worker, <cluster>-worker2, … */
export function kindNodeNames(cluster: string, workers = 2): { controlPlane: string; workers: string[] } {
  return { controlPlane: `${cluster}-control-plane`, workers: Array.from({ length: workers }, (_, i) => `${cluster}-worker${i === 0 ? '' : i + 1}`) };
}

// ---- CNI install inputs ----

export function renderCalicoInstallation(): Manifest {
  return {
    apiVersion: 'operator.tigera.io/v1',
    kind: 'Installation',
    metadata: { name: 'default' },
    spec: {
      calicoNetwork: {
        // The iptables data plane is what the benchmark is about (Felix's per-endpoint chains).
        linuxDataplane: 'Iptables',
        ipPools: [{ name: 'default-ipv4-ippool', cidr: POD_SUBNET.calico, blockSize: 26, encapsulation: 'VXLANCrossSubnet', natOutgoing: 'Enabled', nodeSelector: 'all()' }],
      },
    },
  };
}

export interface CiliumValues {
  image: { pullPolicy: 'IfNotPresent' };
  ipam: { mode: 'kubernetes' };
  kubeProxyReplacement: boolean;
  k8sServiceHost: string;
  k8sServicePort: number;
  routingMode: 'tunnel';
  tunnelProtocol: 'vxlan';
  operator: { replicas: number };
  hubble: { enabled: boolean };
  bpf: { policyMapMax: number };
}

export function renderCiliumValues(cluster: string, policyMapCapacity: number): CiliumValues {
  const values: CiliumValues = {
    image: { pullPolicy: 'IfNotPresent' },
    ipam: { mode: 'kubernetes' },
    kubeProxyReplacement: true,
    // No kube-proxy: the agent reaches the API server directly, at the control-plane node's name on kind's network.
    k8sServiceHost: `${cluster}-control-plane`,
    k8sServicePort: 6443,
    routingMode: 'tunnel',
    tunnelProtocol: 'vxlan',
    operator: { replicas: 1 },
    // Hubble observes every flow; off, so its CPU is not charged to the data plane.
    hubble: { enabled: false },
    // --policy-map-capacity maps onto the real setting (default 16384, the same as the local model's).
    bpf: { policyMapMax: policyMapCapacity },
  };
  validateCiliumValues(values);
  return values;
}

// ---- workloads ----

export interface Placement {
  serverNode: string;
  clientNode: string;
}

const podDefaults = {
  automountServiceAccountToken: false,
  terminationGracePeriodSeconds: 1,
  enableServiceLinks: false,
};

function fortioContainer(v: Versions) {
  return {
    name: FORTIO_CONTAINER,
    image: v.load.fortioImage,
    // Idles as a server in the client pods too: the image has no shell, and `kubectl exec` needs a live process.
    args: ['server', '-http-port', String(SERVER_PORT)],
    ports: [{ name: 'http', containerPort: SERVER_PORT, protocol: 'TCP' as const }],
    resources: { requests: { cpu: '100m', memory: '64Mi' } },
  };
}

function statContainer(v: Versions) {
  // /proc/stat is not namespaced: read from any pod it gives the node kernel's CPU time (softirq included).
  return { name: STAT_CONTAINER, image: v.load.statImage, command: ['sleep', '2147483647'], resources: { requests: { cpu: '10m', memory: '8Mi' } } };
}

export function renderNamespaces(n: RunNames): Manifest[] {
  return [n.serverNamespace, n.clientNamespace].map((name) => ({ apiVersion: 'v1', kind: 'Namespace', metadata: { name, labels: { ...n.runLabel } } }));
}

export function renderWorkloads(n: RunNames, p: Placement, v: Versions): Manifest[] {
  const serverLabels = { ...SERVER_LABELS, ...n.runLabel };
  const server: Manifest = {
    apiVersion: 'apps/v1',
    kind: 'Deployment',
    metadata: { name: SERVER_NAME, namespace: n.serverNamespace, labels: serverLabels },
    spec: {
      replicas: 1,
      selector: { matchLabels: { ...SERVER_LABELS } },
      template: {
        metadata: { labels: serverLabels },
        spec: {
          ...podDefaults,
          nodeSelector: { 'kubernetes.io/hostname': p.serverNode },
          containers: [{ ...fortioContainer(v), readinessProbe: { httpGet: { path: '/', port: SERVER_PORT }, periodSeconds: 2 } }, statContainer(v)],
        },
      },
    },
  };
  const pod = (name: string, labels: Record<string, string>, withStat: boolean): Manifest => ({
    apiVersion: 'v1',
    kind: 'Pod',
    metadata: { name, namespace: n.clientNamespace, labels: { ...labels, ...n.runLabel } },
    spec: { ...podDefaults, nodeSelector: { 'kubernetes.io/hostname': p.clientNode }, containers: [fortioContainer(v), ...(withStat ? [statContainer(v)] : [])] },
  });
  return [server, pod(CLIENT_POD, CLIENT_LABELS, true), pod(DENIED_POD, DENIED_LABELS, false)];
}

/** Policies in batches of `size`, each batch a List for one server-side apply. */
export function policyBatches(policies: readonly NetworkPolicy[], size = POLICY_BATCH_SIZE): NetworkPolicy[][] {
  const out: NetworkPolicy[][] = [];
  for (let i = 0; i < policies.length; i += size) out.push(policies.slice(i, i + size));
  return out;
}

/** Validates what a run will create; throws ManifestError listing every problem. */
export function validateRunManifests(objs: readonly object[], policies: readonly NetworkPolicy[] = []): void {
  validateManifests([...objs, ...policies]);
}

