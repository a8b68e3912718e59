// Long-lived processes (startCommand, src/exec/start.ts): ready line, stop, exit before ready, detached.
import { describe, expect, it } from 'vitest';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { StartError, startCommand } from './start.js';
import { tempDir } from '../test-support/temp.js';

const sh = (script: string, purpose = 'test process') => ({ argv: ['sh', '-c', script], purpose });

describe('startCommand', () => {
  it('resolves once the ready line is printed, with its match, and stop() ends it', async () => {
    const p = await startCommand(sh('echo hello; echo "listening 4242"; exec sleep 30'), { readyLine: /^listening (\d+)$/m });
    expect(p.ready![1]).toBe('4242');
    expect(p.pid).toBeGreaterThan(0);
    const r = await p.stop();
    expect(r.exitCode).toBe(128 + 15);
    expect(r.argv).toEqual(['sh', '-c', 'echo hello; echo "listening 4242"; exec sleep 30']);
  });

  it('keeps stdout when asked, for a final JSON line', async () => {
    const p = await startCommand(sh('echo ready; echo \'{"done":true}\''), { readyLine: /^ready$/m, keepStdout: true });
    const r = await p.exited;
    expect(r.exitCode).toBe(0);
    expect(r.stdout).toContain('{"done":true}');
  });

  it('a process that exits before it is ready is an error naming it, its exit and its stderr', async () => {
    await expect(startCommand(sh('echo broken >&2; exit 3', 'echo server'), { readyLine: /^ready$/m })).rejects.toThrow(StartError);
    await expect(startCommand(sh('echo broken >&2; exit 3', 'echo server'), { readyLine: /^ready$/m })).rejects.toThrow(/echo server: sh -c .* exited with code 3 before it was ready: broken/);
  });

  it('gives up after readyTimeoutMs and kills the process', async () => {
    await expect(startCommand(sh('exec sleep 30'), { readyLine: /^ready$/m, readyTimeoutMs: 200 })).rejects.toThrow(/was not ready within 200 ms/);
  });

  it('detached: output to a file, CB_PROBE_DETACHED set, still stoppable', async () => {
    const log = join(tempDir('cb-start-'), 'server.log');
    const p = await startCommand(sh('echo "ready $CB_PROBE_DETACHED"; exec sleep 30'), { readyLine: /^ready 1$/m, detachedLog: log });
    expect(readFileSync(log, 'utf8')).toContain('ready 1');
    await p.stop();
  });
});
