// The load generator on a cluster: fortio, run in the client pod with `kubectl exec`. Its JSON result (stdout)
// carries histograms and return codes; its JSON access log (one line per request, written to stderr) carries
// each request's latency, which is what the result file's raw samples need.
//
// What is exact and what is not:
// - crr (-keepalive=false: connect + request + response + close) and rr (kept connections): raw per-request
//   latencies from the access log, microsecond resolution (fortio prints seconds with %f, six decimals).
// - connect: fortio records connection establishment only as a histogram (ConnectionStats), so the samples are
//   reconstructed from its buckets — each bucket's count spread evenly over its interval. Percentiles are then
//   exact only to the bucket width (10 µs below 110 µs with `-r 0.00001`, coarser above) and the measured order
//   is lost (samples come out sorted). The same reconstruction is used for crr/rr if a fortio build without
//   access-log support is pinned; `samplesSource` says which happened.
import type { CommandSpec } from '../../exec/runner.js';
import type { MetricName } from '../../results/schema.js';
import { kubectl, type KubeTarget } from './kubectl.js';
import { FORTIO_BIN, FORTIO_CONTAINER } from './manifests.js';
import { BenchError } from '../../errors.js';

/** Histogram resolution in seconds: fortio's buckets are multiples of it (default 1 ms would hide sub-ms latency). */
export const FORTIO_RESOLUTION_S = 0.00001;

export interface FortioLoad {
  target: KubeTarget;
  namespace: string;
  pod: string;
  url: string;
  metric: MetricName;
  samples: number;
  concurrency: number;
  timeoutMs: number;
}

/** fortio's connections (threads) for a run: it needs at least 2 calls per connection. */
export function fortioThreads(samples: number, concurrency: number): number {
  return Math.max(1, Math.min(concurrency, Math.floor(samples / 2)));
}

/**
 * Calls to ask fortio for. With -n, fortio makes no warm-up call (fhttp/httprunner.go warms up only when Exactly <= 0)
 * and connects each thread lazily on its first call (FastClient.StreamFetch), so on kept connections (rr) every
 * thread's first call carries the TCP handshake: rr asks for one more call per thread and drops those (iter 0).
 */
export function fortioCalls(metric: MetricName, samples: number, concurrency: number): number {
  return metric === 'rr' ? samples + fortioThreads(samples, concurrency) : samples;
}

export function fortioLoadArgs(l: Omit<FortioLoad, 'target' | 'namespace' | 'pod'>): string[] {
  return [
    FORTIO_BIN,
    'load',
    // -n: exactly this many calls, no built-in warm-up call (warm-up is a separate invocation, as for cb-probe).
    '-n',
    String(fortioCalls(l.metric, l.samples, l.concurrency)),
    // Threads from the samples asked for, so rr's extra calls add one per thread and never a thread.
    '-c',
    String(fortioThreads(l.samples, l.concurrency)),
    '-qps',
    '-1',
    '-timeout',
    `${l.timeoutMs}ms`,
    '-r',
    String(FORTIO_RESOLUTION_S),
    ...(l.metric === 'rr' ? [] : ['-keepalive=false']),
    '-json',
    '-',
    '-access-log-file',
    '/dev/stderr',
    '-access-log-format',
    'json',
    l.url,
  ];
}

export function planFortioLoad(l: FortioLoad, purpose: string): CommandSpec {
  return kubectl(l.target, ['exec', '-n', l.namespace, l.pod, '-c', FORTIO_CONTAINER, '--', ...fortioLoadArgs(l)], purpose, {
    // A generous bound: at the 60 s maximum per-request timeout a run could legitimately take long.
    timeoutMs: Math.max(120_000, l.samples * 50 + 60_000),
  });
}

// ---- parsing ----

export interface FortioBucket {
  Start: number;
  End: number;
  Percent?: number;
  Count: number;
}

export interface FortioHistogram {
  Count: number;
  Min?: number;
  Max?: number;
  Sum?: number;
  Avg?: number;
  Data?: FortioBucket[] | null;
}

