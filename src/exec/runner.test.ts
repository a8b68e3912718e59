// The one process layer, with real processes: no shell, stdin, exit codes in words, timeouts, cancellation, the
// command log, and dry runs that run nothing.
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { BenchError } from '../errors.js';
import { CommandError, DryRunRunner, ExecRunner, FakeRunner, fullArgv, renderPlan, shellQuote } from './runner.js';

const dir = mkdtempSync(join(tmpdir(), 'cb-runner-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

/** The CommandError a rejected run() threw. */
async function failure(p: Promise<unknown>): Promise<CommandError> {
  const e = await p.then(
    () => undefined,
    (x: unknown) => x,
  );
  expect(e).toBeInstanceOf(CommandError);
  return e as CommandError;
}

describe('ExecRunner', () => {
  it('passes argv as it is, without a shell, and writes input to stdin', async () => {
    const r = new ExecRunner();
    expect((await r.run({ argv: ['printf', '%s', 'a b; echo $HOME `id`'] })).stdout).toBe('a b; echo $HOME `id`');
    expect((await r.run({ argv: ['cat'], input: 'kind: Pod\n' })).stdout).toBe('kind: Pod\n');
  });

  it('a failing command throws a command error naming the command, its exit in words and the end of its stderr', async () => {
    const e = await failure(new ExecRunner().run({ argv: ['sh', '-c', 'echo one >&2; echo two >&2; exit 3'], purpose: 'try it' }));
    expect(e.kind).toBe('command');
    expect(e).toBeInstanceOf(BenchError);
    expect(e.message).toBe("try it: sh -c 'echo one >&2; echo two >&2; exit 3' failed (exit code 3)\n  one\n  two");
    expect(e.result.exitCode).toBe(3);
  });

  it('allowFailure returns the failed result instead of throwing', async () => {
    const r = await new ExecRunner().run({ argv: ['sh', '-c', 'printf out; exit 7'], allowFailure: true });
    expect(r).toMatchObject({ exitCode: 7, stdout: 'out', timedOut: false });
  });

  it('a command that does not exist is exit 127, "command not found"', async () => {
    const e = await failure(new ExecRunner().run({ argv: ['cb-no-such-command-here'] }));
    expect(e.result.exitCode).toBe(127);
    expect(e.message).toMatch(/command not found/);
  });

  it('a command killed by a signal says which', async () => {
    const e = await failure(new ExecRunner().run({ argv: ['sh', '-c', 'kill -9 $$'] }));
    expect(e.result.exitCode).toBe(128 + 9);
    expect(e.message).toMatch(/killed by signal 9/);
  });

  it('stops a command at its timeout and says so', async () => {
    const t0 = performance.now();
    const e = await failure(new ExecRunner().run({ argv: ['sleep', '5'], timeoutMs: 200 }));
    expect(performance.now() - t0).toBeLessThan(3000);
    expect(e.result.timedOut).toBe(true);
    expect(e.message).toMatch(/^sleep 5 failed \(timed out after \d+ ms\)/);
  });

  it('kills a running command when its signal aborts, and fails it', async () => {
    const ctl = new AbortController();
    const t0 = performance.now();
    setTimeout(() => ctl.abort(), 100);
    const r = await new ExecRunner(ctl.signal).run({ argv: ['sleep', '5'], allowFailure: true });
    expect(performance.now() - t0).toBeLessThan(3000);
    expect(r.exitCode).not.toBe(0);
  });

  it('logs every command in order, with its purpose and stdin', async () => {
    const r = new ExecRunner();
    await r.run({ argv: ['true'], purpose: 'first' });
    await r.run({ argv: ['false'], allowFailure: true });
    await r.run({ argv: ['cat'], input: 'x', purpose: 'third' });
    expect(r.log.map((c) => [c.argv.join(' '), c.exitCode, c.purpose, c.input])).toEqual([
      ['true', 0, 'first', undefined],
      ['false', 1, undefined, undefined],
      ['cat', 0, 'third', 'x'],
    ]);
    expect(r.log.every((c) => c.durationMs >= 0)).toBe(true);
  });
});

describe('dry runs and fakes', () => {
  it('DryRunRunner records the plan and runs nothing', async () => {
    const file = join(dir, 'made');
    const r = new DryRunRunner();
    const res = await r.run({ argv: ['touch', file], netns: 'cb-abcde-n0', purpose: 'make a file' });
    expect(existsSync(file)).toBe(false);
    expect(res).toMatchObject({ exitCode: 0, stdout: '', argv: ['ip', 'netns', 'exec', 'cb-abcde-n0', 'touch', file] });
    expect(r.dryRun).toBe(true);
    expect(r.log).toHaveLength(1);
  });

  it('FakeRunner answers from its handler and throws on a failure like the real one', async () => {
    const r = new FakeRunner((argv) => (argv[0] === 'bad' ? { exitCode: 2, stderr: 'nope' } : { stdout: 'ok' }));
    expect((await r.run({ argv: ['good'] })).stdout).toBe('ok');
    const e = await failure(r.run({ argv: ['bad'] }));
    expect(e.message).toBe('bad failed (exit code 2)\n  nope');
  });

  it('a network namespace prefixes the argv with ip netns exec', () => {
    expect(fullArgv({ argv: ['ip', 'link'], netns: 'cb-abcde-n1' })).toEqual(['ip', 'netns', 'exec', 'cb-abcde-n1', 'ip', 'link']);
    expect(fullArgv({ argv: ['ip', 'link'] })).toEqual(['ip', 'link']);
  });
});

describe('plans a person can paste', () => {
  it('shellQuote survives a real shell: what sh runs is the argv', async () => {
    const argv = ['printf', '%s|', 'a b', "it's", '$HOME', '*', 'plain-arg_1.2:3'];
    const r = await new ExecRunner().run({ argv: ['sh', '-c', shellQuote(argv)] });
    expect(r.stdout).toBe("a b|it's|$HOME|*|plain-arg_1.2:3|");
    expect(shellQuote(['plain-arg_1.2:3', '--x=y'])).toBe('plain-arg_1.2:3 --x=y');
  });

  it('renderPlan: the purpose as a comment, the command, and stdin as a heredoc', async () => {
    const r = new DryRunRunner();
    await r.run({ argv: ['kubectl', 'apply', '-f', '-'], input: 'kind: Namespace\n', purpose: 'create it' });
    await r.run({ argv: ['echo', 'a b'] });
    expect(renderPlan(r.log)).toBe("# create it\nkubectl apply -f - <<'EOF'\nkind: Namespace\nEOF\necho 'a b'");
  });
});
