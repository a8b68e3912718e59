// What a run or sweep is configured with: names, ranges and defaults in one place. Validation reports every
// problem at once (see load.ts); defaults live here and nowhere else.
import { z } from 'zod';

// The CNIs are the catalogue's (cnis.ts): its entries, in its order.
import { CNIS, type CniName } from './cnis.js';
export { CNIS, type CniName };

export const BACKENDS = ['auto', 'local', 'kind', 'cluster'] as const;
export type BackendChoice = (typeof BACKENDS)[number];
export type BackendName = Exclude<BackendChoice, 'auto'>;

/**
 * Largest policy count a run accepts. The generator gives every filler policy its own TCP port in
 * 10000..(10000+N-1), which must stay below 65536; 50000 also keeps a 10-node local topology within memory.
 */
export const MAX_POLICIES = 50_000;
export const MAX_SAMPLES = 1_000_000;
export const MAX_CONCURRENCY = 64;
/**
 * iptables flavours the Calico-style models write with. nft first: Felix's IptablesBackend=auto picks it on
 * nodes whose kubelet uses iptables-nft (felix/environment/feature_detect_linux.go DetectBackend).
 */
export const IPTABLES_BACKENDS = ['nft', 'legacy'] as const;
export type IptablesBackendName = (typeof IPTABLES_BACKENDS)[number];
export const DEFAULT_IPTABLES_BACKEND: IptablesBackendName = 'nft';
/** Cilium's default bpf.policyMapMax. */
export const DEFAULT_POLICY_MAP_CAPACITY = 16_384;
/** Felix's BPFPolicyDebugEnabled, as the Calico-eBPF model takes it (on by default, as in Felix). */
export const BPF_POLICY_DEBUG = ['on', 'off'] as const;
export type BpfPolicyDebug = (typeof BPF_POLICY_DEBUG)[number];
/** Cilium's bounds for bpf.policyMapMax (pkg/option/config.go PolicyMapMin = 1 << 8, PolicyMapMax = 1 << 16). */
export const POLICY_MAP_CAPACITY_MIN = 1 << 8;
export const POLICY_MAP_CAPACITY_MAX = 1 << 16;

const int = (min: number, max: number) => z.number().int('must be a whole number').min(min).max(max);

/** One run: a single CNI at a single policy count. */
export const runConfigSchema = z
  .object({
    cni: z.enum(CNIS),
    policies: int(0, MAX_POLICIES),
    backend: z.enum(BACKENDS).default('auto'),
    samples: int(1, MAX_SAMPLES).default(10_000),
    warmup: int(0, MAX_SAMPLES).default(1_000),
    concurrency: int(1, MAX_CONCURRENCY).default(1),
    /** Rounds the metrics are measured in, interleaved (unset: the backend's default, 10 on local, 1 on kind/cluster). */
    rounds: int(1, 1000).optional(),
    placement: z.enum(['cross-node', 'same-node']).default('cross-node'),
    matchPosition: z.enum(['first', 'last']).default('last'),
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
    /** Cilium's --enable-endpoint-lockdown-on-policy-overflow (default false, as in Cilium 1.18). */
    endpointLockdownOnPolicyOverflow: z.boolean().default(false),
    /** Calico-eBPF model: Felix's BPFPolicyDebugEnabled (default on, felix/config/config_params.go): a rule-id record per rule. */
    bpfPolicyDebug: z.enum(BPF_POLICY_DEBUG).default('on'),
    /** What a sweep point measures: connection latency (bench run) or time to enforcement (bench enforce). */
    measure: z.enum(['latency', 'enforce']).default('latency'),
    /** Enforce points: repetitions of each change within the point. */
    enforceRepetitions: int(1, 100).default(3),
    out: z.string().min(1).default('results'),
    keep: z.boolean().default(false),
    json: z.boolean().default(false),
    dryRun: z.boolean().default(false),
    context: z.string().min(1).optional(),
    kubeconfig: z.string().min(1).optional(),
  })
  .strict();

export type RunConfig = z.output<typeof runConfigSchema>;
export type RunConfigInput = z.input<typeof runConfigSchema>;

/** Keys a scenario file may set for `bench run`/`bench sweep` (CLI flags use the same names in kebab-case). */
export const scenarioSchema = z
  .object({
    name: z.string().min(1).optional(),
    description: z.string().optional(),
    cni: z.union([z.enum(CNIS), z.array(z.enum(CNIS)).min(1)]).optional(),
    policies: z.union([int(0, MAX_POLICIES), z.array(int(0, MAX_POLICIES)).min(1)]).optional(),
    repetitions: int(1, 100).optional(),
    backend: z.enum(BACKENDS).optional(),
    samples: int(1, MAX_SAMPLES).optional(),
    warmup: int(0, MAX_SAMPLES).optional(),
    concurrency: int(1, MAX_CONCURRENCY).optional(),
    rounds: int(1, 1000).optional(),
    placement: z.enum(['cross-node', 'same-node']).optional(),
    matchPosition: z.enum(['first', 'last']).optional(),
    seed: int(0, 2 ** 31 - 1).optional(),
    timeoutMs: int(10, 60_000).optional(),
    policyMapCapacity: int(POLICY_MAP_CAPACITY_MIN, POLICY_MAP_CAPACITY_MAX).optional(),
    pinCpu: z.union([int(0, 1023), z.enum(['auto', 'off'])]).optional(),
    iptablesBackend: z.enum(IPTABLES_BACKENDS).optional(),
    endpointLockdownOnPolicyOverflow: z.boolean().optional(),
    bpfPolicyDebug: z.enum(BPF_POLICY_DEBUG).optional(),
    measure: z.enum(['latency', 'enforce']).optional(),
    enforceRepetitions: int(1, 100).optional(),
    out: z.string().min(1).optional(),
  })
  .strict();

export type Scenario = z.output<typeof scenarioSchema>;
