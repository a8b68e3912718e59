import { describe, expect, it } from 'vitest';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { spawn } from 'node:child_process';
import { join } from 'node:path';
import { FakeRunner } from '../../exec/runner.js';
import { collectGarbage, gcSummary } from './gc.js';
import { liveRuns, lockContent, processAlive, recordKeptRun } from '../../identity/locks.js';
import { tempDir } from '../../test-support/temp.js';

function world() {
  const root = tempDir('cb-gc-');
  const pinRoot = join(root, 'bpf');
  const lockDir = join(root, 'locks');
  const cgroupRoot = join(root, 'cgroup');
  mkdirSync(join(pinRoot, 'cb-dead1', 'node-0'), { recursive: true });
  // The cgroups the socket-level service load balancers attach to: the dead run's, with a node's under it, and the live run's.
  mkdirSync(join(cgroupRoot, 'cb-dead1', 'node-0'), { recursive: true });
  mkdirSync(join(cgroupRoot, 'cb-dead1', 'reference'), { recursive: true }); // where a client's reference runs
  mkdirSync(join(cgroupRoot, 'cb-live1', 'node-0'), { recursive: true });
  mkdirSync(lockDir, { recursive: true });
  // A dead run (its pid does not exist) and a live one (this process).
  writeFileSync(join(lockDir, 'dead1.pid'), '999999999\n');
  writeFileSync(join(lockDir, 'live1.pid'), `${process.ppid}\n`);
  const runner = new FakeRunner((argv) => {
    if (argv.join(' ') === 'ip netns list') return { stdout: 'cb-dead1-n0 (id: 3)\ncb-dead1-sw\ncb-live1-n0\nother-ns\ncbx-abcde-n0\n' };
    if (argv[1] === 'netns' && argv[2] === 'pids') return { stdout: argv[3] === 'cb-dead1-n0' ? '4242\n' : '' };
    return undefined;
  });
  return { runner, pinRoot, lockDir, cgroupRoot };
}

