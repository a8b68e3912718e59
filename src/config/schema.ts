// What a run or sweep is configured with: names, ranges and defaults in one place. Validation reports every
// problem at once (see load.ts); defaults live here and nowhere else.
import { z } from 'zod';

// The CNIs are the catalogue's (cnis.ts): its entries, in its order.
import { CNIS, KUBE_PROXY_MODES, type CniName, type KubeProxyMode } from './cnis.js';
export { CNIS, KUBE_PROXY_MODES, type CniName, type KubeProxyMode };

export const BACKENDS = ['auto', 'local', 'kind', 'cluster'] as const;
export type BackendChoice = (typeof BACKENDS)[number];
export type BackendName = Exclude<BackendChoice, 'auto'>;

/**
 * Largest policy count a run accepts. The generator gives every filler policy its own TCP port in
 * 10000..(10000+N-1), which must stay below 65536; 50000 also keeps a 10-node local topology within memory.
 */
export const MAX_POLICIES = 50_000;
export const MAX_SAMPLES = 1_000_000;
/** Largest Service count (fillers beside the probed Service): 10.96.0.0/12 holds a million ClusterIPs; 100000 bounds memory. */
export const MAX_SERVICES = 100_000;
export const MAX_ENDPOINTS_PER_SERVICE = 64;
/** On kind/cluster every endpoint is a pod beside the server on its node: E−1 of them stay well under the kubelet's 110 pods a node. */
export const K8S_MAX_ENDPOINTS_PER_SERVICE = 32;
export const MAX_CONCURRENCY = 64;
/**
 * iptables flavours the Calico-style models write with. nft first: Felix's IptablesBackend=auto picks it on
 * nodes whose kubelet uses iptables-nft (felix/environment/feature_detect_linux.go DetectBackend).
 */
export const IPTABLES_BACKENDS = ['nft', 'legacy'] as const;
export type IptablesBackendName = (typeof IPTABLES_BACKENDS)[number];
export const DEFAULT_IPTABLES_BACKEND: IptablesBackendName = 'nft';
/**
 * How the calico-nftables model declares selector sets: 'interval' as Felix v3.30 does (felix/nftables/ipsets.go
 * NFTablesSet gives hash:net sets the interval flag), 'hash' the same /32 members in a plain hash set.
 */
export const NFT_SELECTOR_SETS = ['interval', 'hash'] as const;
export type NftSelectorSets = (typeof NFT_SELECTOR_SETS)[number];
export const DEFAULT_NFT_SELECTOR_SETS: NftSelectorSets = 'interval';
/** Cilium's default bpf.policyMapMax. */
export const DEFAULT_POLICY_MAP_CAPACITY = 16_384;
/** Felix's BPFPolicyDebugEnabled, as the Calico-eBPF model takes it (on by default, as in Felix). */
export const BPF_POLICY_DEBUG = ['on', 'off'] as const;
export type BpfPolicyDebug = (typeof BPF_POLICY_DEBUG)[number];
/** Cilium's bounds for bpf.policyMapMax (pkg/option/config.go PolicyMapMin = 1 << 8, PolicyMapMax = 1 << 16). */
export const POLICY_MAP_CAPACITY_MIN = 1 << 8;
export const POLICY_MAP_CAPACITY_MAX = 1 << 16;

const int = (min: number, max: number) => z.number().int('must be a whole number').min(min).max(max);

/** The policy changes `bench enforce` measures (src/enforce/plan.ts says what each does): the default. */
export const POLICY_CHANGES = ['allow-added', 'allow-removed', 'new-pod', 'peer-joins'] as const;
/** The Service changes `bench enforce --services N` measures (local backend). */
export const SERVICE_CHANGES = ['endpoint-removed', 'endpoint-added', 'service-added'] as const;
export const ENFORCE_CHANGES = [...POLICY_CHANGES, ...SERVICE_CHANGES] as const;
export type EnforceChange = (typeof ENFORCE_CHANGES)[number];
export type ServiceChange = (typeof SERVICE_CHANGES)[number];

