// The result file: one run, raw samples and their summary, everything needed to recompute any statistic and
// to know what ran where. Validated on read so a truncated or foreign file gives a clear error.
import { z } from 'zod';
import { BACKENDS, CNIS, LATENCY_METRICS } from '../config/schema.js';
import { BenchError, ERROR_KINDS, errorKind, type ErrorKind } from '../errors.js';
import type { Stability } from '../stats/stability.js';

export const RESULT_SCHEMA_VERSION = 1;
export const RESULT_KIND = 'cni-bench/run-result';

// Files written before the error vocabulary recorded a class name or an ad-hoc tag; they read as the kind it meant.
// Error classes that carry such a tag and do not extend BenchError yet are recorded through the same table.
const LEGACY_ERROR_KINDS: Record<string, ErrorKind> = {
  CommandError: 'command',
  CapacityError: 'capacity',
  PolicyMapCapacityError: 'capacity',
  PolicyProgramCapacityError: 'capacity',
  SlotExhaustedError: 'capacity',
  K8sStepError: 'k8s-step',
  ManifestError: 'manifest',
  ProbeError: 'probe',
  FortioOutputError: 'probe',
  'fortio-output': 'probe',
  ClusterTargetError: 'usage',
  EnforceUnsupportedError: 'usage',
  unsupported: 'usage',
  ConfigError: 'usage',
  CidrError: 'usage',
  PolicyShapeError: 'usage',
  ResultFileError: 'usage',
  SweepFileError: 'usage',
  VerifyAborted: 'interrupted',
  AbortError: 'interrupted',
};
const isErrorKind = (v: unknown): v is ErrorKind => (ERROR_KINDS as readonly unknown[]).includes(v);
const errorKindSchema = z.preprocess((v) => (typeof v === 'string' && !isErrorKind(v) ? (LEGACY_ERROR_KINDS[v] ?? 'internal') : v), z.enum(ERROR_KINDS));

/** errorKind(), and for an error that is no BenchError the kind its tag or class name stands for. */
function kindOf(e: unknown): ErrorKind {
  const kind = errorKind(e);
  if (kind !== 'internal' || e instanceof BenchError || !(e instanceof Error)) return kind;
  const tag = (e as { kind?: unknown }).kind;
  if (isErrorKind(tag)) return tag;
  return (typeof tag === 'string' ? LEGACY_ERROR_KINDS[tag] : undefined) ?? LEGACY_ERROR_KINDS[e.name] ?? 'internal';
}

/** A failure as a result file (run, enforce, sweep point) records it: the stage it stopped in, what it said, its kind. */
export const errorRecordSchema = z.object({ stage: z.string(), message: z.string(), kind: errorKindSchema.optional() });
export type ErrorRecord = z.output<typeof errorRecordSchema>;

/**
 * The record of a failure in `stage`. When the run was being stopped (`interrupted`), the stage and the kind say
 * so, whatever error the stop surfaced as (a killed command, an aborted wait).
 */
export function errorRecord(stage: string, e: unknown, opts: { interrupted?: boolean } = {}): ErrorRecord {
  const message = e instanceof Error ? e.message : String(e);
  return opts.interrupted ? { stage: 'interrupted', message, kind: 'interrupted' } : { stage, message, kind: kindOf(e) };
}

const pair = z.tuple([z.number(), z.number()]);
// JSON has no NaN: an empty distribution's fields are written as null.
const num = z.number().nullable();

export const summarySchema = z.object({
  count: z.number().int(),
  min: num,
  max: num,
  mean: num,
  p50: num,
  p90: num,
  p99: num,
  p999: num,
  ci95: z.object({ p50: z.tuple([num, num]), p99: z.tuple([num, num]) }),
});

export const METRICS = LATENCY_METRICS;
export type MetricName = (typeof METRICS)[number];
/** Stored like the latency metrics (samplesNs + summary) so generic analysis, reports and compare pick them up. */
export const ENFORCE_METRICS = [
  'enforce_allow_added',
  'enforce_allow_removed',
  'enforce_new_pod',
  'enforce_peer_joins',
  'failopen_allow_removed',
  'failopen_new_pod',
  // bench enforce --services: time to program a Service change, and endpoint-removed's blackhole window.
  'enforce_endpoint_removed',
  'enforce_endpoint_added',
  'enforce_service_added',
  'blackhole_endpoint_removed',
] as const;
export type EnforceMetricName = (typeof ENFORCE_METRICS)[number];

/** Is the run's distribution one steady mode? (fields: Stability in src/stats/stability.ts) Absent in files written before it existed. */
export const stabilitySchema = z.object({
  modesNs: z.array(z.number()),
  halvesShift: z.number().nullable(),
  multimodal: z.boolean(),
  shifted: z.boolean(),
  flagged: z.boolean(),
  reason: z.string(),
}) satisfies z.ZodType<Stability>;

