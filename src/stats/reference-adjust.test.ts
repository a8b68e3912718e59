import { describe, expect, it } from 'vitest';
import { fitScaling } from './fit.js';
import { normalFrom } from './hierarchical.js';
import { adjustToReference, alphaPerLook, curveDecision, DEFAULT_ADAPTIVE, lookSchedule, THETA_RANGE, type RunPoint } from './sequential.js';
import { seededRandom } from './summary.js';
import { complexityVerdict, type Complexity } from './verdict.js';

// The regression adjustment to the machine's reference (issue 24), on synthetic curves with a known truth: each run
// gets a machine factor (two modes 20% apart, at random per run) that its value and its reference share, as the
// flat curves of the s4head sweep show (RR p50 swings 23.6–31.8 µs while RR / its reference stays 1.42–1.47).

const COUNTS = [0, 500, 1000, 2000, 5000];
const R0 = 20_000;

interface Scenario {
  name: string;
  /** Expected run value at x (ns) on the fast machine. */
  at: (x: number) => number;
  /** How the reference relates to the run's machine: the same factor, an independent one, or the same and a trend with x. */
  reference: 'shared' | 'independent' | 'trends';
  wrong: Complexity[];
}

interface Sim { points: RunPoint[]; logM: number }

/** Per repetition, one run per count: value = truth · M · 1% jitter, reference = R0 · M (or its own M') · 1% sampling noise. */
function runs(s: Scenario, reps: number, seed: number): Sim[][] {
  const rand = seededRandom(seed);
  const g = normalFrom(rand);
  return Array.from({ length: reps }, () => COUNTS.map((x): Sim => {
    const m = rand() < 0.5 ? 1 : 1.2;
    const own = rand() < 0.5 ? 1 : 1.2;
    const y = s.at(x) * m * (1 + 0.01 * g());
    const trend = s.reference === 'trends' ? 1 + (0.3 * x) / 5000 : 1;
    const reference = R0 * (s.reference === 'independent' ? own : m) * trend * (1 + 0.01 * g());
    return { points: [{ x, y, se: 0.005 * y, reference }], logM: Math.log(m) };
  }));
}

/** Least-squares slope of truth.at over the design, times a machine factor. */
function slopeOf(s: Scenario, factor: number): number {
  const ys = COUNTS.map((x) => s.at(x) * factor);
  const mx = COUNTS.reduce((a, b) => a + b, 0) / COUNTS.length;
  const my = ys.reduce((a, b) => a + b, 0) / ys.length;
  let sxy = 0;
  let sxx = 0;
  COUNTS.forEach((x, i) => {
    sxy += (x - mx) * (ys[i]! - my);
    sxx += (x - mx) ** 2;
  });
  return sxy / sxx;
}

interface Outcome { complexity: Complexity; covered: boolean; reps: number }
type Design = 'fixed' | 'excluded' | 'adjusted';
const DESIGNS: Design[] = ['fixed', 'excluded', 'adjusted'];

/** The runs a design sees: with the reference (adjusted), or flagged slowed by it as results/machine.ts flags them (excluded). */
function view(data: Sim[][], n: number, design: Design): RunPoint[] {
  const pts = data.slice(0, n).flat().flatMap((s) => s.points);
  if (design === 'adjusted') return pts;
  const refs = pts.map((p) => p.reference!).sort((a, b) => a - b);
  const usual = refs[Math.floor(refs.length / 2)]!;
  return pts.map(({ x, y, se, reference }) => ({ x, y, se, slowed: reference! > 1.1 * usual }));
}

/**
 * What each CI should cover: the adjusted curve is the curve on the machine at the runs' mean log reference, i.e.
 * at their geometric-mean machine factor (where the reference shares the mode); a fit of the raw runs (or the
 * adjusted runs with θ ≈ 0) estimates the curve at the mean factor, 1.1.
 */
