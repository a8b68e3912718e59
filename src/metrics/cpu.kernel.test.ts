// CPU per connection where the work runs, and the machine's reference, on the kernel (issue 20): the real CLI,
// real namespaces and packets. Only large, robust effects are asserted (the machine is shared).
import { describe, expect } from 'vitest';
import { execa } from 'execa';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { itKernel, namespacesOfRun } from '../backends/local/test-support/kernel.js';
import { PACKAGE_ROOT } from './machine.js';
import { readResult } from '../results/io.js';
import { tempDir } from '../test-support/temp.js';

const BENCH = join(PACKAGE_ROOT, 'dist', 'cli', 'main.js');

async function run(args: string[]) {
  if (!existsSync(BENCH)) throw new Error(`${BENCH} missing: run npm run build first`);
  const out = tempDir('cb-results-');
  const r = await execa(process.execPath, [BENCH, 'run', ...args, '--backend', 'local', '--out', out, '--json'], { reject: false, timeout: 180_000 });
  expect(r.exitCode, r.stderr).toBe(0);
  const runId = (JSON.parse(r.stdout) as { runId: string }).runId;
  expect(namespacesOfRun(runId)).toEqual([]);
  return readResult(join(out, runId, 'result.json'));
}

describe('CPU per operation from the tasks that do the work', () => {
  itKernel('none: client + server + ksoftirqd, resolved, no more than the wall time of an operation, with a loopback reference in every metric', async () => {
    const r = await run(['--cni', 'none', '--samples', '3000', '--warmup', '300']);
    for (const m of ['connect', 'crr', 'rr'] as const) {
      const x = r.metrics[m]!;
      const c = x.cpu!;
      expect(c.source).toBe('task-clock');
      // Everything runs on the one pinned CPU: its tasks cannot use more CPU than the wall time.
      expect(c.totalUsPerOp).toBeLessThanOrEqual(c.wallUsPerOp! * 1.01);
      expect(c.totalUsPerOp).toBeCloseTo(c.probeClientUsPerOp + c.probeServerUsPerOp! + c.softirqUsPerOp, 6);
      expect(c.resolutionUsPerOp!).toBeLessThan(0.1 * c.totalUsPerOp);
      // An operation of a connect loop is at least the timed connect itself.
      expect(c.totalUsPerOp * 1000).toBeGreaterThan(x.summary.p50! * 0.5);
      expect(c.probeServerUsPerOp).toBeGreaterThan(0);
      expect(x.reference?.target).toBe('loopback');
      expect(x.reference!.samplesNs).toHaveLength(1000);
    }
  });

  itKernel('calico-ebpf: the BPF programs\' run time is counted (BPF_ENABLE_STATS held by the probe) and is part of the total', async () => {
    const r = await run(['--cni', 'calico-ebpf', '--policies', '500', '--samples', '1000', '--warmup', '100']);
    const c = r.metrics.connect!.cpu!;
    expect(c.bpfUsPerOp).toBeGreaterThan(0);
    expect(c.dataPlaneUsPerOp).toBe(c.bpfUsPerOp);
    expect(c.bpfUsPerOp!).toBeLessThan(c.totalUsPerOp);
    expect(c.dataPlane).toMatch(/BPF programs/);
  });
});
