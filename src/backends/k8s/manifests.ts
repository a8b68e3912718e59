// The objects a kind/cluster run creates, as plain data from pure functions. Names are deterministic from the
// run id; every object carries the run label so a run's objects can be found (and removed) together.
import { runResourceName } from '../../identity/run-id.js';
import type { NetworkPolicy } from '../../policy/types.js';
import { ROLE_LABEL, type PeerPodSpec } from '../../policy/generate.js';
import { CLIENT_LABELS, SERVER_LABELS, SERVER_PORT } from '../../workload/workload.js';
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
/**
 * The project's own probe in the client pod: a busybox container (it has a shell and tar, so `kubectl cp` works)
 * idling with an emptyDir at PROBE_DIR, into which the run copies the statically linked cb-probe. It shares the
 * client pod's network namespace, so its connects leave from the same pod as fortio's.
 */
export const PROBE_CONTAINER = 'probe';
export const PROBE_DIR = '/probe';
export const PROBE_PATH = `${PROBE_DIR}/cb-probe`;
/** The emptyDir the probe container mounts at PROBE_DIR (a fresh object each time: manifests share no references). */
export const probeVolume = () => ({ name: PROBE_CONTAINER, emptyDir: { sizeLimit: '16Mi' } });
/**
 * Real filler peers on kind/cluster: at most this many pods, each carrying one filler's peer label. 64 keeps
 * every node under the kubelet's default maxPods of 110 even with same-node placement (64 peers + the run's 3
 * load pods + the CNI's and kube-system's pods) and costs ≈ 64 × (pause + busybox sleep) of memory; the other
 * fillers' selectors match no pod, as before.
 */
export const PEER_POD_CAP = 64;
/**
 * On kind the cap is higher, so that Cilium's policy map can be filled past its smallest size: Cilium clamps
 * bpf.policyMapMax to at least option.PolicyMapMin = 256 entries (pkg/option), so 64 peered fillers could never
 * reach any capacity. 300 peers, split over the two workers (150 each), need the kubelet's maxPods raised above
 * its default 110 (KIND_MAX_PODS below; each node's /24 pod CIDR holds 254 addresses) and ≈ 300 × (pause + busybox
 * + containerd shim, a few MiB) ≈ 1-2 GiB of memory on the host.
 */
export const KIND_PEER_POD_CAP = 300;
export const KIND_MAX_PODS = 250;
export const PEER_ROLE = 'peer';
/**
 * Policies per `kubectl apply` and how many kubectl processes apply at once. kubectl's client-side rate limiter
 * (client-go defaults: 5 QPS, burst 10; kubectl raises them only for discovery — kubernetes/kubectl#773, #1722)
 * allows one PATCH per 200 ms per process, and server-side apply sends one PATCH per object; so the set is cut
 * into batches applied by APPLY_CONCURRENCY processes, each with its own limiter: 5001 policies take about
 * 5001 / (16 × 5) ≈ 63 s instead of ≈ 1000 s. Several kubectl processes rather than @kubernetes/client-node:
 * every call stays a command of the one runner (logged, timed, cancellable, and in --dry-run a plan a person
 * can paste), with no second client, auth stack and kubeconfig parser to keep in step with kubectl's.
 */
export const POLICY_BATCH_SIZE = 100;
export const APPLY_CONCURRENCY = 16;

export interface RunNames {
  runId: string;
  serverNamespace: string;
  clientNamespace: string;
  runLabel: Record<string, string>;
}

export function runNames(runId: string): RunNames {
  return { runId, serverNamespace: runResourceName(runId, 'server'), clientNamespace: runResourceName(runId, 'client'), runLabel: { [RUN_LABEL]: runId } };
}

// ---- kind cluster configs ----

/**
 * Pod subnets. Calico's own kind guide uses 192.168.0.0/16, which overlaps many home and office LANs (the node
 * could no longer reach them); every recipe here uses 10.244.0.0/16, kube-flannel.yml's and canal.yaml's
 * net-conf.json Network, and the Calico Installations below use the same CIDR for their pool.
 */
export const POD_SUBNET = '10.244.0.0/16';

/** Where the bench mounts the upstream `bridge` CNI plugin into every kind node (flannel delegates to it). */
export const BRIDGE_PLUGIN_PATH = '/opt/cni/bin/bridge';

/** Extra binaries a CNI needs on every node that kind's node image lacks. */
export type NodeBinary = 'bridge';

/** What a kind config needs of a CNI profile (./cni.ts), declared here so manifests never import the profiles. */
export interface KindNodeNeeds {
  podSubnet: string;
  kubeProxyMode?: 'iptables' | 'nftables' | 'none';
  nodeBinaries: readonly NodeBinary[];
}

