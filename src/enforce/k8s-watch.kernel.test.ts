// The real cb-probe watch --control-stdin through the real stream starter, on loopback: the marks come back
// stamped on this kernel's CLOCK_MONOTONIC, so the kind rule (one kernel → every mark inside its write..echo
// window) must hold here, and "stop" must end the watch.
// On the loopback of a namespace of its own: the host's loopback is shared with every other process on the
// machine, where a port picked at random could be taken (it was 20000 + random(20000), a third of it inside the
// ephemeral range).
import { execa } from 'execa';
import { afterAll, beforeAll, describe, expect } from 'vitest';
import { PROBE_BIN, startServer, watchArgv, type RunningServer } from '../probe/native.js';
import { spawnStreamer, startK8sWatch } from '../backends/k8s/watch.js';
import { itKernel } from '../backends/local/test-support/kernel.js';
import { newRunId } from '../identity/run-id.js';

const PORT = 8080;
const NS = `cb-${newRunId()}-kw`;
let server: RunningServer;

beforeAll(async () => {
  await execa('ip', ['netns', 'add', NS]);
  await execa('ip', ['-n', NS, 'link', 'set', 'lo', 'up']);
  server = await startServer({ argv: [PROBE_BIN, 'server', '--port', String(PORT), '--bind', '127.0.0.1'], netns: NS, purpose: 'loopback echo server' });
});
afterAll(async () => {
  await server?.stop();
  await execa('ip', ['netns', 'delete', NS], { reject: false });
});

describe('cb-probe watch --control-stdin (loopback)', () => {
  itKernel('echoes stdin marks on this clock (shared, verified), stops on "stop", reports every probe', async () => {
    const before = process.hrtime.bigint();
    const argv = watchArgv(PROBE_BIN, { target: '127.0.0.1', port: PORT, intervalUs: 1000, timeoutMs: 20, maxMs: 5000, controlStdin: true });
    const w = await startK8sWatch(spawnStreamer, { argv, netns: NS, purpose: 'loopback watch' }, { sharedClock: true, timeoutMs: 15_000, calibrationMarks: 5 });
    expect(w.baseNs).toBeGreaterThan(before);
    // 300 ms of watching at 1 ms: more than 40 probes even at a 7 ms cadence (the watch is not realtime here; a
    // loaded 2-CPU machine delays its wake-ups, and 80 ms left it a 2 ms margin).
    await new Promise((r) => setTimeout(r, 200));
    w.mark();
    await new Promise((r) => setTimeout(r, 100));
    const out = await w.stop();
    const after = process.hrtime.bigint();
    expect(out.clock).toMatchObject({ method: 'shared', offsetNs: 0, boundNs: 0, samples: 6 });
    expect(out.marksNs).toHaveLength(6);
    expect(out.result.length).toBeGreaterThan(40);
    expect(out.result.every((r) => r === 'open')).toBe(true);
    // Stopped by "stop", well before --max-ms (5000): the last probe started within 2 s of the first, on the watch's
    // own clock (the harness's process start-up, slow under load, is not part of it).
    expect(out.startNs.at(-1)! / 1e6).toBeLessThan(2_000);
    expect(out.baseNs + BigInt(out.startNs.at(-1)!)).toBeLessThan(after);
  });
});
