import { describe, expect, it } from 'vitest';
import { DryRunRunner, FakeRunner, type CommandResult } from '../exec/runner.js';
import {
  CONNECT_LOOP_BIN,
  PROBE_BIN,
  NativeProbeError,
  parseCheckResult,
  parseClientOutput,
  planCheck,
  planClient,
  planConnectLoop,
  planServer,
  runClient,
  planBpfProgs,
  parseBpfProgs,
  withReferenceCgroupFd,
} from './native.js';

const good = {
  mode: 'connect',
  concurrency: 2,
  samples_ns: [15000, 16500, 14900],
  errors: { ETIMEDOUT: 2, ECONNREFUSED: 1 },
  wall_ns: 123456,
  cpu_user_ns: 1000,
  cpu_sys_ns: 40000,
  started_ns: 5_000_000_000,
  ended_ns: 5_000_123_456,
};

const settings = { mode: 'crr', samples: 2000, warmup: 100, concurrency: 4, timeoutMs: 1000 } as const;

describe('binary paths', () => {
  it('resolve to dist/native under the package root', () => {
    expect(PROBE_BIN).toMatch(/\/dist\/native\/cb-probe$/);
    expect(CONNECT_LOOP_BIN).toMatch(/\/dist\/native\/connect-loop$/);
    expect(PROBE_BIN).not.toMatch(/\/src\//);
  });
});

describe('parseClientOutput', () => {
  it('maps a good object to camelCase, keeping sample order and the errors map', () => {
    const o = parseClientOutput(JSON.stringify(good) + '\n');
    expect(o).toEqual({
      mode: 'connect',
      samplesNs: [15000, 16500, 14900],
      errors: { ETIMEDOUT: 2, ECONNREFUSED: 1 },
      wallNs: 123456,
      cpuUserNs: 1000,
      cpuSysNs: 40000,
      startedNs: good.started_ns,
      endedNs: good.ended_ns,
    });
  });

  it('accepts a run where every sample failed', () => {
    const o = parseClientOutput(JSON.stringify({ ...good, samples_ns: [], errors: { ECONNREFUSED: 5 } }));
    expect(o.samplesNs).toEqual([]);
    expect(o.errors).toEqual({ ECONNREFUSED: 5 });
  });

  it('reports truncated JSON as such', () => {
    const text = JSON.stringify(good);
    expect(() => parseClientOutput(text.slice(0, text.length - 20))).toThrow(/not valid JSON \(truncated\?\)/);
  });

  it('reports empty output', () => {
    expect(() => parseClientOutput('  \n')).toThrow(/printed nothing/);
  });

  it('names a missing field', () => {
    const { wall_ns: _drop, ...rest } = good;
    expect(() => parseClientOutput(JSON.stringify(rest))).toThrow(/wall_ns/);
  });

  it('names a bad sample by index', () => {
    expect(() => parseClientOutput(JSON.stringify({ ...good, samples_ns: [1, 2, -3] }))).toThrow(/samples_ns\.2/);
    expect(() => parseClientOutput(JSON.stringify({ ...good, samples_ns: [1, 'x'] }))).toThrow(/samples_ns\.1/);
  });

  it('rejects a malformed errors map', () => {
    expect(() => parseClientOutput(JSON.stringify({ ...good, errors: { ETIMEDOUT: 'two' } }))).toThrow(/errors\.ETIMEDOUT/);
    expect(() => parseClientOutput(JSON.stringify({ ...good, errors: { 'not an errno': 1 } }))).toThrow(/errors\.not an errno/);
    expect(() => parseClientOutput(JSON.stringify({ ...good, errors: { ETIMEDOUT: 0 } }))).toThrow(/errors\.ETIMEDOUT/);
  });

  it('rejects an unknown mode', () => {
    expect(() => parseClientOutput(JSON.stringify({ ...good, mode: 'udp' }))).toThrow(/mode/);
  });

  it('throws NativeProbeError', () => {
    expect(() => parseClientOutput('{')).toThrow(NativeProbeError);
  });
});

describe('planServer', () => {
  it('gives one --port per port, then --udp', () => {
    expect(planServer({ netns: 'cb-x-b', ports: [8080, 8081], udp: true })).toEqual({
      argv: [PROBE_BIN, 'server', '--port', '8080', '--port', '8081', '--udp'],
      netns: 'cb-x-b',
      purpose: 'echo server on ports 8080,8081',
    });
  });

  it('adds --bind and leaves out --udp unless asked', () => {
    expect(planServer({ netns: 'n', ports: [80], bind: '10.0.0.2' }).argv).toEqual([PROBE_BIN, 'server', '--port', '80', '--bind', '10.0.0.2']);
  });

  it('pins with one --cpu per CPU', () => {
    expect(planServer({ netns: 'n', ports: [80], cpus: [1, 3] }).argv).toEqual([PROBE_BIN, 'server', '--port', '80', '--cpu', '1', '--cpu', '3']);
    expect(() => planServer({ netns: 'n', ports: [80], cpus: [] })).toThrow(/cpus/);
  });

  it('rejects no ports and bad ports', () => {
    expect(() => planServer({ netns: 'n', ports: [] })).toThrow(/ports/);
    expect(() => planServer({ netns: 'n', ports: [70000] })).toThrow(/ports\.0|ports: 0/);
    expect(() => planServer({ netns: 'n', ports: [80], bind: 'eth0' })).toThrow(/bind/);
  });
});

describe('planClient', () => {
  it('gives the exact argv, namespace and a run-time bound', () => {
    const spec = planClient({ netns: 'cb-x-a', target: '10.99.0.2', port: 8080, ...settings });
    expect(spec.argv).toEqual([
      PROBE_BIN, 'client', '--target', '10.99.0.2', '--port', '8080', '--mode', 'crr',
      '--samples', '2000', '--warmup', '100', '--concurrency', '4', '--timeout-ms', '1000',
    ]);
    expect(spec.netns).toBe('cb-x-a');
    // 30 s base + 100 ms for each of the 525 samples per worker.
    expect(spec.timeoutMs).toBe(30_000 + 525 * 100);
    expect(spec.allowFailure).toBeUndefined();
  });

  it('appends the CPU pin last', () => {
    const spec = planClient({ netns: 'cb-x-a', target: '10.99.0.2', port: 8080, ...settings, cpus: [0] });
    expect(spec.argv.slice(-2)).toEqual(['--cpu', '0']);
    expect(() => planClient({ netns: 'cb-x-a', target: '10.99.0.2', port: 8080, ...settings, cpus: [-1] })).toThrow(/cpus/);
  });

  it('validates every setting with a message naming it', () => {
    const base = { netns: 'n', target: '10.0.0.1', port: 80, ...settings };
    expect(() => planClient({ ...base, samples: 0 })).toThrow(/samples/);
    expect(() => planClient({ ...base, concurrency: 1.5 })).toThrow(/concurrency/);
    expect(() => planClient({ ...base, warmup: -1 })).toThrow(/warmup/);
    expect(() => planClient({ ...base, mode: 'stream' as 'rr' })).toThrow(/mode/);
    expect(() => planClient({ ...base, target: 'server-0' })).toThrow(/target/);
    expect(() => planClient({ ...base, port: 0 })).toThrow(/port/);
  });
});

describe('planCheck and parseCheckResult', () => {
  it('plans a check whose failure is a verdict, not an error', () => {
    expect(planCheck({ netns: 'a', target: '10.0.0.2', port: 53, udp: true, timeoutMs: 500 })).toEqual({
      argv: [PROBE_BIN, 'check', '--target', '10.0.0.2', '--port', '53', '--udp', '--timeout-ms', '500'],
      netns: 'a',
      allowFailure: true,
      timeoutMs: 10_500,
      purpose: 'check udp 10.0.0.2:53',
    });
  });

  const result = (r: Partial<CommandResult>): CommandResult => ({
    argv: ['cb-probe', 'check'], exitCode: 0, stdout: '', stderr: '', durationMs: 1, timedOut: false, ...r,
  });

  it('reads open, refused and timeout', () => {
    expect(parseCheckResult(result({ stdout: 'open\n' }))).toEqual({ open: true, reason: 'open' });
    expect(parseCheckResult(result({ exitCode: 1, stdout: 'refused ECONNREFUSED\n' }))).toEqual({ open: false, reason: 'refused ECONNREFUSED' });
    expect(parseCheckResult(result({ exitCode: 1, stdout: 'timeout ETIMEDOUT\n' })).open).toBe(false);
  });

  it('throws on a usage error or a hung check instead of calling it blocked', () => {
    expect(() => parseCheckResult(result({ exitCode: 2, stderr: 'cb-probe: check: --port is required' }))).toThrow(/--port is required/);
    expect(() => parseCheckResult(result({ exitCode: 1, timedOut: true, stdout: '' }))).toThrow(/timed out/);
  });
});

describe('planConnectLoop', () => {
  it('gives IP PORT N', () => {
    expect(planConnectLoop({ netns: 'a', target: '10.99.0.2', port: 80, count: 20000 }).argv).toEqual([CONNECT_LOOP_BIN, '10.99.0.2', '80', '20000']);
    expect(() => planConnectLoop({ netns: 'a', target: 'fd00::1', port: 80, count: 1 })).toThrow(/IPv4/);
    expect(planConnectLoop({ netns: 'a', target: '10.99.0.2', port: 80, count: 5, cpus: [0, 2] }).argv).toEqual(['taskset', '-c', '0,2', CONNECT_LOOP_BIN, '10.99.0.2', '80', '5']);
  });
});

describe('runClient', () => {
  const spec = planClient({ netns: 'cb-x-a', target: '10.99.0.2', port: 8080, ...settings });

  it('runs the spec inside the namespace and parses stdout', async () => {
    const runner = new FakeRunner(() => ({ stdout: JSON.stringify(good) }));
    const out = await runClient(runner, spec);
    expect(out.samplesNs).toHaveLength(3);
    expect(runner.log[0]?.argv.slice(0, 5)).toEqual(['ip', 'netns', 'exec', 'cb-x-a', PROBE_BIN]);
  });

  it('adds the command and stderr to a parse failure', async () => {
    const runner = new FakeRunner(() => ({ stdout: '{"mode":"crr","samples_ns":[1,2', stderr: 'cb-probe: malloc: Cannot allocate memory' }));
    await expect(runClient(runner, spec)).rejects.toThrow(/truncated[\s\S]*command: ip netns exec cb-x-a[\s\S]*Cannot allocate memory/);
  });

  it('measures nothing in a dry run and says so with an empty result', async () => {
    const runner = new DryRunRunner();
    const out = await runClient(runner, spec);
    expect(out).toMatchObject({ mode: 'crr', samplesNs: [], errors: {}, wallNs: 0 });
    expect(runner.log).toHaveLength(1);
  });
});

describe('the client\'s accounting and reference (issue 20)', () => {
  it('passes the accounted pids, the BPF programs and the reference, and bounds the run time for the reference too', () => {
    const plain = planClient({ netns: 'cb-x-client', target: '10.244.1.2', port: 8080, ...settings });
    const spec = planClient({ netns: 'cb-x-client', target: '10.244.1.2', port: 8080, ...settings, cpus: [1], accountPids: [4242, 24], bpfProgIds: [7, 9], reference: { samples: 100, warmup: 10, batchServer: true } });
    expect(spec.argv.slice(plain.argv.length)).toEqual(['--cpu', '1', '--account', '4242', '--account', '24', '--bpf-prog', '7', '--bpf-prog', '9', '--reference', '100', '--reference-warmup', '10', '--reference-batch']);
    expect(spec.timeoutMs).toBeGreaterThan(plain.timeoutMs!);
    expect(() => planClient({ netns: 'n', target: '10.0.0.1', port: 1, ...settings, accountPids: [0] })).toThrow(/probe accounting: accountPids.0/);
  });

  it('parses the CPU clocks, BPF run time and the reference; an older binary\'s output still parses', () => {
    const o = parseClientOutput(JSON.stringify({ ...good, cpu_ns: 41000, cpu_clock_res_ns: 1, tick_ns: 4000000, accounted: [{ pid: 4242, ns: 30000 }, { pid: 24, ns: null }], bpf: { programs: 2, run_ns: 5000, run_cnt: 12 }, reference: { target: 'loopback', samples_ns: [14000, 15000], errors: {}, wall_ns: 30000 } }));
    expect(o).toMatchObject({ cpuNs: 41000, tickNs: 4000000, accounted: [{ pid: 4242, ns: 30000 }, { pid: 24, ns: null }], bpf: { programs: 2, runNs: 5000, runCnt: 12 }, reference: { target: 'loopback', samplesNs: [14000, 15000], errors: {}, wallNs: 30000 } });
    expect(parseClientOutput(JSON.stringify({ ...good, cpu_ns: 1, bpf: { programs: 2, error: 'BPF_ENABLE_STATS: Operation not permitted' } })).bpf).toEqual({ programs: 2, error: 'BPF_ENABLE_STATS: Operation not permitted' });
    expect(parseClientOutput(JSON.stringify(good)).cpuNs).toBeUndefined();
    // The run's BPF program runs over the reference (issue 24), when the binary counted them.
    expect(parseClientOutput(JSON.stringify({ ...good, reference: { target: 'loopback', moved: true, bpf_run_cnt: 2, samples_ns: [1], errors: {}, wall_ns: 1 } })).reference).toEqual({ target: 'loopback', samplesNs: [1], errors: {}, wallNs: 1, bpfRunCnt: 2 });
  });

  it('hands the reference a cgroup descriptor only when the client has a reference', () => {
    const plain = planClient({ netns: 'cb-x-client', target: '10.244.1.2', port: 8080, ...settings });
    expect(withReferenceCgroupFd(plain, 9)).toBe(plain);
    const ref = planClient({ netns: 'cb-x-client', target: '10.244.1.2', port: 8080, ...settings, reference: { samples: 10, warmup: 0, batchServer: false } });
    expect(withReferenceCgroupFd(ref, 9).argv.slice(-2)).toEqual(['--reference-cgroup-fd', '9']);
  });

  it('lists a run\'s BPF programs from its own pin directory only', () => {
    expect(planBpfProgs('/sys/fs/bpf/cb-abc12').argv).toEqual([PROBE_BIN, 'bpf-progs', '--pin-dir', '/sys/fs/bpf/cb-abc12']);
    expect(planBpfProgs('/sys/fs/bpf/cb-abc12').netns).toBeUndefined();
    expect(() => planBpfProgs('/etc')).toThrow(/under \/sys\/fs\/bpf/);
    expect(parseBpfProgs('{"prog_ids":[3,4]}\n')).toEqual([3, 4]);
  });
});
