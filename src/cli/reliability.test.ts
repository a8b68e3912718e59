// Bad input of every class a demanding user tries, through the real CLI entry point: each gets exit 2 and a
// message that names the flag or file, before any work starts or anything is created.
import { afterEach, describe, expect, it, vi } from 'vitest';
import { existsSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { bufferIo, runBench, tempDir } from './test-support/cli.js';
import { writeResult } from '../results/io.js';
import { syntheticResult } from '../report/test-support/fixtures.js';
import { PACKAGE_ROOT } from '../metrics/machine.js';

const tmp = () => tempDir('cb-rel-');

/** A directory with two good result files (calico at 0 and 100 policies). */
function resultsDir(machine?: Parameters<typeof syntheticResult>[0]['machine']): string {
  const dir = tmp();
  for (const [i, p] of [0, 100].entries()) writeResult(join(dir, `r${i}`), syntheticResult({ cni: 'calico', policies: p, seed: 10 + i, connectNs: 50_000 + p * 10, machine }));
  return dir;
}

describe('output paths are checked before any work', () => {
  const file = () => {
    const f = join(tmp(), 'a-file');
    writeFileSync(f, 'x');
    return f;
  };

  it.each([
    ['run --out <a file>', (f: string) => ['run', '--cni', 'none', '--backend', 'local', '--dry-run', '--out', f], /--out: .* exists and is not a directory/],
    ['run --out /proc/x', () => ['run', '--cni', 'none', '--backend', 'local', '--dry-run', '--out', '/proc/x'], /--out: \/proc\/x is on proc, a kernel filesystem/],
    ['run --out <below a file>', (f: string) => ['run', '--cni', 'none', '--backend', 'local', '--dry-run', '--out', join(f, 'sub')], /is a file, not a directory/],
    ['run --out ""', () => ['run', '--cni', 'none', '--backend', 'local', '--dry-run', '--out', ''], /--out: must not be empty/],
    ['sweep --out /proc/x', () => ['sweep', '--cni', 'none', '--backend', 'local', '--dry-run', '--out', '/proc/x'], /--out: \/proc\/x is on proc/],
    ['verify --junit /nonexistent/v.xml', () => ['verify', '--list', '--case', 'default-deny-ingress', '--junit', '/nonexistent-cb-dir/v.xml'], /--junit: directory \/nonexistent-cb-dir does not exist/],
    ['verify --junit <a directory>', () => ['verify', '--list', '--case', 'default-deny-ingress', '--junit', tmp()], /--junit: .* is a directory; give a file name/],
  ])('%s: exit 2, named, nothing run', async (_name, argv, message) => {
    const r = await runBench(argv(file()));
    expect(r.code, r.stderr).toBe(2);
    expect(r.stderr).toMatch(message);
    expect(r.stdout).toBe('');
  });

  it('report --out and compare --output: refused before reading or writing anything', async () => {
    const dir = resultsDir();
    const f = file();
    const report = await runBench(['report', dir, '--out', f]);
    expect(report.code).toBe(2);
    expect(report.stderr).toMatch(/--out: .* exists and is not a directory/);
    expect(report.stderr).not.toMatch(/analysed/);
    const perfdash = await runBench(['report', dir, '--format', 'perfdash', '-o', '/proc/x/y.json']);
    expect(perfdash.code).toBe(2);
    expect(perfdash.stderr).toMatch(/-o|--output/);
    const compare = await runBench(['compare', dir, dir, '--output', join(f, 'x.md')]);
    expect(compare.code).toBe(2);
    expect(compare.stderr).toMatch(/--output: cannot create .* is a file, not a directory/);
    expect(compare.stdout).toBe('');
    // A good path still works, and '-' means stdout for perfdash.
    expect((await runBench(['report', dir, '--format', 'perfdash', '-o', '-'])).code).toBe(0);
  });
});

describe('flags', () => {
  it('--version prints the version in package.json', async () => {
    const pkg = JSON.parse(readFileSync(join(PACKAGE_ROOT, 'package.json'), 'utf8')) as { version: string };
    const r = await runBench(['--version']);
    expect(r.code).toBe(0);
    expect(r.stdout.trim()).toBe(pkg.version);
  });

  it('a flag given twice is refused (the last one used to win silently); repeatable ones are not', async () => {
    const r = await runBench(['run', '--cni', 'none', '--policies', '10', '--policies', '20', '--backend', 'local', '--dry-run']);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/--policies: given 2 times/);
    const s = await runBench(['sweep', '--cni', 'none', '--cni', 'flannel', '--dry-run', '--backend', 'local']);
    expect(s.code).toBe(2);
    expect(s.stderr).toMatch(/--cni: given 2 times/);
    const ok = await runBench(['verify', '--list', '--case', 'default-deny-ingress', '--case', 'default-deny-egress']);
    expect(ok.code, ok.stderr).toBe(0);
  });

  it('--context and --kubeconfig are refused on a backend that is not cluster', async () => {
    const r = await runBench(['run', '--cni', 'none', '--backend', 'local', '--context', 'prod', '--dry-run']);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/--context: only for --backend cluster/);
  });

  it('an empty sweep is refused, not written as a "complete" sweep of 0 points', async () => {
    const out = tmp();
    const r = await runBench(['sweep', '--cni', '', '--policies', '', '--backend', 'local', '--out', out]);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/--cni: empty list/);
    expect(r.stderr).toMatch(/--policies: empty list/);
    expect(readdirSync(out)).toEqual([]);
  });
});

