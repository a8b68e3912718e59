// sweep.json: what a sweep is (matrix and settings) and where each point stands. Rewritten atomically after
// every point, so a sweep killed at any moment leaves a manifest that says what finished and what did not.
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { z } from 'zod';
import { BACKENDS, CNIS, runConfigSchema, type RunConfig } from '../config/schema.js';
import { InputError } from '../errors.js';
import { readResult, writeFileAtomic } from '../results/io.js';
import { errorRecordSchema, METRICS } from '../results/schema.js';
import type { PlannedPoint, SweepMatrix } from './plan.js';

export const SWEEP_KIND = 'cni-bench/sweep';
export const SWEEP_SCHEMA_VERSION = 1;
export const MANIFEST_FILE = 'sweep.json';

/** Settings every point shares (everything of a run's config but the CNI, the policy count and output handling). */
export const sweepSettingsSchema = runConfigSchema.omit({ cni: true, policies: true, services: true, out: true, json: true, dryRun: true, keep: true });
export type SweepSettings = z.output<typeof sweepSettingsSchema>;

export const POINT_STATUSES = ['pending', 'running', 'ok', 'failed', 'interrupted'] as const;
export type PointStatus = (typeof POINT_STATUSES)[number];

const pointSchema = z.object({
  key: z.string(),
  cni: z.enum(CNIS),
  policies: z.number().int(),
  /** Absent in sweeps without a Service dimension. */
  services: z.number().int().optional(),
  repetition: z.number().int(),
  order: z.number().int(),
  /** The latency metrics the point measures (absent, as in every older manifest: all of them). */
  metrics: z.array(z.enum(METRICS)).optional(),
  status: z.enum(POINT_STATUSES),
  runId: z.string().nullable(),
  /** Relative to the sweep directory. */
  resultPath: z.string().nullable(),
  startedAt: z.string().nullable(),
  finishedAt: z.string().nullable(),
  wallMs: z.number().nullable(),
  /** The run's wall time per measured metric (its result's timings.metricMs), for the estimate of time left. */
  metricMs: z.object({ connect: z.number().optional(), crr: z.number().optional(), rr: z.number().optional() }).optional(),
  error: errorRecordSchema.nullable(),
});
export type SweepPoint = z.output<typeof pointSchema>;

const adaptiveDesignSchema = z.object({ min: z.number().int(), step: z.number().int(), max: z.number().int(), alpha: z.number(), gamma: z.number().optional() });

/** One verdict of one data plane at a look. */
const curveLookSchema = z.object({
  cni: z.enum(CNIS),
  metric: z.string(),
  /** Repetitions its points had at this look. */
  repetitions: z.number().int(),
  /** The α this look spent on it: its CIs are at level 1 − α (t-corrected, see stats/sequential.ts). */
  alpha: z.number(),
  complexity: z.string(),
  settled: z.boolean(),
  /** The verdict's own sentence (open: why it is open). */
  reason: z.string(),
});
export type CurveLook = z.output<typeof curveLookSchema>;

const lookSchema = z.object({
  at: z.string(),
  curves: z.array(curveLookSchema),
  /** Data planes that got another batch, the repetitions it takes them to, and the metrics it measures (absent: all). */
  extended: z.array(z.object({ cni: z.enum(CNIS), to: z.number().int(), metrics: z.array(z.enum(METRICS)).optional() })),
  /** Data planes left with a verdict open because they reached the maximum. */
  atMax: z.array(z.enum(CNIS)),
});
export type SweepLook = z.output<typeof lookSchema>;

/** A workload sweep's verify run of one data plane: `<sweep>/verify-<cni>.json` once it is ok. */
const verifyStepSchema = z.object({
  cni: z.enum(CNIS),
  status: z.enum(POINT_STATUSES),
  runId: z.string().nullable(),
  resultPath: z.string().nullable(),
  wallMs: z.number().nullable(),
  error: errorRecordSchema.nullable(),
});
export type SweepVerifyStep = z.output<typeof verifyStepSchema>;

export const manifestSchema = z.object({
  schemaVersion: z.literal(SWEEP_SCHEMA_VERSION),
  kind: z.literal(SWEEP_KIND),
  id: z.string(),
  createdAt: z.string(),
  updatedAt: z.string(),
  status: z.enum(['running', 'complete', 'interrupted']),
  backend: z.enum(BACKENDS).exclude(['auto']),
  scenario: z.string().nullable(),
  matrix: z.object({
    cnis: z.array(z.enum(CNIS)),
    policies: z.array(z.number().int()),
    services: z.array(z.number().int()).optional(),
    repetitions: z.number().int(),
    seed: z.number().int(),
    adaptive: adaptiveDesignSchema.nullable().optional(),
    workload: z.object({ name: z.string(), flow: z.array(z.string()).optional(), flows: z.number().int().optional() }).optional(),
  }),
  settings: sweepSettingsSchema,
  points: z.array(pointSchema),
  /** Adaptive sweeps: what each look decided (absent for fixed repetitions and older manifests). */
  looks: z.array(lookSchema).optional(),
  /** Workload sweeps: each data plane's verify run (what the policy set means there), stored beside the points. */
  verify: z.array(verifyStepSchema).optional(),
});
export type SweepManifest = z.output<typeof manifestSchema>;

