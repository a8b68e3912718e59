// The one CNI catalogue: every data plane `bench` knows, in the order results and reports list them, with how
// they are named and what kind of data plane each is. Code that needs to know "which one is the floor" or
// "which ones are Calico's data planes" reads these flags; it never compares CNI names.
import { CNIS, type CniName } from './schema.js';

export interface CniEntry {
  name: CniName;
  /** Short name in results and models ("Calico eBPF"). */
  displayName: string;
  /** Name in report prose, saying what the data plane is ("Calico (eBPF)"). */
  reportName: string;
  /** No CNI at all: the routing floor the others are read against. */
  floor?: boolean;
  /** One of Calico's own data planes (iptables, nftables, eBPF): the choice a Calico user makes. */
  calicoDataPlane?: boolean;
  /** How the data plane finds the policies that apply to a packet: walking them in order, or one hash-map lookup. */
  policyLookup?: 'ordered-ebpf' | 'hash-map';
  /** A policy engine laid over another CNI's network (Canal: Calico's Felix on Flannel's VXLAN). */
  policyEngineOver?: CniName;
}

export const CNI_CATALOGUE: Readonly<Record<CniName, CniEntry>> = {
  none: { name: 'none', displayName: 'No CNI', reportName: 'No CNI (routing floor)', floor: true },
  flannel: { name: 'flannel', displayName: 'Flannel', reportName: 'Flannel' },
  calico: { name: 'calico', displayName: 'Calico', reportName: 'Calico (iptables)', calicoDataPlane: true },
  cilium: { name: 'cilium', displayName: 'Cilium', reportName: 'Cilium', policyLookup: 'hash-map' },
  'calico-ebpf': { name: 'calico-ebpf', displayName: 'Calico eBPF', reportName: 'Calico (eBPF)', calicoDataPlane: true, policyLookup: 'ordered-ebpf' },
  'calico-nftables': { name: 'calico-nftables', displayName: 'Calico nftables', reportName: 'Calico (nftables)', calicoDataPlane: true },
  canal: { name: 'canal', displayName: 'Canal', reportName: 'Canal (Calico policy on Flannel)', policyEngineOver: 'flannel' },
};

/** Every CNI, in catalogue order (CNIS). */
export const CNI_ENTRIES: readonly CniEntry[] = CNIS.map((c) => CNI_CATALOGUE[c]);

/** The catalogue entry of a name read from a result file (unknown names get a plain entry). */
export function cniEntry(name: string): CniEntry {
  return (CNI_CATALOGUE as Partial<Record<string, CniEntry>>)[name] ?? { name: name as CniName, displayName: name, reportName: name };
}