describe('flags that nothing in the run reads are refused, naming what they belong to', () => {
  const scenario = (text: string) => {
    const f = join(tmp(), 's.yaml');
    writeFileSync(f, text);
    return f;
  };

  it.each([
    [['enforce', '--cni', 'calico', '--changes', 'allow-added,allow-added'], /--changes: allow-added given more than once in 'allow-added,allow-added'/],
    [['run', '--cni', 'canal', '--policy-map-capacity', '1000'], /--policy-map-capacity: applies to cilium only; this run measures canal/],
    [['run', '--cni', 'calico-ebpf', '--endpoint-lockdown-on-policy-overflow'], /--endpoint-lockdown-on-policy-overflow: applies to cilium only; this run measures calico-ebpf/],
    [['run', '--cni', 'calico-ebpf', '--iptables-backend', 'legacy'], /--iptables-backend: applies to calico, canal only; this run measures calico-ebpf/],
    [['run', '--cni', 'calico-nftables', '--iptables-backend', 'legacy'], /--iptables-backend: applies to calico, canal only; this run measures calico-nftables/],
    [['run', '--cni', 'calico', '--bpf-policy-debug', 'off'], /--bpf-policy-debug: applies to calico-ebpf only/],
    [['sweep', '--cni', 'calico', '--measure', 'enforce', '--samples', '100'], /--samples: belongs to latency measurements \(bench run, or a sweep with measure: latency\); this sweep measures enforce/],
    [['sweep', '--cni', 'calico,none', '--iptables-backend', 'legacy', '--bpf-policy-debug', 'off'], /--bpf-policy-debug: applies to calico-ebpf only; this sweep measures calico, none/],
  ])('%j: exit 2', async (argv, message) => {
    const r = await runBench([...argv, '--backend', 'local', '--dry-run']);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(message);
    expect(r.stdout).toBe('');
  });

  it('a scenario with measure: latency and enforceRepetitions is refused, naming the file and the key', async () => {
    const f = scenario('cni: calico\npolicies: 10\nmeasure: latency\nenforceRepetitions: 3\n');
    for (const command of ['run', 'sweep']) {
      const r = await runBench([command, '--scenario', f, '--backend', 'local', '--dry-run']);
      expect(r.code, command).toBe(2);
      expect(r.stderr).toContain(`${f}: enforceRepetitions: belongs to enforce measurements`);
    }
  });

  it('a sweep accepts a flag some of its CNIs read, and says which', async () => {
    const r = await runBench(['sweep', '--cni', 'calico,cilium,canal', '--policy-map-capacity', '1000', '--iptables-backend', 'legacy', '--backend', 'local', '--dry-run']);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stderr).toContain('note: --policy-map-capacity applies to the cilium points only (calico, canal ignore it)');
    expect(r.stderr).toContain('note: --iptables-backend applies to the calico, canal points only (cilium ignores it)');
    const ok = await runBench(['run', '--cni', 'cilium', '--policy-map-capacity', '1000', '--endpoint-lockdown-on-policy-overflow', '--backend', 'local', '--dry-run']);
    expect(ok.code, ok.stderr).toBe(0);
  });
});

