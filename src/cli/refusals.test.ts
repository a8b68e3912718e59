// One wording for every refusal of every command: the flag, the value given, what is allowed — never the
// validation library's own words. And bench enforce takes --pin-cpu as bench run does (issue 26, items 5 and 6).
import { cpus } from 'node:os';
import { describe, expect, it } from 'vitest';
import { runBench } from './test-support/cli.js';

/** Words of the validation library that say nothing to a person (zod's defaults). */
const LIBRARY_WORDS = /Too small|Too big|Invalid input|Invalid option|expected int|expected number|received|Required\b|NaN/;

const problemLines = (stderr: string) => stderr.split('\n').filter((l) => /^\s+--/.test(l));

describe('bad input: one wording on every command', () => {
  it('bench enforce echoes the value and says what is allowed', async () => {
    const r = await runBench(['enforce', '--cni', 'weave', '--policies', '-1', '--probe-timeout-ms', 'autox', '--repetitions', '1.5', '--interval-us', '2000', '--changes', 'allow-added,bogus']);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/--cni: must be one of none, flannel, .*got "weave"/);
    expect(r.stderr).toMatch(/--policies: must be at least 0, got -1/);
    expect(r.stderr).toMatch(/--probe-timeout-ms: expected a whole number or 'auto', got 'autox'/);
    expect(r.stderr).toMatch(/--repetitions: expected a whole number, got '1\.5'/);
    expect(r.stderr).toMatch(/--interval-us: must be at most 1000, got 2000/);
    expect(r.stderr).toMatch(/--changes: must be one of allow-added, allow-removed, new-pod, peer-joins, got "bogus"/);
    for (const line of problemLines(r.stderr)) expect(line).not.toMatch(LIBRARY_WORDS);
  });

  it.each([
    ['run', ['run', '--cni', 'weave', '--policies', 'x', '--backend', 'local']],
    ['sweep', ['sweep', '--cni', 'none,weave', '--policies', '0,-5', '--repetitions', '0']],
    ['verify', ['verify', '--cni', 'weave', '--timeout-ms', '5', '--retries', 'x', '--parallel', '0', '--policies', '30000']],
    ['policies', ['policies', '--policies', '1.5', '--seed', '-1']],
  ])('bench %s: every problem names the flag, the value and what is allowed', async (_name, argv) => {
    const r = await runBench(argv);
    expect(r.code).toBe(2);
    const lines = problemLines(r.stderr);
    expect(lines.length).toBeGreaterThan(1);
    for (const line of lines) {
      expect(line).not.toMatch(LIBRARY_WORDS);
      // The value given is echoed: "got ..." closes every one of these.
      expect(line).toMatch(/got ['"]?-?[\w.,]+['"]?$/);
    }
  });

  it.each([
    ['--timeout-ms', ['run', '--cni', 'calico', '--backend', 'local', '--timeout-ms', '5'], ['verify', '--cni', 'calico', '--timeout-ms', '5']],
    ['--policies', ['run', '--cni', 'calico', '--backend', 'local', '--policies', '-1'], ['enforce', '--cni', 'calico', '--policies', '-1']],
    ['--seed', ['run', '--cni', 'calico', '--backend', 'local', '--seed', 'x'], ['policies', '--seed', 'x']],
  ])('the same bad %s gets the same words from every command that takes it', async (flag, a, b) => {
    const line = async (argv: string[]) => problemLines((await runBench(argv)).stderr).find((l) => l.trim().startsWith(`${flag}:`));
    const first = await line(a);
    expect(first).toBeDefined();
    expect(await line(b)).toBe(first);
  });

  it('a CNI list in a sweep is refused item by item in the same words as a single --cni', async () => {
    const sweep = await runBench(['sweep', '--cni', 'weave', '--dry-run']);
    const run = await runBench(['run', '--cni', 'weave', '--backend', 'local', '--dry-run']);
    const line = (s: string) => problemLines(s).find((l) => l.includes('--cni'));
    expect(line(sweep.stderr)).toBe(line(run.stderr));
  });
});

describe('bench enforce --pin-cpu, as bench run takes it', () => {
  it('refuses a CPU this machine does not have, up front (exit 2), as run does', async () => {
    const enforce = await runBench(['enforce', '--cni', 'calico', '--pin-cpu', '99', '--dry-run']);
    const run = await runBench(['run', '--cni', 'calico', '--backend', 'local', '--pin-cpu', '99', '--dry-run']);
    expect(enforce.code).toBe(2);
    expect(enforce.stderr).toContain(`--pin-cpu: this machine has CPUs 0..${cpus().length - 1}, got 99`);
    expect(enforce.stdout).toBe('');
    expect(run.code).toBe(2);
    expect(problemLines(enforce.stderr)).toEqual(problemLines(run.stderr));
  });

  it.each(['auto', 'off', '0'])('accepts --pin-cpu %s', async (pin) => {
    const r = await runBench(['enforce', '--cni', 'calico', '--pin-cpu', pin, '--dry-run']);
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/^# enforce plan for run/);
  });
});
