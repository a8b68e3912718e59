// Reading and writing result files: atomic writes (temp file + rename), and reads that name the file and say
// what is wrong with it (missing, truncated, not ours, a newer schema).
import { mkdirSync, readFileSync, renameSync, writeFileSync, existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { quantile, sortedCopy, summarize } from '../stats/summary.js';
import { InputError } from '../errors.js';
import { ENFORCE_METRICS, METRICS, RESULT_KIND, RESULT_SCHEMA_VERSION, runResultSchema, type RunResult, type SummaryJson } from './schema.js';

/** A result file that cannot be used, and why: an input error naming the file. */
const unusable = (file: string, reason: string) => new InputError([{ where: file, message: reason }]);

/** Writes via a temp file in the same directory and renames it: readers never see half a file. */
export function writeFileAtomic(path: string, content: string): void {
  mkdirSync(dirname(path), { recursive: true });
  const tmp = `${path}.tmp-${process.pid}`;
  writeFileSync(tmp, content);
  renameSync(tmp, path);
}

/** JSON cannot hold NaN/Infinity; write them as null rather than corrupting the file. */
function finiteOrNull(_key: string, value: unknown): unknown {
  return typeof value === 'number' && !Number.isFinite(value) ? null : value;
}

export function writeResult(dir: string, result: RunResult): string {
  const path = join(dir, 'result.json');
  writeFileAtomic(path, `${JSON.stringify(result, finiteOrNull)}\n`);
  return path;
}

export function readResult(file: string): RunResult {
  if (!existsSync(file)) throw unusable(file, 'no such file');
  let data: unknown;
  const text = readFileSync(file, 'utf8');
  try {
    data = JSON.parse(text);
  } catch (e) {
    throw unusable(file, `not valid JSON (truncated or corrupted?): ${(e as Error).message}`);
  }
  const obj = data as Record<string, unknown> | null;
  if (!obj || typeof obj !== 'object' || obj.kind !== RESULT_KIND) {
    throw unusable(file, `not a cni-bench result file (expected "kind": "${RESULT_KIND}")`);
  }
  if (typeof obj.schemaVersion === 'number' && obj.schemaVersion > RESULT_SCHEMA_VERSION) {
    throw unusable(file, `schema version ${obj.schemaVersion} is newer than this tool reads (${RESULT_SCHEMA_VERSION}); upgrade cni-bench`);
  }
  const parsed = runResultSchema.safeParse(data);
  if (!parsed.success) {
    const first = parsed.error.issues.slice(0, 3).map((i) => `${i.path.join('.') || '(root)'}: ${i.message}`);
    throw unusable(file, `does not match the result schema: ${first.join('; ')}`);
  }
  const problem = checkSamples(parsed.data);
  if (problem) throw unusable(file, `${problem}; the file is corrupted or was edited (re-run the point)`);
  for (const metric of [...METRICS, ...ENFORCE_METRICS]) {
    const m = parsed.data.metrics[metric];
    if (m) m.summary = recomputedSummary(m.samplesNs, parsed.data.meta.policy.seed);
  }
  return parsed.data;
}

/** No latency is zero, negative, or longer than an hour (the per-connection timeout is at most 60 s). */
export const MAX_SAMPLE_NS = 3.6e12;

const close = (a: number, b: number) => Math.abs(a - b) <= 1e-6 * Math.max(1, Math.abs(a), Math.abs(b));

/** What is impossible in a result: samples that cannot be latencies, counts that cannot be counts, a summary that is not of its samples. */
export function checkSamples(r: RunResult): string | undefined {
  for (const metric of [...METRICS, ...ENFORCE_METRICS]) {
    const m = r.metrics[metric];
    if (!m) continue;
    const at = `metrics.${metric}`;
    // A time to enforcement or a fail-open window may be 0 (seen at the first probe; nothing leaked); a latency may not.
    const latency = (METRICS as readonly string[]).includes(metric);
    const bad = m.samplesNs.findIndex((v) => !Number.isFinite(v) || v < 0 || (latency && v === 0) || v > MAX_SAMPLE_NS);
    if (bad >= 0) return `${at}.samplesNs[${bad}] is ${m.samplesNs[bad]}: ${latency ? 'a latency must be a positive number' : 'a duration must be a number ≥ 0'} of nanoseconds below ${MAX_SAMPLE_NS}`;
    for (const [errno, n] of Object.entries(m.errors)) if (!Number.isInteger(n) || n < 0) return `${at}.errors.${errno} is ${n}: a count must be a whole number ≥ 0`;
    if (m.cpu) for (const [k, v] of Object.entries(m.cpu)) if (typeof v === 'number' && !(Number.isFinite(v) && v >= 0)) return `${at}.cpu.${k} is ${v}: CPU time cannot be negative`;
    const refBad = m.reference?.samplesNs.findIndex((v) => !Number.isFinite(v) || v <= 0 || v > MAX_SAMPLE_NS) ?? -1;
    if (refBad >= 0) return `${at}.reference.samplesNs[${refBad}] is ${m.reference!.samplesNs[refBad]}: a latency must be a positive number of nanoseconds below ${MAX_SAMPLE_NS}`;
    if (m.wallNs < 0) return `${at}.wallNs is ${m.wallNs}: negative`;
    // The stored summary is never used (it is recomputed below), but one that disagrees with its samples means
    // someone changed one of the two.
    const s = m.summary;
    if (s.count !== m.samplesNs.length) return `${at}.summary.count is ${s.count} but samplesNs holds ${m.samplesNs.length} samples`;
    const sorted = sortedCopy(m.samplesNs);
    for (const [k, q] of [['p50', 0.5], ['p90', 0.9], ['p99', 0.99]] as const) {
      const stored = s[k];
      const actual = quantile(sorted, q);
      if (sorted.length === 0 ? stored !== null : stored === null || !close(stored, actual)) {
        return `${at}.summary.${k} is ${stored} but its samples give ${sorted.length ? actual : 'none (no samples)'}`;
      }
    }
  }
  return undefined;
}

const nullIfNaN = (v: number) => (Number.isFinite(v) ? v : null);

/**
 * The summary of `samples`, computed here (never the stored one). The bootstrap CIs cost ~0.1 s per 10000
 * samples, so they are computed when first read: commands that only read counts and percentiles (compare,
 * sweep --resume) do not pay for them.
 */
export function recomputedSummary(samples: readonly number[], seed: number): SummaryJson {
  const sorted = sortedCopy(samples);
  const n = sorted.length;
  const q = (p: number) => nullIfNaN(quantile(sorted, p));
  let sum = 0;
  for (const v of sorted) sum += v;
  const out = {
    count: n,
    min: n ? sorted[0]! : null,
    max: n ? sorted[n - 1]! : null,
    mean: n ? sum / n : null,
    p50: q(0.5),
    p90: q(0.9),
    p99: q(0.99),
    p999: q(0.999),
  } as SummaryJson;
  let ci: SummaryJson['ci95'] | undefined;
  Object.defineProperty(out, 'ci95', {
    enumerable: true,
    configurable: true,
    get() {
      if (!ci) {
        const c = summarize(samples, { seed }).ci95;
        ci = { p50: [nullIfNaN(c.p50[0]), nullIfNaN(c.p50[1])], p99: [nullIfNaN(c.p99[0]), nullIfNaN(c.p99[1])] };
      }
      return ci;
    },
    set(v: SummaryJson['ci95']) {
      ci = v;
    },
  });
  return out;
}