/** Where client, server and packet processing ran, and why (absent in files written before it existed). */
export const cpuPlacementSchema = z.object({
  /** auto: chosen by bench; explicit: --pin-cpu N; off: left to the scheduler; n/a: backend does not place. */
  mode: z.enum(['auto', 'explicit', 'off', 'n/a']),
  /** CPUs the probe client and server were bound to (null = not bound). */
  cpus: z.array(z.number()).nullable(),
  /** Where the veths' receive softirq work runs. */
  softirq: z.string(),
  reason: z.string(),
});

/**
 * CPU per operation of a metric, µs (kernel accounting). Files written before issue 20 have only the first five
 * fields: machine-wide busy time from /proc/stat (10 ms ticks) over the windows; they read as source 'proc-stat'.
 */
export const cpuSchema = z.object({
  /** Local (task-clock): probe client + echo server + ksoftirqd of the pinned CPU. Older files: all CPUs' busy time. */
  totalUsPerOp: z.number(),
  /** The load generator's own CPU (its process CPU-time clock; older files: getrusage). */
  probeClientUsPerOp: z.number(),
  /** The server's CPU, when the backend can read it. */
  probeServerUsPerOp: z.number().nullable(),
  /** The data plane's own CPU where it can be separated (BPF run time; kind/cluster: total − client − server), else null. */
  dataPlaneUsPerOp: z.number().nullable(),
  /** Local (task-clock): ksoftirqd (deferred softirq work). Older files: softirq time of all CPUs. */
  softirqUsPerOp: z.number(),
  source: z.enum(['task-clock', 'cgroup', 'cadvisor', 'proc-stat']).optional(),
  /** What the windows' edges and clocks leave uncertain, per operation: a figure is shown only when at least 10× this. */
  resolutionUsPerOp: z.number().optional(),
  /** The client/server/softirq split's own resolution where it is coarser than the total's (cAdvisor). */
  partsResolutionUsPerOp: z.number().optional(),
  /** Wall time of the windows per operation. */
  wallUsPerOp: z.number().optional(),
  /** BPF program run time per operation (eBPF data planes), null when not counted. */
  bpfUsPerOp: z.number().nullable().optional(),
  /** What the total includes, and what dataPlaneUsPerOp is (or why there is none), in words. */
  includes: z.string().optional(),
  dataPlane: z.string().optional(),
});

/** The machine's reference beside a metric: the same operation over the client pod's loopback (no data plane on the path). */
export const referenceSchema = z.object({
  target: z.string(),
  samplesNs: z.array(z.number()),
  errors: z.record(z.string(), z.number()),
  wallNs: z.number(),
  /** Runs of the run's BPF programs over the reference: near 0 when no data plane was on its path, not one per operation (absent before it was counted). */
  bpfRunCnt: z.number().optional(),
});

export const metricSchema = z.object({
  /** Latency of each measured operation, nanoseconds, in the order measured. */
  samplesNs: z.array(z.number()),
  /** Failed operations by errno name (they are not samples). */
  errors: z.record(z.string(), z.number()),
  /** Within-run summary: its CIs cover sample noise in this run only, never run-to-run variation. */
  summary: summarySchema,
  stability: stabilitySchema.optional(),
  wallNs: z.number(),
  cpu: cpuSchema.nullable(),
  /** The machine's reference measured beside this metric (issue 20); absent in files written before it existed. */
  reference: referenceSchema.optional(),
  /** Present when a sample budget (sampleBudgetMs) stopped the metric before its planned samples: how many, and why. */
  sampling: z.object({ planned: z.number(), budgetMs: z.number(), reason: z.string() }).optional(),
  /** Present when a sample budget capped the warm-up of the later rounds: the warm-up operations planned and taken, and why. */
  warmup: z.object({ planned: z.number(), taken: z.number(), reason: z.string() }).optional(),
});

/** One measured flow of a cluster-shaped workload (bench run --workload): its ends, why it was chosen, its figures. */
export const flowResultSchema = z.object({
  from: z.string(),
  to: z.string(),
  port: z.number(),
  protocol: z.string(),
  /** most-expensive, cross-namespace, same-node, random or named (src/workload/choose-flows.ts). */
  reason: z.string(),
  /** Policy rules in its path: the source's egress and the destination's ingress. */
  rules: z.number(),
  /** What the reference evaluator says; a named flow may be denied. */
  allowed: z.boolean(),
  metrics: z.object({ connect: metricSchema.nullable(), crr: metricSchema.nullable(), rr: metricSchema.nullable() }),
});

export const modelStateSchema = z.record(z.string(), z.union([z.number(), z.string(), z.boolean()]));

/** A run's Services (`--services`): which service data plane translated the ClusterIP, and its state size. */
export const servicesResultSchema = z.object({
  /** Filler Services beside the server's; the data plane holds count + 1. */
  count: z.number().int(),
  endpointsPerService: z.number().int(),
  /** Where the server's Service sits in a rule-walking proxier's order. */
  position: z.enum(['first', 'last']),
  /** kube-proxy-iptables, kube-proxy-nftables, cilium-socket-lb, calico-ctlb. */
  dataPlane: z.string(),
  description: z.string(),
  /** How a new connection finds its Service: rule-walk (O(n)), verdict-map, bpf-map. */
  lookup: z.string(),
  clusterIP: z.string(),
  port: z.number().int(),
  /** The first sync on every node, in parallel, ms (null in a dry run). */
  installMs: z.number().nullable(),
  /** Rules, chains, map entries the data plane holds. */
  state: z.record(z.string(), z.union([z.number(), z.string()])),
});
export type ServicesResult = z.output<typeof servicesResultSchema>;

