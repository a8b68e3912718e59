// A real over-capacity run, end to end: `bench run` on the local kernel with more policies than the Calico-eBPF
// model's chain of policy programs can hold, the result file it writes, and `bench report` on that directory,
// whose advice must name the capacity limit. (Cilium 1.18 does not fail an overflowing policy map, it completes
// and records the overflow; the calico-ebpf model refuses an endpoint whose policy needs more chained programs
// than the kernel's tail-call limit allows, as Felix would.)
import { describe, expect } from 'vitest';
import { execa } from 'execa';
import { existsSync, mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { itKernel, namespacesOfRun } from '../backends/local/test-support/kernel.js';
import { PACKAGE_ROOT } from '../metrics/machine.js';
import { readResult } from '../results/io.js';

const BENCH = join(PACKAGE_ROOT, 'dist', 'cli', 'main.js');

function bench(args: string[]) {
  if (!existsSync(BENCH)) throw new Error(`${BENCH} missing: run npm run build first`);
  return execa(process.execPath, [BENCH, ...args], { reject: false, timeout: 150_000, env: { CI: process.env.CI ?? '' } });
}

describe('a capacity failure, from the run to the report', () => {
  itKernel('calico-ebpf beyond its program chain: the result records kind capacity, and bench report gives the capacity advice', async () => {
    const out = mkdtempSync(join(tmpdir(), 'cb-capacity-'));
    // 40000 policies on the server need 33 chained programs: one more than the model allows.
    const run = await bench(['run', '--backend', 'local', '--cni', 'calico-ebpf', '--policies', '40000', '--samples', '100', '--warmup', '0', '--out', out, '--json']);
    expect(run.exitCode, run.stderr).toBe(1);
    const { runId } = JSON.parse(run.stdout) as { runId: string };
    expect(namespacesOfRun(runId)).toEqual([]);

    const result = readResult(join(out, runId, 'result.json'));
    expect(result.status).toBe('failed');
    expect(result.timings.setupMs).not.toBeNull(); // the topology came up on the kernel before the policy failed
    expect(result.errors).toHaveLength(1);
    expect(result.errors[0]).toMatchObject({ stage: 'policy', kind: 'capacity' });
    expect(result.errors[0]!.message).toMatch(/needs 33 chained BPF programs for 40001 rules/);

    const report = await bench(['report', out, '--format', 'md']);
    expect(report.exitCode, report.stderr).toBe(0);
    const md = readFileSync(join(out, 'report.md'), 'utf8');
    expect(md).toContain('### Capacity limits\n');
    expect(md).toMatch(/Calico \(eBPF\) failed with a capacity error at 40000 policies: calico-ebpf model: the ingress policy of pod bench-server\/server-0 needs 33 chained BPF programs/);
    expect(md).toMatch(/tail-call limit bounds that chain/);
  });
});
