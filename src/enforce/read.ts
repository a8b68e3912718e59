// Reading an enforce-result.json as report and compare do: validated like a run result (named file, the field that
// is wrong), and either taken as the run (a standalone `bench enforce --out DIR`) or checked against the sweep
// point's result.json beside it, whose enforcement samples must be the ones its observations give.
import { existsSync, readFileSync } from 'node:fs';
import { InputError } from '../errors.js';
import { ENFORCE_METRICS, type RunResult } from '../results/schema.js';
import { enforceRunResult } from './as-run.js';
import { ENFORCE_RESULT_KIND, ENFORCE_SCHEMA_VERSION, enforceResultSchema, type EnforceResult } from './result.js';

export const ENFORCE_RESULT_FILE = 'enforce-result.json';

const unusable = (file: string, reason: string) => new InputError([{ where: file, message: reason }]);
const EDITED = 'the file is corrupted or was edited (re-run the point)';

export function readEnforceResult(file: string): EnforceResult {
  if (!existsSync(file)) throw unusable(file, 'no such file');
  let data: unknown;
  try {
    data = JSON.parse(readFileSync(file, 'utf8'));
  } catch (e) {
    throw unusable(file, `not valid JSON (truncated or corrupted?): ${(e as Error).message}`);
  }
  const obj = data as Record<string, unknown> | null;
  if (!obj || typeof obj !== 'object' || obj.kind !== ENFORCE_RESULT_KIND) throw unusable(file, `not a cni-bench enforce result (expected "kind": "${ENFORCE_RESULT_KIND}")`);
  if (typeof obj.schemaVersion === 'number' && obj.schemaVersion > ENFORCE_SCHEMA_VERSION) {
    throw unusable(file, `schema version ${obj.schemaVersion} is newer than this tool reads (${ENFORCE_SCHEMA_VERSION}); upgrade cni-bench`);
  }
  const parsed = enforceResultSchema.safeParse(data);
  if (!parsed.success) {
    const first = parsed.error.issues.slice(0, 3).map((i) => `${i.path.join('.') || '(root)'}: ${i.message}`);
    throw unusable(file, `does not match the enforce result schema: ${first.join('; ')}`);
  }
  const problem = checkObservations(parsed.data);
  if (problem) throw unusable(file, `${problem}; ${EDITED}`);
  return parsed.data;
}

/** What no measurement gives: a negative or endless time, a summary over other repetitions than the observations. */
function checkObservations(e: EnforceResult): string | undefined {
  // A change is seen before its deadline (after the watch's lead of at most 10 probe intervals, ≥ 20 ms).
  const longest = e.meta.probe.deadlineMs + Math.max(20, (10 * e.meta.probe.intervalUs) / 1000);
  for (const [i, o] of e.observations.entries()) {
    const at = `observations[${i}]`;
    if (o.enforcedMs !== null && !(Number.isFinite(o.enforcedMs) && o.enforcedMs >= 0 && o.enforcedMs <= longest)) return `${at}.enforcedMs is ${o.enforcedMs}: a time to enforcement is between 0 and the deadline (${longest} ms)`;
    if (o.failOpen && !(Number.isFinite(o.failOpen.windowMs) && o.failOpen.windowMs >= 0 && o.failOpen.windowMs <= longest)) return `${at}.failOpen.windowMs is ${o.failOpen.windowMs}: a fail-open window is between 0 and the deadline (${longest} ms)`;
    if (!(o.agent.agentMs >= 0)) return `${at}.agent.agentMs is ${o.agent.agentMs}: negative`;
  }
  for (const [i, s] of e.summary.entries()) {
    const n = e.observations.filter((o) => o.change === s.change).length;
    if (s.repetitions !== n) return `summary[${i}].repetitions is ${s.repetitions} but the file holds ${n} observations of ${s.change}`;
  }
  return undefined;
}

/** A standalone enforce run as the run result report and compare read. */
export function enforceAsRun(file: string): RunResult {
  return enforceRunResult(readEnforceResult(file));
}

/** A sweep point's result.json must be of the same run and carry the samples its enforce-result.json gives. */
export function checkBeside(run: RunResult, enforceFile: string): void {
  const e = readEnforceResult(enforceFile);
  if (e.runId !== run.runId) throw unusable(enforceFile, `is of run ${e.runId}, but the result.json beside it is of run ${run.runId}; ${EDITED}`);
  if (e.meta.machine.hostname !== run.meta.machine.hostname) throw unusable(enforceFile, `was measured on ${e.meta.machine.hostname}, the result.json beside it on ${run.meta.machine.hostname}; ${EDITED}`);
  const derived = enforceRunResult(e);
  for (const metric of ENFORCE_METRICS) {
    const stored = run.metrics[metric]?.samplesNs ?? null;
    const given = derived.metrics[metric]?.samplesNs ?? null;
    if (JSON.stringify(stored) !== JSON.stringify(given)) {
      throw unusable(enforceFile.replace(/enforce-result\.json$/, 'result.json'), `metrics.${metric}.samplesNs does not match the observations in ${ENFORCE_RESULT_FILE} beside it; ${EDITED}`);
    }
  }
}