function target(s: Scenario, data: Sim[][], n: number, design: Design, theta: number | null): number {
  if (design !== 'adjusted' || theta === null || s.reference === 'independent') return slopeOf(s, 1.1);
  const ls = data.slice(0, n).flat().map((d) => d.logM);
  const geo = Math.exp(ls.reduce((a, b) => a + b, 0) / ls.length);
  // θ between 0 and 1 leaves a share 1 − θ of each run's mode in it: the target between the two.
  return slopeOf(s, Math.min(1, Math.max(0, theta)) * geo + (1 - Math.min(1, Math.max(0, theta))) * 1.1);
}

function judge(data: Sim[][], s: Scenario, design: Design, seed: number): Outcome & { trips: boolean } {
  if (design === 'fixed') {
    const fit = fitScaling(view(data, DEFAULT_ADAPTIVE.max, 'excluded').map(({ x, y, se }) => ({ x, y, se })), { seed, resamples: 400 })!;
    const t = slopeOf(s, 1.1);
    return { complexity: complexityVerdict(fit).complexity, covered: fit.slopeCi95[0] <= t && t <= fit.slopeCi95[1], reps: DEFAULT_ADAPTIVE.max, trips: false };
  }
  const looks = lookSchedule(DEFAULT_ADAPTIVE);
  const alphas = alphaPerLook(DEFAULT_ADAPTIVE);
  for (let k = 0; k < looks.length; k++) {
    const d = curveDecision(view(data, looks[k]!, design), alphas[k]!, { seed, resamples: 400 });
    if (d.settled || k === looks.length - 1) {
      const t = target(s, data, looks[k]!, design, d.adjustment.theta);
      return { complexity: d.verdict.complexity, covered: d.fit!.slopeCi95[0] <= t && t <= d.fit!.slopeCi95[1], reps: looks[k]!, trips: d.adjustment.trendShare !== null && d.adjustment.theta === null };
    }
  }
  throw new Error('unreachable');
}

interface Rates { wrong: number; covered: number; reps: number; trips: number }
const SEEDS = 150;

function simulate(s: Scenario): Record<Design, Rates> {
  const acc = Object.fromEntries(DESIGNS.map((k) => [k, { wrong: 0, covered: 0, reps: 0, trips: 0 }])) as Record<Design, Rates>;
  for (let seed = 1; seed <= SEEDS; seed++) {
    const data = runs(s, DEFAULT_ADAPTIVE.max, seed * 7919);
    for (const k of DESIGNS) {
      const o = judge(data, s, k, seed);
      acc[k].wrong += +s.wrong.includes(o.complexity) / SEEDS;
      acc[k].covered += +o.covered / SEEDS;
      acc[k].reps += o.reps / SEEDS;
      acc[k].trips += +o.trips / SEEDS;
    }
  }
  return acc;
}

const base = 30_000;
const bound = 0.1 * base;
const SCENARIOS: Scenario[] = [
  { name: 'flat, shared modes', at: () => base, reference: 'shared', wrong: ['O(n)', 'super-linear'] },
  { name: 'growth at half the bound, shared modes', at: (x) => base + (0.5 * bound * x) / 5000, reference: 'shared', wrong: ['O(n)', 'super-linear'] },
  { name: 'linear, twice the bound, shared modes', at: (x) => base + (2 * bound * x) / 5000, reference: 'shared', wrong: ['O(1)', 'super-linear'] },
  { name: 'super-linear, shared modes', at: (x) => base + 40 * x * (1 + x / 5000), reference: 'shared', wrong: ['O(1)', 'O(n)'] },
  { name: 'flat, reference with modes of its own', at: () => base, reference: 'independent', wrong: ['O(n)', 'super-linear'] },
  { name: 'flat, reference trends with the count', at: () => base, reference: 'trends', wrong: ['O(n)', 'super-linear'] },
];
/** Coverage at the stopping look no lower than nominal 95%, less two Monte-Carlo standard errors over SEEDS data sets. */
const NOMINAL = 0.95 - 2 * Math.sqrt((0.95 * 0.05) / SEEDS);