export interface KindConfigOptions {
  workers?: number;
  /**
   * Host path of the `bridge` CNI plugin (flannel only). Mounted with extraMounts rather than copied in with
   * `docker cp`, so it works with every kind provider (docker, podman, nerdctl).
   */
  bridgePluginHostPath?: string;
}

/** A kind cluster config for a CNI profile: its pod subnet, kube-proxy mode and extra node binaries. */
export function renderKindConfig(p: KindNodeNeeds, v: Versions, o: KindConfigOptions = {}): Manifest {
  const workers = o.workers ?? 2;
  const mounts = p.nodeBinaries.includes('bridge') && o.bridgePluginHostPath ? { extraMounts: [{ hostPath: o.bridgePluginHostPath, containerPath: BRIDGE_PLUGIN_PATH, readOnly: true }] } : {};
  const node = (role: 'control-plane' | 'worker') => ({ role, image: v.kind.nodeImage, ...mounts });
  const kubeProxyMode = p.kubeProxyMode;
  return {
    kind: 'Cluster',
    apiVersion: 'kind.x-k8s.io/v1alpha4',
    networking: {
      disableDefaultCNI: true,
      podSubnet: p.podSubnet,
      ...(kubeProxyMode ? { kubeProxyMode } : {}),
    },
    // kind passes these to kubeadm; a KubeletConfiguration patch applies to every node's kubelet (kind docs,
    // "kubeadmConfigPatches"). Room for KIND_PEER_POD_CAP peers beside the run's and the system's pods.
    kubeadmConfigPatches: [`kind: KubeletConfiguration\nmaxPods: ${KIND_MAX_PODS}\n`],
    nodes: [node('control-plane'), ...Array.from({ length: workers }, () => node('worker'))],
  };
}

/** kind's node container names: <cluster>-control-plane, <cluster>-worker, <cluster>-worker2, … */
export function kindNodeNames(cluster: string, workers = 2): { controlPlane: string; workers: string[] } {
  return { controlPlane: `${cluster}-control-plane`, workers: Array.from({ length: workers }, (_, i) => `${cluster}-worker${i === 0 ? '' : i + 1}`) };
}

// ---- CNI install inputs ----

export type CalicoDataplane = 'Iptables' | 'BPF' | 'Nftables';

/**
 * The tunnel every recipe uses between nodes, recorded in results. Flannel, Canal (flannel's VXLAN) and Cilium
 * (routingMode=tunnel, vxlan) encapsulate every cross-node packet; Calico's default VXLANCrossSubnet would not
 * encapsulate on kind's single docker subnet, so the floors would differ for reasons unrelated to policy. Same
 * encapsulation for all: Calico's pool uses VXLAN (always).
 */
export const ENCAPSULATION = 'vxlan (all cross-node traffic, every data plane)';

/** operator.tigera.io/v1 Installation for the Calico data planes (projectcalico/calico manifests/custom-resources*.yaml shape). */
export function renderCalicoInstallation(dataplane: CalicoDataplane = 'Iptables'): Manifest {
  return {
    apiVersion: 'operator.tigera.io/v1',
    kind: 'Installation',
    metadata: { name: 'default' },
    spec: {
      calicoNetwork: {
        linuxDataplane: dataplane,
        ipPools: [{ name: 'default-ipv4-ippool', cidr: POD_SUBNET, blockSize: 26, encapsulation: 'VXLAN', natOutgoing: 'Enabled', nodeSelector: 'all()' }],
      },
    },
  };
}

/**
 * eBPF mode has no kube-proxy to reach the API server's Service IP through: the operator (and calico-node, via
 * envFrom, as canal.yaml's containers show) read the real endpoint from this ConfigMap in tigera-operator
 * (docs.tigera.io "Install in eBPF mode"; manifests/tigera-operator.yaml v3.30.3 mounts it with envFrom). Both run
 * hostNetwork with dnsPolicy ClusterFirstWithHostNet, so they resolve names through the cluster DNS, which cannot
 * answer before the CNI is up: `host` must be an address (kind: the control plane's InternalIP), port 6443.
 */
