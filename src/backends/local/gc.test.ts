import { describe, expect, it } from 'vitest';
import { existsSync, mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { FakeRunner } from '../../exec/runner.js';
import { collectGarbage } from './gc.js';

function world() {
  const root = mkdtempSync(join(tmpdir(), 'cb-gc-'));
  const pinRoot = join(root, 'bpf');
  const lockDir = join(root, 'locks');
  mkdirSync(join(pinRoot, 'cb-dead1', 'node-0'), { recursive: true });
  mkdirSync(lockDir, { recursive: true });
  // A dead run (its pid does not exist) and a live one (this process).
  writeFileSync(join(lockDir, 'dead1.pid'), '999999999\n');
  writeFileSync(join(lockDir, 'live1.pid'), `${process.ppid}\n`);
  const runner = new FakeRunner((argv) => {
    if (argv.join(' ') === 'ip netns list') return { stdout: 'cb-dead1-n0 (id: 3)\ncb-dead1-sw\ncb-live1-n0\nother-ns\ncbx-abcde-n0\n' };
    if (argv[1] === 'netns' && argv[2] === 'pids') return { stdout: argv[3] === 'cb-dead1-n0' ? '4242\n' : '' };
    return undefined;
  });
  return { runner, pinRoot, lockDir };
}

describe('bench gc', () => {
  it('removes a dead run, in pods-nodes-switch order, and leaves live runs and foreign namespaces alone', async () => {
    const { runner, pinRoot, lockDir } = world();
    const report = await collectGarbage(runner, { pinRoot, lockDir });
    expect(report.removed).toEqual([{ runId: 'dead1', namespaces: ['cb-dead1-n0', 'cb-dead1-sw'], pins: [join(pinRoot, 'cb-dead1')] }]);
    expect(report.skippedLive).toEqual(['live1']);
    const cmds = runner.log.map((c) => c.argv.join(' '));
    expect(cmds).toContain('kill -9 4242');
    const deletes = cmds.filter((c) => c.startsWith('ip netns delete'));
    expect(deletes).toEqual(['ip netns delete cb-dead1-n0', 'ip netns delete cb-dead1-sw']);
    expect(existsSync(join(pinRoot, 'cb-dead1'))).toBe(false);
    expect(existsSync(join(lockDir, 'dead1.pid'))).toBe(false);
  });

  it('--dry-run lists the same leftovers and changes nothing', async () => {
    const { runner, pinRoot, lockDir } = world();
    const report = await collectGarbage(runner, { pinRoot, lockDir, dryRun: true });
    expect(report.removed.map((r) => r.namespaces)).toEqual([['cb-dead1-n0', 'cb-dead1-sw']]);
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
});
