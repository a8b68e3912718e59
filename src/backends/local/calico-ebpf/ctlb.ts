// Calico eBPF's connect-time load balancer (felix/bpf-gpl/connect_balancer.c) as a socket-level service load
// balancer of the local backend: the encoding of a Service set into Felix's NAT maps, byte for byte as
// felix/bpf/nat/maps.go lays them out (NewNATKeySrc, NewNATValue, NewNATBackendKey, NewNATBackendValue) and
// calico-ebpf/bpf/ctlb.bpf.c reads them.
//
// Per ClusterIP port, Felix's kube-proxy replacement (felix/bpf/proxy) writes the back-end entries (id, ordinal
// 0..n-1) → (pod ip, port), then the front-end entry (ClusterIP, port, proto, any source: prefix 56) → (id,
// count); removals the other way round. These are the same maps the tc programs use for per-packet NAT of what the
// cgroup hook does not see (traffic from outside the node's cgroup: host-networked processes outside it, packets
// from other nodes to a NodePort) — not modelled here: this model has the connect-time path only.
import { ipv4ToBytes } from '../../../services/bytes.js';
import type { Service, ServiceSet } from '../../../services/types.js';
import type { ServiceDataPlaneKind } from '../service-types.js';
import { encodeServiceSet, IdAllocator, socketLbPlane, type MapEntry, type SocketLbFlavour } from '../socket-lb.js';

/** felix/bpf/nat/maps.go ZeroCIDRPrefixLen: dst addr + port + proto, any source. */
const ZERO_CIDR_PREFIX_LEN = 56;
const FE_MAX = 64 * 1024;
const BE_MAX = 256 * 1024;
const PROTO = { TCP: 6, UDP: 17 } as const;

function feKey(addr: string, port: number, proto: number): Buffer {
  const b = Buffer.alloc(16);
  b.writeUInt32LE(ZERO_CIDR_PREFIX_LEN, 0);
  ipv4ToBytes(addr).copy(b, 4);
  b.writeUInt16LE(port, 8);
  b.writeUInt8(proto, 10);
  return b; // src 0.0.0.0/0, pad
}

function feValue(id: number, count: number, local: number): Buffer {
  const b = Buffer.alloc(20);
  b.writeUInt32LE(id, 0);
  b.writeUInt32LE(count, 4);
  b.writeUInt32LE(local, 8);
  return b; // affinity timeout 0, flags 0
}

function beKey(id: number, ordinal: number): Buffer {
  const b = Buffer.alloc(8);
  b.writeUInt32LE(id, 0);
  b.writeUInt32LE(ordinal, 4);
  return b;
}

function beValue(addr: string, port: number): Buffer {
  const b = Buffer.alloc(8);
  ipv4ToBytes(addr).copy(b, 0);
  b.writeUInt16LE(port, 4);
  return b;
}

/** One Service's entries: per port, the back-end entries (id, ordinal) and the front-end entry. */
export function encodeCalicoNatService(svc: Service, ids: IdAllocator): MapEntry[] {
  const out: MapEntry[] = [];
  for (const port of svc.ports) {
    const proto = PROTO[port.protocol];
    const id = ids.id('service', `${svc.clusterIP}:${port.port}/${proto}`);
    svc.endpoints.forEach((ep, i) => out.push({ map: 'cali_v4_nat_be', key: beKey(id, i), value: beValue(ep.ip, port.targetPort), rank: 0 }));
    out.push({ map: 'cali_v4_nat_fe', key: feKey(svc.clusterIP, port.port, proto), value: feValue(id, svc.endpoints.length, 0), rank: 1 });
  }
  return out;
}

export const encodeCalicoNat = (set: ServiceSet, ids: IdAllocator): MapEntry[] => encodeServiceSet(set, encodeCalicoNatService, ids);

export const calicoCtlbFlavour: SocketLbFlavour = {
  name: 'calico-ctlb',
  description: "Calico eBPF connect-time load balancer model (connect_balancer.c's connect4/sendmsg4/recvmsg4 on the run's cgroup; NAT front-end LPM and back-end maps)",
  object: 'ctlb.bpf.o',
  maps: { cali_v4_nat_fe: FE_MAX, cali_v4_nat_be: BE_MAX, cali_v4_ct_nats: 10_000, cali_v4_srmsg: 510_000 },
  counters: { map: 'ctlb_counters', names: ['lookups', 'translated', 'noService', 'noBackend', 'reverseTranslated'] },
  programs: [
    ['calico_connect_v4', 'connect4'],
    ['calico_sendmsg_v4', 'sendmsg4'],
    ['calico_recvmsg_v4', 'recvmsg4'],
  ],
  pinPrefix: 'ctlb-',
  encodeService: encodeCalicoNatService,
  // felix/bpf/proxy/syncer.go apply(): every sync re-renders all Services into the desired maps (v3.30, v3.31).
  reconcile: 'whole-set',
  capacityHint: (map, size) => `Felix's NAT ${map === 'cali_v4_nat_be' ? 'back-end' : 'front-end'} map is full (${size} entries; BPFMapSizeNAT${map === 'cali_v4_nat_be' ? 'Backend' : 'Frontend'} in a real cluster)`,
};

export const calicoCtlb: ServiceDataPlaneKind = {
  name: 'calico-ctlb',
  description: calicoCtlbFlavour.description,
  lookup: 'bpf-map',
  create: (ctx) => socketLbPlane(calicoCtlbFlavour, ctx),
};
