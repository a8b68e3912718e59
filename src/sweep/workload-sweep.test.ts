// A workload sweep (bench sweep --workload): its configuration (fixed repetitions, no --policies), the point
// runner seeing how flows are chosen, a verify run per data plane stored beside the points, and resume.
import { describe, expect, it } from 'vitest';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { writeResult } from '../results/io.js';
import { readWorkloadVerify, WORKLOAD_VERIFY_KIND, WORKLOAD_VERIFY_VERSION, type WorkloadVerifyRecord } from '../results/workload-verify.js';
import { syntheticResult } from '../report/test-support/fixtures.js';
import { resolveSweepConfig } from './config.js';
import { newManifest, readManifest, staleRunIds, verifiesToRun, writeManifest, type SweepManifest } from './manifest.js';
import { planSweep, type SweepMatrix } from './plan.js';
import { runSweep, type PointRunner } from './sweep.js';
import type { VerifyRunner } from './verify-step.js';

const FILE = 'scenarios/workloads/small.yaml';

function workloadManifest(dir: string): SweepManifest {
  const { config, problems } = resolveSweepConfig({ cni: 'none,calico', workload: FILE, samples: '100', warmup: '0' });
  expect(problems).toEqual([]);
  const matrix: SweepMatrix = { ...config!.matrix, policies: [50], workload: { name: 'small', flows: 2 } };
  const { cni: _c, policies: _p, out: _o, json: _j, dryRun: _d, keep: _k, ...settings } = config!.base;
  const m = newManifest({ id: 'sweep-20250101-000000-wkld', backend: 'local', scenario: null, matrix, settings: { ...settings, backend: 'local' }, points: planSweep(matrix) });
  writeManifest(dir, m);
  return m;
}

const pointRunner = (calls: string[], seen: unknown[]): PointRunner => async ({ point, runId, outDir, sweep, workload, config }) => {
  calls.push(point.key);
  seen.push({ workload, file: config.workload });
  const r = syntheticResult({ cni: point.cni, policies: point.policies, repetition: sweep.repetition, sweepId: sweep.id, seed: calls.length, samples: 50, connectNs: 40_000 });
  r.runId = runId;
  writeResult(outDir, r);
  return { result: r };
};

const verifyRecord = (cni: 'none' | 'calico', runId: string): WorkloadVerifyRecord => ({
  kind: WORKLOAD_VERIFY_KIND,
  schemaVersion: WORKLOAD_VERIFY_VERSION,
  sweepId: 'sweep-20250101-000000-wkld',
  runId,
  cni,
  backend: 'local',
  model: { name: `${cni} model`, enforcesPolicy: cni !== 'none' },
  workload: { name: 'small', file: FILE },
  flowChoice: 'every pod pair on every port the destination declares: 10 flows',
  verdict: cni === 'none' ? { kind: 'not-enforced', text: 'NOT ENFORCED' } : { kind: 'as-documented', text: 'as documented' },
  probed: 10,
  differFromSpec: cni === 'none' ? 4 : 0,
  documented: cni === 'none' ? 4 : 0,
  mismatches: 0,
  flows: [],
  finishedAt: '2025-01-01T00:00:00.000Z',
  timings: { setupMs: 1 },
});

const verifier = (calls: string[], opts: { fail?: string; abortOn?: { cni: string; ctl: AbortController } } = {}): VerifyRunner => async ({ cni, runId, config }) => {
  calls.push(cni);
  expect(config.workload).toBe(FILE);
  if (opts.abortOn?.cni === cni) {
    opts.abortOn.ctl.abort();
    throw new Error('interrupted');
  }
  if (opts.fail === cni) throw new Error('no namespaces for you');
  return verifyRecord(cni as 'none' | 'calico', runId);
};

const ids = () => {
  let i = 0;
  return () => `r${++i}`;
};