/** A sample budget never stops a metric below this many samples (src/run/interleave.ts). */
export const MIN_BUDGET_SAMPLES = 200;

/** The latency metrics a run measures (results/schema.ts's METRICS, named here so config need not import results). */
export const LATENCY_METRICS = ['connect', 'crr', 'rr'] as const;

/** One run: a single CNI at a single policy count. */
export const runConfigSchema = z
  .object({
    cni: z.enum(CNIS),
    policies: int(0, MAX_POLICIES).default(0),
    backend: z.enum(BACKENDS).default('auto'),
    samples: int(1, MAX_SAMPLES).default(10_000),
    warmup: int(0, MAX_SAMPLES).default(1_000),
    concurrency: int(1, MAX_CONCURRENCY).default(1),
    /**
     * A metric stops sampling once it has measured this long (ms), never below 200 samples (unset: every sample);
     * set from its first round's time per operation, so it needs rounds > 1 (src/run/interleave.ts).
     */
    sampleBudgetMs: int(1, 3_600_000).optional(),
    /**
     * The latency metrics measured (unset: all three). An adaptive sweep's extension batch measures only the metrics
     * whose verdicts are still open (src/sweep/adaptive.ts); CPU per connection and p99 come with connect.
     */
    metrics: z.array(z.enum(LATENCY_METRICS)).min(1).optional(),
    /** Rounds the metrics are measured in, interleaved (unset: the backend's default, 10 on local, 1 on kind/cluster). */
    rounds: int(1, 1000).optional(),
    placement: z.enum(['cross-node', 'same-node']).default('cross-node'),
    matchPosition: z.enum(['first', 'last']).default('last'),
    /**
     * Local backend: N ClusterIP Services beside the probed one, the client connecting to the probed Service's
     * ClusterIP (unset: no Service, the client connects to the server pod's address, as before Services existed).
     */
    services: int(0, MAX_SERVICES).optional(),
    /** Endpoints of each filler Service (address-only, as kube-proxy's scale tests use). */
    endpointsPerService: int(1, MAX_ENDPOINTS_PER_SERVICE).default(1),
    /** Where the probed Service sits in the order a rule-walking proxier writes KUBE-SERVICES: last (worst) or first. */
    servicePosition: z.enum(['first', 'last']).default('last'),
    /** kube-proxy's mode beside CNIs that run with kube-proxy (unset: the CNI's default; refused where the CNI replaces it). */
    kubeProxy: z.enum(KUBE_PROXY_MODES).optional(),
    seed: int(0, 2 ** 31 - 1).default(1),
    timeoutMs: int(10, 60_000).default(1_000),
    policyMapCapacity: int(POLICY_MAP_CAPACITY_MIN, POLICY_MAP_CAPACITY_MAX).default(DEFAULT_POLICY_MAP_CAPACITY),
    /**
     * Local backend: where the probe client, server and the veths' softirq work run. 'auto' (default) puts them
     * on one CPU chosen by bench; a number puts them on that CPU; 'off' leaves placement to the scheduler.
     */
    pinCpu: z.union([int(0, 1023), z.enum(['auto', 'off'])]).default('auto'),
    /** Calico-style models (calico, canal): which iptables flavour Felix writes with. */
    iptablesBackend: z.enum(IPTABLES_BACKENDS).default(DEFAULT_IPTABLES_BACKEND),
    /** calico-nftables model: selector sets with Felix's interval flag, or plain hash sets. */
    nftSelectorSets: z.enum(NFT_SELECTOR_SETS).default(DEFAULT_NFT_SELECTOR_SETS),
    /** Cilium's --enable-endpoint-lockdown-on-policy-overflow (default false, as in Cilium 1.18). */
    endpointLockdownOnPolicyOverflow: z.boolean().default(false),
    /** Calico-eBPF model: Felix's BPFPolicyDebugEnabled (default on, felix/config/config_params.go): a rule-id record per rule. */
    bpfPolicyDebug: z.enum(BPF_POLICY_DEBUG).default('on'),
    /** What a sweep point measures: connection latency (bench run) or time to enforcement (bench enforce). */
    measure: z.enum(['latency', 'enforce']).default('latency'),
    /** Enforce: repetitions of each change within the point. */
    enforceRepetitions: int(1, 1000).default(3),
    /** Enforce: the changes measured, in any order (they run in changeOrder); unset: the policy changes (and with --services the Service changes too). */
    changes: z.array(z.enum(ENFORCE_CHANGES)).min(1).default([...POLICY_CHANGES]),
    /** Enforce: probe cadence, µs. ≤ 1 ms is the point; below 100 µs the probe's own connects start to load a small machine. */
    intervalUs: int(100, 1000).default(1000),
    /** Enforce: each probe's timeout, ms; 'auto': 5 × the p99 of an allowed connect measured first, at least 10 ms. */
    probeTimeoutMs: z.union([int(1, 10_000), z.enum(['auto'])]).default('auto'),
    /** Enforce: the longest wait for a change to be seen, ms. */
    deadlineMs: int(100, 600_000).default(10_000),
    /** Enforce: consecutive probes with the new verdict that count as enforced. */
    settle: int(1, 1000).default(5),
    out: z.string().min(1).default('results'),
    keep: z.boolean().default(false),
    json: z.boolean().default(false),
    dryRun: z.boolean().default(false),
    context: z.string().min(1).optional(),
    kubeconfig: z.string().min(1).optional(),
    /** A cluster-shaped workload (src/workload/load.ts): a kubectl List snapshot or a generated shape. */
    workload: z.string().min(1).optional(),
  })
  .strict();

