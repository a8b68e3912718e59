import { describe, expect, it } from 'vitest';
import { assessStability, findModes } from './stability.js';
import { seededRandom } from './summary.js';

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