export interface FortioResult {
  Version?: string;
  ActualDuration?: number;
  DurationHistogram?: FortioHistogram;
  ErrorsDurationHistogram?: FortioHistogram;
  ConnectionStats?: FortioHistogram | null;
  RetCodes?: Record<string, number>;
  SocketCount?: number;
  // fortio's JSON for a run that could not start uses lowercase keys (`error`, `message`); the capitalised
  // forms are accepted too in case a build marshals its Go field names.
  error?: boolean | string;
  message?: string;
  Error?: boolean;
  Message?: string;
}

export interface AccessLogEntry {
  latency: number;
  timestamp: number;
  thread: number;
  iter: number;
  ok: boolean;
  details?: string;
}

/** fortio printed what could not be read as a measurement. */
export class FortioOutputError extends BenchError {
  constructor(message: string) {
    super('probe', message);
  }
}

export function parseFortioJson(stdout: string): FortioResult {
  const start = stdout.indexOf('{');
  if (start < 0) throw new FortioOutputError(`fortio printed no JSON result${stdout.trim() ? `: ${stdout.trim().slice(0, 200)}` : ''}`);
  let r: FortioResult;
  try {
    r = JSON.parse(stdout.slice(start)) as FortioResult;
  } catch (e) {
    throw new FortioOutputError(`fortio's JSON result does not parse: ${(e as Error).message}`);
  }
  if (r.error || r.Error) throw new FortioOutputError(`fortio could not run: ${r.message ?? r.Message ?? (typeof r.error === 'string' ? r.error : 'unknown error')}`);
  if (!r.DurationHistogram) throw new FortioOutputError('fortio result has no DurationHistogram');
  return r;
}

