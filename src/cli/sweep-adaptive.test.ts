// bench sweep with adaptive repetitions through the command: the default, --max-repetitions, what it prints.
import { describe, expect, it } from 'vitest';
import { readdirSync } from 'node:fs';
import { writeResult } from '../results/io.js';
import { syntheticResult } from '../report/test-support/fixtures.js';
import { readManifest } from '../sweep/manifest.js';
import type { PointRunner } from '../sweep/sweep.js';
import { cmdSweep } from './commands/sweep.js';
import { bufferIo, tempDir } from './test-support/cli.js';
import { join } from 'node:path';

/** none flat and steady; calico growing by milliseconds: both decided at the first look. */
const runPoint: PointRunner = async ({ point, runId, outDir, sweep }) => {
  const v = point.cni === 'calico' ? 20_000 + 900 * point.policies : 10_000;
  const r = syntheticResult({ cni: point.cni, policies: point.policies, repetition: sweep.repetition, sweepId: sweep.id, seed: point.order + 1, samples: 200, connectNs: v, crrNs: 2.5 * v, rrNs: 30_000 });
  r.runId = runId;
  writeResult(outDir, r);
  return { result: r };
};

describe('bench sweep: adaptive repetitions', () => {
  it('is the default: 3 repetitions, a look, and the summary says what each data plane got', async () => {
    const out = tempDir();
    const io = bufferIo();
    expect(await cmdSweep({ cni: 'none,calico', policies: '0,100,1000', backend: 'local', maxRepetitions: '6', out }, io, { runPoint })).toBe(0);
    expect(io.err()).toMatch(/3–6 adaptive repetitions/);
    expect(io.err()).toMatch(/look 1 of at most 2: every verdict decided/);
    expect(io.out()).toMatch(/adaptive repetitions \(3 to start, \+3 where a verdict is open, at most 6; .*\): none 3, calico 3/);
    const id = readdirSync(out).find((d) => d.startsWith('sweep-'))!;
    const m = readManifest(join(out, id));
    expect(m.points).toHaveLength(18);
    expect(m.looks).toHaveLength(1);
    // A resumed sweep keeps its design.
    const again = bufferIo();
    expect(await cmdSweep({ resume: id, out, maxRepetitions: '12' }, again, { runPoint })).toBe(2);
    expect(again.err()).toMatch(/--max-repetitions: not allowed with --resume/);
  }, 60_000);
});
