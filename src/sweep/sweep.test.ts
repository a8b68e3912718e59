import { describe, expect, it } from 'vitest';
import { readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { PACKAGE_ROOT } from '../metrics/machine.js';
import { loadScenarioFile } from '../config/load.js';
import { writeResult } from '../results/io.js';
import { syntheticResult } from '../report/test-support/fixtures.js';
import { resolveSweepConfig } from './config.js';
import { newManifest, pointsToRun, readManifest, staleRunIds, writeManifest, type SweepManifest } from './manifest.js';
import { newSweepId, planSweep, SWEEP_ID_RE } from './plan.js';
import { estimateRemainingMs, runSweep, type PointRunner } from './sweep.js';
import { formatDuration, progressPrinter } from './progress.js';
import { pointEstimateMs, timeLeftMs } from './estimate.js';
import { sweepDimension } from './adaptive.js';
import { DEFAULT_ADAPTIVE } from '../stats/sequential.js';
import { tempDir } from '../test-support/temp.js';

const matrix = { cnis: ['none', 'flannel'] as Array<'none' | 'flannel'>, policies: [0, 100, 1000], repetitions: 3, seed: 1 };

function freshManifest(dir: string, m = matrix): SweepManifest {
  const { config } = resolveSweepConfig({ cni: m.cnis.join(','), policies: m.policies.join(','), samples: '100', warmup: '0' });
  const { cni: _c, policies: _p, out: _o, json: _j, dryRun: _d, keep: _k, ...settings } = config!.base;
  const manifest = newManifest({ id: 'sweep-20250101-000000-abcd', backend: 'local', scenario: null, matrix: m, settings: { ...settings, backend: 'local' }, points: planSweep(m) });
  writeManifest(dir, manifest);
  return manifest;
}

/** Writes a synthetic result like executeRun would; records the order it was called in. */
function fakeRunner(calls: string[], opts: { failKey?: string; abortAfter?: { n: number; ctl: AbortController } } = {}): PointRunner {
  return async ({ point, runId, outDir, sweep }) => {
    calls.push(point.key);
    if (opts.abortAfter && calls.length === opts.abortAfter.n) opts.abortAfter.ctl.abort();
    const failed = point.key === opts.failKey;
    const r = syntheticResult({
      cni: point.cni,
      policies: point.policies,
      repetition: sweep.repetition,
      sweepId: sweep.id,
      seed: calls.length,
      samples: 50,
      connectNs: 40_000,
      ...(failed ? { status: 'failed' as const, error: { stage: 'policy', kind: 'capacity', message: 'policy map full' } } : {}),
    });
    r.runId = runId;
    writeResult(outDir, r);
    return { result: r };
  };
}

describe('planSweep', () => {
  it('walks the whole matrix once per repetition, each in its own seeded order', () => {
    const pts = planSweep({ ...matrix, policies: [0, 100, 500, 1000, 2000, 5000, 10000], cnis: ['none', 'flannel', 'calico', 'cilium'] });
    expect(pts).toHaveLength(84);
    const reps = [1, 2, 3].map((r) => pts.filter((p) => p.repetition === r).map((p) => `${p.cni}-${p.policies}`));
    for (const rep of reps) expect(new Set(rep).size).toBe(28);
    expect(reps[0]).not.toEqual(reps[1]);
    expect(pts.map((p) => p.order)).toEqual(pts.map((_, i) => i));
    // Repetitions do not overlap in time: all of rep 1 runs before rep 2 starts.
    expect(pts.slice(0, 28).every((p) => p.repetition === 1)).toBe(true);
    expect(planSweep(matrix)).toEqual(planSweep(matrix));
    expect(planSweep({ ...matrix, seed: 2 }).map((p) => p.key)).not.toEqual(planSweep(matrix).map((p) => p.key));
  });

  it('makes sweep ids that are safe directory names', () => {
    expect(newSweepId(new Date('2025-01-31T23:59:59Z'))).toMatch(/^sweep-20250131-235959-[a-z0-9]{4}$/);
    expect(SWEEP_ID_RE.test(newSweepId())).toBe(true);
    expect(SWEEP_ID_RE.test('../etc')).toBe(false);
  });
});

describe('runSweep', () => {
  it('runs every point in order, records a failed point and goes on', async () => {
    const dir = tempDir('cb-sweep-');
    const m = freshManifest(dir);
    const calls: string[] = [];
    const failKey = m.points[2]!.key;
    let n = 0;
    const out = await runSweep({ dir, manifest: m, runPoint: fakeRunner(calls, { failKey }), newRunId: () => `r${String(n++).padStart(4, '0')}` });
    expect(calls).toEqual(m.points.map((p) => p.key));
    expect(out.status).toBe('complete');
    const onDisk = readManifest(dir);
    expect(onDisk.points.filter((p) => p.status === 'ok')).toHaveLength(17);
    const failed = onDisk.points.find((p) => p.key === failKey)!;
    expect(failed.status).toBe('failed');
    expect(failed.error).toMatchObject({ stage: 'policy', kind: 'capacity' });
    expect(readdirSync(dir).filter((d) => d !== 'sweep.json')).toHaveLength(18);
    expect(pointsToRun(onDisk, dir)).toEqual([]);
    expect(pointsToRun(onDisk, dir, { retryFailed: true }).map((p) => p.key)).toEqual([failKey]);
  });

  it('records a point whose backend cannot even be created, and goes on', async () => {
    const dir = tempDir('cb-sweep-');
    const m = freshManifest(dir);
    const calls: string[] = [];
    const ok = fakeRunner(calls);
    const runner: PointRunner = async (args) => {
      if (args.point.order === 0) throw new Error('probe missing');
      return ok(args);
    };
    await runSweep({ dir, manifest: m, runPoint: runner, newRunId: () => 'abcde' });
    expect(m.points[0]!.status).toBe('failed');
    expect(m.points[0]!.error?.message).toBe('probe missing');
    expect(calls).toHaveLength(17);
  });

  it('stops on abort after the current point, and a resume runs only the missing points', async () => {
    const dir = tempDir('cb-sweep-');
    const m = freshManifest(dir);
    const ctl = new AbortController();
    const first: string[] = [];
    // The 5th point sees the abort while running: executeRun would tear down and write an "interrupted" result.
    const runner: PointRunner = async (args) => {
      const r = await fakeRunner(first, { abortAfter: { n: 5, ctl } })(args);
      if (first.length === 5) {
        r.result!.status = 'failed';
        r.result!.errors = [{ stage: 'interrupted', message: 'interrupted by SIGINT' }];
      }
      return r;
    };
    const out = await runSweep({ dir, manifest: m, runPoint: runner, newRunId: () => 'abcde', signal: ctl.signal });
    expect(first).toHaveLength(5);
    expect(out.status).toBe('interrupted');
    expect(out.points[4]!.status).toBe('interrupted');

    const resumed = readManifest(dir);
    const second: string[] = [];
    await runSweep({ dir, manifest: resumed, runPoint: fakeRunner(second), newRunId: () => 'fghij' });
    expect(second).toEqual(m.points.slice(4).map((p) => p.key));
    expect(readManifest(dir).status).toBe('complete');
  });

  it('takes Services as a dimension: points keyed by the Service count, each run with its count, and a resume runs only the missing ones', async () => {
    const dir = tempDir('cb-sweep-');
    const { config } = resolveSweepConfig({ cni: 'none,cilium', policies: '0', services: '1000,0', repetitions: '1', samples: '100', warmup: '0' });
    expect(config!.matrix).toEqual({ cnis: ['none', 'cilium'], policies: [0], services: [0, 1000], repetitions: 1, seed: 1 });
    const { cni: _c, policies: _p, services: _s, out: _o, json: _j, dryRun: _d, keep: _k, ...settings } = config!.base;
    const m = newManifest({ id: 'sweep-20250101-000000-abcd', backend: 'local', scenario: null, matrix: config!.matrix, settings: { ...settings, backend: 'local' }, points: planSweep(config!.matrix) });
    writeManifest(dir, m);
    expect(m.points.map((p) => p.key).sort()).toEqual(['cilium-0-s0-r1', 'cilium-0-s1000-r1', 'none-0-s0-r1', 'none-0-s1000-r1']);
    const ctl = new AbortController();
    const seen: Array<[string, number | undefined]> = [];
    const first: string[] = [];
    const runner = (calls: string[], abortAfter?: number): PointRunner => async (args) => {
      seen.push([args.point.key, args.config.services]);
      return fakeRunner(calls, abortAfter ? { abortAfter: { n: abortAfter, ctl } } : {})(args);
    };
    await runSweep({ dir, manifest: m, runPoint: runner(first, 2), newRunId: () => 'abcde', signal: ctl.signal });
    expect(first).toHaveLength(2);
    const second: string[] = [];
    await runSweep({ dir, manifest: readManifest(dir), runPoint: runner(second), newRunId: () => 'fghij' });
    expect([...first, ...second].sort()).toEqual(m.points.map((p) => p.key).sort());
    expect(second).toEqual(m.points.slice(2).map((p) => p.key));
    for (const [key, services] of seen) expect(key).toContain(`-s${services}-`);
    expect(readManifest(dir).points.every((p) => p.services !== undefined)).toBe(true);
  });

  it('treats a point left "running" by a killed process, or an ok point whose result vanished, as missing', () => {
    const dir = tempDir('cb-sweep-');
    const m = freshManifest(dir);
    Object.assign(m.points[0]!, { status: 'running', runId: 'k1lld' });
    Object.assign(m.points[1]!, { status: 'ok', runId: 'g0ne1', resultPath: `${m.points[1]!.key}/result.json` });
    expect(staleRunIds(m)).toEqual(['k1lld']);
    const todo = pointsToRun(m, dir).map((p) => p.key);
    expect(todo[0]).toBe(m.points[0]!.key);
    expect(todo[1]).toBe(m.points[1]!.key);
    expect(todo).toHaveLength(18);
  });

  it('estimates the time left from finished points', () => {
    const dir = tempDir('cb-sweep-');
    const m = freshManifest(dir);
    expect(estimateRemainingMs(m, 10)).toBeNull();
    Object.assign(m.points[0]!, { status: 'ok', wallMs: 1000 });
    Object.assign(m.points[1]!, { status: 'failed', wallMs: 3000 });
    expect(estimateRemainingMs(m, 10)).toBe(20_000);
    expect(formatDuration(20_000)).toBe('20s');
    expect(formatDuration(125_000)).toBe('2m05s');
  });

  it('estimates a point from its cell: its fixed cost plus the metrics it measures, so an extension of one metric costs less', () => {
    const dir = tempDir('cb-sweep-');
    const m = freshManifest(dir);
    const at = (cni: string, policies: number, rep: number) => m.points.find((p) => p.cni === cni && p.policies === policies && p.repetition === rep)!;
    expect(pointEstimateMs(m, { cni: 'none', policies: 0 })).toBeNull();
    Object.assign(at('none', 0, 1), { status: 'ok', wallMs: 1500, metricMs: { connect: 200, crr: 400, rr: 300 } });
    Object.assign(at('none', 0, 2), { status: 'ok', wallMs: 1700, metricMs: { connect: 200, crr: 600, rr: 300 } });
    // An older point without the split counts with its whole wall, in its own cell.
    Object.assign(at('flannel', 1000, 1), { status: 'ok', wallMs: 4000 });
    expect(pointEstimateMs(m, { cni: 'none', policies: 0 })).toBe(1600);
    expect(pointEstimateMs(m, { cni: 'none', policies: 0, metrics: ['rr'] })).toBe(600 + 300);
    expect(pointEstimateMs(m, { cni: 'flannel', policies: 1000, metrics: ['rr'] })).toBe(4000);
    // A cell nothing has run in yet: the mean of every finished point.
    expect(pointEstimateMs(m, { cni: 'flannel', policies: 0 })).toBeCloseTo((1500 + 1700 + 4000) / 3);
    const pending = [{ ...at('none', 0, 3), metrics: ['rr' as const] }, at('flannel', 1000, 2)];
    expect(timeLeftMs(m, pending, [])).toEqual({ etaMs: 900 + 4000, etaMaxMs: 900 + 4000 });
    // Later looks at most: 2 more repetitions of every none cell, measuring RR alone (cells not run yet: the mean).
    const { etaMaxMs } = timeLeftMs(m, pending, [{ cni: 'none', metrics: ['rr'], repetitions: 2 }]);
    expect(etaMaxMs).toBe(900 + 4000 + 2 * (900 + 2 * ((1500 + 1700 + 4000) / 3)));
  });
});

describe('progressPrinter', () => {
  it('prints one line per point when stderr is not a terminal, and redraws in place when it is', () => {
    const dir = tempDir('cb-sweep-');
    const m = freshManifest(dir);
    let plain = '';
    const p = progressPrinter({ write: (s: string) => (plain += s) }, { tty: false });
    p.pointStarted(m.points[0]!, 0, 18, { planned: 18, atMost: 18, etaMs: 60_000, etaMaxMs: 60_000 });
    p.step('measuring connect');
    Object.assign(m.points[0]!, { status: 'ok', wallMs: 1200 });
    p.pointFinished(m.points[0]!, 0, 18, null);
    expect(plain.split('\n').filter(Boolean)).toHaveLength(2);
    expect(plain).toContain('ETA 1m00s');
    expect(plain).not.toContain('\r');

    let tty = '';
    const t = progressPrinter({ write: (s: string) => (tty += s), columns: 200 }, { tty: true });
    t.pointStarted(m.points[1]!, 1, 18, { planned: 17, atMost: 40, etaMs: null, etaMaxMs: null });
    t.step('measuring crr');
    expect(tty).toContain('\r\x1b[K');
    expect(tty).toContain('measuring crr');
    expect(tty).toContain('17 points left, ETA ? (at most 40, ?, if every open verdict needs the maximum)');
  });
});

describe('resolveSweepConfig', () => {
  it('takes comma-separated lists and reports every bad item', () => {
    const { config } = resolveSweepConfig({ cni: 'none, flannel', policies: '1000,0,100', repetitions: '2' });
    expect(config!.matrix).toEqual({ cnis: ['none', 'flannel'], policies: [0, 100, 1000], repetitions: 2, seed: 1 });
    const bad = resolveSweepConfig({ cni: 'none,weave', policies: '0,x,99999999', repetitions: '0' });
    expect(bad.config).toBeUndefined();
    expect(bad.problems.map((p) => p.where)).toEqual(['--cni', '--policies', '--policies', '--repetitions']);
  });

  it('validates shared settings by the run rules', () => {
    const { problems } = resolveSweepConfig({ cni: 'none', samples: '0' });
    expect(problems).toEqual([expect.objectContaining({ where: '--samples' })]);
  });

  it('reads lists from a scenario, flags override', () => {
    const path = join(PACKAGE_ROOT, 'scenarios', 'policy-scaling.yaml');
    const s = loadScenarioFile(path);
    expect(s.problems).toEqual([]);
    const { config } = resolveSweepConfig({ cni: 'none' }, { path, scenario: s.scenario! });
    expect(config!.matrix.cnis).toEqual(['none']);
    expect(config!.matrix.policies).toEqual([0, 500, 1000, 2000, 5000]);
  });

  it('scenarios/services-scaling.yaml is a valid adaptive sweep along the Service count', () => {
    const path = join(PACKAGE_ROOT, 'scenarios', 'services-scaling.yaml');
    const s = loadScenarioFile(path);
    expect(s.problems).toEqual([]);
    const r = resolveSweepConfig({}, { path, scenario: s.scenario! });
    expect(r.problems).toEqual([]);
    expect(r.config!.matrix).toMatchObject({ cnis: ['none', 'calico', 'calico-nftables', 'calico-ebpf', 'cilium'], policies: [0], services: [0, 1000, 5000, 10000, 30000], adaptive: DEFAULT_ADAPTIVE });
    expect(sweepDimension(r.config!.matrix)).toBe('services');
    // The same sweep as the flags the README gives.
    expect(resolveSweepConfig({ cni: 'none,calico,calico-nftables,calico-ebpf,cilium', services: '0,1000,5000,10000,30000' }).config!.matrix).toEqual(r.config!.matrix);
  });

  for (const name of ['smoke', 'policy-scaling', 'nightly']) {
    it(`scenarios/${name}.yaml is a valid sweep`, () => {
      const path = join(PACKAGE_ROOT, 'scenarios', `${name}.yaml`);
      const s = loadScenarioFile(path);
      expect(s.problems).toEqual([]);
      const r = resolveSweepConfig({}, { path, scenario: s.scenario! });
      expect(r.problems).toEqual([]);
      // The headline covers every data plane; smoke and nightly keep the four that CI and the gate run.
      expect(r.config!.matrix.cnis).toEqual(name === 'policy-scaling' ? ['none', 'flannel', 'canal', 'calico', 'calico-nftables', 'calico-ebpf', 'cilium'] : ['none', 'flannel', 'calico', 'cilium']);
      expect(readFileSync(path, 'utf8')).toMatch(/^# /);
    });
  }
});
