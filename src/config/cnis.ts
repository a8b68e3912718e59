// The one CNI catalogue: every data plane `bench` knows, with what the rest of the code asks of it — how it is
// named, where reports list it and in which colour, what kind of data plane it is, what its agent's own metric of a
// policy change is called, and the advice that is its alone. Code that needs to know "which one is the floor" or
// "which ones are Calico's data planes" reads these fields; it never compares CNI names. Besides this file, only the
// local model table (backends/local/models.ts) and the Kubernetes profiles (backends/k8s/cni.ts) know a CNI.

/** The agent's own Prometheus figure for a policy change (enforce on kind/cluster shows it next to the measured time). */
export interface AgentMetric {
  /** A summary or histogram family (its _sum and _count are read). */
  metric: string;
  /** The port the agent serves /metrics on. */
  port: number;
  /** What it measures, in the result's words. */
  meaning: string;
}

/** The kernel a CNI needs, for the report's advice. */
export interface KernelNeeds {
  /** Its documented minimum. */
  minimum: readonly [number, number];
  /** What its newer features want, and which ones. */
  full: readonly [number, number];
  fullFeatures: string;
  /** Said next to the minimum when a kernel is older (distributions with their own floor). */
  minimumNote: string;
}

/** What a catalogue entry says about its CNI (its name is its key). */
interface CniFields {
  /** Short name in results and models ("Calico eBPF"). */
  displayName: string;
  /** Name in report prose, saying what the data plane is ("Calico (eBPF)"). */
  reportName: string;
  /**
   * Where reports list it (ascending): the floor, the CNI without a policy engine, then the policy engines from
   * the one walking the most rules per policy to the hash-map lookup — the order a reader compares them in.
   */
  reportOrder: number;
  /** Its line in the report's charts. */
  chartColor: string;
  /** No CNI at all: the routing floor the others are read against. */
  floor?: boolean;
  /** One of Calico's own data planes (iptables, nftables, eBPF): the choice a Calico user makes. */
  calicoDataPlane?: boolean;
  /** How the data plane finds the policies that apply to a packet: walking them in order, or one hash-map lookup. */
  policyLookup?: 'ordered-ebpf' | 'hash-map';
  /** A policy engine laid over another CNI's network (Canal: Calico's Felix on Flannel's VXLAN): that CNI's name. */
  policyEngineOver?: string;
  /** Its agent's own metric of how long a policy change took (how a cluster serves it: the k8s profile). */
  agentMetric?: AgentMetric;
  /** An ordered eBPF walk split into chained programs: the most programs one chain may hold (the kernel's tail-call limit). */
  programChainLimit?: number;
  /** The report's advice when a run fails with a capacity error on it. */
  capacityAdvice?: string;
  kernel?: KernelNeeds;
}

// Calico's Felix, in every Calico data plane and in Canal: felix_int_dataplane_apply_time_seconds, "Time in seconds
// for each incremental update to the dataplane" (a summary in current Felix, a histogram in older ones: both have
// _sum and _count), served on :9091 (docs.tigera.io reference/felix/prometheus).
const FELIX_METRIC: AgentMetric = {
  metric: 'felix_int_dataplane_apply_time_seconds',
  port: 9091,
  meaning: "Felix's incremental data-plane applies on the server's node (sum of their times over the change)",
};

/** The kernel's 33 tail calls per packet bound the Calico-eBPF walk's chain of policy programs. */
const CALICO_EBPF_CHAIN = 32;

/**
 * Every CNI `bench` knows, in the order flags and messages list them (CNIS). A new CNI is an entry here, a model in
 * backends/local/models.ts (the compiler asks for it) and, to run on kind or a cluster, a profile in
 * backends/k8s/cni.ts.
 */
