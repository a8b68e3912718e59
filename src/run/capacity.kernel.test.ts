// A real over-capacity run, end to end: `bench run` on the local kernel with more policies than the Calico-eBPF
// model's chain of policy programs can hold, the result file it writes, and `bench report` on that directory,
// whose advice must name the overflow. Felix does not fail such an endpoint: it logs the failed program update
// and runs with the first 24 programs (MaxSubPrograms) live, so the pod runs, its policies are accepted, and a
// client whose rule is beyond them is dropped at the last program's failed tail call. The run completes and
// records that, as it does for Cilium's policy-map overflow; --dry-run says so after the plan.
import { describe, expect } from 'vitest';
import { execa } from 'execa';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { itKernel, namespacesOfRun } from '../backends/local/test-support/kernel.js';
import { PACKAGE_ROOT } from '../metrics/machine.js';
import { readResult } from '../results/io.js';
import { tempDir } from '../test-support/temp.js';

const BENCH = join(PACKAGE_ROOT, 'dist', 'cli', 'main.js');

function bench(args: string[]) {
  if (!existsSync(BENCH)) throw new Error(`${BENCH} missing: run npm run build first`);
  return execa(process.execPath, [BENCH, ...args], { reject: false, timeout: 150_000, env: { CI: process.env.CI ?? '' } });
}

describe('a capacity overflow, from the run to the report', () => {
  itKernel('calico-ebpf beyond its 24-program chain: the run completes with the client denied, the result records the overflow, bench report advises', async () => {
    const out = tempDir('cb-capacity-');
    // 28000 fillers and the client's rule: 28001 rules need 25 programs of 1141 rules; 24 hold 27384.
    const args = ['run', '--backend', 'local', '--cni', 'calico-ebpf', '--policies', '28000', '--samples', '100', '--warmup', '0', '--rounds', '1', '--timeout-ms', '200', '--out', out];
    const dry = await bench([...args, '--dry-run']);
    expect(dry.exitCode, dry.stderr).toBe(0);
    expect(dry.stdout).toContain('# CAPACITY OVERFLOW (a real run completes and records it): the ingress policy of bench-server/server-0 needs 28001 rules in 25 chained programs; Felix keeps 24, so rules 1–27384 are live');

    const run = await bench([...args, '--json']);
    expect(run.exitCode, run.stderr).toBe(0);
    const { runId } = JSON.parse(run.stdout) as { runId: string };
    expect(namespacesOfRun(runId)).toEqual([]);

    const result = readResult(join(out, runId, 'result.json'));
    expect(result.status).toBe('ok');
    expect(result.errors).toEqual([]);
    expect(result.modelState).toMatchObject({
      capacityOverflowEndpoints: 1,
      capacityOverflowRulesNeeded: 28001,
      capacityOverflowRulesLive: 27384,
      maxProgramsPerChain: 24,
      chainProgramLimit: 24,
      bpfPolicyDebugEnabled: true,
      overflowClientVerdict: 'denied',
    });
    // The client's connections were tried and dropped: errors, no samples.
    expect(result.metrics.connect!.samplesNs).toEqual([]);
    expect(Object.values(result.metrics.connect!.errors).reduce((a, b) => a + b, 0)).toBeGreaterThan(0);

    const report = await bench(['report', out, '--format', 'md']);
    expect(report.exitCode, report.stderr).toBe(0);
    const md = readFileSync(join(out, 'report.md'), 'utf8');
    expect(md).toContain('### Capacity limits: overflow\n');
    expect(md).toMatch(/Calico \(eBPF\) ran over its capacity at 28000 policies: the ingress policy of bench-server\/server-0 needs 28001 rules/);
    expect(md).toMatch(/Afterwards the probe client was \*\*denied\*\*/);
    expect(md).toMatch(/dropped at the last program's failed tail call/);
  }, 300_000);
});
