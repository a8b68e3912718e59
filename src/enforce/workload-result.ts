// The result of `bench enforce --workload FILE` on one data plane: per change (a policy of the workload removed or
// added), the flows it affects, the watched ones' probes on the change's clock, and the summaries over repetitions.
// Validated on read like the other results.
import { z } from 'zod';
import { InputError } from '../errors.js';
import { BACKENDS, CNIS } from '../config/schema.js';
import { errorRecordSchema, summarySchema } from '../results/schema.js';
import { observationSchema } from './result.js';

export const ENFORCE_WORKLOAD_RESULT_KIND = 'cni-bench/enforce-workload-result';
export const ENFORCE_WORKLOAD_SCHEMA_VERSION = 1;
export const ENFORCE_WORKLOAD_FILE = 'enforce-workload-result.json';

const flowSchema = z.object({ from: z.string(), to: z.string(), port: z.number().int(), protocol: z.string() });
const affectedSchema = flowSchema.extend({ before: z.boolean(), after: z.boolean() });

/** One watched flow across one repetition of a change: the synthetic enforce's observation, on this flow (k8s: kind/cluster). */
const workloadObservationSchema = observationSchema.omit({ change: true, intruderProbes: true }).extend({ flow: flowSchema });

const changeResultSchema = z.object({
  /** `remove:ns/name` or `add:ns/name`. */
  change: z.string(),
  op: z.enum(['remove', 'add']),
  policy: z.string(),
  /** Why it was measured: named with --change, or the default choice's reason. */
  why: z.string(),
  /** Flows (TCP, between the workload's pods, of the candidates considered) whose verdict the change flips. */
  affectedCount: z.number().int(),
  candidates: z.number().int(),
  /** The first of them (at most 20), for the reader. */
  affected: z.array(affectedSchema),
  /** The flows watched across the change. */
  probed: z.array(affectedSchema),
  /** Non-null where the data plane enforces no policy: the change has no effect there (not a timeout). */
  noEffect: z.object({ reason: z.string(), probesOpen: z.number().int(), probes: z.number().int() }).nullable(),
  observations: z.array(workloadObservationSchema),
  summary: z
    .object({
      repetitions: z.number().int(),
      notEnforced: z.number().int(),
      preconditionFailures: z.number().int(),
      /** Per repetition, the first watched flow to show its new verdict (the change is enforced from then on). */
      enforcedMs: summarySchema,
      /** Per repetition, the last watched flow to show its new verdict (repetitions where every one did). */
      enforcedAllMs: summarySchema,
      agentMs: summarySchema,
      failOpenMs: summarySchema.nullable(),
      failOpenRepetitions: z.number().int(),
      resolutionMs: z.number().nullable(),
      resolutionMedianMs: z.number().nullable(),
    })
    .nullable(),
});

export const enforceWorkloadResultSchema = z.object({
  schemaVersion: z.literal(ENFORCE_WORKLOAD_SCHEMA_VERSION),
  kind: z.literal(ENFORCE_WORKLOAD_RESULT_KIND),
  runId: z.string(),
  status: z.enum(['ok', 'not-enforced', 'failed']),
  meta: z.object({
    startedAt: z.string(),
    finishedAt: z.string(),
    backend: z.enum(BACKENDS),
    cni: z.enum(CNIS),
    model: z.object({ name: z.string(), description: z.string(), enforcesPolicy: z.boolean() }),
    workload: z.object({ name: z.string(), file: z.string(), pods: z.number().int(), endpoints: z.number().int(), policies: z.number().int() }),
    probe: z.object({ tool: z.string(), intervalUs: z.number(), timeoutMs: z.number(), timeoutFrom: z.string(), deadlineMs: z.number(), settle: z.number(), clock: z.string() }),
    repetitions: z.number().int(),
    seed: z.number(),
    concurrentRuns: z.array(z.string()),
  }),
  installMs: z.number().nullable(),
  modelState: z.record(z.string(), z.union([z.number(), z.string(), z.boolean()])),
  changes: z.array(changeResultSchema),
  errors: z.array(errorRecordSchema),
  totalMs: z.number(),
});

export type EnforceWorkloadResult = z.output<typeof enforceWorkloadResultSchema>;
export type WorkloadChangeResult = EnforceWorkloadResult['changes'][number];
export type WorkloadObservation = WorkloadChangeResult['observations'][number];

/** Reads an enforce-workload-result.json as report does: the file and the field that is wrong, as an InputError. */
export function readEnforceWorkloadResult(file: string, text: string): EnforceWorkloadResult {
  const bad = (message: string) => new InputError([{ where: file, message }]);
  let data: unknown;
  try {
    data = JSON.parse(text);
  } catch (e) {
    throw bad(`not valid JSON (truncated or corrupted?): ${(e as Error).message}`);
  }
  const obj = data as Record<string, unknown> | null;
  if (!obj || typeof obj !== 'object' || obj.kind !== ENFORCE_WORKLOAD_RESULT_KIND) throw bad(`not a cni-bench enforce-workload result (expected "kind": "${ENFORCE_WORKLOAD_RESULT_KIND}")`);
  if (typeof obj.schemaVersion === 'number' && obj.schemaVersion > ENFORCE_WORKLOAD_SCHEMA_VERSION) throw bad(`schema version ${obj.schemaVersion} is newer than this tool reads (${ENFORCE_WORKLOAD_SCHEMA_VERSION}); upgrade cni-bench`);
  const parsed = enforceWorkloadResultSchema.safeParse(data);
  if (!parsed.success) throw bad(`does not match the enforce-workload result schema: ${parsed.error.issues.slice(0, 3).map((i) => `${i.path.join('.') || '(root)'}: ${i.message}`).join('; ')}`);
  return parsed.data;
}
