// bench run --workload on the real kernel: the test cluster's snapshot replayed on Calico's model, its default
// flows measured; the result keeps every flow's figures and the data plane's state, the metrics are the worst flow's.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect } from 'vitest';
import { runBench, tempDir } from '../cli/test-support/cli.js';
import { itKernel } from '../backends/local/test-support/kernel.js';
import { PACKAGE_ROOT } from '../metrics/machine.js';
import { runResultSchema } from '../results/schema.js';

const FILE = join(PACKAGE_ROOT, 'src', 'workload', 'fixtures', 'replay-cluster.json');

describe('bench run --workload on the local kernel', () => {
  itKernel('measures each chosen flow; the result keeps them per flow with the data plane state', async () => {
    const out = tempDir();
    const r = await runBench(['run', '--workload', FILE, '--cni', 'calico', '--samples', '60', '--warmup', '10', '--rounds', '1', '--flows', '1', '--out', out]);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toMatch(/workload replay-cluster: 8 policies, 7 pods/);
    expect(r.stdout).toMatch(/worst flow \(highest connect p50\)/);
    const path = /result: (\S+)/.exec(r.stdout)![1]!;
    const result = runResultSchema.parse(JSON.parse(readFileSync(path, 'utf8')));
    // The seeded random flow of this file is a UDP one (DNS), which bench run leaves out: it measures TCP.
    expect(result.flows!.map((f) => f.reason)).toEqual(['most-expensive', 'cross-namespace', 'same-node']);
    expect(r.stdout).toMatch(/note: 1 non-TCP flow left out/);
    for (const f of result.flows!) {
      expect(f.allowed).toBe(true);
      expect(f.metrics.connect!.summary.count).toBe(60);
    }
    expect(result.meta.workload).toMatchObject({ name: 'replay-cluster', nodes: 3, policies: 8 });
    expect(result.modelState.iptablesRules).toBeGreaterThan(0);
    const worst = Math.max(...result.flows!.map((f) => f.metrics.connect!.summary.p50!));
    expect(result.metrics.connect!.summary.p50).toBe(worst);
  }, 300_000);
});
