// What a result records about the machine and the tool, and the kernel's CPU accounting, read from this machine.
// Checked as subsets (toMatchObject), so a field added later does not break them.
import { execFileSync, spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { cpus, release, totalmem } from 'node:os';
import { describe, expect, it } from 'vitest';
import { machineInfo, PACKAGE_ROOT, parsePidStat, parseProcStat, readCpuTimes, readProcessCpuNs, toolInfo } from './machine.js';

const spin = (ms: number) => {
  const end = performance.now() + ms;
  let x = 0;
  while (performance.now() < end) x += Math.sqrt(x + 1);
  return x;
};

describe('machine and tool', () => {
  it('machineInfo names this machine', () => {
    const m = machineInfo();
    expect(m).toMatchObject({ kernel: release(), cpus: cpus().length, memoryBytes: totalmem() });
    expect(m.cpuModel.length).toBeGreaterThan(0);
    expect(m.loadavg).toHaveLength(3);
    expect(m.loadavg.every((l) => l >= 0)).toBe(true);
  });

  it("toolInfo is the package's name and version and the checkout's commit", () => {
    const pkg = JSON.parse(readFileSync(`${PACKAGE_ROOT}/package.json`, 'utf8')) as { name: string; version: string };
    const t = toolInfo();
    expect(t).toMatchObject({ name: pkg.name, version: pkg.version });
    const head = spawnSync('git', ['-C', PACKAGE_ROOT, 'rev-parse', 'HEAD'], { encoding: 'utf8' });
    expect(t.gitCommit).toBe(head.status === 0 ? head.stdout.trim() : null);
  });
});

describe('kernel CPU accounting', () => {
  it('/proc/stat: busy time counts user, nice, system, irq, softirq and steal ticks (USER_HZ 100), not idle or iowait', () => {
    const t = parseProcStat('cpu  100 20 30 5000 40 6 7 8 0 0\ncpu0 1 2 3 4 5 6 7 8 0 0\nintr 1 2\n');
    expect(t).toMatchObject({ busyNs: (100 + 20 + 30 + 6 + 7 + 8) * 10_000_000, softirqNs: 7 * 10_000_000 });
    expect(() => parseProcStat('cpu0 1 2 3\n')).toThrow(/aggregate cpu line/);
  });

  it('/proc/<pid>/stat: utime + stime, also when the command name holds spaces and parentheses', () => {
    const fields = (comm: string) => `4242 (${comm}) S 1 4242 4242 0 -1 4194560 500 0 0 0 250 50 0 0 20 0 1 0 12345 1000 100`;
    expect(parsePidStat(fields('cb-probe'))).toBe(300 * 10_000_000);
    expect(parsePidStat(fields('a (b) c'))).toBe(300 * 10_000_000);
  });

  it('the per-process and machine-wide counters count the CPU this process spends', () => {
    const before = readCpuTimes();
    const mine = readProcessCpuNs(process.pid)!;
    // Spin until the kernel has charged 200 ms of CPU to this process (on a loaded machine that takes longer).
    const deadline = performance.now() + 20_000;
    while (readProcessCpuNs(process.pid)! < mine + 200_000_000 && performance.now() < deadline) spin(20);
    const spent = readProcessCpuNs(process.pid)! - mine;
    expect(spent).toBeGreaterThanOrEqual(200_000_000);
    // The machine's busy time holds this process's (minus one tick per CPU of rounding).
    expect(readCpuTimes().busyNs - before.busyNs).toBeGreaterThanOrEqual(spent - cpus().length * 10_000_000);
  });

  it('a process that is gone has no CPU time to read', () => {
    const pid = Number(execFileSync('sh', ['-c', 'echo $$'], { encoding: 'utf8' }).trim());
    expect(readProcessCpuNs(pid)).toBeNull();
  });
});