export function renderServicesEndpoint(host: string, port = 6443): Manifest {
  return {
    apiVersion: 'v1',
    kind: 'ConfigMap',
    metadata: { name: 'kubernetes-services-endpoint', namespace: 'tigera-operator' },
    data: { KUBERNETES_SERVICE_HOST: host, KUBERNETES_SERVICE_PORT: String(port) },
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

/**
 * Pins a pod to a node by its name. Not `nodeSelector: kubernetes.io/hostname`: that label is set by the kubelet
 * from the host name and can differ from the node's name (kubernetes.io/docs/reference/labels-annotations-taints,
 * kubernetes.io/hostname: "the value may differ from the node name"; common on AWS). A matchFields term on
 * metadata.name (what the DaemonSet controller uses) still goes through the scheduler, unlike spec.nodeName.
 */
export function pinToNode(node: string) {
  return { nodeAffinity: { requiredDuringSchedulingIgnoredDuringExecution: { nodeSelectorTerms: [{ matchFields: [{ key: 'metadata.name', operator: 'In', values: [node] }] }] } } };
}

/**
 * Pod Security: the run's namespaces are labelled to enforce `restricted` (so a cluster whose default is
 * restricted admits them, and one whose default is laxer checks them the same way). The upstream netpol e2e
 * suite uses baseline for its agnhost grid, which serves on ports 80/81 as root; see renderGridNamespaces.
 */
export function podSecurityLabels(level: 'restricted' | 'baseline'): Record<string, string> {
  return { 'pod-security.kubernetes.io/enforce': level, 'pod-security.kubernetes.io/warn': level, 'pod-security.kubernetes.io/audit': level };
}

/** Satisfies the restricted profile: non-root, no privilege escalation, every capability dropped, RuntimeDefault seccomp. */
export const RESTRICTED_POD_SECURITY = { runAsNonRoot: true, runAsUser: 65534, runAsGroup: 65534, seccompProfile: { type: 'RuntimeDefault' as const } };
export const RESTRICTED_CONTAINER_SECURITY = { allowPrivilegeEscalation: false, capabilities: { drop: ['ALL'] } };

/** The fortio binary inside its image (fortio's Dockerfile: /usr/bin/fortio); exec'd by path, not via $PATH. */
export const FORTIO_BIN = '/usr/bin/fortio';

function fortioContainer(v: Versions) {
  return {
    name: FORTIO_CONTAINER,
    image: v.load.fortioImage,
    // Idles as a server in the client pods too: the image has no shell, and `kubectl exec` needs a live process.
    command: [FORTIO_BIN],
    args: ['server', '-http-port', String(SERVER_PORT)],
    ports: [{ name: 'http', containerPort: SERVER_PORT, protocol: 'TCP' as const }],
    resources: { requests: { cpu: '100m', memory: '64Mi' } },
    securityContext: RESTRICTED_CONTAINER_SECURITY,
  };
}

function statContainer(v: Versions) {
  // /proc/stat is not namespaced: read from any pod it gives the node kernel's CPU time (softirq included).
  return {
    name: STAT_CONTAINER,
    image: v.load.statImage,
    command: ['sleep', '2147483647'],
    resources: { requests: { cpu: '10m', memory: '8Mi' } },
    securityContext: RESTRICTED_CONTAINER_SECURITY,
  };
}

export function renderNamespaces(n: RunNames): Manifest[] {
  return [n.serverNamespace, n.clientNamespace].map((name) => ({ apiVersion: 'v1', kind: 'Namespace', metadata: { name, labels: { ...n.runLabel, ...podSecurityLabels('restricted') } } }));
}

/** The probe container (busybox with the emptyDir cb-probe is copied into), and its volume: also beside a replayed workload's watched sources. */
export function probeContainer(v: Versions) {
  return {
    name: PROBE_CONTAINER,
    image: v.load.statImage,
    command: ['sleep', '2147483647'],
    volumeMounts: [{ name: PROBE_CONTAINER, mountPath: PROBE_DIR }],
    resources: { requests: { cpu: '100m', memory: '16Mi' } },
    securityContext: RESTRICTED_CONTAINER_SECURITY,
  };
}

/**
 * `cap` of the filler peers, evenly spaced over the generator's order (index ⌊i·n/cap⌋), so peered fillers sit
 * at every depth of the evaluation order rather than only at its start. All of them when n <= cap.
 */
export function selectPeers<T>(peers: readonly T[], cap = PEER_POD_CAP): T[] {
  if (!Number.isInteger(cap) || cap < 0) throw new Error(`peer cap must be an integer >= 0 (got ${cap})`);
  if (peers.length <= cap) return [...peers];
  const out: T[] = [];
  for (let i = 0; i < cap; i++) out.push(peers[Math.floor((i * peers.length) / cap)] as T);
  return out;
}

/**
 * One pod per selected filler peer, in the server's namespace with exactly the labels its filler policy selects
 * (plus the role label): Calico puts its address in that filler's selector ipset, Cilium gives every peer its own
 * identity (a distinct identity-relevant label set) and adds a policy-map entry (identity, port) per peered
 * filler. Round-robin over `nodes` (default: the client and server nodes); they never connect (they idle).
 */
export function renderPeerPods(n: RunNames, peers: readonly PeerPodSpec[], p: Placement, v: Versions, nodes: readonly string[] = [p.clientNode, p.serverNode]): Manifest[] {
  return peers.map((peer, i) => ({
    apiVersion: 'v1',
    kind: 'Pod',
    metadata: { name: peer.name, namespace: n.serverNamespace, labels: { ...peer.labels, ...n.runLabel, [ROLE_LABEL]: PEER_ROLE } },
    spec: {
      ...podDefaults,
      securityContext: RESTRICTED_POD_SECURITY,
      affinity: pinToNode(nodes[i % nodes.length]!),
      containers: [{ ...statContainer(v), name: 'peer', resources: { requests: { cpu: '1m', memory: '4Mi' } } }],
    },
  }));
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
          securityContext: RESTRICTED_POD_SECURITY,
          affinity: pinToNode(p.serverNode),
          containers: [{ ...fortioContainer(v), readinessProbe: { httpGet: { path: '/', port: SERVER_PORT }, periodSeconds: 2 } }, statContainer(v)],
        },
      },
    },
  };
  const pod = (name: string, labels: Record<string, string>, withStat: boolean): Manifest => ({
    apiVersion: 'v1',
    kind: 'Pod',
    metadata: { name, namespace: n.clientNamespace, labels: { ...labels, ...n.runLabel } },
    spec: {
      ...podDefaults,
      securityContext: RESTRICTED_POD_SECURITY,
      affinity: pinToNode(p.clientNode),
      containers: [fortioContainer(v), ...(withStat ? [statContainer(v), probeContainer(v)] : [])],
      ...(withStat ? { volumes: [probeVolume()] } : {}),
    },
  });
  return [server, pod(CLIENT_POD, CLIENT_LABELS, true), pod(DENIED_POD, DENIED_LABELS, false)];
}