describe('sweep --workload: configuration', () => {
  it('runs a fixed 3 repetitions by default and refuses auto, --policies and --services with a workload', () => {
    const { config } = resolveSweepConfig({ cni: 'calico', workload: FILE });
    expect(config!.matrix.adaptive).toBeUndefined();
    expect(config!.matrix.repetitions).toBe(3);
    expect(resolveSweepConfig({ cni: 'calico', workload: FILE, repetitions: '5' }).config!.matrix.repetitions).toBe(5);
    const bad = resolveSweepConfig({ cni: 'calico', workload: FILE, repetitions: 'auto', policies: '10', services: '2' });
    expect(bad.problems.map((p) => p.where)).toEqual(expect.arrayContaining(['--repetitions', '--policies', '--services']));
    expect(resolveSweepConfig({ cni: 'calico', workload: FILE, repetitions: 'auto' }).problems).toEqual([{ where: '--repetitions', message: expect.stringMatching(/one policy set/) }]);
    // Without a workload the default stays adaptive.
    expect(resolveSweepConfig({ cni: 'calico', policies: '0,10' }).config!.matrix.adaptive).toBeTruthy();
  });

  it('plans every data plane × repetitions at the workload policy count, and one verify step per data plane', () => {
    const dir = mkdtempSync(join(tmpdir(), 'cb-wsweep-'));
    try {
      const m = workloadManifest(dir);
      expect(m.points.map((p) => p.key).sort()).toEqual(['calico-50-r1', 'calico-50-r2', 'calico-50-r3', 'none-50-r1', 'none-50-r2', 'none-50-r3']);
      expect(m.verify!.map((v) => [v.cni, v.status])).toEqual([['none', 'pending'], ['calico', 'pending']]);
      // The manifest round-trips through its schema with the workload in the matrix.
      expect(readManifest(dir).matrix.workload).toEqual({ name: 'small', flows: 2 });
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('sweep --workload: running and resuming', () => {
  it('hands each point how its flows are chosen, then verifies each data plane once into verify-<cni>.json', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'cb-wsweep-'));
    try {
      const m = workloadManifest(dir);
      const calls: string[] = [];
      const seen: unknown[] = [];
      const verified: string[] = [];
      await runSweep({ dir, manifest: m, runPoint: pointRunner(calls, seen), runVerify: verifier(verified), newRunId: ids() });
      expect(calls).toHaveLength(6);
      expect(seen).toEqual(Array(6).fill({ workload: { name: 'small', flows: 2 }, file: FILE }));
      expect(verified).toEqual(['none', 'calico']);
      expect(readWorkloadVerify(join(dir, 'verify-calico.json')).differFromSpec).toBe(0);
      expect(readWorkloadVerify(join(dir, 'verify-none.json')).verdict.kind).toBe('not-enforced');
      const after = readManifest(dir);
      expect(after.status).toBe('complete');
      expect(after.verify!.every((v) => v.status === 'ok' && v.resultPath === `verify-${v.cni}.json`)).toBe(true);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('an interrupted verify leaves the sweep interrupted; resume runs only the verify runs not yet ok', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'cb-wsweep-'));
    try {
      const m = workloadManifest(dir);
      const ctl = new AbortController();
      const verified: string[] = [];
      await runSweep({ dir, manifest: m, runPoint: pointRunner([], []), runVerify: verifier(verified, { abortOn: { cni: 'calico', ctl } }), newRunId: ids(), signal: ctl.signal });
      let after = readManifest(dir);
      expect(after.status).toBe('interrupted');
      expect(after.verify!.map((v) => v.status)).toEqual(['ok', 'interrupted']);
      expect(verifiesToRun(after, dir).map((v) => v.cni)).toEqual(['calico']);

      // A killed process leaves "running": its run id is stale (its namespaces may remain), and it runs again.
      after.verify![1]!.status = 'running';
      after.verify![1]!.runId = 'rdead';
      writeManifest(dir, after);
      expect(staleRunIds(readManifest(dir))).toContain('rdead');

      const points: string[] = [];
      const again: string[] = [];
      await runSweep({ dir, manifest: readManifest(dir), runPoint: pointRunner(points, []), runVerify: verifier(again), newRunId: ids() });
      expect(points).toEqual([]);
      expect(again).toEqual(['calico']);
      after = readManifest(dir);
      expect(after.status).toBe('complete');
      expect(existsSync(join(dir, 'verify-calico.json'))).toBe(true);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('a verify run that fails is recorded, not retried unless asked, and the sweep still completes its points', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'cb-wsweep-'));
    try {
      const m = workloadManifest(dir);
      await runSweep({ dir, manifest: m, runPoint: pointRunner([], []), runVerify: verifier([], { fail: 'none' }), newRunId: ids() });
      const after = readManifest(dir);
      expect(after.verify![0]).toMatchObject({ cni: 'none', status: 'failed', error: { stage: 'verify', message: expect.stringMatching(/no namespaces/) } });
      expect(JSON.parse(readFileSync(join(dir, 'sweep.json'), 'utf8')).verify[1].status).toBe('ok');
      const retried: string[] = [];
      await runSweep({ dir, manifest: after, runPoint: pointRunner([], []), runVerify: verifier(retried), newRunId: ids(), retryFailed: true });
      expect(retried).toEqual(['none']);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe("a verify run's record", () => {
  it('stores the findings of the policy set, each naming the policy, and leaves not-enforced to the verdict', async () => {
    const { loadWorkload } = await import('../workload/load.js');
    const { findPolicyProblems } = await import('../workload/findings.js');
    const { verifyRecord: recordOf } = await import('./verify-step.js');
    const file = 'src/workload/fixtures/replay-cluster.json';
    const cluster = loadWorkload(file);
    const result = { backend: 'local', model: { name: 'flannel model', enforcesPolicy: false }, verdict: { kind: 'not-enforced', text: 'NOT ENFORCED' }, probes: [], mismatches: [], timings: { setupMs: 1, installMs: 1, readyMs: 1, probeMs: 1, teardownMs: 1 } } as unknown as Parameters<typeof recordOf>[0]['result'];
    const all = findPolicyProblems(cluster, { cnis: ['flannel'] });
    expect(all.filter((f) => f.kind === 'not-enforced')).toHaveLength(cluster.policies.length);
    const record = recordOf({ cni: 'flannel', runId: 'r', sweepId: 's', file, cluster, flowChoice: 'x', result, findings: all });
    expect(record.findings!.map((f) => `${f.kind} ${f.policy}`)).toEqual([
      'named-port-undeclared api/allow-scrape',
      'ipblock-covers-pods db/allow-worker-cidr',
      'egress-without-dns db/egress-to-api-only',
      'selects-only-host-network kube-system/node-exporter-ingress',
      'selects-no-pod monitoring/allow-grafana',
      'or-peers web/allow-api',
    ]);
    // The record reads back through its schema with them.
    const dir = mkdtempSync(join(tmpdir(), 'cb-vrec-'));
    const { writeFileSync } = await import('node:fs');
    writeFileSync(join(dir, 'verify-flannel.json'), JSON.stringify(record));
    expect(readWorkloadVerify(join(dir, 'verify-flannel.json')).findings).toHaveLength(6);
    rmSync(dir, { recursive: true, force: true });
  });

  it('lists the flows not even as documented first, so the cut at 500 keeps them', async () => {
    const { verifyRecord: recordOf } = await import('./verify-step.js');
    const probe = (i: number, observed: 'allowed' | 'denied') => ({ from: 'a/p-0', to: `b/q-${i}`, port: 80, protocol: 'TCP', spec: 'denied', expected: 'allowed', observed, policies: [], attempts: 1, reason: '' });
    const probes = [...Array.from({ length: 600 }, (_, i) => probe(i, 'allowed')), probe(600, 'denied'), probe(601, 'denied')];
    const result = { backend: 'local', model: { name: 'flannel', enforcesPolicy: false }, verdict: { kind: 'differs', text: 'x' }, probes, mismatches: probes.slice(600), timings: {} } as unknown as Parameters<typeof recordOf>[0]['result'];
    const record = recordOf({ cni: 'flannel', runId: 'r', sweepId: 's', file: 'f', cluster: { name: 'c' }, flowChoice: 'x', result, findings: [] });
    expect(record.flows).toHaveLength(500);
    expect(record.flows.slice(0, 2).map((f) => f.to)).toEqual(['b/q-600', 'b/q-601']);
    expect([record.differFromSpec, record.mismatches]).toEqual([600, 2]);
  });
});
