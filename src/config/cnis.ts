// The one CNI catalogue: every data plane `bench` knows, with what the rest of the code asks of it — how it is
// named, where reports list it and in which colour, what kind of data plane it is, what a policy set means on it,
// what its agent's own metric of a policy change is called, and the advice that is its alone. Code that needs to
// know "which one is the floor" or "which ones are Calico's data planes" reads these fields; it never compares CNI
// names. Besides this file, only the local model table (backends/local/models.ts) and the Kubernetes profiles
// (backends/k8s/cni.ts) know a CNI.
import type { Protocol } from '../policy/types.js';

/** The agent's own Prometheus figure for a policy change (enforce on kind/cluster shows it next to the measured time). */
export interface AgentMetric {
  /** A summary or histogram family (its _sum and _count are read). */
  metric: string;
  /** The port the agent serves /metrics on. */
  port: number;
  /** What it measures, in the result's words. */
  meaning: string;
}

/** What a policy set means on a data plane, where the NetworkPolicy spec leaves room (workload/semantics.ts reads it). */
export interface PolicySemantics {
  /** Does the data plane enforce NetworkPolicy at all? */
  enforces: boolean;
  /**
   * What an ipBlock peer matches: every address inside it, pod and node addresses included (the spec leaves pod
   * addresses to the implementation; Calico matches them), or only addresses outside the cluster (Cilium).
   */
  ipBlockSelects: 'any-address' | 'outside-cluster';
  /** Protocols whose NetworkPolicy rules the data plane does not implement: no documented expectation there. */
  unsupportedProtocols: readonly Protocol[];
  /** One line for reports. */
  summary: string;
  /** Where the semantics are documented. */
  sources: readonly string[];
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

/** kube-proxy's modes a CNI can run beside. IPVS is left out: deprecated since v1.35 (KEP-5495), nftables is its named replacement. */
export const KUBE_PROXY_MODES = ['iptables', 'nftables'] as const;
export type KubeProxyMode = (typeof KUBE_PROXY_MODES)[number];

/**
 * Who translates a ClusterIP beside this CNI: kube-proxy in one of the modes it allows (the first is the default), or
 * the CNI itself (`plane`: the name results give its service data plane, the local model's name for it).
 */
export type ServiceProxy = { kind: 'kube-proxy'; modes: readonly [KubeProxyMode, ...KubeProxyMode[]]; why?: string } | { kind: 'replaces-kube-proxy'; by: string; plane: string };

const KUBE_PROXY_ANY: ServiceProxy = { kind: 'kube-proxy', modes: ['iptables', 'nftables'] };

/** Settings that belong to one data plane's agent; a run of another CNI ignores them (and so refuses them). */
export const DATA_PLANE_SETTINGS = ['iptablesBackend', 'nftSelectorSets', 'policyMapCapacity', 'endpointLockdownOnPolicyOverflow', 'bpfPolicyDebug'] as const;
export type DataPlaneSetting = (typeof DATA_PLANE_SETTINGS)[number];

/** What a catalogue entry says about its CNI (its name is its key). */
interface CniFields {
  /** The data-plane settings its agent (and our model of it) reads. */
  settings?: readonly DataPlaneSetting[];
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
  /** The report's advice when a run fails with a capacity error on it. */
  capacityAdvice?: string;
  kernel?: KernelNeeds;
  /** Its documented NetworkPolicy semantics (the expected verdicts of a workload's flows). */
  policySemantics: PolicySemantics;
  /** How Services are translated beside it (`--kube-proxy` is checked against this). */
  serviceProxy: ServiceProxy;
}

// Calico's Felix, in every Calico data plane and in Canal: felix_int_dataplane_apply_time_seconds, "Time in seconds
// for each incremental update to the dataplane" (a summary in current Felix, a histogram in older ones: both have
// _sum and _count), served on :9091 (docs.tigera.io reference/felix/prometheus).
const FELIX_METRIC: AgentMetric = {
  metric: 'felix_int_dataplane_apply_time_seconds',
  port: 9091,
  meaning: "Felix's incremental data-plane applies on the server's node (sum of their times over the change)",
};

const CALICO_SEMANTICS: PolicySemantics = {
  enforces: true,
  ipBlockSelects: 'any-address',
  unsupportedProtocols: [],
  summary: 'as the NetworkPolicy spec says; an ipBlock matches every address in it, pod addresses included',
  sources: ['an ipBlock becomes plain source/destination nets and notNets, matched on any address (libcalico-go/lib/backend/k8s/conversion/conversion.go k8sPeerToCalicoFields, v3.30.3); the reference evaluator follows it (src/policy/evaluate.ts)'],
};
const notEnforced = (what: string): PolicySemantics => ({
  enforces: false,
  ipBlockSelects: 'any-address',
  unsupportedProtocols: [],
  summary: `${what}: NetworkPolicy is accepted by the API server and has no effect`,
  sources: ['no policy engine in the data plane (see the README, "The local models")'],
});

/**
 * Every CNI `bench` knows, in the order flags and messages list them (CNIS). A new CNI is an entry here, a model in
 * backends/local/models.ts (the compiler asks for it) and, to run on kind or a cluster, a profile in
 * backends/k8s/cni.ts.
 */
const ENTRIES = {
  none: { displayName: 'No CNI', reportName: 'No CNI (routing floor)', reportOrder: 0, chartColor: '#7f7f7f', floor: true, policySemantics: notEnforced('no CNI'), serviceProxy: KUBE_PROXY_ANY },
  flannel: { displayName: 'Flannel', reportName: 'Flannel', reportOrder: 1, chartColor: '#e6550d', policySemantics: notEnforced('Flannel has no policy engine'), serviceProxy: KUBE_PROXY_ANY },
  calico: { displayName: 'Calico', reportName: 'Calico (iptables)', reportOrder: 3, chartColor: '#3182bd', calicoDataPlane: true, settings: ['iptablesBackend'], agentMetric: FELIX_METRIC, policySemantics: CALICO_SEMANTICS, serviceProxy: KUBE_PROXY_ANY },
  cilium: {
    displayName: 'Cilium',
    reportName: 'Cilium',
    reportOrder: 6,
    chartColor: '#2ca25f',
    policyLookup: 'hash-map',
    settings: ['policyMapCapacity', 'endpointLockdownOnPolicyOverflow'],
    // "Time between a policy change and it being fully deployed into the datapath", a histogram labelled by source
    // (pkg/metrics, enabled by default); served by the agent on :9962 (docs.cilium.io observability/metrics).
    agentMetric: { metric: 'cilium_policy_implementation_delay', port: 9962, meaning: "Cilium's policy implementation delay on the server's node (policy change → deployed to the datapath)" },
    capacityAdvice: "Real Cilium caps each endpoint's policy map at 16384 entries (`bpf.policyMapMax`); raise it, or write fewer, broader policies (one rule with many ports or peers costs entries too).",
    kernel: { minimum: [5, 4], full: [5, 10], fullFeatures: 'eBPF host routing among them', minimumNote: '4.18 on RHEL 8.6' },
    serviceProxy: { kind: 'replaces-kube-proxy', by: 'with its socket-level load balancer at connect() (kube-proxy replacement)', plane: 'cilium-socket-lb' },
    policySemantics: {
      enforces: true,
      ipBlockSelects: 'outside-cluster',
      unsupportedProtocols: ['SCTP'],
      summary: 'an ipBlock never selects a pod or a node (hostNetwork pods included); SCTP rules are not implemented',
      sources: [
        'cilium/cilium Documentation/security/policy/language.rst, "IP/CIDR based": CIDR rules do not apply to traffic where both sides are managed by Cilium or use a node IP (including host-networking pods); nodes only with --policy-cidr-match-mode=nodes',
        'cilium/cilium Documentation/network/kubernetes/policy.rst, "NetworkPolicy": known missing features: ipBlock set with a pod IP (GH-9209), SCTP (GH-5719)',
      ],
    },
  },
  'calico-ebpf': {
    displayName: 'Calico eBPF',
    reportName: 'Calico (eBPF)',
    reportOrder: 5,
    chartColor: '#6baed6',
    calicoDataPlane: true,
    policyLookup: 'ordered-ebpf',
    settings: ['bpfPolicyDebug'],
    agentMetric: FELIX_METRIC,
    policySemantics: CALICO_SEMANTICS,
    serviceProxy: { kind: 'replaces-kube-proxy', by: 'with its connect-time load balancer and NAT maps', plane: 'calico-ctlb' },
    capacityAdvice: "Calico's eBPF data plane walks the policies selecting a pod in a chain of BPF programs, and Felix bounds that chain (24 programs, MaxSubPrograms); write fewer, broader policies selecting the pod, or keep pods that need this many on Calico's iptables or nftables data plane.",
  },
  'calico-nftables': {
    displayName: 'Calico nftables',
    reportName: 'Calico (nftables)',
    reportOrder: 4,
    chartColor: '#08519c',
    calicoDataPlane: true,
    settings: ['nftSelectorSets'],
    agentMetric: FELIX_METRIC,
    policySemantics: CALICO_SEMANTICS,
    // docs.tigera.io calico/latest/operations/nftables: "kube-proxy must be running in nftables mode".
    serviceProxy: { kind: 'kube-proxy', modes: ['nftables'], why: "Calico's nftables data plane requires kube-proxy in nftables mode" },
  },
  canal: {
    displayName: 'Canal',
    reportName: 'Canal (Calico policy on Flannel)',
    reportOrder: 2,
    chartColor: '#fd8d3c',
    policyEngineOver: 'flannel',
    settings: ['iptablesBackend'],
    agentMetric: FELIX_METRIC,
    policySemantics: { ...CALICO_SEMANTICS, sources: [...CALICO_SEMANTICS.sources, "Canal enforces with Calico's Felix"] },
    serviceProxy: KUBE_PROXY_ANY,
  },
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
  return (CNI_CATALOGUE as Partial<Record<string, CniEntry>>)[name] ?? { name: name as CniName, displayName: name, reportName: name, reportOrder: Number.MAX_SAFE_INTEGER, chartColor: '#bdbdbd', policySemantics: notEnforced(`${name} (not in this version's catalogue)`), serviceProxy: KUBE_PROXY_ANY };
}

/** Why `mode` cannot run beside `cni` (the refusal's words, without the value), or undefined when it can. */
export function kubeProxyMismatch(cni: CniName, mode: KubeProxyMode): string | undefined {
  const p = cniEntry(cni).serviceProxy;
  if (p.kind === 'replaces-kube-proxy') return `${cni} replaces kube-proxy ${p.by}: no kube-proxy mode applies; leave --kube-proxy out`;
  if (!p.modes.includes(mode)) return `${cni} runs beside kube-proxy in ${p.modes.join(' or ')} mode only${p.why ? ` (${p.why})` : ''}`;
  return undefined;
}

/** The kube-proxy mode a run of `cni` uses: the one asked for, else the CNI's default; undefined where the CNI replaces kube-proxy. */
export function kubeProxyModeOf(cni: CniName, asked?: KubeProxyMode): KubeProxyMode | undefined {
  const p = cniEntry(cni).serviceProxy;
  return p.kind === 'kube-proxy' ? (asked ?? p.modes[0]) : undefined;
}
