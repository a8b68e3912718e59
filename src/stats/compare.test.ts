import { describe, expect, it } from 'vitest';
import { compareSamples, mannWhitney, quantileCi } from './compare.js';
import { seededRandom, sortedCopy } from './summary.js';

/** Connect-latency-like samples: log-normal around 40 µs with a long right tail. */
function latencies(seed: number, n = 5000, scale = 1): number[] {
  const rand = seededRandom(seed);
  return Array.from({ length: n }, () => {
    const z = Math.sqrt(-2 * Math.log(1 - rand())) * Math.cos(2 * Math.PI * rand());
    return 40_000 * Math.exp(0.25 * z) * scale;
  });
}

describe('mannWhitney', () => {
  it('gives p = 1 for identical samples and tiny p for a clear shift', () => {
    const a = latencies(1);
    expect(mannWhitney(a, a).p).toBeCloseTo(1, 6);
    const shifted = mannWhitney(a, a.map((x) => x * 1.3));
    expect(shifted.p).toBeLessThan(1e-10);
    expect(shifted.commonLanguageEffect).toBeGreaterThan(0.7);
  });

  it('matches a hand-computed U with ties', () => {
    // baseline 1,2,2 ; current 2,3: pooled ranks 1, 3,3,3 (ties at 2), 5 → current rank sum 3+5 = 8 → U = 8 − 3 = 5
    expect(mannWhitney([1, 2, 2], [2, 3]).u).toBe(5);
  });
});

describe('quantileCi', () => {
  it('covers the true median of a uniform sample', () => {
    const rand = seededRandom(4);
    const s = sortedCopy(Array.from({ length: 2000 }, () => rand()));
    const [lo, hi] = quantileCi(s, 0.5);
    expect(lo).toBeLessThan(0.5);
    expect(hi).toBeGreaterThan(0.5);
    expect(hi - lo).toBeLessThan(0.06);
  });
});

describe('compareSamples', () => {
  it('flags an injected 10% regression at p50 and p99', () => {
    for (const q of [0.5, 0.99]) {
      const c = compareSamples(latencies(1), latencies(2, 5000, 1.1), q);
      expect(c.verdict, `q=${q}`).toBe('regression');
      expect(c.change).toBeGreaterThan(0.05);
      expect(c.changeCi95[0]).toBeLessThan(0.1);
      expect(c.changeCi95[1]).toBeGreaterThan(0.1);
    }
  });

  it('does not flag two runs drawn from the same distribution (20 pairs)', () => {
    for (let seed = 10; seed < 30; seed++) {
      for (const q of [0.5, 0.99]) {
        const c = compareSamples(latencies(seed), latencies(seed + 100), q);
        expect(c.verdict, `seed ${seed} q=${q}: ${JSON.stringify(c)}`).not.toBe('regression');
        expect(c.verdict).not.toBe('improvement');
      }
    }
  });

  it('calls a significant 2% slow-down slower but not a regression at the default 5% threshold', () => {
    const c = compareSamples(latencies(1, 20000), latencies(2, 20000, 1.02), 0.5);
    expect(c.significant).toBe(true);
    expect(c.verdict).toBe('slower (within threshold)');
    expect(compareSamples(latencies(1, 20000), latencies(2, 20000, 1.02), 0.5, { maxRegression: 0.01, alpha: 0.05 }).verdict).toBe('regression');
  });

  it('reports an improvement', () => {
    expect(compareSamples(latencies(1), latencies(2, 5000, 0.8), 0.5).verdict).toBe('improvement');
  });

  it('says "no data" for an empty side', () => {
    expect(compareSamples([], latencies(1), 0.5).verdict).toBe('no data');
  });
});