describe('refused up front rather than late', () => {
  afterEach(() => vi.unstubAllEnvs());

  it('run --keep --dry-run: nothing is built, so nothing can be kept', async () => {
    const r = await runBench(['run', '--cni', 'calico', '--backend', 'local', '--keep', '--dry-run']);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/--keep: a dry run builds nothing, so nothing would be kept; drop --keep or --dry-run/);
    expect(r.stdout).toBe('');
  });

  it.each(['run', 'enforce', 'verify'])('%s --backend cluster --context nope: exit 2 naming the contexts there, no result file, no cluster call', async (command) => {
    const bin = tmp();
    const log = join(bin, 'calls.log');
    writeFileSync(join(bin, 'kubectl'), `#!/bin/sh\necho "$*" >> '${log}'\ncase "$*" in\n  "config get-contexts -o name") printf 'prod-eu\\nstaging\\n' ;;\nesac\nexit 0\n`, { mode: 0o755 });
    const out = tmp();
    vi.stubEnv('PATH', `${bin}:${process.env.PATH}`);
    const r = await runBench([command, '--cni', 'calico', '--backend', 'cluster', '--context', 'nope', '--out', out]);
    vi.unstubAllEnvs();
    expect(r.code, r.stderr).toBe(2);
    expect(r.stderr).toMatch(/--context: no context 'nope' in the default kubeconfig \(\$KUBECONFIG or ~\/\.kube\/config\) \(it has: prod-eu, staging\)/);
    expect(readdirSync(out)).toEqual([]);
    expect(readFileSync(log, 'utf8')).not.toMatch(/get nodes|apply|create/);
  });
});

describe('the kind backend without its tools', () => {
  afterEach(() => vi.unstubAllEnvs());

  it('exits 2 naming bench doctor, and creates nothing (no results directory, no lock)', async () => {
    const out = tmp();
    const emptyBin = tmp();
    vi.stubEnv('PATH', emptyBin);
    const r = await runBench(['run', '--cni', 'flannel', '--backend', 'kind', '--out', out, '--samples', '10', '--warmup', '0']);
    vi.unstubAllEnvs();
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/the kind backend needs a running Docker engine, kind, kubectl, not found on this machine; run 'bench doctor'/);
    expect(readdirSync(out)).toEqual([]);
  });

  it('enforce refuses it the same way, before a run id, a lock or a result file exists', async () => {
    const out = tmp();
    const locks = () => (existsSync('/run/cni-bench') ? readdirSync('/run/cni-bench') : []);
    const before = new Set(locks());
    vi.stubEnv('PATH', tmp());
    const r = await runBench(['enforce', '--cni', 'calico', '--backend', 'kind', '--out', out, '--repetitions', '1']);
    vi.unstubAllEnvs();
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/--backend: the kind backend needs a running Docker engine, kind, kubectl, not found on this machine; run 'bench doctor'/);
    expect(readdirSync(out)).toEqual([]);
    // Other runs on this machine may come and go meanwhile; none of the new locks may be this process's.
    const mine = locks().filter((f) => !before.has(f) && readFileSync(join('/run/cni-bench', f), 'utf8').split(/\s/)[0] === String(process.pid));
    expect(mine).toEqual([]);
  });
});

