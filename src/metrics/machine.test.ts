// What a result records about the machine and the tool, and /proc/stat's machine-wide CPU time.
// Checked as subsets (toMatchObject), so a field added later does not break them.
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { cpus, release, totalmem } from 'node:os';
import { describe, expect, it } from 'vitest';
import { FakeRunner } from '../exec/runner.js';
import { machineInfo, PACKAGE_ROOT, parseProcStat, toolInfo } from './machine.js';

describe('machine and tool', () => {
  it('machineInfo names this machine', () => {
    const m = machineInfo();
    expect(m).toMatchObject({ kernel: release(), cpus: cpus().length, memoryBytes: totalmem() });
    expect(m.cpuModel.length).toBeGreaterThan(0);
    expect(m.loadavg).toHaveLength(3);
    expect(m.loadavg.every((l) => l >= 0)).toBe(true);
  });

  it("toolInfo is the package's name and version and the checkout's commit", async () => {
    const pkg = JSON.parse(readFileSync(`${PACKAGE_ROOT}/package.json`, 'utf8')) as { name: string; version: string };
    const t = await toolInfo();
    expect(t).toMatchObject({ name: pkg.name, version: pkg.version });
    const head = spawnSync('git', ['-C', PACKAGE_ROOT, 'rev-parse', 'HEAD'], { encoding: 'utf8' });
    expect(t.gitCommit).toBe(head.status === 0 ? head.stdout.trim() : null);
  });

  it('toolInfo asks git through the runner and takes only a full commit id', async () => {
    const fake = new FakeRunner(() => ({ stdout: 'not a commit\n' }));
    expect((await toolInfo(fake)).gitCommit).toBeNull();
    expect(fake.log.map((r) => r.argv.slice(0, 1).concat(r.argv.slice(-2)))).toEqual([['git', 'rev-parse', 'HEAD']]);
  });
});

describe('kernel CPU accounting', () => {
  it('/proc/stat: busy time counts user, nice, system, irq, softirq and steal ticks (USER_HZ 100), not idle or iowait', () => {
    const t = parseProcStat('cpu  100 20 30 5000 40 6 7 8 0 0\ncpu0 1 2 3 4 5 6 7 8 0 0\nintr 1 2\n');
    expect(t).toMatchObject({ busyNs: (100 + 20 + 30 + 6 + 7 + 8) * 10_000_000, softirqNs: 7 * 10_000_000 });
    expect(t.cpus).toBe(1); // one cpuN line: a tick on each CPU at each edge is /proc/stat's resolution
    expect(() => parseProcStat('cpu0 1 2 3\n')).toThrow(/aggregate cpu line/);
  });
});
