// Reading one watch against the moment a change was handed to the agent: when did the verdict flip, how
// tightly is that moment bracketed by probe starts, and did traffic pass that should not have. Pure.
import type { WatchOutput } from '../probe/native.js';

export type Verdict = 'open' | 'closed';

/** Every probe of a watch, times relative to the change's start (negative: before the change). */
export interface ProbeTrace {
  /** Start of each probe, µs after the change started (CLOCK_MONOTONIC). */
  startUs: number[];
  /** End (verdict known) of each probe, µs after the change started. */
  endUs: number[];
  /** 'open' or the errno that ended the connect. */
  result: string[];
}

export interface FlipObservation {
  /** The verdict the change should produce. */
  expect: Verdict;
  /** Did the watch see the old verdict before the change (the precondition)? */
  preconditionHeld: boolean;
  /** Time to enforcement, ms: start of the first probe of the settled new verdict − change start. Null: never seen. */
  enforcedMs: number | null;
  /** Start of the last probe with the old verdict before the flip, ms after the change (lower bound of the flip). */
  lastOldMs: number | null;
  /** Width of the bracket [lastOld, enforced], ms: the resolution achieved for this observation. */
  bracketMs: number | null;
  /** Probes after the flip that showed the old verdict again (flapping), counted. */
  relapses: number;
  /** Largest gap between consecutive probe starts during the watch, ms (the cadence achieved). */
  maxStartGapMs: number;
  probes: number;
}

export const verdictOf = (result: string): Verdict => (result === 'open' ? 'open' : 'closed');

/** Puts a watch's probes on the change's clock: `changeStartNs` from process.hrtime.bigint(), same CLOCK_MONOTONIC. */
export function traceFrom(w: WatchOutput, changeStartNs: bigint): ProbeTrace {
  const offsetNs = Number(w.baseNs - changeStartNs);
  const us = (ns: number) => Math.round((ns + offsetNs) / 100) / 10;
  return { startUs: w.startNs.map(us), endUs: w.endNs.map(us), result: [...w.result] };
}

function maxGapMs(t: ProbeTrace): number {
  let gap = 0;
  for (let i = 1; i < t.startUs.length; i++) gap = Math.max(gap, t.startUs[i]! - t.startUs[i - 1]!);
  return gap / 1000;
}

/**
 * The flip is the start of the first run of `settle` consecutive probes with the new verdict that begins at or
 * after the change; the bracket's other end is the last old-verdict probe before it. Probes that started
 * before the change and already show the new verdict mean the precondition failed (the old state was not in
 * place) — reported, not hidden.
 */
export function analyzeFlip(t: ProbeTrace, expect: Verdict, settle = 5): FlipObservation {
  const n = t.startUs.length;
  const v = t.result.map(verdictOf);
  const before = v.filter((_, i) => t.startUs[i]! < 0);
  const preconditionHeld = before.length > 0 && before.every((x) => x !== expect);
  let flip = -1;
  for (let i = 0; i < n && flip < 0; i++) {
    if (t.startUs[i]! < 0 || v[i] !== expect) continue;
    // `settle` in a row, or every remaining probe when the watch ended sooner.
    const want = Math.min(settle, n - i);
    let k = 0;
    while (k < want && v[i + k] === expect) k++;
    if (k === want) flip = i;
  }
  let lastOld = -1;
  if (flip >= 0) for (let i = flip - 1; i >= 0; i--) if (v[i] !== expect) { lastOld = i; break; }
  const relapses = flip < 0 ? 0 : v.slice(flip).filter((x) => x !== expect).length;
  const ms = (us: number) => us / 1000;
  const enforcedMs = flip >= 0 ? Math.max(0, ms(t.startUs[flip]!)) : null;
  const lastOldMs = lastOld >= 0 ? ms(t.startUs[lastOld]!) : null;
  return {
    expect,
    preconditionHeld,
    enforcedMs,
    lastOldMs,
    // The flip cannot precede the change, so a last old probe from before it bounds the bracket at 0.
    bracketMs: enforcedMs !== null ? enforcedMs - Math.max(lastOldMs ?? 0, 0) : null,
    relapses,
    maxStartGapMs: maxGapMs(t),
    probes: n,
  };
}

/** Traffic that passed where neither the old nor the new state allows it (a denied peer's probes). */
export interface LeakObservation {
  /** Probes of the denied peer that connected. */
  leaked: number;
  probes: number;
  /** From the first to the last leaked probe's start (ms after the change); null when nothing leaked. */
  firstLeakMs: number | null;
  lastLeakMs: number | null;
  /** Length of the fail-open window, ms (0 when nothing leaked; one leaked probe counts one probe interval). */
  windowMs: number;
}

export function analyzeLeak(t: ProbeTrace, intervalMs: number): LeakObservation {
  const leaks = t.result.map((r, i) => (r === 'open' ? t.startUs[i]! / 1000 : null)).filter((x): x is number => x !== null);
  if (leaks.length === 0) return { leaked: 0, probes: t.result.length, firstLeakMs: null, lastLeakMs: null, windowMs: 0 };
  const first = Math.min(...leaks);
  const last = Math.max(...leaks);
  return { leaked: leaks.length, probes: t.result.length, firstLeakMs: first, lastLeakMs: last, windowMs: last - first + intervalMs };
}

/**
 * For a change that removes access (allow removed), the traffic still passing after the change was handed over
 * is a fail-open window: from the change's start to the start of the last probe that still connected before
 * the flip (plus one interval, the probe's share of time).
 */
export function revocationWindow(t: ProbeTrace, flip: FlipObservation, intervalMs: number): LeakObservation {
  // Compared in ms, the unit enforcedMs was derived in: µs / 1000 * 1000 is not always the µs it came from
  // (63.7 / 1000 * 1000 > 63.7), and the flip probe must fall on the "after" side.
  const limitMs = flip.enforcedMs ?? Infinity;
  const passed = t.result
    .map((r, i) => (r === 'open' && t.startUs[i]! >= 0 && t.startUs[i]! / 1000 < limitMs ? t.startUs[i]! / 1000 : null))
    .filter((x): x is number => x !== null);
  const after = t.result.filter((_, i) => t.startUs[i]! >= 0).length;
  if (passed.length === 0) return { leaked: 0, probes: after, firstLeakMs: null, lastLeakMs: null, windowMs: 0 };
  const last = Math.max(...passed);
  return { leaked: passed.length, probes: after, firstLeakMs: Math.min(...passed), lastLeakMs: last, windowMs: last + intervalMs };
}
