import { describe, expect, it } from 'vitest';
import { assessStability, findModes } from './stability.js';
import { quantileCi } from './compare.js';
import { seededRandom, sortedCopy } from './summary.js';

function lognormal(seed: number, n: number, median: number, sigma = 0.1): number[] {
  const rand = seededRandom(seed);
  return Array.from({ length: n }, () => median * Math.exp(sigma * Math.sqrt(-2 * Math.log(1 - rand())) * Math.cos(2 * Math.PI * rand())));
}

describe('stability', () => {
  it('a steady log-normal run (with a long tail) is one mode, no drift', () => {
    const s = lognormal(1, 5000, 40_000, 0.3);
    const r = assessStability(s);
    expect(r.multimodal).toBe(false);
    expect(r.shifted).toBe(false);
    expect(r.flagged).toBe(false);
    expect(r.modesNs).toHaveLength(1);
  });

  it('finds two modes when the scheduler alternates between 8 µs and 76 µs states', () => {
    const rand = seededRandom(2);
    const fast = lognormal(3, 5000, 8_000);
    const slow = lognormal(4, 5000, 76_000);
    const mixed = fast.map((f, i) => (rand() < 0.35 ? slow[i]! : f));
    const r = assessStability(mixed);
    expect(r.multimodal).toBe(true);
    expect(r.flagged).toBe(true);
    const modes = [...r.modesNs].sort((a, b) => a - b);
    expect(modes[0]).toBeGreaterThan(6_000);
    expect(modes[0]).toBeLessThan(10_000);
    expect(modes[1]).toBeGreaterThan(60_000);
    expect(r.reason).toMatch(/2 modes/);
  });

  it('flags a run whose second half is 30% slower than its first', () => {
    const s = [...lognormal(5, 3000, 40_000), ...lognormal(6, 3000, 52_000)];
    const r = assessStability(s);
    expect(r.shifted).toBe(true);
    expect(r.halvesShift).toBeCloseTo(0.3, 1);
    expect(r.reason).toMatch(/second half's median is \+30%/);
  });

  it('does not judge tiny runs', () => {
    expect(assessStability(lognormal(7, 50, 1000)).flagged).toBe(false);
    expect(findModes([])).toEqual([]);
  });
});

// The drift rule on synthetic runs, as the gate is proven: how often it fires on steady runs, and how often it
// catches a known shift, in both directions.
describe('stability: the drift rule, its false-alarm and detection rates', () => {
  const runs = (seed: number, count: number, make: (rand: () => number) => number[]) => Array.from({ length: count }, (_, t) => make(seededRandom(seed + t)));
  const draw = (rand: () => number, n: number, median: number, sigma: number) =>
    Array.from({ length: n }, () => median * Math.exp(sigma * Math.sqrt(-2 * Math.log(1 - rand())) * Math.cos(2 * Math.PI * rand())));
  const drifted = (n: number, factor: number) => (rand: () => number) => [...draw(rand, n / 2, 40_000, 0.3), ...draw(rand, n / 2, 40_000 * factor, 0.3)];
  const rate = (samples: number[][]) => samples.filter((s) => assessStability(s).shifted).length / samples.length;

  it('steady but wide runs of 200 samples: halves often differ by > 10% by chance, yet ≤ 2% are called drifted (the halves must be apart)', () => {
    const steady = runs(1000, 200, (rand) => draw(rand, 200, 40_000, 0.6));
    const chance = steady.filter((s) => Math.abs(assessStability(s).halvesShift!) > 0.1).length / steady.length;
    expect(chance).toBeGreaterThan(0.2); // the case the CI condition exists for
    expect(rate(steady)).toBeLessThanOrEqual(0.02);
  });

  it('steady runs of 2000 samples are never called drifted', () => {
    expect(rate(runs(3000, 100, (rand) => draw(rand, 2000, 40_000, 0.3)))).toBe(0);
  });

  it('a 25% shift between the halves of 1000-sample runs is caught in ≥ 95% of runs, slower or faster', () => {
    expect(rate(runs(5000, 100, drifted(1000, 1.25)))).toBeGreaterThanOrEqual(0.95);
    expect(rate(runs(6000, 100, drifted(1000, 0.75)))).toBeGreaterThanOrEqual(0.95);
  });

  it('the 10% threshold: a 15% shift (either way) in 4000-sample runs is caught, a 5% one never, though its halves are mostly apart', () => {
    for (const f of [1.15, 1 / 1.15]) expect(rate(runs(7000, 50, drifted(4000, f)))).toBeGreaterThanOrEqual(0.95);
    for (const f of [1.05, 1 / 1.05]) {
      const small = runs(8000, 50, drifted(4000, f));
      const halvesApart = (s: number[]) => {
        const [alo, ahi] = quantileCi(sortedCopy(s.slice(0, s.length / 2)), 0.5);
        const [blo, bhi] = quantileCi(sortedCopy(s.slice(s.length / 2)), 0.5);
        return bhi < alo || blo > ahi;
      };
      expect(small.filter(halvesApart).length).toBeGreaterThanOrEqual(40); // the CIs would let most through: the 10% threshold holds them
      expect(rate(small)).toBe(0);
    }
  });
});