export type RunConfig = z.output<typeof runConfigSchema>;
export type RunConfigInput = z.input<typeof runConfigSchema>;

const settings = runConfigSchema.shape;
/** A setting as a scenario gives it: its rule without the default (an absent key is left to the flags, then the defaults). */
const given = <T extends z.ZodType>(schema: T) => (schema instanceof z.ZodDefault ? (schema.unwrap() as z.ZodType) : schema).optional();
/** The settings a scenario file may set, with the run config's own rules (no second copy of any range). */
const SCENARIO_SETTINGS = ['backend', 'samples', 'sampleBudgetMs', 'warmup', 'concurrency', 'rounds', 'placement', 'matchPosition', 'endpointsPerService', 'servicePosition', 'kubeProxy', 'seed', 'timeoutMs', 'policyMapCapacity', 'pinCpu', 'iptablesBackend', 'nftSelectorSets', 'endpointLockdownOnPolicyOverflow', 'bpfPolicyDebug', 'measure', 'enforceRepetitions', 'intervalUs', 'probeTimeoutMs', 'deadlineMs', 'settle', 'out', 'workload'] as const;

/** Keys a scenario file may set for `bench run`/`bench sweep` (CLI flags use the same names in kebab-case). */
export const scenarioSchema = z
  .object({
    name: z.string().min(1).optional(),
    description: z.string().optional(),
    cni: z.union([settings.cni, z.array(settings.cni).min(1)]).optional(),
    policies: z.union([int(0, MAX_POLICIES), z.array(int(0, MAX_POLICIES)).min(1)]).optional(),
    services: z.union([int(0, MAX_SERVICES), z.array(int(0, MAX_SERVICES)).min(1)]).optional(),
    /** bench sweep: a fixed count, or 'auto' (adaptive repetitions, up to maxRepetitions). */
    repetitions: z.union([int(1, 100), z.literal('auto')]).optional(),
    maxRepetitions: int(2, 100).optional(),
    ...(Object.fromEntries(SCENARIO_SETTINGS.map((k) => [k, given(settings[k])])) as { [K in (typeof SCENARIO_SETTINGS)[number]]: z.ZodOptional<z.ZodType<z.output<(typeof settings)[K]> extends infer O ? Exclude<O, undefined> : never>> }),
  })
  .strict();

export type Scenario = z.output<typeof scenarioSchema>;
