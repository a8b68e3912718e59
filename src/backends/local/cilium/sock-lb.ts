// Cilium's kube-proxy replacement at the socket (bpf/bpf_sock.c), as a socket-level service load balancer of the
// local backend: the encoding of a Service set into the agent's two maps, byte for byte as the C structs of
// cilium/bpf/sock_lb.bpf.c (bpf/lib/lb.h: struct lb4_key, lb4_service, lb4_backend) lay them out.
//
// What the agent writes per ClusterIP port (pkg/loadbalancer, the BPF map writer): a backend entry per distinct
// backend address (backend IDs are global and stable), then one slot entry per backend (backend_slot 1..n →
// backend_id), then the frontend entry (backend_slot 0, count = n); removals in the reverse order, so a connect
// never finds a slot that points nowhere.
//
// The tc path, for what the socket hook does not see: packets that were not sent by a socket of a process in the
// hooked cgroup — traffic forwarded from outside the cgroup, or pods where Cilium runs with
// `socketLB.hostNamespaceOnly` (Istio, KubeVirt) — are translated per packet by bpf_lxc.c's from-container path
// (lb4_lookup_service → lb4_local: DNAT with a CT entry and reverse NAT on replies). This model implements the
// socket path only; a client outside the run's cgroup reaches no Service (its SYN to the ClusterIP has no route
// to answer it), which a test checks.
import { ipv4ToBytes } from '../../../services/bytes.js';
import type { Service, ServiceSet } from '../../../services/types.js';
import type { ServiceDataPlaneKind } from '../service-types.js';
import { encodeServiceSet, IdAllocator, socketLbPlane, type MapEntry, type SocketLbFlavour } from '../socket-lb.js';

/** Cilium's default bpf.lbMapMax: entries of the service and backend maps. */
export const LB_MAP_MAX = 65_536;
const PROTO = { TCP: 6, UDP: 17 } as const;

function lb4Key(addr: string, port: number, slot: number, proto: number): Buffer {
  const b = Buffer.alloc(12);
  ipv4ToBytes(addr).copy(b, 0);
  b.writeUInt16BE(port, 4);
  b.writeUInt16LE(slot, 6);
  b.writeUInt8(proto, 8);
  return b; // scope 0 (LB_LOOKUP_SCOPE_EXT), pad
}

function lb4Service(backendId: number, count: number, revNat: number): Buffer {
  const b = Buffer.alloc(12);
  b.writeUInt32LE(backendId, 0);
  b.writeUInt16LE(count, 4);
  b.writeUInt16LE(revNat, 6);
  return b; // flags, flags2, qcount 0
}

function lb4Backend(addr: string, port: number, proto: number): Buffer {
  const b = Buffer.alloc(12);
  ipv4ToBytes(addr).copy(b, 0);
  b.writeUInt16BE(port, 4);
  b.writeUInt8(proto, 6);
  return b; // flags BE_STATE_ACTIVE, cluster_id 0, zone 0
}

/** One Service's entries: per port, a backend entry per endpoint, its slots 1..n, the frontend (slot 0, count n). */
export function encodeCiliumService(svc: Service, ids: IdAllocator): MapEntry[] {
  const out: MapEntry[] = [];
  for (const port of svc.ports) {
    const proto = PROTO[port.protocol];
    const revNat = ids.id('service', `${svc.clusterIP}:${port.port}/${proto}`);
    svc.endpoints.forEach((ep, i) => {
      const backendId = ids.id('backend', `${ep.ip}:${port.targetPort}/${proto}`);
      const key = Buffer.alloc(4);
      key.writeUInt32LE(backendId);
      out.push({ map: 'lb4_backends', key, value: lb4Backend(ep.ip, port.targetPort, proto), rank: 0 });
      out.push({ map: 'lb4_services', key: lb4Key(svc.clusterIP, port.port, i + 1, proto), value: lb4Service(backendId, 0, revNat), rank: 1 });
    });
    out.push({ map: 'lb4_services', key: lb4Key(svc.clusterIP, port.port, 0, proto), value: lb4Service(0, svc.endpoints.length, revNat), rank: 2 });
  }
  return out;
}

/** The whole set: every Service's entries, a backend shared by Services once. */
export const encodeCiliumServices = (set: ServiceSet, ids: IdAllocator): MapEntry[] => encodeServiceSet(set, encodeCiliumService, ids);

export const ciliumSocketLbFlavour: SocketLbFlavour = {
  name: 'cilium-socket-lb',
  description: "Cilium kube-proxy replacement, socket LB model (bpf_sock.c's connect4/sendmsg4/recvmsg4/getpeername4 on the run's cgroup; lb4 service and backend maps)",
  object: 'sock_lb.bpf.o',
  maps: { lb4_services: LB_MAP_MAX, lb4_backends: LB_MAP_MAX, lb4_reverse_sk: LB_MAP_MAX },
  counters: { map: 'sock_counters', names: ['lookups', 'translated', 'noService', 'noBackend', 'reverseTranslated'] },
  programs: [
    ['cil_sock4_connect', 'connect4'],
    ['cil_sock4_sendmsg', 'sendmsg4'],
    ['cil_sock4_recvmsg', 'recvmsg4'],
    ['cil_sock4_getpeername', 'getpeername4'],
  ],
  pinPrefix: 'sock-',
  encodeService: encodeCiliumService,
  // pkg/loadbalancer/reconciler: the frontends whose objects changed are reconciled, each on its own.
  reconcile: 'per-service',
  capacityHint: (map, size) =>
    `the ${map === 'lb4_backends' ? 'backend' : 'service'} map is full (${size} entries, Cilium's bpf.lbMapMax): a frontend takes 1 + one entry per backend; raise bpf.lbMapMax in a real cluster`,
};

export const ciliumSocketLb: ServiceDataPlaneKind = {
  name: 'cilium-socket-lb',
  description: ciliumSocketLbFlavour.description,
  lookup: 'bpf-map',
  create: (ctx) => socketLbPlane(ciliumSocketLbFlavour, ctx),
};
