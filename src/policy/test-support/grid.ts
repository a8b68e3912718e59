// The Kubernetes network-policy conformance grid in miniature: namespaces x, y, z, pods a, b, c in each, every
// pod serving 80 and 81 on TCP, UDP and SCTP under names like serve-80-tcp (as the upstream e2e suite does).
import { ipBlockContains } from '../cidr.js';
import type { Connection } from '../evaluate.js';
import type { ResolvedPolicySet } from '../resolve.js';
import type {
  ContainerPort,
  EndpointDirection,
  Inventory,
  NetworkPolicy,
  PeerMatch,
  PodInfo,
  Protocol,
} from '../types.js';

export const NAMESPACES = ['x', 'y', 'z'] as const;
export const POD_NAMES = ['a', 'b', 'c'] as const;
export const PROTOCOLS: Protocol[] = ['TCP', 'UDP', 'SCTP'];

export function gridPorts(): ContainerPort[] {
  return PROTOCOLS.flatMap((protocol) =>
    [80, 81].map((containerPort) => ({ name: `serve-${containerPort}-${protocol.toLowerCase()}`, containerPort, protocol })),
  );
}

export function gridPod(ns: string, name: string, extra: Partial<PodInfo> = {}): PodInfo {
  const nsIndex = NAMESPACES.indexOf(ns as (typeof NAMESPACES)[number]) + 1;
  const podIndex = POD_NAMES.indexOf(name as (typeof POD_NAMES)[number]) + 1;
  return {
    name,
    namespace: ns,
    labels: { pod: name },
    ip: `10.0.${nsIndex}.${podIndex}`,
    node: `node-${podIndex}`,
    ports: gridPorts(),
    ...extra,
  };
}

/** x, y, z with label ns=<name>; pods a, b, c in each; `extraPods` appended (e.g. a hostNetwork pod). */
export function grid(extraPods: PodInfo[] = []): Inventory {
  return {
    namespaces: NAMESPACES.map((name) => ({ name, labels: { ns: name } })),
    pods: [...NAMESPACES.flatMap((ns) => POD_NAMES.map((p) => gridPod(ns, p))), ...extraPods],
  };
}

export function findPod(inv: Inventory, key: string): PodInfo {
  const [ns, name] = key.split('/');
  const pod = inv.pods.find((p) => p.namespace === ns && p.name === name);
  if (!pod) throw new Error(`no pod ${key} in the test inventory`);
  return pod;
}

export function np(namespace: string, name: string, spec: NetworkPolicy['spec']): NetworkPolicy {
  return { apiVersion: 'networking.k8s.io/v1', kind: 'NetworkPolicy', metadata: { name, namespace }, spec };
}

// ---- an independent reading of the resolved form, to cross-check resolve.ts against evaluate.ts ----

function peerHas(peer: PeerMatch, remote: { ip: string; pod?: PodInfo }): boolean {
  if (peer.kind === 'any') return true;
  if (peer.kind === 'cidr') return ipBlockContains(peer, remote.ip);
  return remote.pod !== undefined && peer.pods.some((p) => p.namespace === remote.pod?.namespace && p.name === remote.pod?.name);
}

function directionAllows(dir: EndpointDirection, remote: { ip: string; pod?: PodInfo }, protocol: Protocol, port: number): boolean {
  if (!dir.isolated) return true;
  return dir.policies.some((pol) =>
    pol.rules.some(
      (r) =>
        r.peers.some((peer) => peerHas(peer, remote)) &&
        (r.ports === 'all' ||
          r.ports.some((pm) => pm.protocol === protocol && (pm.from === undefined || (port >= pm.from && port <= (pm.to ?? pm.from))))),
    ),
  );
}

/** What a compiler that implements the resolved form faithfully would decide (pod endpoints only). */
export function allowedByResolved(set: ResolvedPolicySet, conn: Connection & { src: PodInfo; dst: PodInfo }): boolean {
  const ep = (p: PodInfo) => set.endpoints.find((e) => e.pod.namespace === p.namespace && e.pod.name === p.name);
  const remote = (p: PodInfo) => ({ ip: p.ip, pod: p.hostNetwork ? undefined : p });
  const s = ep(conn.src);
  const d = ep(conn.dst);
  const egressOk = !s || directionAllows(s.egress, remote(conn.dst), conn.protocol, conn.port);
  const ingressOk = !d || directionAllows(d.ingress, remote(conn.src), conn.protocol, conn.port);
  return egressOk && ingressOk;
}
