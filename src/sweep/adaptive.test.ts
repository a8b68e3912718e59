import { describe, expect, it } from 'vitest';
import type { CniName } from '../config/schema.js';
import { writeResult } from '../results/io.js';
import { syntheticResult } from '../report/test-support/fixtures.js';
import { normalFrom } from '../stats/hierarchical.js';
import { alphaAt, DEFAULT_ADAPTIVE } from '../stats/sequential.js';
import { seededRandom } from '../stats/summary.js';
import { levelText, repetitionsOf, reviewLook, sweepDimension } from './adaptive.js';
import { resolveSweepConfig } from './config.js';
import { newManifest, readManifest, writeManifest, type SweepManifest } from './manifest.js';
import { planSweep, type SweepMatrix } from './plan.js';
import { runSweep, type PointRunner } from './sweep.js';
import { analyze } from '../report/analyze.js';
import { collectResults } from '../report/collect.js';
import { sweepSummary } from '../report/summary.js';
import { sweepDocument } from '../report/json.js';
import { renderMarkdown } from '../report/markdown.js';
import { tempDir } from '../test-support/temp.js';

const POLICIES = [0, 500, 1000, 2000, 5000];

function adaptiveManifest(dir: string, cnis: CniName[], max = 12): SweepManifest {
  const { config } = resolveSweepConfig({ cni: cnis.join(','), policies: POLICIES.join(','), samples: '100', warmup: '0', maxRepetitions: String(max) });
  const { cni: _c, policies: _p, out: _o, json: _j, dryRun: _d, keep: _k, ...settings } = config!.base;
  const m = newManifest({ id: 'sweep-20250101-000000-adpt', backend: 'local', scenario: null, matrix: config!.matrix, settings: { ...settings, backend: 'local' }, points: planSweep(config!.matrix) });
  writeManifest(dir, m);
  return m;
}

/**
 * Data planes with a known truth: calico grows super-linearly with 3% run-to-run noise (decided at once), cilium is
 * flat with two run-to-run modes 8% apart (needs more runs), weave-like 'canal' here is flat but so noisy (±40%)
 * that no verdict settles: it must stop at the maximum and say so.
 */
function truthRunner(calls: string[]): PointRunner {
  return async ({ point, config, runId, outDir, sweep }) => {
    calls.push(point.key);
    const rand = seededRandom(calls.length * 7919);
    const g = normalFrom(rand);
    const x = point.policies;
    const base = { calico: 30_000 + 40 * x * (1 + x / 5000), 'calico-nftables': 30_000 + 40 * x * (1 + x / 5000), cilium: 12_000, canal: 30_000 }[point.cni as 'calico' | 'calico-nftables' | 'cilium' | 'canal'];
    const factor = point.cni === 'calico' || point.cni === 'calico-nftables' ? 1 + 0.03 * g() : point.cni === 'cilium' ? 1 + (rand() < 0.5 ? 0.08 : 0) + 0.01 * g() : Math.exp(0.4 * g());
    const v = base * factor;
    const noisyRr = point.cni === 'canal' || point.cni === 'calico-nftables';
    const r = syntheticResult({ cni: point.cni, policies: x, repetition: sweep.repetition, sweepId: sweep.id, seed: calls.length, samples: 400, connectNs: v, crrNs: 2.5 * v, rrNs: noisyRr ? 30_000 * Math.exp(0.4 * g()) : 30_000 });
    r.runId = runId;
    // As a run with --metrics: the metrics not measured are null.
    for (const k of ['connect', 'crr', 'rr'] as const) if (config.metrics && !config.metrics.includes(k)) r.metrics[k] = null;
    writeResult(outDir, r);
    return { result: r };
  };
}

