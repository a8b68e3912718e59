// Flannel's bridge model keeps its gateway and pod neighbours as permanent entries. Every node of the local backend
// shares one kernel, and the kernel's ARP table is one table for every network namespace: gc_thresh3 (1024 by
// default, a host setting this project does not touch) caps the dynamic entries of all of them together. A real
// node has that table to itself and ~110 pods at most, but twelve replayed nodes with 479 endpoints held about two
// dynamic entries per pod (each pod's gateway, the node's entry for each pod) plus one per same-node peer, filled
// the table (`ip -s ntable show name arp_cache`: table_fulls) and dropped a sixth of the probed connections on a
// data plane that enforces nothing. So the cni0 bridge and every pod's eth0 get addresses fixed by their names,
// each pod holds a permanent entry for its gateway and each node one for each of its pods; pods on one node still
// resolve each other dynamically, as on a real cni0. (Felix writes the routed models' node-side entries as static
// ARP too: felix/routetable/route_table.go, "Add static ARP entries (for workload endpoints)".)
import { createHash } from 'node:crypto';

/** A locally administered unicast MAC derived from a name (a namespace's, which carries the run id). */
export function stableMac(name: string): string {
  const h = createHash('sha256').update(name).digest();
  const bytes = [0x0a, h[0]!, h[1]!, h[2]!, h[3]!, h[4]!];
  return bytes.map((b) => b.toString(16).padStart(2, '0')).join(':');
}

/** cni0's address on a node (fixed: a bridge otherwise takes its lowest port's, which changes as pods come). */
export const bridgeMac = (nodeNetns: string) => stableMac(`${nodeNetns}/cni0`);

/** A bridged pod's eth0 address. */
export const podMac = (podNetns: string) => stableMac(`${podNetns}/eth0`);

/** The pod's own permanent entry for its gateway (cni0's address), as `ip -n <pod>` arguments. */
export const gatewayNeighbour = (gateway: string, nodeNetns: string): string[] => ['neigh', 'add', gateway, 'lladdr', bridgeMac(nodeNetns), 'dev', 'eth0', 'nud', 'permanent'];

/** The node's permanent entry for one of its pods on cni0, as `ip -n <node>` arguments. */
export const podNeighbour = (podIp: string, podNetns: string): string[] => ['neigh', 'add', podIp, 'lladdr', podMac(podNetns), 'dev', 'cni0', 'nud', 'permanent'];
