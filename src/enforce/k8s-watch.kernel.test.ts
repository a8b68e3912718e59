// The real cb-probe watch --control-stdin through the real stream starter, on loopback: the marks come back
// stamped on this kernel's CLOCK_MONOTONIC, so the kind rule (one kernel → every mark inside its write..echo
// window) must hold here, and "stop" must end the watch.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { PROBE_BIN, startServer, watchArgv, type RunningServer } from '../probe/native.js';
import { spawnStreamer, startK8sWatch } from '../backends/k8s/watch.js';

const PORT = 20_000 + Math.floor(Math.random() * 20_000);
let server: RunningServer;

beforeAll(async () => {
  server = await startServer({ argv: [PROBE_BIN, 'server', '--port', String(PORT), '--bind', '127.0.0.1'], purpose: 'loopback echo server' });
});
afterAll(async () => {
  await server?.stop();
});

describe('cb-probe watch --control-stdin (loopback)', () => {
  it('echoes stdin marks on this clock (shared, verified), stops on "stop", reports every probe', async () => {
    const before = process.hrtime.bigint();
    const argv = watchArgv(PROBE_BIN, { target: '127.0.0.1', port: PORT, intervalUs: 1000, timeoutMs: 20, maxMs: 5000, controlStdin: true });
    const w = await startK8sWatch(spawnStreamer, { argv, purpose: 'loopback watch' }, { sharedClock: true, timeoutMs: 15_000, calibrationMarks: 5 });
    expect(w.baseNs).toBeGreaterThan(before);
    await new Promise((r) => setTimeout(r, 50));
    w.mark();
    await new Promise((r) => setTimeout(r, 30));
    const out = await w.stop();
    const after = process.hrtime.bigint();
    expect(out.clock).toMatchObject({ method: 'shared', offsetNs: 0, boundNs: 0, samples: 6 });
    expect(out.marksNs).toHaveLength(6);
    expect(out.result.length).toBeGreaterThan(40);
    expect(out.result.every((r) => r === 'open')).toBe(true);
    // Stopped by "stop", well before --max-ms.
    expect(Number(after - before) / 1e6).toBeLessThan(2_000);
    expect(out.baseNs + BigInt(out.startNs.at(-1)!)).toBeLessThan(after);
  });
});
