// The sweep matrix as data: which points, in which order. Each repetition walks the whole matrix in its own
// seeded shuffle, so slow drift of a shared machine (thermal, noisy neighbours) spreads over every CNI and
// policy count instead of lining up with one of them and looking like a trend.
import { randomBytes } from 'node:crypto';
import type { CniName } from '../config/schema.js';
import type { MetricName } from '../results/schema.js';
import type { AdaptiveDesign } from '../stats/sequential.js';
import { seededRandom } from '../stats/summary.js';

export interface SweepMatrix {
  cnis: CniName[];
  policies: number[];
  /** Service counts, a dimension beside policies (absent: the points have no Service). */
  services?: number[];
  /** Fixed: every point this many times. Adaptive: the most any point gets (design.max). */
  repetitions: number;
  /** Seeds the order of points within each repetition. */
  seed: number;
  /**
   * Adaptive repetitions (sequential.ts): every point starts with design.min; after each batch, the points of data
   * planes with a verdict still open get design.step more, up to design.max. Absent or null: fixed repetitions.
   */
  adaptive?: AdaptiveDesign | null;
  /**
   * A cluster-shaped workload (`--workload`; its file is the settings' `workload`): `policies` is then its one
   * policy count, and each point measures the flows chosen for its data plane. `flow`/`flows` as given.
   */
  workload?: SweepWorkload;
}

/** What a workload sweep records about its workload beside the file: its name and how the flows are chosen. */
export interface SweepWorkload {
  name: string;
  /** `--flow` specs, measured exactly (absent: the default spread). */
  flow?: string[];
  /** `--flows K`: seeded random allowed flows beside the default ones. */
  flows?: number;
}

export interface PlannedPoint {
  /** `<cni>-<policies>[-s<services>]-r<repetition>`: the point's directory under the sweep directory. */
  key: string;
  cni: CniName;
  policies: number;
  /** Absent: no Service (the client connects to the pod). */
  services?: number;
  /** 1-based. */
  repetition: number;
  /** Position in the sweep's execution order (0-based). */
  order: number;
  /** The latency metrics this point measures, when not all: an adaptive extension's open ones (absent: all). */
  metrics?: MetricName[];
}

/** bench sweep's default: adaptive repetitions (stats/sequential.ts). */
export const DEFAULT_REPETITIONS = 'auto';

export const pointKey = (cni: CniName, policies: number, repetition: number, services?: number) => `${cni}-${policies}${services === undefined ? '' : `-s${services}`}-r${repetition}`;

function shuffle<T>(items: T[], rand: () => number): T[] {
  const a = [...items];
  for (let i = a.length - 1; i > 0; i--) {
    const j = Math.floor(rand() * (i + 1));
    [a[i], a[j]] = [a[j]!, a[i]!];
  }
  return a;
}

export interface Cell {
  cni: CniName;
  policies: number;
  services?: number;
  /** The metrics its points measure (absent: all). */
  metrics?: MetricName[];
}

/** The first batch: every point of the matrix, `repetitions` times (adaptive: design.min). */
export function planSweep(m: SweepMatrix): PlannedPoint[] {
  const serviceCounts: (number | undefined)[] = m.services ?? [undefined];
  const cells = m.cnis.flatMap((cni) => m.policies.flatMap((policies) => serviceCounts.map((services) => ({ cni, policies, ...(services === undefined ? {} : { services }) }))));
  return planRepetitions(m.seed, cells, 1, m.adaptive ? Math.min(m.adaptive.min, m.repetitions) : m.repetitions, 0);
}

/**
 * Repetitions `from`..`to` of the given points, each repetition a seeded shuffle of them (a later batch of an
 * adaptive sweep interleaves the points it adds in the same way), numbered from `order`.
 */
export function planRepetitions(seed: number, cells: Cell[], from: number, to: number, order: number): PlannedPoint[] {
  const out: PlannedPoint[] = [];
  for (let rep = from; rep <= to; rep++) {
    const rand = seededRandom((seed * 7919 + rep) >>> 0);
    for (const c of shuffle(cells, rand)) out.push({ key: pointKey(c.cni, c.policies, rep, c.services), cni: c.cni, policies: c.policies, ...(c.services === undefined ? {} : { services: c.services }), repetition: rep, order: order + out.length, ...(c.metrics ? { metrics: c.metrics } : {}) });
  }
  return out;
}

export const SWEEP_ID_RE = /^sweep-\d{8}-\d{6}-[a-z0-9]{4}$/;

/** `sweep-20250131-235959-k3f9`: sorts by time, safe as a directory name. */
export function newSweepId(now = new Date()): string {
  const p = (n: number, w = 2) => String(n).padStart(w, '0');
  const stamp = `${now.getUTCFullYear()}${p(now.getUTCMonth() + 1)}${p(now.getUTCDate())}-${p(now.getUTCHours())}${p(now.getUTCMinutes())}${p(now.getUTCSeconds())}`;
  const alphabet = 'abcdefghijklmnopqrstuvwxyz0123456789';
  const suffix = [...randomBytes(4)].map((b) => alphabet[b % alphabet.length]).join('');
  return `sweep-${stamp}-${suffix}`;
}