describe('scenario files', () => {
  const scenario = (text: string) => {
    const f = join(tmp(), 's.yaml');
    writeFileSync(f, text);
    return f;
  };

  it('says what value is wrong and which are allowed; no "--cni: required" when the file sets cni', async () => {
    const f = scenario('cni: [none, weave]\npolicies: many\n');
    const r = await runBench(['run', '--scenario', f, '--backend', 'local']);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain(`${f}:1:6: cni[1] must be one of none, flannel, calico, cilium`);
    expect(r.stderr).toMatch(/got "weave"/);
    expect(r.stderr).toMatch(/policies: expected number \(or a list of such values\), got "many"/);
    expect(r.stderr).not.toMatch(/Invalid input/);
    expect(r.stderr).not.toMatch(/--cni: required/);
  });

  it('two YAML documents, and an alias bomb: exit 2 with the file name and no library hint', async () => {
    const two = scenario('cni: none\n---\ncni: flannel\n');
    const r = await runBench(['run', '--scenario', two, '--backend', 'local']);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain(`${two}:2:1: a scenario file holds one YAML document`);
    expect(r.stderr).not.toMatch(/parseAllDocuments/);
    const levels = ['a: &a [x, x, x, x, x, x, x, x, x]'];
    for (const [i, name] of ['b', 'c', 'd', 'e', 'f'].entries()) levels.push(`${name}: &${name} [${Array(9).fill(`*${'abcdef'[i]}`).join(', ')}]`);
    const bomb = scenario(`${levels.join('\n')}\n`);
    const b = await runBench(['run', '--scenario', bomb, '--backend', 'local']);
    expect(b.code).toBe(2);
    expect(b.stderr).toContain(`${bomb}: YAML: too many alias`);
  });
});

describe('result files are validated on read, summaries recomputed', () => {
  function corrupt(mutate: (r: Record<string, any>) => void): string {
    const dir = resultsDir();
    const file = join(dir, 'r1', 'result.json');
    const r = JSON.parse(readFileSync(file, 'utf8')) as Record<string, any>;
    mutate(r);
    writeFileSync(file, JSON.stringify(r));
    return dir;
  }

  it.each([
    ['negative samples', (r: Record<string, any>) => (r.metrics.connect.samplesNs = r.metrics.connect.samplesNs.map((v: number) => -v)), /samplesNs\[0\] is -\d+/],
    ['1e308 samples', (r: Record<string, any>) => (r.metrics.connect.samplesNs[3] = 1e308), /samplesNs\[3\] is 1e\+308/],
    ['empty samples with a stored p50', (r: Record<string, any>) => (r.metrics.connect.samplesNs = []), /summary.count is \d+ but samplesNs holds 0 samples/],
    ['a stored p50 that is not its samples\' p50', (r: Record<string, any>) => (r.metrics.connect.summary.p50 = 17_100), /summary.p50 is 17100 but its samples give/],
  ])('%s: compare and report name the file and exit 2', async (_name, mutate, message) => {
    const bad = corrupt(mutate);
    const good = resultsDir();
    const c = await runBench(['compare', good, bad]);
    expect(c.code).toBe(2);
    expect(c.stderr).toMatch(message);
    expect(c.stderr).toMatch(/corrupted or was edited/);
    const r = await runBench(['report', bad, '--format', 'md', '--out', tmp()]);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(message);
  });

  it('the summary that report and compare use is computed from the samples', async () => {
    const { readResult } = await import('../results/io.js');
    const { summarize } = await import('../stats/summary.js');
    const dir = resultsDir();
    const file = join(dir, 'r0', 'result.json');
    const r = JSON.parse(readFileSync(file, 'utf8')) as Record<string, any>;
    r.metrics.connect.summary.ci95 = { p50: [1, 2], p99: [3, 4] };
    r.metrics.connect.summary.mean = -5;
    writeFileSync(file, JSON.stringify(r));
    const read = readResult(file);
    const fresh = summarize(read.metrics.connect!.samplesNs, { seed: read.meta.policy.seed });
    expect(read.metrics.connect!.summary.mean).toBeCloseTo(fresh.mean, 6);
    expect(read.metrics.connect!.summary.ci95).toEqual(fresh.ci95);
  });
});