describe('adaptive repetitions', () => {
  it('--repetitions auto is the default: the first batch is 3 repetitions; a number keeps the fixed design', () => {
    const auto = resolveSweepConfig({ cni: 'none,calico', policies: '0,100,1000' }).config!.matrix;
    expect(auto.adaptive).toEqual(DEFAULT_ADAPTIVE);
    expect(auto.repetitions).toBe(12);
    expect(planSweep(auto)).toHaveLength(18);
    const fixed = resolveSweepConfig({ cni: 'none,calico', policies: '0,100,1000', repetitions: '5' }).config!.matrix;
    expect(fixed.adaptive).toBeUndefined();
    expect(planSweep(fixed)).toHaveLength(30);
    const bad = resolveSweepConfig({ cni: 'none', repetitions: 'lots', maxRepetitions: '1' });
    expect(bad.problems.map((p) => p.where)).toEqual(['--max-repetitions', '--max-repetitions', '--repetitions']);
    expect(resolveSweepConfig({ cni: 'none', repetitions: '4', maxRepetitions: '8' }).problems[0]!.message).toMatch(/only with --repetitions auto/);
  });

  it('a data plane an earlier look decided stays decided: it is not judged again, so never re-opened', async () => {
    const dir = tempDir('cb-adaptive-');
    // canal here is so noisy that a fresh judgement of its runs is always open.
    const m = adaptiveManifest(dir, ['canal'], 3);
    const out = await runSweep({ dir, manifest: m, runPoint: truthRunner([]), newRunId: () => 'stay' });
    expect(repetitionsOf(out, 'canal')).toBe(3);
    const judged = out.looks!.at(-1)!.curves.filter((c) => c.cni === 'canal');
    expect(judged.some((c) => !c.settled)).toBe(true);
    // The same runs, as if an earlier look (same repetitions) had called every canal verdict decided.
    const decided = judged.map((c) => ({ ...c, settled: true, reason: 'decided at look 1' }));
    const again = { ...out, matrix: { ...out.matrix, adaptive: { ...out.matrix.adaptive!, max: 12 } }, looks: [{ at: 'earlier', curves: decided, extended: [], atMax: [] }] };
    const next = reviewLook(again, dir);
    expect(next.batch).toEqual([]);
    expect(next.look.extended).toEqual([]);
    expect(next.look.curves).toEqual(decided);
    // Without that look, the same runs are judged open and extended.
    expect(reviewLook({ ...again, looks: [] }, dir).look.extended).toEqual([{ cni: 'canal', to: 6 }]);
  }, 60_000);

  it('extends a data plane with only its open metrics: the decided ones are not measured again, and stay decided', async () => {
    // calico-nftables here: connect and CRR super-linear with 3% noise (decided at look 1), RR flat but ±40% noisy.
    const dir = tempDir('cb-adaptive-');
    const m = adaptiveManifest(dir, ['calico-nftables']);
    const calls: string[] = [];
    const out = await runSweep({ dir, manifest: m, runPoint: truthRunner(calls), newRunId: () => 'permetric' });
    expect(out.status).toBe('complete');
    const first = out.looks![0]!;
    expect(first.curves.filter((c) => c.metric !== 'rr p50').every((c) => c.settled)).toBe(true);
    expect(first.extended).toEqual([{ cni: 'calico-nftables', to: 6, metrics: ['rr'] }]);
    // Every point after the first batch measures RR alone; the first batch measured all three.
    expect(out.points.filter((p) => p.repetition <= 3).every((p) => p.metrics === undefined)).toBe(true);
    expect(out.points.filter((p) => p.repetition > 3).every((p) => p.metrics?.join() === 'rr')).toBe(true);
    expect(repetitionsOf(out, 'calico-nftables', 'connect')).toBe(3);
    expect(repetitionsOf(out, 'calico-nftables', 'crr')).toBe(3);
    expect(repetitionsOf(out, 'calico-nftables', 'rr')).toBe(12);
    // Later looks keep the decided verdicts as look 1 decided them (not judged again on the same runs).
    const last = out.looks!.at(-1)!;
    for (const metric of ['connect p50', 'crr p50']) expect(last.curves.find((c) => c.metric === metric)).toEqual(first.curves.find((c) => c.metric === metric));
    expect(last.atMax).toEqual(['calico-nftables']);
    // The summary, the JSON and the report count each metric's own runs.
    expect(sweepSummary(readManifest(dir), null, 1000)).toMatch(/calico-nftables \(connect 3, crr 3, rr 12\)/);
    expect(sweepSummary(readManifest(dir), null, 1000)).toMatch(/\+3 repetitions for calico-nftables \(rr only\)/);
    expect(sweepDocument({ manifest: out, dir, wallMs: 1, analysis: null }).adaptive).toMatchObject({ repetitionsByMetric: { 'calico-nftables': { connect: 3, crr: 3, rr: 12 } } });
    const c = collectResults([dir]);
    const a = analyze(c.results, { seed: out.settings.seed, manifests: c.manifests });
    const plane = a.cnis.find((x) => x.cni === 'calico-nftables')!;
    expect(plane.metrics.connect_p50.points).toHaveLength(15);
    expect(plane.metrics.rr_p50.points).toHaveLength(60);
    expect(plane.metrics.connect_p50.verdict.complexity).toBe('super-linear');
    expect(a.ciMethod).toContain(`calico-nftables connect ${levelText(alphaAt(DEFAULT_ADAPTIVE, 3))}, crr ${levelText(alphaAt(DEFAULT_ADAPTIVE, 3))}, rr ${levelText(alphaAt(DEFAULT_ADAPTIVE, 12))}`);
  }, 120_000);

  it('adds interleaved batches only where a verdict is open, stops at the maximum and says which and why', async () => {
    const dir = tempDir('cb-adaptive-');
    const m = adaptiveManifest(dir, ['calico', 'cilium', 'canal']);
    const calls: string[] = [];
    const out = await runSweep({ dir, manifest: m, runPoint: truthRunner(calls), newRunId: () => 'adapt' });
    expect(out.status).toBe('complete');
    expect(repetitionsOf(out, 'calico')).toBe(3);
    expect(repetitionsOf(out, 'cilium')).toBeGreaterThan(3);
    expect(repetitionsOf(out, 'cilium')).toBeLessThan(12);
    expect(repetitionsOf(out, 'canal')).toBe(12);
    const last = out.looks!.at(-1)!;
    expect(last.atMax).toEqual(['canal']);
    expect(last.extended).toEqual([]);
    expect(last.curves.filter((c) => c.cni === 'calico').every((c) => c.settled)).toBe(true);
    expect(last.curves.find((c) => c.cni === 'calico' && c.metric === 'connect p50')!.complexity).toBe('super-linear');
    // Every batch walks its points in a shuffled order, cilium's and canal's interleaved.
    const batch2 = out.points.filter((p) => p.repetition === 4).map((p) => p.cni);
    expect(new Set(batch2)).toEqual(new Set(out.looks![0]!.extended.map((e) => e.cni)));
    expect(batch2.slice(0, 5)).not.toEqual(batch2.slice(0, 5).sort());
    expect(calls).toEqual(out.points.map((p) => p.key));
    expect(sweepDocument({ manifest: out, dir, wallMs: 1, analysis: null }).adaptive).toMatchObject({ design: DEFAULT_ADAPTIVE, repetitions: { calico: 3, canal: 12 } });
    // The summary names the data plane that hit the maximum, and why.
    const summary = sweepSummary(readManifest(dir), null, 1000);
    expect(summary).toMatch(/adaptive repetitions .*calico 3, cilium \(connect \d+, crr \d+, rr 3\), canal 12/);
    expect(summary).toMatch(/canal reached the maximum of 12 with .*p50 open \(/);
    // The report judges each data plane at the level its last look spent, and reaches the sweep's verdicts.
    const c = collectResults([dir]);
    const a = analyze(c.results, { seed: out.settings.seed, manifests: c.manifests });
    expect(a.ciMethod).toContain(`calico ${levelText(alphaAt(DEFAULT_ADAPTIVE, 3))}`);
    for (const curve of last.curves) {
      const id = `${curve.metric.replace(' p50', '')}_p50` as 'connect_p50';
      expect(a.cnis.find((x) => x.cni === curve.cni)!.metrics[id].verdict.complexity).toBe(curve.complexity);
    }
  }, 120_000);

  it('adjusts each run to the machine reference it measured: a flat curve on a disturbed host is decided early', async () => {
    // A flat data plane (1% run-to-run jitter) on a host that slows one run in six by 25–40%: connect, CRR and RR
    // of such a run are slow, and so is its loopback reference. Kept as they are, these runs keep the slope CI wider
    // than the flatness bound up to the maximum; adjusted to the reference (θ ≈ 1), the curve is O(1) at the first looks.
    const dir = tempDir('cb-adaptive-');
    const m = adaptiveManifest(dir, ['flannel']);
    let n = 0;
    const slowedRuns: string[] = [];
    const runner: PointRunner = async ({ point, runId, outDir, sweep }) => {
      n++;
      const rand = seededRandom(n * 104_729);
      const g = normalFrom(rand);
      const scale = [2, 4, 9, 13, 16, 20, 27, 31, 38, 44, 47, 53, 58].includes(n) ? 1.25 + 0.15 * rand() : 1;
      if (scale > 1) slowedRuns.push(runId);
      const v = 30_000 * (1 + 0.01 * g()) * scale;
      const r = syntheticResult({ cni: point.cni, policies: point.policies, repetition: sweep.repetition, sweepId: sweep.id, seed: n, samples: 400, connectNs: v, crrNs: 2.5 * v, rrNs: v, reference: { scale } });
      r.runId = runId;
      writeResult(outDir, r);
      return { result: r };
    };
    const out = await runSweep({ dir, manifest: m, runPoint: runner, newRunId: () => `s${String(n + 1).padStart(4, '0')}` });
    expect(out.status).toBe('complete');
    expect(slowedRuns.length).toBeGreaterThan(3);
    expect(repetitionsOf(out, 'flannel')).toBeLessThanOrEqual(6);
    const last = out.looks!.at(-1)!;
    expect(last.curves.map((c) => c.complexity)).toEqual(['O(1)', 'O(1)', 'O(1)']);
    for (const c of last.curves) {
      const theta = Number(/adjusted to the machine's reference, θ (\d\.\d\d)/.exec(c.reason)?.[1]);
      expect(theta).toBeGreaterThan(0.8);
      expect(theta).toBeLessThan(1.2);
    }
    // The report adjusts the same way and reaches the sweep's verdicts; its machine section lists the slowed runs.
    const c = collectResults([dir]);
    const a = analyze(c.results, { seed: out.settings.seed, manifests: c.manifests });
    expect(new Set(a.machine.slowedRuns.map((r) => r.runId))).toEqual(new Set(slowedRuns.filter((id) => out.points.some((p) => p.runId === id))));
    for (const id of ['connect_p50', 'crr_p50', 'rr_p50'] as const) {
      const mine = a.cnis[0]!.metrics[id];
      expect(mine.verdict.complexity).toBe('O(1)');
      expect(mine.adjustment!.theta).toBeGreaterThan(0.8);
      expect(mine.verdict.reason).toMatch(/adjusted to the machine's reference, θ/);
      // The point values stay the runs' own.
      expect(mine.points.some((p) => p.value > 1.2 * 30_000 * (id === 'crr_p50' ? 2.5 : 1))).toBe(true);
    }
    expect(a.ciMethod).toMatch(/adjust every run's value to the machine's reference/);
  }, 120_000);

  it('a sweep killed in a later batch resumes it and goes on looking: the same points as an uninterrupted sweep', async () => {
    const whole = tempDir('cb-adaptive-');
    const ref = await runSweep({ dir: whole, manifest: adaptiveManifest(whole, ['calico', 'canal'], 6), runPoint: truthRunner([]), newRunId: () => 'whole' });
    const dir = tempDir('cb-adaptive-');
    const ctl = new AbortController();
    const calls: string[] = [];
    const runner = truthRunner(calls);
    // Abort inside the second batch (the first has 30 points).
    const killed = await runSweep({ dir, manifest: adaptiveManifest(dir, ['calico', 'canal'], 6), runPoint: async (a) => (calls.length === 33 ? (ctl.abort(), runner(a)) : runner(a)), newRunId: () => 'kill1', signal: ctl.signal });
    expect(killed.status).toBe('interrupted');
    expect(killed.looks).toHaveLength(1);
    const resumed = await runSweep({ dir, manifest: readManifest(dir), runPoint: runner, newRunId: () => 'resum' });
    expect(resumed.status).toBe('complete');
    expect(resumed.points.map((p) => p.key)).toEqual(ref.points.map((p) => p.key));
    expect(resumed.looks!.map((l) => l.extended)).toEqual(ref.looks!.map((l) => l.extended));
    expect(calls).toEqual(resumed.points.map((p) => p.key));
  }, 120_000);

  it('a sweep killed in an extension that measures only the open metrics resumes it with the same metrics', async () => {
    const dir = tempDir('cb-adaptive-');
    const ctl = new AbortController();
    const calls: string[] = [];
    const runner = truthRunner(calls);
    const measured: Array<string | undefined> = [];
    const watch: PointRunner = async (a) => (measured.push(a.config.metrics?.join()), runner(a));
    // Abort inside the second batch (the first has 15 points).
    const killed = await runSweep({ dir, manifest: adaptiveManifest(dir, ['calico-nftables'], 6), runPoint: async (a) => (calls.length === 17 ? (ctl.abort(), watch(a)) : watch(a)), newRunId: () => 'kill2', signal: ctl.signal });
    expect(killed.status).toBe('interrupted');
    expect(readManifest(dir).points.filter((p) => p.status === 'pending').every((p) => p.metrics?.join() === 'rr')).toBe(true);
    measured.length = 0;
    const resumed = await runSweep({ dir, manifest: readManifest(dir), runPoint: watch, newRunId: () => 'resu2' });
    expect(resumed.status).toBe('complete');
    expect(measured.length).toBeGreaterThan(0);
    expect(measured.every((x) => x === 'rr')).toBe(true);
    expect(repetitionsOf(resumed, 'calico-nftables', 'connect')).toBe(3);
    expect(repetitionsOf(resumed, 'calico-nftables', 'rr')).toBe(6);
  }, 120_000);

  describe('over the Services dimension', () => {
    const SERVICES = [0, 1000, 5000, 10000, 30000];

    /**
     * none: kube-proxy iptables, 31 ns per Service with 3% run-to-run noise (decided at once); cilium: flat with two
     * run-to-run modes 8% apart (needs more runs); its point at 5000 Services fails in the first batch (as a capacity
     * error would) and must not be planned again.
     */
    const servicesRunner = (calls: string[]): PointRunner => async ({ point, runId, outDir, sweep }) => {
      calls.push(point.key);
      const rand = seededRandom(calls.length * 7919);
      const g = normalFrom(rand);
      const n = point.services!;
      const iptables = point.cni === 'none';
      const v = iptables ? (35_000 + 31 * n) * (1 + 0.03 * g()) : 29_000 * (1 + (rand() < 0.5 ? 0.08 : 0) + 0.01 * g());
      const r = syntheticResult({ cni: point.cni, policies: point.policies, repetition: sweep.repetition, sweepId: sweep.id, seed: calls.length, samples: 400, connectNs: v, crrNs: 2.5 * v, rrNs: 30_000, ...(point.cni === 'cilium' && n === 5000 && sweep.repetition === 1 ? { status: 'failed' as const } : {}) });
      r.runId = runId;
      r.services = { count: n, endpointsPerService: 1, position: 'last', dataPlane: iptables ? 'kube-proxy-iptables' : 'cilium-socket-lb', description: 'synthetic', lookup: iptables ? 'rule-walk' : 'bpf-map', clusterIP: '10.96.0.20', port: 80, installMs: 10, state: {} };
      writeResult(outDir, r);
      return { result: r };
    };

    it('is the default for a sweep over Service counts at one policy count; a sweep varying both runs 3 fixed and refuses auto', () => {
      const m = resolveSweepConfig({ cni: 'none,cilium', services: '0,1000,10000' }).config!.matrix;
      expect(m.adaptive).toEqual(DEFAULT_ADAPTIVE);
      expect(sweepDimension(m)).toBe('services');
      expect(planSweep(m)).toHaveLength(2 * 3 * 3);
      // One Service count: the curves run along the policy count, adaptively too.
      const p = resolveSweepConfig({ cni: 'none', services: '10000', policies: '0,100,1000', repetitions: 'auto' }).config!.matrix;
      expect(p.adaptive).toEqual(DEFAULT_ADAPTIVE);
      expect(sweepDimension(p)).toBe('policies');
      // Both varied: a surface, not a curve; fixed 3 by default, auto refused with what to do.
      const both = resolveSweepConfig({ cni: 'none', services: '0,1000', policies: '0,100' });
      expect(both.config!.matrix).toMatchObject({ repetitions: 3 });
      expect(both.config!.matrix.adaptive).toBeUndefined();
      const refused = resolveSweepConfig({ cni: 'none', services: '0,1000', policies: '0,100', repetitions: 'auto' });
      expect(refused.problems).toEqual([{ where: '--repetitions', message: expect.stringMatching(/several Service counts and several policy counts .*give one policy count to sweep --services, or one Service count to sweep --policies\), got 'auto'/) }]);
      expect(resolveSweepConfig({ cni: 'none', services: '0,1000', policies: '0,100', repetitions: '4' }).problems).toEqual([]);
    });

    it('judges connect p50 against the Service count and extends only the open data planes, leaving a failed cell out', async () => {
      const dir = tempDir('cb-adaptive-svc-');
      const { config } = resolveSweepConfig({ cni: 'none,cilium', services: SERVICES.join(','), samples: '100', warmup: '0' });
      const { cni: _c, policies: _p, services: _s, out: _o, json: _j, dryRun: _d, keep: _k, ...settings } = config!.base;
      const m = newManifest({ id: 'sweep-20250101-000000-svcs', backend: 'local', scenario: null, matrix: config!.matrix, settings: { ...settings, backend: 'local' }, points: planSweep(config!.matrix) });
      writeManifest(dir, m);
      const calls: string[] = [];
      const out = await runSweep({ dir, manifest: m, runPoint: servicesRunner(calls), newRunId: () => 'svcad' });
      expect(out.status).toBe('complete');
      const first = out.looks![0]!;
      // x is the Service count: with the policy count (0 everywhere) as x no curve could be decided at all.
      expect(first.curves.map((c) => [c.cni, c.metric])).toEqual([
        ['none', 'connect p50 vs Services'],
        ['cilium', 'connect p50 vs Services'],
      ]);
      expect(first.curves[0]).toMatchObject({ complexity: 'O(n)', settled: true });
      expect(first.curves[0]!.reason).toMatch(/over 0–30000 Services/);
      expect(first.extended).toEqual([{ cni: 'cilium', to: 6, metrics: ['connect'] }]);
      // …measuring connect alone: CRR and RR decide nothing against the Service count.
      expect(new Set(out.points.filter((p) => p.repetition > 3).map((p) => p.metrics?.join(',')))).toEqual(new Set(['connect']));
      // The next batch: cilium alone, every Service count but the one that failed, at policies 0.
      const batch2 = out.points.filter((p) => p.repetition === 4);
      expect(batch2.map((p) => p.key).sort()).toEqual(['cilium-0-s0-r4', 'cilium-0-s1000-r4', 'cilium-0-s10000-r4', 'cilium-0-s30000-r4']);
      expect(repetitionsOf(out, 'none')).toBe(3);
      expect(repetitionsOf(out, 'cilium')).toBeGreaterThan(3);
      const last = out.looks!.at(-1)!;
      expect(last.curves.find((c) => c.cni === 'cilium')).toMatchObject({ complexity: 'O(1)', settled: true });
      expect(calls).toEqual(out.points.map((p) => p.key));
      // The report's Services section judges each data plane as its last look did and says what runs it got.
      const c = collectResults([dir]);
      const a = analyze(c.results, { seed: out.settings.seed, manifests: c.manifests });
      for (const curve of last.curves) expect(a.services.find((p) => p.cni === curve.cni)!.verdict.complexity).toBe(curve.complexity);
      const cilium = a.services.find((p) => p.cni === 'cilium')!;
      expect(cilium.alpha).toBe(alphaAt(DEFAULT_ADAPTIVE, repetitionsOf(out, 'cilium')));
      // 5000 Services kept the two runs of the first batch that did not fail.
      expect(cilium.repetitions).toEqual([2, repetitionsOf(out, 'cilium')]);
      expect(a.ciMethod).toMatch(/once its Services verdicts \(connect p50 against the Service count\) were decided/);
      const md = renderMarkdown(a);
      expect(md).toMatch(new RegExp(`\\| Cilium \\| cilium-socket-lb \\| 2–${repetitionsOf(out, 'cilium')} \\(adaptive; CIs at ${levelText(cilium.alpha!).replace('.', '\\.')}\\) \\| \\*\\*O\\(1\\)\\*\\*`));
      expect(md).toMatch(/\| No CNI \(routing floor\) \| kube-proxy-iptables \| 3 \(adaptive; CIs at 99\.\d%\) \| \*\*O\(n\)\*\*/);
      // The sweep's own summary gives the runs and the level too.
      expect(sweepSummary(readManifest(dir), a, 1000)).toMatch(/cilium +cilium-socket-lb +2–\d+ +O\(1\) +-?[\d.]+ ns \(99\.\d%: /);
    }, 120_000);
  });
});
