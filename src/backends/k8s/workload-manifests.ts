// A replayed workload's objects on kind/cluster (./workload-layout.ts decided which pods run), as plain data: every
// workload namespace as the run's own cb-<runId>-<name>, with the workload's labels (so namespaceSelectors on
// them still match) and the run label; each running pod an agnhost pod with the workload pod's labels, one
// container per declared port and protocol serving it, as upstream's netpol e2e model does
// (kubernetes test/e2e/network/netpol/model.go: serve-hostname --tcp/--udp, porter with SERVE_SCTP_PORT_<n> for
// SCTP). A pod that declares no port gets one idle container (`agnhost pause`) to probe from. For `bench run`, the
// measured flows' ends run fortio instead: the destination's port served by `fortio server` (its HTTP echo; every
// other fortio listener disabled, so no port the pod does not declare opens), the source with an idle fortio
// container that `fortio load` is exec'd in (./fortio.ts). Pure.
import { NAMESPACE_NAME_LABEL } from '../../policy/selectors.js';
import type { ContainerPort, NamespaceInfo } from '../../policy/types.js';
import type { WorkloadPod } from '../../workload/workload.js';
import { containerName } from './grid-manifests.js';
import { realNamespace, type GridNames } from './grid-names.js';
import { FORTIO_BIN, FORTIO_CONTAINER, pinToNode, podSecurityLabels } from './manifests.js';
import type { Manifest } from './yaml.js';

/** The container of a pod that declares no port: the probes from it run there. */
export const IDLE_CONTAINER = 'cont-idle';

/** The container a probe from `pod` runs in. */
export const probeContainerOf = (pod: Pick<WorkloadPod, 'ports'>): string => (pod.ports[0] ? containerName(pod.ports[0].containerPort, pod.ports[0].protocol) : IDLE_CONTAINER);

/**
 * Every namespace of the workload (pods or not: policies live in them, selectors match their labels). The name
 * label is left to the API server, which sets it to the real name — the rewritten selectors (./grid-names.ts)
 * name that. Pod Security baseline, as the grid: agnhost serves ports below 1024 (DNS's 53) as root.
 */
export function renderWorkloadNamespaces(namespaces: readonly NamespaceInfo[], names: GridNames): Manifest[] {
  return namespaces.map((n) => {
    const labels = Object.fromEntries(Object.entries(n.labels).filter(([k]) => k !== NAMESPACE_NAME_LABEL));
    return { apiVersion: 'v1', kind: 'Namespace', metadata: { name: realNamespace(names, n.name), labels: { ...labels, ...names.runLabel, ...podSecurityLabels('baseline') } } };
  });
}

/** The measured flows' ends (bench run): `ns/pod:port` served by fortio, `ns/pod` sources with a fortio client. */
export interface FortioEnds {
  image: string;
  servers: ReadonlySet<string>;
  clients: ReadonlySet<string>;
}

/** fortio's listeners other than the HTTP echo, all off (fortio cli/fortio_main.go: each takes "disabled"). */
const FORTIO_OTHERS_OFF = ['-grpc-port', 'disabled', '-redirect-port', 'disabled', '-tcp-port', 'disabled', '-udp-port', 'disabled'];

function fortioServer(cp: ContainerPort, image: string) {
  return {
    name: containerName(cp.containerPort, cp.protocol),
    image,
    imagePullPolicy: 'IfNotPresent',
    command: [FORTIO_BIN],
    args: ['server', '-http-port', String(cp.containerPort), ...FORTIO_OTHERS_OFF],
    ports: [{ ...(cp.name ? { name: cp.name } : {}), containerPort: cp.containerPort, protocol: cp.protocol }],
    securityContext: { allowPrivilegeEscalation: false },
  };
}

/** Idles with no listener at all (the image has no shell; `kubectl exec` needs a live process). */
function fortioClient(image: string) {
  return { name: FORTIO_CONTAINER, image, imagePullPolicy: 'IfNotPresent', command: [FORTIO_BIN], args: ['server', '-http-port', 'disabled', ...FORTIO_OTHERS_OFF], securityContext: { allowPrivilegeEscalation: false } };
}

function serverContainer(cp: ContainerPort, image: string) {
  const sctp = cp.protocol === 'SCTP';
  return {
    name: containerName(cp.containerPort, cp.protocol),
    image,
    imagePullPolicy: 'IfNotPresent',
    command: sctp ? ['/agnhost', 'porter'] : ['/agnhost', 'serve-hostname', cp.protocol === 'UDP' ? '--udp' : '--tcp', '--http=false', '--port', String(cp.containerPort)],
    ...(sctp ? { env: [{ name: `SERVE_SCTP_PORT_${cp.containerPort}`, value: 'foo' }] } : {}),
    ports: [{ ...(cp.name ? { name: cp.name } : {}), containerPort: cp.containerPort, protocol: cp.protocol }],
    securityContext: { allowPrivilegeEscalation: false },
  };
}

/**
 * bench enforce --workload: the watched flows' sources (`ns/pod`) get the run's probe container beside their own
 * (busybox and an emptyDir that cb-probe is copied into, as the synthetic enforce's client pod: ./manifests.ts); it
 * shares the pod's network namespace, so its connects leave from the workload pod.
 */
export interface WatchSources {
  sources: ReadonlySet<string>;
  container: Record<string, unknown>;
  volume: () => Record<string, unknown>;
}

/** The running pods (presence endpoint, not hostNetwork); `nodes[i % nodes.length]` is where workload node i lands. */
export function renderWorkloadPods(pods: readonly WorkloadPod[], names: GridNames, nodes: readonly string[], image: string, fortio?: FortioEnds, watch?: WatchSources): Manifest[] {
  const id = (p: WorkloadPod) => `${p.namespace}/${p.name}`;
  const served = (p: WorkloadPod, cp: ContainerPort) => (cp.protocol === 'TCP' && fortio?.servers.has(`${id(p)}:${cp.containerPort}`) ? fortioServer(cp, fortio.image) : serverContainer(cp, image));
  return pods
    .filter((p) => p.presence === 'endpoint' && !p.hostNetwork)
    .map((p) => ({
      apiVersion: 'v1',
      kind: 'Pod',
      // Exactly the workload pod's labels: its policies select by those.
      metadata: { name: p.name, namespace: realNamespace(names, p.namespace), labels: { ...p.labels } },
      spec: {
        automountServiceAccountToken: false,
        enableServiceLinks: false,
        terminationGracePeriodSeconds: 0,
        affinity: pinToNode(nodes[p.node % nodes.length]!),
        securityContext: { seccompProfile: { type: 'RuntimeDefault' } },
        containers: [
          ...(p.ports.length
            ? p.ports.map((cp) => served(p, cp))
            : [{ name: IDLE_CONTAINER, image, imagePullPolicy: 'IfNotPresent', command: ['/agnhost', 'pause'], securityContext: { allowPrivilegeEscalation: false } }]),
          ...(fortio?.clients.has(id(p)) ? [fortioClient(fortio.image)] : []),
          ...(watch?.sources.has(id(p)) ? [structuredClone(watch.container)] : []),
        ],
        ...(watch?.sources.has(id(p)) ? { volumes: [watch.volume()] } : {}),
      },
    }));
}