describe('enforce results are validated on read, and a standalone enforce run can be reported', () => {
  /** A sweep's enforce point (result.json and enforce-result.json), or a standalone `bench enforce --out` run. */
  async function enforceDir(o: { sweepPoint: boolean }): Promise<{ dir: string; point: string }> {
    const { enforceResult } = await import('../enforce/test-support/results.js');
    const { enforceRunResult } = await import('../enforce/as-run.js');
    const dir = tmp();
    const e = enforceResult('calico', 100, 1);
    const point = join(dir, e.runId);
    mkdirSync(point, { recursive: true });
    writeFileSync(join(point, 'enforce-result.json'), JSON.stringify(e));
    if (o.sweepPoint) writeResult(point, enforceRunResult(e, { sweep: { id: 'sweep-x', repetition: 1 } }));
    return { dir, point };
  }
  const edit = (file: string, mutate: (r: Record<string, any>) => void) => {
    const r = JSON.parse(readFileSync(file, 'utf8')) as Record<string, any>;
    mutate(r);
    writeFileSync(file, JSON.stringify(r));
  };

  it.each([
    ['negated', (r: Record<string, any>) => (r.metrics.enforce_allow_added.samplesNs = r.metrics.enforce_allow_added.samplesNs.map((v: number) => -v)), /enforce_allow_added.samplesNs\[0\] is -10000000/],
    ['inflated to 1e308', (r: Record<string, any>) => (r.metrics.enforce_allow_added.samplesNs[1] = 1e308), /samplesNs\[1\] is 1e\+308/],
    ['emptied', (r: Record<string, any>) => (r.metrics.enforce_allow_added.samplesNs = []), /enforce_allow_added.summary.count is 3 but samplesNs holds 0/],
    ['emptied with its summary', (r: Record<string, any>) => ((r.metrics.enforce_allow_added.samplesNs = []), (r.metrics.enforce_allow_added.summary = { count: 0, min: null, max: null, mean: null, p50: null, p90: null, p99: null, p999: null, ci95: { p50: [null, null], p99: [null, null] } })), /enforce_allow_added.samplesNs does not match the observations in enforce-result.json/],
  ])("a sweep point's enforcement samples %s: report and compare exit 2 naming the file", async (_name, mutate, message) => {
    const { dir, point } = await enforceDir({ sweepPoint: true });
    const good = (await enforceDir({ sweepPoint: true })).dir;
    expect((await runBench(['report', dir, '--format', 'md', '--out', tmp()])).code).toBe(0);
    edit(join(point, 'result.json'), mutate);
    const r = await runBench(['report', dir, '--format', 'md', '--out', tmp()]);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(message);
    expect(r.stderr).toContain(join(point, 'result.json'));
    const c = await runBench(['compare', good, dir]);
    expect(c.code).toBe(2);
    expect(c.stderr).toMatch(message);
  });

  it.each([
    ['truncated', (text: string) => text.slice(0, text.length / 2), /not valid JSON/],
    ['empty', () => '', /not valid JSON/],
    ['schema version 2', (text: string) => text.replace('"schemaVersion":1', '"schemaVersion":2'), /schema version 2 is newer than this tool reads \(1\)/],
    ['a NaN', (text: string) => text.replace(/"enforcedMs":10,/, '"enforcedMs":NaN,'), /not valid JSON/],
    ['an impossible time', (text: string) => text.replace(/"enforcedMs":10,/, '"enforcedMs":1e308,'), /observations\[0\]\.enforcedMs is 1e\+308/],
    ['another machine', (text: string) => text.replace('"hostname":"h"', '"hostname":"elsewhere"'), /was measured on elsewhere, the result.json beside it on h/],
  ])('enforce-result.json %s: report exits 2 naming it', async (_name, corrupt, message) => {
    const { dir, point } = await enforceDir({ sweepPoint: true });
    const file = join(point, 'enforce-result.json');
    writeFileSync(file, corrupt(readFileSync(file, 'utf8')));
    const r = await runBench(['report', dir, '--format', 'md', '--out', tmp()]);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(message);
    expect(r.stderr).toContain(file);
  });

  it('bench enforce --out DIR (no result.json) is read by report and compare', async () => {
    const { dir } = await enforceDir({ sweepPoint: false });
    const out = tmp();
    const r = await runBench(['report', dir, '--format', 'md', '--out', out]);
    expect(r.code, r.stderr).toBe(0);
    expect(readFileSync(join(out, 'report.md'), 'utf8')).toMatch(/enforce/i);
    const c = await runBench(['compare', dir, dir]);
    expect(c.stderr).not.toMatch(/no result.json/);
    expect(c.code, c.stderr).not.toBe(2);
  });
});