describe('the adjustment to the reference', () => {
  it('estimates θ within counts: a curve that grows while its reference happens to be higher at the large counts keeps its growth', () => {
    // Within every count the value does not move with the reference (θ ≈ 0); across counts both grow. θ estimated
    // across counts would be ≈ 1 and take the growth away with the reference's trend.
    const pts: RunPoint[] = COUNTS.flatMap((x, i) => [0, 1, 2].map((k): RunPoint => ({ x, y: 30_000 + 2 * x + [0, 30, -30][k]!, reference: 20_000 * (1 + 0.02 * i) * [1, 0.9, 1.1][(k + i) % 3]! })));
    const { adjustment, points } = adjustToReference(pts);
    expect(adjustment.theta).not.toBeNull();
    expect(adjustment.theta!).toBeLessThan(0.05);
    const fit = fitScaling(points)!;
    expect(fit.slope).toBeGreaterThan(1.9);
  });

  it('clamps θ to [0, 1.5] and leaves curves without a reference in every run to the slowed-run rule', () => {
    expect(THETA_RANGE).toEqual([0, 1.5]);
    const pts: RunPoint[] = [0, 1, 2].flatMap((x) => [1, 1.2, 1].map((m, k): RunPoint => ({ x, y: 100 * m ** 3, reference: 50 * m * (1 + 0.001 * k) })));
    const a = adjustToReference(pts).adjustment;
    expect(a.estimate!).toBeGreaterThan(2);
    expect(a.theta).toBe(1.5);
    expect(adjustToReference(pts.map((p, i) => (i === 0 ? { x: p.x, y: p.y } : p))).adjustment.theta).toBeNull();
  });
});

describe('adjusted vs slowed runs left out vs fixed 12 repetitions, runs sharing a machine mode with their reference (150 data sets each)', () => {
  for (const s of SCENARIOS) {
    it(`${s.name}`, () => {
      const r = simulate(s);
      const row = (f: (x: Rates) => string) => DESIGNS.map((k) => f(r[k])).join(' | ');
      console.log(`${s.name} (fixed | excluded | adjusted): wrong ${row((x) => x.wrong.toFixed(3))}; covered ${row((x) => x.covered.toFixed(3))}; mean repetitions ${row((x) => x.reps.toFixed(1))}; guard ${r.adjusted.trips.toFixed(2)}`);
      expect(r.adjusted.covered).toBeGreaterThanOrEqual(NOMINAL);
      // Within 2 data sets: the designs share their data and differ on few. On the flat curves with a reference of
      // their own modes or a trend, the adjusted design was wrong where the fixed one was right in 1 of 600 data sets
      // (none the other way), in none of these 150: a strict ≤ held by luck (another 150: about one time in five).
      expect(r.adjusted.wrong).toBeLessThanOrEqual(r.fixed.wrong + 2 / SEEDS);
      // The adjustment decides earlier than leaving slowed runs out (which catches only the runs 10% above the usual):
      // flat and slow-growing curves by far (their CI is as wide as the modes); a linear curve waits for its exponent
      // CI to rule out super-linear growth, which the modes do not decide.
      if (s.reference === 'shared') expect(r.adjusted.reps).toBeLessThanOrEqual(r.excluded.reps);
      if (s.reference === 'shared' && (s.name.startsWith('flat') || s.name.startsWith('growth'))) expect(r.adjusted.reps).toBeLessThan(r.excluded.reps - 3);
      if (s.reference === 'trends') expect(r.adjusted.trips).toBeGreaterThan(0.9); // the guard: not adjusted
      if (s.reference === 'independent') expect(r.adjusted.reps).toBeLessThanOrEqual(r.excluded.reps + 0.5);
    }, 300_000);
  }
});