const ACCESS_LINE = /^\{"latency":/;

/** The access-log lines among fortio's stderr (its text report and log lines are ignored). */
export function parseAccessLog(stderr: string): AccessLogEntry[] {
  const out: AccessLogEntry[] = [];
  for (const line of stderr.split('\n')) {
    if (!ACCESS_LINE.test(line)) continue;
    try {
      out.push(JSON.parse(line) as AccessLogEntry);
    } catch {
      // A line cut by a concurrent writer is not a sample; the histogram count check below reports the loss.
    }
  }
  return out;
}

/** Samples (seconds) spread evenly over each bucket's interval: the best a histogram allows. */
export function samplesFromHistogram(h: FortioHistogram): number[] {
  const out: number[] = [];
  for (const b of h.Data ?? []) {
    const width = b.End - b.Start;
    for (let j = 0; j < b.Count; j++) out.push(b.Start + (width * (j + 0.5)) / b.Count);
  }
  return out;
}

/** A histogram minus another, bucket by bucket (fortio reports all calls and the failed ones separately). */
function subtractHistogram(all: FortioHistogram, errors: FortioHistogram | undefined): FortioHistogram {
  if (!errors?.Data?.length) return all;
  const data = (all.Data ?? []).map((b) => ({ ...b }));
  for (const e of errors.Data) {
    const b = data.find((x) => x.Start <= e.Start && e.End <= x.End) ?? data.find((x) => e.Start < x.End && x.Start < e.End);
    if (b) b.Count = Math.max(0, b.Count - e.Count);
  }
  return { ...all, Count: all.Count - errors.Count, Data: data };
}

export interface ParsedLoad {
  samplesNs: number[];
  errors: Record<string, number>;
  wallNs: number;
  samplesSource: 'access-log' | 'histogram';
  fortioVersion: string | null;
  /** connect: the widest histogram bucket that holds samples, in µs — the resolution of the reconstructed samples. */
  resolutionUs?: number;
  /** connect: samples removed as failed dials (see parseFortioLoad). */
  failedDialsRemoved?: number;
  /** rr: calls dropped because they opened their thread's connection (see fortioCalls). */
  handshakeCallsDropped?: number;
}

/** The widest bucket holding samples, in µs: fortio's buckets widen with latency (coarse above ~1 ms). */
export function histogramResolutionUs(h: FortioHistogram): number {
  let w = 0;
  for (const b of h.Data ?? []) if (b.Count > 0) w = Math.max(w, (b.End - b.Start) * 1e6);
  return Math.round(w * 1000) / 1000;
}

/** Failed calls by kind: fortio's -1 is a socket error (connect refused/timed out/reset), others are HTTP codes. */
export function errorsFromRetCodes(codes: Record<string, number> | undefined): Record<string, number> {
  const out: Record<string, number> = {};
  for (const [code, n] of Object.entries(codes ?? {})) {
    if (code === '200' || n === 0) continue;
    out[code === '-1' ? 'SOCKET_ERROR' : `HTTP_${code}`] = n;
  }
  return out;
}

/**
 * fortio times a dial and records it in ConnectionStats before it checks the dial's error, so a failed dial (a
 * drop: ≈ the timeout) becomes a connect "sample". Each socket error (-1) is one failed call; up to that many of
 * the slowest samples at or above half the timeout are removed — a dial that fails fast (refused) stays in, which
 * under-removes rather than cutting real samples.
 */
export function removeFailedDials(samplesNs: number[], socketErrors: number, timeoutMs: number): { samplesNs: number[]; removed: number } {
  if (socketErrors <= 0) return { samplesNs, removed: 0 };
  const sorted = [...samplesNs].sort((a, b) => a - b);
  let removed = 0;
  while (removed < socketErrors && sorted.length && sorted[sorted.length - 1]! >= timeoutMs * 0.5e6) {
    sorted.pop();
    removed++;
  }
  return { samplesNs: sorted, removed };
}

export function parseFortioLoad(metric: MetricName, stdout: string, stderr: string, o: { timeoutMs?: number } = {}): ParsedLoad {
  const r = parseFortioJson(stdout);
  const errors = errorsFromRetCodes(r.RetCodes);
  const base = { errors, wallNs: r.ActualDuration ?? 0, fortioVersion: r.Version ?? null };
  if (metric === 'connect') {
    if (!r.ConnectionStats) throw new FortioOutputError('fortio result has no ConnectionStats (connection-time histogram); pin fortio >= 1.38');
    const all = samplesFromHistogram(r.ConnectionStats).map((s) => s * 1e9);
    const kept = removeFailedDials(all, errors.SOCKET_ERROR ?? 0, o.timeoutMs ?? 1000);
    return { ...base, samplesNs: kept.samplesNs, samplesSource: 'histogram', resolutionUs: histogramResolutionUs(r.ConnectionStats), failedDialsRemoved: kept.removed };
  }
  const log = parseAccessLog(stderr);
  const calls = r.DurationHistogram?.Count ?? 0;
  if (log.length > 0) {
    if (log.length !== calls) throw new FortioOutputError(`fortio access log has ${log.length} entries for ${calls} calls: samples were lost`);
    // rr: each thread's first call opened its connection (see fortioCalls); it is a connect, not a request/response.
    const handshake = (e: AccessLogEntry) => metric === 'rr' && e.iter === 0;
    const dropped = log.filter(handshake);
    // In the order the calls started (threads write their lines as calls finish).
    const ok = log.filter((e) => e.ok && !handshake(e)).sort((a, b) => a.timestamp - b.timestamp || a.thread - b.thread);
    // A first call that failed stays among the errors: its connection failed, which the reader should see.
    return { ...base, samplesNs: ok.map((e) => Math.round(e.latency * 1e9)), samplesSource: 'access-log', ...(metric === 'rr' ? { handshakeCallsDropped: dropped.length } : {}) };
  }
  // Without an access log the handshake calls cannot be told apart: a histogram-only fortio's rr keeps them.
  const good = subtractHistogram(r.DurationHistogram!, r.ErrorsDurationHistogram);
  return { ...base, samplesNs: samplesFromHistogram(good).map((s) => s * 1e9), samplesSource: 'histogram' };
}

/** A 2-call probe for the enforcement check: did any call get an HTTP 200? */
export function probeSucceeded(stdout: string): boolean {
  try {
    return (parseFortioJson(stdout).RetCodes?.['200'] ?? 0) > 0;
  } catch {
    return false;
  }
}
