// Where one curve passes another: only clear orderings count, so two flat curves trading places within their
// noise never cross.
import type { Level } from './fit.js';

export interface Crossover {
  /** The curve that was lower (cheaper) before the crossing. */
  lowerBefore: string;
  lowerAfter: string;
  /** The two measured counts the crossing lies between. */
  between: [number, number];
  /** Linear interpolation of where the medians meet. */
  atPolicies: number;
}

/** A curve's value at one policy count with an uncertainty band (a CI envelope, or the repetitions' range). */
export interface Band {
  x: number;
  median: number;
  low: number;
  high: number;
}

/**
 * Where curve A passes curve B. Only clear orderings count: at a policy count, one curve is "clearly below" the
 * other when its band lies entirely below the other's (bands: the envelope of the runs' 95% CIs, or the range of
 * the repetitions). A crossover is a change of clear order between two counts (counts in between where the bands
 * overlap are skipped), so two flat curves that trade places within their noise never cross.
 */
export function findCrossovers(nameA: string, a: Band[], nameB: string, b: Band[]): Crossover[] {
  const bx = new Map(b.map((l) => [l.x, l]));
  const shared = a.filter((l) => bx.has(l.x)).map((l) => [l, bx.get(l.x)!] as const);
  const out: Crossover[] = [];
  let last: { sign: number; x: number; diff: number } | null = null;
  for (const [la, lb] of shared) {
    const sign = la.high < lb.low ? -1 : la.low > lb.high ? 1 : 0;
    if (sign === 0) continue;
    const diff = la.median - lb.median;
    if (last && sign !== last.sign) {
      const t = last.diff / (last.diff - diff);
      out.push({
        lowerBefore: last.sign < 0 ? nameA : nameB,
        lowerAfter: sign < 0 ? nameA : nameB,
        between: [last.x, la.x],
        atPolicies: Math.round(last.x + t * (la.x - last.x)),
      });
    }
    last = { sign, x: la.x, diff };
  }
  return out;
}

/** Bands from repetitions alone: the range of the values at each count. */
export const rangeBands = (levels: Level[]): Band[] => levels.map((l) => ({ x: l.x, median: l.median, low: l.min, high: l.max }));