/**
 * The restricted Pod Security profile's checks that our pod specs can fail (kubernetes.io/docs/concepts/security/
 * pod-security-standards: runAsNonRoot, allowPrivilegeEscalation=false, capabilities drop ALL, seccomp
 * RuntimeDefault|Localhost, no privileged/host namespaces). [] when compliant. Tests run every rendered pod through it.
 */
export function restrictedProblems(spec: Record<string, unknown>): string[] {
  const out: string[] = [];
  const pod = (spec.securityContext ?? {}) as { runAsNonRoot?: boolean; seccompProfile?: { type?: string } };
  if (spec.hostNetwork || spec.hostPID || spec.hostIPC) out.push('host namespaces');
  for (const c of (spec.containers ?? []) as Array<{ name: string; securityContext?: Record<string, unknown> }>) {
    const sc = (c.securityContext ?? {}) as { runAsNonRoot?: boolean; allowPrivilegeEscalation?: boolean; privileged?: boolean; capabilities?: { drop?: string[]; add?: string[] }; seccompProfile?: { type?: string } };
    if (sc.privileged) out.push(`${c.name}: privileged`);
    if (sc.allowPrivilegeEscalation !== false) out.push(`${c.name}: allowPrivilegeEscalation must be false`);
    if (!sc.capabilities?.drop?.includes('ALL')) out.push(`${c.name}: capabilities must drop ALL`);
    if ((sc.capabilities?.add ?? []).some((a) => a !== 'NET_BIND_SERVICE')) out.push(`${c.name}: only NET_BIND_SERVICE may be added`);
    if ((sc.runAsNonRoot ?? pod.runAsNonRoot) !== true) out.push(`${c.name}: runAsNonRoot must be true`);
    const seccomp = sc.seccompProfile?.type ?? pod.seccompProfile?.type;
    if (seccomp !== 'RuntimeDefault' && seccomp !== 'Localhost') out.push(`${c.name}: seccompProfile must be RuntimeDefault or Localhost`);
  }
  return out;
}

/** Policies in batches of `size`, each batch a List for one server-side apply. */
export function policyBatches<T = NetworkPolicy>(policies: readonly T[], size = POLICY_BATCH_SIZE): T[][] {
  const out: T[][] = [];
  for (let i = 0; i < policies.length; i += size) out.push(policies.slice(i, i + size));
  return out;
}

/** Validates what a run will create; throws ManifestError listing every problem. */
export function validateRunManifests(objs: readonly object[], policies: readonly NetworkPolicy[] = []): void {
  validateManifests([...objs, ...policies]);
}

