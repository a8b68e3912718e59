// Real packets: two namespaces joined by a veth, the echo server in one, the client in the other.
import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ExecRunner, type CommandSpec } from '../exec/runner.js';
import {
  assertProbeAvailable,
  parseCheckResult,
  planCheck,
  planClient,
  planConnectLoop,
  planServer,
  runClient,
  startServer,
  type ProbeMode,
  type RunningServer,
} from './native.js';

const canRun = process.getuid?.() === 0;
const itKernel = canRun || process.env.CI === 'true' ? it : it.skip;

const rid = randomBytes(4).toString('hex').slice(0, 5);
const nsA = `cb-${rid}-a`;
const nsB = `cb-${rid}-b`;
const SERVER_IP = '10.99.0.2';
const PORT = 7001;
const UDP_PORT = 7002;
const CLOSED_PORT = 7009;
// On the subnet, but nobody answers ARP for it: a silent drop, as a policy DROP looks to the client.
const SILENT_IP = '10.99.0.3';

const runner = new ExecRunner();
let server: RunningServer | undefined;

const p50 = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;

beforeAll(async () => {
  if (!canRun) return;
  assertProbeAvailable();
  const setup: CommandSpec[] = [
    { argv: ['ip', 'netns', 'add', nsA] },
    { argv: ['ip', 'netns', 'add', nsB] },
    { argv: ['ip', '-n', nsA, 'link', 'add', 'veth-a', 'type', 'veth', 'peer', 'name', 'veth-b', 'netns', nsB] },
    { argv: ['ip', '-n', nsA, 'addr', 'add', '10.99.0.1/24', 'dev', 'veth-a'] },
    { argv: ['ip', '-n', nsB, 'addr', 'add', `${SERVER_IP}/24`, 'dev', 'veth-b'] },
    ...[nsA, nsB].flatMap((ns) => [
      { argv: ['ip', '-n', ns, 'link', 'set', 'lo', 'up'] },
      { argv: ['ip', '-n', ns, 'link', 'set', ns === nsA ? 'veth-a' : 'veth-b', 'up'] },
    ]),
    // Without these, back-to-back runs of 20000 connections run out of ports to TIME_WAIT (EADDRNOTAVAIL).
    { argv: ['sysctl', '-w', 'net.ipv4.tcp_tw_reuse=1'], netns: nsA },
    { argv: ['sysctl', '-w', 'net.ipv4.ip_local_port_range=1024 65535'], netns: nsA },
    // ICMP port-unreachable is rate limited per peer (burst of 6); parallel UDP checks to a closed port need them all.
    { argv: ['sysctl', '-w', 'net.ipv4.icmp_ratelimit=0'], netns: nsB },
  ];
  for (const spec of setup) await runner.run({ ...spec, purpose: 'probe kernel test topology' });
  server = await startServer(planServer({ netns: nsB, ports: [PORT, UDP_PORT], udp: true }));
});

afterAll(async () => {
  if (!canRun) return;
  await server?.stop();
  for (const ns of [nsA, nsB]) await runner.run({ argv: ['ip', 'netns', 'del', ns], allowFailure: true });
});