export const runResultSchema = z.object({
  schemaVersion: z.literal(RESULT_SCHEMA_VERSION),
  kind: z.literal(RESULT_KIND),
  runId: z.string(),
  status: z.enum(['ok', 'failed']),
  meta: z.object({
    startedAt: z.string(),
    finishedAt: z.string(),
    tool: z.object({ name: z.string(), version: z.string(), gitCommit: z.string().nullable() }),
    machine: z.object({
      hostname: z.string(),
      kernel: z.string(),
      cpuModel: z.string(),
      cpus: z.number(),
      memoryBytes: z.number(),
      loadavg: z.tuple([z.number(), z.number(), z.number()]),
    }),
    backend: z.enum(BACKENDS),
    cni: z.enum(CNIS),
    model: z.object({ name: z.string(), description: z.string(), enforcesPolicy: z.boolean() }),
    policy: z.object({ count: z.number().int(), matchPosition: z.enum(['first', 'last']), seed: z.number(), shape: z.string() }),
    topology: z.object({ nodes: z.number(), placement: z.enum(['cross-node', 'same-node']), serverPods: z.number() }),
    probe: z.object({ tool: z.string(), samples: z.number(), warmup: z.number(), concurrency: z.number(), timeoutMs: z.number(), pinCpu: z.number().nullable().optional(), /** Rounds the metrics were interleaved in (absent: 1, one metric after the other). */ rounds: z.number().optional(), /** A metric's sampling budget, ms (absent: none; see metrics.*.sampling). */ sampleBudgetMs: z.number().optional(), /** The metrics measured, when not all (an adaptive sweep's extension run); the others are null. */ metrics: z.array(z.enum(LATENCY_METRICS)).optional() }),
    cpuPlacement: cpuPlacementSchema.optional(),
    scenario: z.string().nullable(),
    sweepId: z.string().nullable().optional(),
    repetition: z.number().nullable().optional(),
    /** bench run --repetitions N: how many repetitions the group has (repetition is this run's index). */
    repetitions: z.number().nullable().optional(),
    /** Ids of other cni-bench runs live on this machine while this one ran: their load disturbs the numbers. */
    concurrentRuns: z.array(z.string()).optional(),
    /** bench run --workload: the cluster-shaped workload replayed (absent: the benchmark's client and server). */
    workload: z.object({ name: z.string(), file: z.string(), nodes: z.number(), pods: z.number(), endpoints: z.number(), policies: z.number() }).optional(),
  }),
  policiesEnforced: z.boolean(),
  /** Counts that describe the data plane's state (rules, ipsets, identities, map entries…). */
  modelState: modelStateSchema,
  /** `--services`: the Service set and its data plane (absent or null: the client connected to the pod). */
  services: servicesResultSchema.nullable().optional(),
  timings: z.object({
    setupMs: z.number().nullable(),
    policyInstallMs: z.number().nullable(),
    measureMs: z.number().nullable(),
    teardownMs: z.number().nullable(),
    totalMs: z.number(),
    /** Wall time spent on each measured metric, its reference and probe starts included (absent in older files). */
    metricMs: z.object({ connect: z.number().optional(), crr: z.number().optional(), rr: z.number().optional() }).optional(),
  }),
  metrics: z.object({
    connect: metricSchema.nullable(),
    crr: metricSchema.nullable(),
    rr: metricSchema.nullable(),
    // Enforce points of a sweep (issue 15): one sample per change repetition, ns; absent in latency runs.
    enforce_allow_added: metricSchema.nullable().optional(),
    enforce_allow_removed: metricSchema.nullable().optional(),
    enforce_new_pod: metricSchema.nullable().optional(),
    enforce_peer_joins: metricSchema.nullable().optional(),
    failopen_allow_removed: metricSchema.nullable().optional(),
    failopen_new_pod: metricSchema.nullable().optional(),
    enforce_endpoint_removed: metricSchema.nullable().optional(),
    enforce_endpoint_added: metricSchema.nullable().optional(),
    enforce_service_added: metricSchema.nullable().optional(),
    blackhole_endpoint_removed: metricSchema.nullable().optional(),
  }),
  errors: z.array(errorRecordSchema),
  /** bench run --workload: every measured flow with its figures; `metrics` above are the worst flow's (highest connect p50). */
  flows: z.array(flowResultSchema).optional(),
});

export type RunResult = z.output<typeof runResultSchema>;
export type MetricResult = z.output<typeof metricSchema>;
export type FlowResult = z.output<typeof flowResultSchema>;
export type SummaryJson = z.output<typeof summarySchema>;
export type { Stability };
export type CpuPlacement = z.output<typeof cpuPlacementSchema>;
export type CpuJson = z.output<typeof cpuSchema>;
export type ReferenceJson = z.output<typeof referenceSchema>;
export { pair as ciPairSchema };
