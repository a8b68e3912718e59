// verify-<cni>.json: what a workload's policy set means on one data plane, as a workload sweep stores it beside its
// points (src/sweep/verify-step.ts writes it, the report reads it): how many flows were probed, how many
// observed verdicts differ from the NetworkPolicy spec and from the data plane's documented semantics, and those
// flows. Validated on read, like result.json.
import { existsSync, readFileSync } from 'node:fs';
import { z } from 'zod';
import { CNIS } from '../config/schema.js';
import { InputError } from '../errors.js';

export const WORKLOAD_VERIFY_KIND = 'cni-bench/workload-verify';
export const WORKLOAD_VERIFY_VERSION = 1;
/** `verify-calico.json`: the file name of a data plane's verify record in a sweep directory. */
export const verifyFileName = (cni: string) => `verify-${cni}.json`;
export const VERIFY_FILE_RE = /^verify-[a-z0-9-]+\.json$/;

/** At most this many differing flows are listed in the file (the counts are always whole). */
export const MAX_LISTED_FLOWS = 500;

const verdict = z.enum(['allowed', 'denied']);
const listedFlowSchema = z.object({
  from: z.string(),
  to: z.string(),
  port: z.number().int(),
  protocol: z.string(),
  /** The NetworkPolicy spec (the reference evaluator, ipBlocks matching any address). */
  spec: verdict,
  /** Under the data plane's documented semantics. */
  expected: verdict,
  observed: verdict,
});

/**
 * A finding about the policy set (src/workload/findings.ts), as verify prints it: the policy it names, the field,
 * what is wrong and the fix. `kind` stays a string here: the results floor does not know the finding kinds.
 */
export const findingRecordSchema = z.object({
  kind: z.string(),
  policy: z.string(),
  field: z.string().optional(),
  message: z.string(),
  fix: z.string(),
  cnis: z.array(z.string()).optional(),
});
export type FindingRecord = z.output<typeof findingRecordSchema>;

export const workloadVerifySchema = z.object({
  kind: z.literal(WORKLOAD_VERIFY_KIND),
  schemaVersion: z.literal(WORKLOAD_VERIFY_VERSION),
  sweepId: z.string().nullable(),
  runId: z.string(),
  cni: z.enum(CNIS),
  backend: z.string(),
  model: z.object({ name: z.string(), enforcesPolicy: z.boolean() }),
  workload: z.object({ name: z.string(), file: z.string() }),
  /** Which flows were probed, in words (every pod pair on every declared port, or a seeded sample of them). */
  flowChoice: z.string(),
  verdict: z.object({ kind: z.enum(['as-documented', 'not-enforced', 'differs']), text: z.string() }),
  probed: z.number().int(),
  /** Flows whose observed verdict is not the spec's: what the policy set means differently here. */
  differFromSpec: z.number().int(),
  /** Of those, the ones the data plane's documentation explains (Cilium's ipBlocks, a data plane without policy). */
  documented: z.number().int(),
  /** Flows whose observed verdict is not even the documented one. */
  mismatches: z.number().int(),
  /** The flows with observed ≠ spec or observed ≠ expected, at most MAX_LISTED_FLOWS. */
  flows: z.array(listedFlowSchema),
  /**
   * The policy set's findings, except 'not-enforced' (one per policy on a data plane without a policy engine: the
   * verdict says it once). Absent in records written before findings were recorded.
   */
  findings: z.array(findingRecordSchema).optional(),
  finishedAt: z.string(),
  timings: z.record(z.string(), z.number()),
});
export type WorkloadVerifyRecord = z.output<typeof workloadVerifySchema>;

export function readWorkloadVerify(file: string): WorkloadVerifyRecord {
  const unusable = (why: string) => new InputError([{ where: file, message: why }]);
  if (!existsSync(file)) throw unusable('no such file');
  let data: unknown;
  try {
    data = JSON.parse(readFileSync(file, 'utf8'));
  } catch (e) {
    throw unusable(`not valid JSON (truncated or corrupted?): ${(e as Error).message}`);
  }
  if ((data as { kind?: unknown } | null)?.kind !== WORKLOAD_VERIFY_KIND) throw unusable(`not a workload verify record (expected "kind": "${WORKLOAD_VERIFY_KIND}")`);
  const parsed = workloadVerifySchema.safeParse(data);
  if (!parsed.success) throw unusable(`does not match the workload verify schema: ${parsed.error.issues.slice(0, 3).map((i) => `${i.path.join('.') || '(root)'}: ${i.message}`).join('; ')}`);
  return parsed.data;
}