describe('report across machines', () => {
  it('refuses results of two machines unless --allow-mixed-machines', async () => {
    const a = resultsDir({ hostname: 'host-a', cpus: 2 });
    const b = resultsDir({ hostname: 'host-b', cpus: 16, kernel: '6.8.0' });
    const parent = tmp();
    mkdirSync(join(parent, 'x'));
    const r = await runBench(['report', a, b, '--format', 'md', '--out', parent]);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/results from 2 machines/);
    expect(r.stderr).toMatch(/host-a \(kernel 6\.1\.0-test, 2 × Synthetic CPU\)/);
    expect(r.stderr).toMatch(/host-b \(kernel 6\.8\.0, 16 × Synthetic CPU\)/);
    expect(existsSync(join(parent, 'report.md'))).toBe(false);
    const forced = await runBench(['report', a, b, '--format', 'md', '--out', parent, '--allow-mixed-machines']);
    expect(forced.code, forced.stderr).toBe(0);
    expect(forced.stderr).toMatch(/warning: mixing results from 2 machines/);
  });
});

describe('sweep --resume of a sweep that is still running', () => {
  it('is refused while its process holds the lock, and runs once the holder is gone', async () => {
    const { cmdSweep } = await import('./commands/sweep.js');
    const { SWEEP_LOCK_FILE } = await import('../sweep/manifest.js');
    const { lockContent } = await import('../identity/locks.js');
    const out = tmp();
    const calls: string[] = [];
    const runPoint: import('../sweep/sweep.js').PointRunner = async ({ point, runId, outDir, sweep }) => {
      calls.push(point.key);
      const r = syntheticResult({ cni: point.cni, policies: point.policies, repetition: sweep.repetition, sweepId: sweep.id, seed: calls.length, samples: 50, connectNs: 40_000 });
      r.runId = runId;
      writeResult(outDir, r);
      return { result: r };
    };
    // A sweep interrupted after its first point.
    const ctl = new AbortController();
    const first = bufferIo();
    const stopAfterOne: typeof runPoint = async (a) => {
      const o = await runPoint(a);
      ctl.abort();
      return o;
    };
    expect(await cmdSweep({ cni: 'none', policies: '0,10', repetitions: '2', backend: 'local', out }, first, { runPoint: stopAfterOne, signal: ctl.signal })).toBe(130);
    const id = readdirSync(out).find((d) => d.startsWith('sweep-'))!;
    const lock = join(out, id, SWEEP_LOCK_FILE);
    expect(existsSync(lock)).toBe(false); // released when it stopped
    // Another process (this test's parent stands in) is running it.
    writeFileSync(lock, lockContent(process.ppid));
    const second = bufferIo();
    expect(await cmdSweep({ resume: id, out }, second, { runPoint })).toBe(2);
    expect(second.err()).toMatch(new RegExp(`--resume: sweep ${id} is still running \\(pid ${process.ppid}\\)`));
    expect(calls).toHaveLength(1);
    // A lock left by a dead process does not block.
    writeFileSync(lock, '999999999\n');
    const third = bufferIo();
    expect(await cmdSweep({ resume: id, out }, third, { runPoint })).toBe(0);
    expect(calls).toHaveLength(4);
  });
});

