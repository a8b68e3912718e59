// Run identity and live-run locks, with real processes: ids and names, what a lock records, and which runs count as
// live (a running process; not a dead one, not a zombie, not a pid reused by another process).
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, beforeEach, describe, expect, it } from 'vitest';
import { BenchError } from '../errors.js';
import { announceRun, liveRuns, lockContent, lockHolder, lockLive, LOCK_FILE_RE, processAlive, recordKeptRun, releaseRun } from './locks.js';
import { assertRunId, NETNS_RE, newRunId, restartRunIdSequence, RUN_ID_RE, RUN_RESOURCE_RE, runResourceName } from './run-id.js';

const dir = mkdtempSync(join(tmpdir(), 'cb-locks-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('run ids and names', () => {
  const seed = process.env.CNI_BENCH_RUN_ID_SEED;
  beforeEach(() => delete process.env.CNI_BENCH_RUN_ID_SEED);
  afterEach(() => {
    if (seed === undefined) delete process.env.CNI_BENCH_RUN_ID_SEED;
    else process.env.CNI_BENCH_RUN_ID_SEED = seed;
  });

  it('a fresh id is a letter and four letters or digits, and ids differ', () => {
    const ids = Array.from({ length: 200 }, newRunId);
    for (const id of ids) expect(id).toMatch(RUN_ID_RE);
    expect(new Set(ids).size).toBeGreaterThan(195);
  });

  it('CNI_BENCH_RUN_ID_SEED makes the sequence reproducible, each call still new; restarting replays it', () => {
    process.env.CNI_BENCH_RUN_ID_SEED = 'test';
    restartRunIdSequence();
    const first = [newRunId(), newRunId(), newRunId()];
    expect(new Set(first).size).toBe(3);
    restartRunIdSequence();
    expect([newRunId(), newRunId(), newRunId()]).toEqual(first);
    process.env.CNI_BENCH_RUN_ID_SEED = 'other';
    restartRunIdSequence();
    expect(newRunId()).not.toBe(first[0]);
  });

  it('names: cb-<id> for the run, cb-<id>-<part> for what it creates; the patterns gc finds them by', () => {
    expect(runResourceName('k3f9a')).toBe('cb-k3f9a');
    expect(runResourceName('k3f9a', 'n0')).toBe('cb-k3f9a-n0');
    expect(RUN_RESOURCE_RE.exec('cb-k3f9a')?.[1]).toBe('k3f9a');
    expect(NETNS_RE.exec('cb-k3f9a-client')?.[1]).toBe('k3f9a');
    for (const other of ['cb-K3f9a-n0', 'cb-3k3f9-n0', 'cb-k3f9-n0', 'xcb-k3f9a-n0', 'cb-k3f9a']) expect(NETNS_RE.test(other), other).toBe(false);
  });

  it('assertRunId refuses anything else as an internal error', () => {
    expect(() => assertRunId('k3f9a')).not.toThrow();
    for (const bad of ['', 'K3F9A', '1abcd', 'abcd', 'abcdef', 'ab/cd', '../xx']) {
      expect(() => assertRunId(bad), bad).toThrow(BenchError);
    }
  });
});

/** A child that runs until killed; its pid. */
function sleeper(): { pid: number; stop(): Promise<void> } {
  const child = spawn('sleep', ['30'], { stdio: 'ignore' });
  return {
    pid: child.pid!,
    stop: () =>
      new Promise<void>((res) => {
        child.once('exit', () => res());
        child.kill('SIGKILL');
      }),
  };
}

describe('live runs', () => {
  it('a lock records pid and start time; a malformed one holds nothing', () => {
    const text = lockContent();
    expect(lockHolder(text)).toEqual({ pid: process.pid, startTime: expect.stringMatching(/^\d+$/) });
    for (const bad of ['', 'abc', '-5 1', '0']) expect(lockHolder(bad), bad).toBeUndefined();
  });

  it('a running process is alive; after it exits, not; a reused pid (other start time) is not the lock holder', async () => {
    const s = sleeper();
    const { startTime } = lockHolder(lockContent(s.pid))!;
    expect(processAlive(s.pid, startTime)).toBe(true);
    expect(processAlive(s.pid, '1')).toBe(false);
    await s.stop();
    expect(processAlive(s.pid)).toBe(false);
    const done = spawnSync('true');
    expect(processAlive(done.pid!)).toBe(false);
  });

  it('a zombie (killed, not reaped by its parent) is not alive', async () => {
    // sh starts `sleep 0` in the background and becomes `sleep 5`, which never reaps it.
    const parent = spawn('sh', ['-c', 'sleep 0 & echo $!; exec sleep 5'], { stdio: ['ignore', 'pipe', 'ignore'] });
    const pid = Number((await new Promise<Buffer>((res) => parent.stdout.once('data', res))).toString().trim());
    try {
      for (let i = 0; i < 50 && !readFileSync(`/proc/${pid}/stat`, 'utf8').includes(') Z '); i++) await new Promise((r) => setTimeout(r, 20));
      expect(readFileSync(`/proc/${pid}/stat`, 'utf8')).toContain(') Z ');
      expect(processAlive(pid)).toBe(false);
    } finally {
      parent.kill('SIGKILL');
    }
  });

  it("announce, live, release: a run is live while its process runs, never this process's own", async () => {
    const lockDir = join(dir, 'live');
    announceRun('abcde', lockDir);
    expect(existsSync(join(lockDir, 'abcde.pid'))).toBe(true);
    expect(liveRuns(lockDir).has('abcde')).toBe(false); // this process's own run
    const s = sleeper();
    writeFileSync(join(lockDir, 'fghij.pid'), lockContent(s.pid));
    writeFileSync(join(lockDir, 'klmno.pid'), 'garbage\n');
    writeFileSync(join(lockDir, 'not-a-lock.txt'), `${s.pid}\n`);
    expect([...liveRuns(lockDir)]).toEqual(['fghij']);
    await s.stop();
    expect(liveRuns(lockDir).size).toBe(0);
    expect(lockLive(join(lockDir, 'missing.pid'))).toBe(false);
    releaseRun('abcde', lockDir);
    expect(existsSync(join(lockDir, 'abcde.pid'))).toBe(false);
    expect(liveRuns(join(dir, 'no-such-dir')).size).toBe(0);
  });

  it('--keep: the live lock is replaced by a record of what was kept, which release removes', () => {
    const lockDir = join(dir, 'kept');
    announceRun('pqrst', lockDir);
    const file = recordKeptRun({ runId: 'pqrst', keptAt: '2026-12-07T00:00:00Z', namespaces: ['cb-pqrst-n0'], serverPid: null }, lockDir);
    expect(existsSync(join(lockDir, 'pqrst.pid'))).toBe(false);
    expect(JSON.parse(readFileSync(file, 'utf8'))).toMatchObject({ runId: 'pqrst', namespaces: ['cb-pqrst-n0'] });
    expect(LOCK_FILE_RE.exec('pqrst.kept')?.slice(1)).toEqual(['pqrst', 'kept']);
    expect(LOCK_FILE_RE.exec('pqrst.server.log')?.slice(1)).toEqual(['pqrst', 'server.log']);
    releaseRun('pqrst', lockDir);
    expect(existsSync(file)).toBe(false);
  });
});