const ENTRIES = {
  none: { displayName: 'No CNI', reportName: 'No CNI (routing floor)', reportOrder: 0, chartColor: '#7f7f7f', floor: true },
  flannel: { displayName: 'Flannel', reportName: 'Flannel', reportOrder: 1, chartColor: '#e6550d' },
  calico: { displayName: 'Calico', reportName: 'Calico (iptables)', reportOrder: 3, chartColor: '#3182bd', calicoDataPlane: true, agentMetric: FELIX_METRIC },
  cilium: {
    displayName: 'Cilium',
    reportName: 'Cilium',
    reportOrder: 6,
    chartColor: '#2ca25f',
    policyLookup: 'hash-map',
    // "Time between a policy change and it being fully deployed into the datapath", a histogram labelled by source
    // (pkg/metrics, enabled by default); served by the agent on :9962 (docs.cilium.io observability/metrics).
    agentMetric: { metric: 'cilium_policy_implementation_delay', port: 9962, meaning: "Cilium's policy implementation delay on the server's node (policy change → deployed to the datapath)" },
    capacityAdvice: "Real Cilium caps each endpoint's policy map at 16384 entries (`bpf.policyMapMax`); raise it, or write fewer, broader policies (one rule with many ports or peers costs entries too).",
    kernel: { minimum: [5, 4], full: [5, 10], fullFeatures: 'eBPF host routing among them', minimumNote: '4.18 on RHEL 8.6' },
  },
  'calico-ebpf': {
    displayName: 'Calico eBPF',
    reportName: 'Calico (eBPF)',
    reportOrder: 5,
    chartColor: '#6baed6',
    calicoDataPlane: true,
    policyLookup: 'ordered-ebpf',
    agentMetric: FELIX_METRIC,
    programChainLimit: CALICO_EBPF_CHAIN,
    capacityAdvice: `Calico's eBPF data plane walks the policies selecting a pod in a chain of BPF programs, and the kernel's tail-call limit bounds that chain (${CALICO_EBPF_CHAIN} programs here); write fewer, broader policies selecting the pod, or keep pods that need this many on Calico's iptables or nftables data plane.`,
  },
  'calico-nftables': { displayName: 'Calico nftables', reportName: 'Calico (nftables)', reportOrder: 4, chartColor: '#08519c', calicoDataPlane: true, agentMetric: FELIX_METRIC },
  canal: { displayName: 'Canal', reportName: 'Canal (Calico policy on Flannel)', reportOrder: 2, chartColor: '#fd8d3c', policyEngineOver: 'flannel', agentMetric: FELIX_METRIC },
} satisfies Record<string, CniFields>;

export type CniName = keyof typeof ENTRIES;

export interface CniEntry extends Omit<CniFields, 'policyEngineOver'> {
  name: CniName;
  policyEngineOver?: CniName;
}

/** Every CNI's name, in catalogue order. */
export const CNIS = Object.keys(ENTRIES) as [CniName, ...CniName[]];

export const CNI_CATALOGUE: Readonly<Record<CniName, CniEntry>> = Object.fromEntries(CNIS.map((name) => [name, { name, ...ENTRIES[name] } as CniEntry])) as Record<CniName, CniEntry>;

/** Every CNI, in catalogue order (CNIS: how flags and messages list them). */
export const CNI_ENTRIES: readonly CniEntry[] = CNIS.map((c) => CNI_CATALOGUE[c]);

/** Every CNI in the order reports list them. */
export const CNIS_IN_REPORT_ORDER: readonly CniName[] = [...CNI_ENTRIES].sort((a, b) => a.reportOrder - b.reportOrder).map((e) => e.name);

/** The catalogue entry of a name read from a result file (unknown names get a plain entry, listed last, in grey). */
export function cniEntry(name: string): CniEntry {
  return (CNI_CATALOGUE as Partial<Record<string, CniEntry>>)[name] ?? { name: name as CniName, displayName: name, reportName: name, reportOrder: Number.MAX_SAFE_INTEGER, chartColor: '#bdbdbd' };
}
