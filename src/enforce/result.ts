// The enforce result file: every probe of every measured change, what the agent reported, and the summaries
// over repetitions. Validated on read like the run result.
import { z } from 'zod';
import { BACKENDS, CNIS } from '../config/schema.js';
import { errorRecordSchema, servicesResultSchema, summarySchema } from '../results/schema.js';
import { CHANGES } from './plan.js';

export const ENFORCE_RESULT_KIND = 'cni-bench/enforce-result';
export const ENFORCE_SCHEMA_VERSION = 1;

const traceSchema = z.object({ startUs: z.array(z.number()), endUs: z.array(z.number()), result: z.array(z.string()) });
const leakSchema = z.object({
  leaked: z.number().int(),
  probes: z.number().int(),
  firstLeakMs: z.number().nullable(),
  lastLeakMs: z.number().nullable(),
  windowMs: z.number(),
});

export const observationSchema = z.object({
  change: z.enum(CHANGES),
  repetition: z.number().int(),
  expect: z.enum(['open', 'closed']),
  /** Probes from this pod, to this address. */
  from: z.string(),
  target: z.string(),
  preconditionHeld: z.boolean(),
  /** Time to enforcement, ms after the change was handed to the agent; null = not seen before the deadline. */
  enforcedMs: z.number().nullable(),
  lastOldMs: z.number().nullable(),
  /** The bracket of the flip between two probe starts: this observation's resolution, ms. */
  bracketMs: z.number().nullable(),
  relapses: z.number().int(),
  maxStartGapMs: z.number(),
  /** Agent side, from the model's update() report. */
  agent: z.object({ agentMs: z.number(), compileMs: z.number(), applyMs: z.number(), resolveMs: z.number(), attachMs: z.number().nullable(), changed: z.record(z.string(), z.number()) }),
  /** Traffic that passed where it must not: allow-removed (after the change), new-pod (the denied intruder). */
  failOpen: leakSchema.nullable(),
  probes: traceSchema,
  /** new-pod: the denied intruder's probes of the new pod. */
  intruderProbes: traceSchema.nullable(),
  /** The data plane was over its capacity after this change (what did not fit): the verdict is the overflow's. */
  capacityOverflow: z.string().nullable().optional(),
  /** kind/cluster only: the API call, the clock fix of the watch, the CNI's own figure (src/backends/k8s/changes.ts). */
  k8s: z
    .object({
      /** What was sent to the API server (kubectl apply/delete/label/create). */
      command: z.string(),
      /** kubectl's round trip, ms: the API server had stored the change when it returned. */
      apiMs: z.number(),
      /** new-pod: the first probe started this long after the change (the pod had no address before). */
      watchStartedMs: z.number().nullable(),
      clock: z
        .object({ method: z.enum(['shared', 'offset']), offsetNs: z.number(), boundNs: z.number(), rttNs: z.number(), samples: z.number().int(), note: z.string() })
        .nullable(),
      cniMetric: z
        .object({ metric: z.string(), pod: z.string(), countDelta: z.number(), sumDeltaMs: z.number(), meanMs: z.number().nullable(), scrapedAfterMs: z.number() })
        .nullable(),
      cniMetricNote: z.string().nullable(),
    })
    .optional(),
});

const statSchema = summarySchema;

export const changeSummarySchema = z.object({
  change: z.enum(CHANGES),
  title: z.string(),
  repetitions: z.number().int(),
  /** Repetitions whose new verdict was never seen within the deadline. */
  notEnforced: z.number().int(),
  preconditionFailures: z.number().int(),
  enforcedMs: statSchema,
  agentMs: statSchema,
  /** new-pod: the CNI ADD (pod interface and routes) before the agent is told; part of enforcedMs. */
  cniAddMs: statSchema.nullable(),
  failOpenMs: statSchema.nullable(),
  /** Repetitions with any fail-open traffic. */
  failOpenRepetitions: z.number().int(),
  /** Worst bracket over repetitions, ms: the resolution this summary can claim. */
  resolutionMs: z.number().nullable(),
  /** Median bracket over repetitions, ms: the typical resolution. */
  resolutionMedianMs: z.number().nullable(),
});

export const enforceResultSchema = z.object({
  schemaVersion: z.literal(ENFORCE_SCHEMA_VERSION),
  kind: z.literal(ENFORCE_RESULT_KIND),
  runId: z.string(),
  status: z.enum(['ok', 'not-enforced', 'failed']),
  meta: z.object({
    startedAt: z.string(),
    finishedAt: z.string(),
    tool: z.object({ name: z.string(), version: z.string(), gitCommit: z.string().nullable() }),
    machine: z.object({ hostname: z.string(), kernel: z.string(), cpuModel: z.string(), cpus: z.number(), memoryBytes: z.number(), loadavg: z.tuple([z.number(), z.number(), z.number()]) }),
    backend: z.enum(BACKENDS),
    cni: z.enum(CNIS),
    model: z.object({ name: z.string(), description: z.string(), enforcesPolicy: z.boolean() }),
    policy: z.object({ count: z.number().int(), matchPosition: z.enum(['first', 'last']), seed: z.number(), shape: z.string() }),
    probe: z.object({ tool: z.string(), intervalUs: z.number(), timeoutMs: z.number(), timeoutFrom: z.string(), deadlineMs: z.number(), settle: z.number(), clock: z.string() }),
    repetitions: z.number().int(),
    changes: z.array(z.enum(CHANGES)),
    sweepId: z.string().nullable().optional(),
    /** Other cni-bench runs live on this machine during this one (their load disturbs the figures). */
    concurrentRuns: z.array(z.string()).optional(),
  }),
  /** Why nothing was measured (no policy engine), with the evidence. */
  notEnforced: z.object({ reason: z.string(), probesOpen: z.number().int(), probes: z.number().int() }).nullable(),
  /** --services: the service data plane the Service changes ran on, and its state after the first sync. */
  services: servicesResultSchema.nullable().optional(),
  installMs: z.number().nullable(),
  modelState: z.record(z.string(), z.union([z.number(), z.string(), z.boolean()])),
  observations: z.array(observationSchema),
  summary: z.array(changeSummarySchema),
  errors: z.array(errorRecordSchema),
  totalMs: z.number(),
});

export type EnforceResult = z.output<typeof enforceResultSchema>;
export type EnforceObservation = z.output<typeof observationSchema>;
export type ChangeSummary = z.output<typeof changeSummarySchema>;
