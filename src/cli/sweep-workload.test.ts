// `bench sweep --workload` through the command: every input problem exits 2 before any work, the matrix takes
// the workload's policy count and flow choice, and a sweep run with stand-in points and verify runs completes,
// verified, and resumes from sweep.json.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { writeResult } from '../results/io.js';
import { WORKLOAD_VERIFY_KIND, WORKLOAD_VERIFY_VERSION } from '../results/workload-verify.js';
import { syntheticResult } from '../report/test-support/fixtures.js';
import type { PointRunner } from '../sweep/sweep.js';
import type { VerifyRunner } from '../sweep/verify-step.js';
import { cmdSweep } from './commands/sweep.js';
import { bufferIo, tempDir } from './test-support/cli.js';

const FILE = 'scenarios/workloads/small.yaml';

const points: PointRunner = async ({ point, runId, outDir, sweep, workload }) => {
  const r = syntheticResult({ cni: point.cni, policies: point.policies, repetition: sweep.repetition, sweepId: sweep.id, seed: point.order + 1, samples: 50, connectNs: 40_000 });
  expect(workload).toEqual({ name: 'small', flows: 1 });
  // As a workload run records itself: the workload, and its one flow's figures.
  const result = { ...r, runId, meta: { ...r.meta, workload: { name: 'small', file: FILE, nodes: 3, pods: 47, endpoints: 10, policies: point.policies } }, flows: [{ from: 'shop/api-0', to: 'shop/db-0', port: 5432, protocol: 'TCP', reason: 'most-expensive', rules: 4, allowed: true, metrics: r.metrics }] };
  writeResult(outDir, result);
  return { result };
};
const verify: VerifyRunner = async ({ cni, runId, sweepId, config }) => ({
  kind: WORKLOAD_VERIFY_KIND,
  schemaVersion: WORKLOAD_VERIFY_VERSION,
  sweepId,
  runId,
  cni,
  backend: 'local',
  model: { name: cni, enforcesPolicy: true },
  workload: { name: 'small', file: config.workload! },
  flowChoice: 'stand-in',
  verdict: { kind: 'as-documented', text: 'as documented' },
  probed: 4,
  differFromSpec: 0,
  documented: 0,
  mismatches: 0,
  flows: [],
  finishedAt: new Date().toISOString(),
  timings: {},
});

describe('bench sweep --workload', () => {
  it('refuses, before any work, a --flow naming no pod of the file, and what a workload sweep does not take', async () => {
    const io = bufferIo();
    expect(await cmdSweep({ workload: FILE, cni: 'calico,cilium', flow: ['shop/nope-0->shop/db-0:5432'], out: tempDir() }, io, { runPoint: points, runVerify: verify })).toBe(2);
    // Said once, not once per data plane.
    expect(io.err().match(/no pod shop\/nope-0/g)).toHaveLength(1);
    const io2 = bufferIo();
    expect(await cmdSweep({ workload: FILE, cni: 'calico', placement: 'same-node', backend: 'kind', out: tempDir() }, io2, { runPoint: points, runVerify: verify })).toBe(2);
    expect(io2.err()).toMatch(/--placement: a workload places its pods/);
    expect(io2.err()).toMatch(/--backend: a workload sweep runs on the local backend only so far/);
    const io3 = bufferIo();
    expect(await cmdSweep({ workload: 'no/such/file.json', cni: 'calico', out: tempDir() }, io3, { runPoint: points, runVerify: verify })).toBe(2);
    expect(io3.err()).toContain('no/such/file.json');
  });

  it('runs every data plane × repetitions at the workload policy count, verifies each, and says so', async () => {
    const out = tempDir();
    const io = bufferIo();
    expect(await cmdSweep({ workload: FILE, cni: 'none,calico', repetitions: '2', flows: '1', out }, io, { runPoint: points, runVerify: verify })).toBe(0);
    const id = /sweep (sweep-\S+):/.exec(io.err())![1]!;
    const m = JSON.parse(readFileSync(join(out, id, 'sweep.json'), 'utf8'));
    expect(m.status).toBe('complete');
    expect(m.matrix).toMatchObject({ policies: [50], repetitions: 2, workload: { name: 'small', flows: 1 } });
    expect(m.settings.workload).toBe(FILE);
    expect(m.points.map((p: { key: string }) => p.key).sort()).toEqual(['calico-50-r1', 'calico-50-r2', 'none-50-r1', 'none-50-r2']);
    expect(m.verify.map((v: { status: string }) => v.status)).toEqual(['ok', 'ok']);
    expect(io.err()).toContain('[verify] calico: ok      0 of 4 flows differ from the spec');
    expect(io.out()).toContain('workload small (50 policies, 47 pods)');
    // Resume has nothing left to do and keeps the workload settings from sweep.json.
    const again = bufferIo();
    expect(await cmdSweep({ resume: id, out }, again, { runPoint: points, runVerify: verify })).toBe(0);
    expect(again.err()).toContain('0 of 4 points to run');
    expect(await cmdSweep({ resume: id, out, flows: '3' }, bufferIo(), { runPoint: points, runVerify: verify })).toBe(2);
  }, 60_000);
});