describe('conflicting flags', () => {
  it('sweep --retry-failed without --resume is refused', async () => {
    const r = await runBench(['sweep', '--cni', 'none', '--retry-failed', '--dry-run', '--backend', 'local']);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/--retry-failed: only with --resume/);
  });

  it('verify --backend kind without kind: exit 2 naming bench doctor', async () => {
    vi.stubEnv('PATH', tmp());
    try {
      const r = await runBench(['verify', '--cni', 'calico', '--backend', 'kind', '--out', tmp()]);
      expect(r.code).toBe(2);
      expect(r.stderr).toMatch(/the kind backend needs .* run 'bench doctor'/);
      expect(r.stderr).not.toMatch(/invalid configuration/);
    } finally {
      vi.unstubAllEnvs();
    }
  });
});

describe('verify on nothing', () => {
  it('cases that expect no denied connection are refused: they would call any data plane "enforced"', async () => {
    const r = await runBench(['verify', '--cni', 'calico', '--case', 'selects-no-pod']);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/--case: the selected cases \(selects-no-pod\) expect no denied connection/);
    const f = join(tmp(), 'c.yaml');
    writeFileSync(f, 'name: nothing\ndescription: d\npolicies: []\n');
    const c = await runBench(['verify', '--cni', 'calico', '--cases', f]);
    expect(c.code).toBe(2);
    expect(c.stderr).toMatch(/--cases: the selected cases \(nothing\) expect no denied connection/);
    const e = join(tmp(), 'empty.yaml');
    writeFileSync(e, '');
    const empty = await runBench(['verify', '--cni', 'calico', '--cases', e]);
    expect(empty.code).toBe(2);
    expect(empty.stderr).toMatch(/holds no cases/);
  });
});

describe('stop signals', () => {
  it('SIGHUP aborts like SIGINT and SIGTERM, and never forces an exit halfway through the teardown', async () => {
    const { onInterrupt, STOP_SIGNALS } = await import('./process.js');
    expect(STOP_SIGNALS).toEqual(['SIGINT', 'SIGTERM', 'SIGHUP']);
    const exit = vi.spyOn(process, 'exit').mockImplementation((() => undefined) as never);
    const lines: string[] = [];
    try {
      const hup = onInterrupt('cleaning up', (s) => lines.push(s));
      process.emit('SIGHUP', 'SIGHUP');
      expect(hup.signal.aborted).toBe(true);
      process.emit('SIGTERM', 'SIGTERM'); // e.g. sent along with SIGHUP when a session closes
      expect(exit).not.toHaveBeenCalled();
      hup.dispose();
      const int = onInterrupt('cleaning up', (s) => lines.push(s));
      process.emit('SIGINT', 'SIGINT');
      process.emit('SIGHUP', 'SIGHUP');
      expect(exit).not.toHaveBeenCalled();
      process.emit('SIGINT', 'SIGINT'); // a second Ctrl-C still means "exit now"
      expect(exit).toHaveBeenCalledWith(130);
      int.dispose();
      const throwing = onInterrupt('cleaning up', () => {
        throw new Error('EIO: the terminal is gone');
      });
      expect(() => process.emit('SIGHUP', 'SIGHUP')).not.toThrow();
      expect(throwing.signal.aborted).toBe(true);
      throwing.dispose();
    } finally {
      exit.mockRestore();
    }
    expect(lines.join('')).toMatch(/SIGHUP: cleaning up\n/);
  });

  it("a second Ctrl-C names 'bench gc --run <id>' of its own run, never plain 'bench gc' (which judges everyone's runs)", async () => {
    const { onInterrupt } = await import('./process.js');
    const exit = vi.spyOn(process, 'exit').mockImplementation((() => undefined) as never);
    let text = '';
    const i = onInterrupt('cleaning up', (s) => (text += s), () => ['ab12c']);
    try {
      process.emit('SIGINT', 'SIGINT');
      process.emit('SIGINT', 'SIGINT');
    } finally {
      i.dispose();
      exit.mockRestore();
    }
    expect(text).toMatch(/SIGINT again: exiting without finishing cleanup; remove its leftovers with 'bench gc --run ab12c'\n/);
    expect(text).not.toMatch(/'bench gc'/);
  });
});