describe('bench gc', () => {
  it('removes a dead run, in pods-nodes-switch order, and leaves live runs and foreign namespaces alone', async () => {
    const { runner, pinRoot, lockDir, cgroupRoot } = world();
    const report = await collectGarbage(runner, { pinRoot, lockDir, cgroupRoot });
    expect(report.removed).toEqual([
      { runId: 'dead1', namespaces: ['cb-dead1-n0', 'cb-dead1-sw'], pins: [join(pinRoot, 'cb-dead1')], cgroups: [join(cgroupRoot, 'cb-dead1')], locks: [join(lockDir, 'dead1.pid')], kept: false },
    ]);
    expect(report.skippedLive).toEqual(['live1']);
    const cmds = runner.log.map((c) => c.argv.join(' '));
    expect(cmds).toContain('kill -9 4242');
    const deletes = cmds.filter((c) => c.startsWith('ip netns delete'));
    expect(deletes).toEqual(['ip netns delete cb-dead1-n0', 'ip netns delete cb-dead1-sw']);
    expect(existsSync(join(pinRoot, 'cb-dead1'))).toBe(false);
    expect(existsSync(join(lockDir, 'dead1.pid'))).toBe(false);
    expect(existsSync(join(cgroupRoot, 'cb-dead1'))).toBe(false);
    expect(existsSync(join(cgroupRoot, 'cb-live1', 'node-0'))).toBe(true);
  });

  it("the summary names each run's removed namespaces, BPF pins and cgroup, and the live runs it left", async () => {
    const { runner, pinRoot, lockDir, cgroupRoot } = world();
    const lines = gcSummary(await collectGarbage(runner, { pinRoot, lockDir, cgroupRoot, dryRun: true }), true);
    expect(lines).toEqual([
      `would remove run dead1: 2 namespaces, BPF pins ${join(pinRoot, 'cb-dead1')}, cgroup ${join(cgroupRoot, 'cb-dead1')}, its stale lock`,
      '  netns cb-dead1-n0',
      '  netns cb-dead1-sw',
      'skipped run live1: its process is still running (use --force to remove anyway)',
    ]);
    expect(gcSummary({ removed: [], skippedLive: [] }, false)).toEqual(['nothing to remove']);
  });

  it('leaves the system cgroups alone when given a lock directory of its own but no cgroup root', async () => {
    const { runner, pinRoot, lockDir } = world();
    const report = await collectGarbage(runner, { pinRoot, lockDir, dryRun: true });
    expect(report.removed.flatMap((r) => r.cgroups)).toEqual([]);
  });

  it('--dry-run lists the same leftovers and changes nothing', async () => {
    const { runner, pinRoot, lockDir, cgroupRoot } = world();
    const report = await collectGarbage(runner, { pinRoot, lockDir, cgroupRoot, dryRun: true });
    expect(report.removed.map((r) => r.namespaces)).toEqual([['cb-dead1-n0', 'cb-dead1-sw']]);
    expect(existsSync(join(cgroupRoot, 'cb-dead1'))).toBe(true);
    expect(runner.log.map((c) => c.argv.join(' '))).toEqual(['ip netns list']);
    expect(existsSync(join(pinRoot, 'cb-dead1'))).toBe(true);
    expect(existsSync(join(lockDir, 'dead1.pid'))).toBe(true);
  });

  it('--force removes a live run too; --run limits it to one id', async () => {
    const { runner, pinRoot, lockDir } = world();
    const report = await collectGarbage(runner, { pinRoot, lockDir, force: true, only: 'live1' });
    expect(report.removed.map((r) => r.runId)).toEqual(['live1']);
    expect(runner.log.map((c) => c.argv.join(' '))).toContain('ip netns delete cb-live1-n0');
  });

  it('removes the lock of a dead run that left no namespaces, and a --keep record', async () => {
    const { runner, pinRoot, lockDir } = world();
    writeFileSync(join(lockDir, 'gone1.pid'), '999999998\n');
    recordKeptRun({ runId: 'kept1', keptAt: new Date().toISOString(), namespaces: [], serverPid: null }, lockDir);
    const report = await collectGarbage(runner, { pinRoot, lockDir });
    expect(report.removed.find((r) => r.runId === 'gone1')).toMatchObject({ namespaces: [], locks: [join(lockDir, 'gone1.pid')] });
    expect(report.removed.find((r) => r.runId === 'kept1')).toMatchObject({ kept: true });
    expect(existsSync(join(lockDir, 'gone1.pid'))).toBe(false);
    expect(existsSync(join(lockDir, 'kept1.kept'))).toBe(false);
    expect(existsSync(join(lockDir, 'live1.pid'))).toBe(true);
  });

  it('takes a zombie (killed, not reaped) for a dead run, and a reused pid too', async () => {
    // `exec sleep` replaces the shell, so nothing reaps its finished child: it stays a zombie while sleep runs.
    const parent = spawn('sh', ['-c', 'sleep 0 & echo $!; exec sleep 30'], { stdio: ['ignore', 'pipe', 'ignore'] });
    try {
      const pid = Number((await new Promise<Buffer>((r) => parent.stdout.once('data', r))).toString().trim());
      await new Promise((r) => setTimeout(r, 300));
      expect(readFileSync(`/proc/${pid}/stat`, 'utf8')).toMatch(/\) Z /);
      expect(() => process.kill(pid, 0)).not.toThrow(); // what gc used to ask: the pid "exists"
      expect(processAlive(pid)).toBe(false);
      const lockDir = tempDir('cb-gc-');
      writeFileSync(join(lockDir, 'zomb1.pid'), `${pid}\n`);
      expect(liveRuns(lockDir).has('zomb1')).toBe(false);
    } finally {
      parent.kill('SIGKILL');
    }
    // The parent of this test is alive; with a start time that is not its own, the lock is someone else's pid.
    expect(processAlive(process.ppid)).toBe(true);
    expect(processAlive(process.ppid, '1')).toBe(false);
    expect(lockContent(process.ppid)).toMatch(/^\d+ \d+\n$/);
  });
});
