// Long-lived processes through the one process layer: what `kubectl exec -i … cb-probe watch` needs (stdout as it
// comes, control lines on stdin, the end with its reason), recorded like every other command.
import { describe, expect, it } from 'vitest';
import { DryRunRunner, ExecRunner } from './runner.js';

describe('Runner.start', () => {
  it('streams stdout, takes stdin lines, ends on EOF, and logs the process when it ends', async () => {
    const runner = new ExecRunner();
    // A line-echoing child: it answers each stdin line, and exits when stdin closes.
    const p = runner.start({ argv: [process.execPath, '-e', "process.stdin.on('data', (d) => process.stdout.write('echo ' + d)); process.stdin.on('end', () => process.exit(3));"], purpose: 'echo lines' });
    let out = '';
    const seen = new Promise<void>((resolve) => p.onStdout((c) => ((out += c), out.includes('echo mark') && resolve())));
    p.write('mark\n');
    await seen;
    p.end();
    expect(await p.exited).toMatchObject({ exitCode: 3, signal: null });
    expect(runner.log.at(-1)).toMatchObject({ exitCode: 3, purpose: 'echo lines' });
  });

  it('is not cancelled by the runner signal: the caller stops it (a signal to kubectl would not reach the pod)', async () => {
    const ctl = new AbortController();
    const runner = new ExecRunner(ctl.signal);
    const p = runner.start({ argv: [process.execPath, '-e', 'setTimeout(() => process.exit(0), 400)'] });
    ctl.abort();
    expect((await p.exited).exitCode).toBe(0);
  });

  it('a kill ends it with the signal; a missing binary is exit 127 with the reason', async () => {
    const runner = new ExecRunner();
    const p = runner.start({ argv: [process.execPath, '-e', 'setInterval(() => {}, 1000)'] });
    p.kill();
    expect(await p.exited).toMatchObject({ exitCode: null, signal: 'SIGKILL' });
    const missing = await runner.start({ argv: ['/nonexistent/cb-no-such-binary'] }).exited;
    expect(missing.exitCode).toBe(127);
    expect(missing.stderr).toMatch(/ENOENT|not found/);
  });

  it('a dry run records the process and starts nothing', async () => {
    const runner = new DryRunRunner();
    const p = runner.start({ argv: ['kubectl', 'exec', '-i', 'pod', '--', 'cb-probe', 'watch'], purpose: 'watch' });
    expect(await p.exited).toEqual({ exitCode: 0, signal: null, stderr: '' });
    expect(runner.log.map((r) => r.argv.join(' '))).toEqual(['kubectl exec -i pod -- cb-probe watch']);
  });
});
