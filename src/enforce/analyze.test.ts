import { describe, expect, it } from 'vitest';
import { analyzeFlip, analyzeLeak, revocationWindow, traceFrom, type ProbeTrace } from './analyze.js';

/** Probes every `stepUs` from `fromUs`, verdict by start time. */
function trace(fromUs: number, count: number, stepUs: number, verdict: (startUs: number) => string, latUs = 100): ProbeTrace {
  const startUs = Array.from({ length: count }, (_, i) => fromUs + i * stepUs);
  const result = startUs.map(verdict);
  return { startUs, endUs: startUs.map((s, i) => s + (result[i] === 'ETIMEDOUT' ? 10_000 : latUs)), result };
}

describe('analyzeFlip', () => {
  it('brackets a closed→open flip between two probe starts', () => {
    const t = trace(-20_000, 60, 1000, (s) => (s >= 12_500 ? 'open' : 'ETIMEDOUT'));
    const f = analyzeFlip(t, 'open', 5);
    expect(f.preconditionHeld).toBe(true);
    expect(f.enforcedMs).toBe(13);
    expect(f.lastOldMs).toBe(12);
    expect(f.bracketMs).toBe(1);
    expect(f.relapses).toBe(0);
    expect(f.maxStartGapMs).toBe(1);
  });

  it('reads an open→closed flip by probe start, not by when the timeout reported it', () => {
    const t = trace(-5_000, 40, 1000, (s) => (s >= 7_000 ? 'ETIMEDOUT' : 'open'));
    const f = analyzeFlip(t, 'closed', 5);
    expect(f.enforcedMs).toBe(7);
    expect(f.bracketMs).toBe(1);
  });

  it('needs `settle` consecutive probes: an early lone success is not the flip, and is counted', () => {
    const t = trace(-3_000, 40, 1000, (s) => (s === 2_000 || s >= 10_000 ? 'open' : 'ETIMEDOUT'));
    const f = analyzeFlip(t, 'open', 5);
    expect(f.enforcedMs).toBe(10);
    expect(f.relapses).toBe(0);
  });

  it('reports a never-enforced change as null, and a broken precondition as such', () => {
    expect(analyzeFlip(trace(-3_000, 30, 1000, () => 'ETIMEDOUT'), 'open').enforcedMs).toBeNull();
    const already = analyzeFlip(trace(-3_000, 30, 1000, () => 'open'), 'open');
    expect(already.preconditionHeld).toBe(false);
    expect(already.enforcedMs).toBe(0);
  });

  it('counts relapses after the flip (flapping)', () => {
    const t = trace(-2_000, 30, 1000, (s) => (s >= 5_000 && s !== 15_000 ? 'open' : 'ECONNREFUSED'));
    expect(analyzeFlip(t, 'open', 3).relapses).toBe(1);
  });

  it('states the cadence achieved: the widest gap between starts', () => {
    const t = trace(-2_000, 10, 1000, (s) => (s >= 0 ? 'open' : 'ETIMEDOUT'));
    t.startUs[6] = t.startUs[6]! + 4_000;
    for (let i = 7; i < 10; i++) t.startUs[i] = t.startUs[i]! + 4_000;
    expect(analyzeFlip(t, 'open', 3).maxStartGapMs).toBe(5);
  });
});

describe('leaks', () => {
  it('a denied peer that never connects leaks nothing', () => {
    expect(analyzeLeak(trace(-10_000, 50, 1000, () => 'ETIMEDOUT'), 1)).toMatchObject({ leaked: 0, windowMs: 0, firstLeakMs: null });
  });
  it('measures the fail-open window from the first to the last leaked start, plus one interval', () => {
    const t = trace(-10_000, 50, 1000, (s) => (s >= -2_000 && s <= 3_000 ? 'open' : 'ETIMEDOUT'));
    expect(analyzeLeak(t, 1)).toMatchObject({ leaked: 6, firstLeakMs: -2, lastLeakMs: 3, windowMs: 6 });
  });
  it('revocation: traffic passing after the change and before the flip is the window', () => {
    const t = trace(-5_000, 40, 1000, (s) => (s >= 7_000 ? 'ETIMEDOUT' : 'open'));
    const w = revocationWindow(t, analyzeFlip(t, 'closed'), 1);
    expect(w).toMatchObject({ leaked: 7, firstLeakMs: 0, lastLeakMs: 6, windowMs: 7 });
  });
});

describe('traceFrom', () => {
  it('puts watch offsets on the change clock (same CLOCK_MONOTONIC, BigInt base)', () => {
    const base = 10n ** 15n; // beyond 2^53 ns would lose precision as a Number; offsets stay small
    const t = traceFrom({ baseNs: base, intervalNs: 1e6, timeoutNs: 1e7, settledIndex: -1, realtime: true, startNs: [0, 1_000_000], endNs: [50_000, 1_060_000], result: ['open', 'open'] }, base + 500_000n);
    expect(t.startUs).toEqual([-500, 500]);
    expect(t.endUs).toEqual([-450, 560]);
  });
});