/** A sweep manifest that cannot be used, and why: an input error naming the file. */
const unusable = (file: string, reason: string) => new InputError([{ where: file, message: reason }]);

export function newManifest(opts: { id: string; backend: SweepManifest['backend']; scenario: string | null; matrix: SweepMatrix; settings: SweepSettings; points: PlannedPoint[]; now?: Date }): SweepManifest {
  const now = (opts.now ?? new Date()).toISOString();
  return {
    schemaVersion: SWEEP_SCHEMA_VERSION,
    kind: SWEEP_KIND,
    id: opts.id,
    createdAt: now,
    updatedAt: now,
    status: 'running',
    backend: opts.backend,
    scenario: opts.scenario,
    matrix: opts.matrix,
    settings: opts.settings,
    points: opts.points.map((p) => ({ ...p, status: 'pending', runId: null, resultPath: null, startedAt: null, finishedAt: null, wallMs: null, error: null })),
    ...(opts.matrix.workload ? { verify: opts.matrix.cnis.map((cni) => ({ cni, status: 'pending' as const, runId: null, resultPath: null, wallMs: null, error: null })) } : {}),
  };
}

export function writeManifest(dir: string, m: SweepManifest): void {
  m.updatedAt = new Date().toISOString();
  writeFileAtomic(join(dir, MANIFEST_FILE), `${JSON.stringify(m, null, 2)}\n`);
}

export function readManifest(dir: string): SweepManifest {
  const file = join(dir, MANIFEST_FILE);
  if (!existsSync(file)) throw unusable(file, 'no such file (not a sweep directory?)');
  let data: unknown;
  try {
    data = JSON.parse(readFileSync(file, 'utf8'));
  } catch (e) {
    throw unusable(file, `not valid JSON (truncated or corrupted?): ${(e as Error).message}`);
  }
  if ((data as { kind?: unknown } | null)?.kind !== SWEEP_KIND) throw unusable(file, `not a cni-bench sweep manifest (expected "kind": "${SWEEP_KIND}")`);
  const parsed = manifestSchema.safeParse(data);
  if (!parsed.success) {
    const first = parsed.error.issues.slice(0, 3).map((i) => `${i.path.join('.') || '(root)'}: ${i.message}`);
    throw unusable(file, `does not match the sweep schema: ${first.join('; ')}`);
  }
  return parsed.data;
}

/** The run config of one point. */
export function pointConfig(m: SweepManifest, p: Pick<SweepPoint, 'cni' | 'policies' | 'services' | 'metrics'>, sweepDir: string): RunConfig {
  return runConfigSchema.parse({ ...m.settings, cni: p.cni, policies: p.policies, ...(p.services === undefined ? {} : { services: p.services }), ...(p.metrics ? { metrics: p.metrics } : {}), out: sweepDir, backend: m.backend, json: false, dryRun: false, keep: false });
}

/**
 * Which points a (resumed) sweep still has to run, in sweep order: never started, interrupted, left "running" by
 * a killed process, or "ok" but with a result file that is gone or unreadable. Points that failed on their own
 * (a capacity error, say) are kept unless retryFailed: running them again would fail the same way.
 */
export function pointsToRun(m: SweepManifest, sweepDir: string, opts: { retryFailed?: boolean } = {}): SweepPoint[] {
  return m.points
    .filter((p) => {
      if (p.status === 'pending' || p.status === 'running' || p.status === 'interrupted') return true;
      if (p.status === 'failed') return Boolean(opts.retryFailed);
      if (!p.resultPath) return true;
      try {
        readResult(join(sweepDir, p.resultPath));
        return false;
      } catch {
        return true;
      }
    })
    .sort((a, b) => a.order - b.order);
}

/** A workload sweep's verify runs still to do: not ok (a failed one only with retryFailed), or ok with its file gone. */
export function verifiesToRun(m: SweepManifest, sweepDir: string, opts: { retryFailed?: boolean } = {}): SweepVerifyStep[] {
  return (m.verify ?? []).filter((v) => {
    if (v.status === 'failed') return Boolean(opts.retryFailed);
    if (v.status !== 'ok' || !v.resultPath) return true;
    return !existsSync(join(sweepDir, v.resultPath));
  });
}

/** Run ids of points (and verify runs) a killed sweep left "running": their namespaces may still exist. */
export const staleRunIds = (m: SweepManifest) => [...m.points, ...(m.verify ?? [])].filter((p) => p.status === 'running' && p.runId).map((p) => p.runId!);

export function counts(m: SweepManifest): Record<PointStatus, number> {
  const c = Object.fromEntries(POINT_STATUSES.map((s) => [s, 0])) as Record<PointStatus, number>;
  for (const p of m.points) c[p.status]++;
  return c;
}

/** A sweep's lock: held by the process running it, so a second `--resume` cannot run the same points at once. */
export const SWEEP_LOCK_FILE = 'sweep.lock';