describe('cb-probe across a veth between two namespaces', () => {
  for (const mode of ['connect', 'crr', 'rr'] as ProbeMode[]) {
    itKernel(`${mode}: 2000 samples, all positive, no errors`, async () => {
      const out = await runClient(
        runner,
        planClient({ netns: nsA, target: SERVER_IP, port: PORT, mode, samples: 2000, warmup: 200, concurrency: 2, timeoutMs: 1000 }),
      );
      expect(out.mode).toBe(mode);
      expect(out.errors).toEqual({});
      expect(out.samplesNs).toHaveLength(2000);
      expect(Math.min(...out.samplesNs)).toBeGreaterThan(0);
      // Each sample lies inside the measured window, which excludes the warmup.
      expect(Math.max(...out.samplesNs)).toBeLessThanOrEqual(out.wallNs);
      expect(out.endedNs - out.startedNs).toBe(out.wallNs);
      expect(out.cpuUserNs + out.cpuSysNs).toBeGreaterThan(0);
    });
  }

  itKernel('a closed port gives ECONNREFUSED errors, not samples', async () => {
    const out = await runClient(
      runner,
      planClient({ netns: nsA, target: SERVER_IP, port: CLOSED_PORT, mode: 'connect', samples: 50, warmup: 5, concurrency: 2, timeoutMs: 1000 }),
    );
    expect(out.samplesNs).toEqual([]);
    expect(out.errors).toEqual({ ECONNREFUSED: 50 });
  });

  itKernel('a silent drop gives ETIMEDOUT errors within the timeout', async () => {
    const out = await runClient(
      runner,
      planClient({ netns: nsA, target: SILENT_IP, port: PORT, mode: 'crr', samples: 4, warmup: 0, concurrency: 4, timeoutMs: 200 }),
    );
    expect(out.samplesNs).toEqual([]);
    expect(out.errors).toEqual({ ETIMEDOUT: 4 });
    expect(out.wallNs).toBeLessThan(2e9);
  });

  itKernel('check: open, refused and timeout verdicts, many in parallel', async () => {
    const cases = [
      { port: PORT, udp: false, target: SERVER_IP, want: /^open$/ },
      { port: UDP_PORT, udp: true, target: SERVER_IP, want: /^open$/ },
      { port: CLOSED_PORT, udp: false, target: SERVER_IP, want: /^refused ECONNREFUSED$/ },
      { port: CLOSED_PORT, udp: true, target: SERVER_IP, want: /^refused ECONNREFUSED$/ },
      { port: PORT, udp: false, target: SILENT_IP, want: /^timeout ETIMEDOUT$/ },
    ];
    const runs = cases.flatMap((c) => Array.from({ length: 8 }, () => c));
    const results = await Promise.all(
      runs.map(async (c) => {
        const r = await runner.run(planCheck({ netns: nsA, target: c.target, port: c.port, udp: c.udp, timeoutMs: 300 }));
        return { c, exitCode: r.exitCode, verdict: parseCheckResult(r) };
      }),
    );
    for (const { c, exitCode, verdict } of results) {
      expect(verdict.reason, `${c.udp ? 'udp' : 'tcp'} ${c.target}:${c.port}`).toMatch(c.want);
      expect(exitCode).toBe(verdict.open ? 0 : 1);
    }
  });

  itKernel('a server that cannot bind fails before ready, with the reason', async () => {
    await expect(startServer(planServer({ netns: nsB, ports: [PORT] }), { readyTimeoutMs: 5000 })).rejects.toThrow(
      /exited with code 1 before it was ready[\s\S]*bind 0\.0\.0\.0:7001.*Address already in use/,
    );
  });

  itKernel('stop() ends a server with exit code 0', async () => {
    const s = await startServer(planServer({ netns: nsB, ports: [PORT + 100] }));
    await s.stop();
    expect(await s.exited).toMatchObject({ exitCode: 0 });
  });

  // The harness floor: cb-probe's connect p50 against the bare C loop, interleaved so drift hits both alike, each
  // taken at its lowest of the reps: load only ever slows a block, and one loaded rep read 1.733 (29824 against
  // 17206 ns) where the others read 1.103 and 0.967 (2026-12-07, beside a kernel run); two such reps of three
  // failed the median of the ratios.
  itKernel('connect p50 is within 1.5x of a minimal connect() loop', async () => {
    const n = Number(process.env.CB_FLOOR_SAMPLES ?? 5000);
    const probes: number[] = [];
    const loops: number[] = [];
    for (let rep = 0; rep < 3; rep++) {
      const probe = await runClient(
        runner,
        planClient({ netns: nsA, target: SERVER_IP, port: PORT, mode: 'connect', samples: n, warmup: 500, concurrency: 1, timeoutMs: 1000 }),
      );
      expect(probe.errors).toEqual({});
      const loop = await runner.run(planConnectLoop({ netns: nsA, target: SERVER_IP, port: PORT, count: n }));
      const loopMedian = Number(loop.stdout.trim());
      expect(loopMedian).toBeGreaterThan(0);
      const probeP50 = p50(probe.samplesNs);
      probes.push(probeP50);
      loops.push(loopMedian);
      console.log(`floor rep ${rep + 1}: cb-probe connect p50 ${probeP50} ns, connect-loop median ${loopMedian} ns, ratio ${(probeP50 / loopMedian).toFixed(3)}`);
    }
    expect(Math.min(...probes) / Math.min(...loops)).toBeLessThanOrEqual(1.5);
  });
});
