import { afterEach, describe, expect, it, vi } from 'vitest';
import { DryRunRunner, FakeRunner, type CommandResult, type CommandSpec, type Runner } from '../../../exec/runner.js';
import { LocalDataPlane } from '../plane.js';
import { planTopology } from '../topology.js';
import { expectedWriteMs, runWrite, writeTimeoutMs } from './agent-write.js';

describe('writeTimeoutMs: sized to the work and the machine, not a blanket 120 s', () => {
  it('grows with the names the kernel compares and the interval elements it inserts', () => {
    const small = { lines: 100, nameComparisons: 1e4 };
    // 50000 policies, nft: every line of the set transaction looks its set up among 50001 sets
    const big = { lines: 150_000, nameComparisons: 150_000 * 50_001, intervalElements: 50_001 };
    expect(writeTimeoutMs(small, 1)).toBe(120_000);
    expect(writeTimeoutMs(big, 1)).toBeGreaterThan(10 * 60_000);
    expect(writeTimeoutMs(big, 1)).toBe(Math.ceil(10 * expectedWriteMs(big)));
    expect(expectedWriteMs({ ...big, intervalElements: 0 })).toBeLessThan(expectedWriteMs(big));
  });

  it('gives a busy machine proportionally longer, an idle one no less than the work needs', () => {
    const w = { lines: 50_000, nameComparisons: 1e10 };
    expect(writeTimeoutMs(w, 11)).toBe(Math.ceil(11 * writeTimeoutMs(w, 1)));
    expect(writeTimeoutMs(w, 0.1)).toBe(writeTimeoutMs(w, 1));
  });
});

describe('runWrite: progress while a write runs for more than a few seconds', () => {
  afterEach(() => vi.useRealTimers());

  /** A runner whose command ends when the test says so. */
  function slowRunner(): { runner: Runner; finish: (r?: Partial<CommandResult>) => void } {
    let finish: (r?: Partial<CommandResult>) => void = () => undefined;
    const inner = new FakeRunner();
    const runner: Runner = {
      dryRun: false,
      log: inner.log,
      run: (spec: CommandSpec) =>
        new Promise((resolve) => {
          finish = (r = {}) => resolve({ argv: spec.argv, exitCode: 0, stdout: '', stderr: '', durationMs: 0, timedOut: false, ...r });
        }),
    };
    return { runner, finish: (r) => finish(r) };
  }

  it('says nothing for a short write; for a long one, the time so far every 15 s after the first 5 (every minute after two), then its duration', async () => {
    vi.useFakeTimers();
    const steps: string[] = [];
    const progress = { step: (m: string) => steps.push(m) };
    const quick = slowRunner();
    const q = runWrite(quick.runner, { argv: ['nft', '-f', '-'], timeoutMs: 300_000 }, progress, 'sets on node-1');
    await vi.advanceTimersByTimeAsync(4_000);
    quick.finish();
    await q;
    expect(steps).toEqual([]);

    const slow = slowRunner();
    const p = runWrite(slow.runner, { argv: ['nft', '-f', '-'], timeoutMs: 300_000 }, progress, 'table on node-1');
    await vi.advanceTimersByTimeAsync(36_000);
    expect(steps).toEqual(['table on node-1: running for 5.0 s (timeout 300 s)', 'table on node-1: running for 20 s (timeout 300 s)', 'table on node-1: running for 35 s (timeout 300 s)']);
    await vi.advanceTimersByTimeAsync(250_000 - 36_000);
    slow.finish();
    await p;
    // 5, 20, … 125 s every 15 s, then 185 and 245 s a minute apart
    expect(steps.slice(8)).toEqual(['table on node-1: running for 125 s (timeout 300 s)', 'table on node-1: running for 185 s (timeout 300 s)', 'table on node-1: running for 245 s (timeout 300 s)', 'table on node-1: done in 250 s']);
  });

  it('says a long write failed, and reports nothing in a dry run', async () => {
    vi.useFakeTimers();
    const steps: string[] = [];
    const slow = slowRunner();
    const p = runWrite(slow.runner, { argv: ['ipset', 'restore'], allowFailure: true }, { step: (m) => steps.push(m) }, 'ipsets');
    await vi.advanceTimersByTimeAsync(6_000);
    slow.finish({ exitCode: 1 });
    await p;
    expect(steps.at(-1)).toBe('ipsets: failed after 6.0 s');
    const dry = new DryRunRunner();
    await runWrite(dry, { argv: ['ipset', 'restore'] }, { step: (m) => steps.push(m) }, 'dry');
    expect(dry.log).toHaveLength(1);
    expect(steps.some((s) => s.startsWith('dry'))).toBe(false);
  });
});

describe('the progress a model writes to', () => {
  it('is the caller’s: the data plane hands it to install and update', async () => {
    const seen: unknown[] = [];
    const progress = { step: () => undefined };
    const model = {
      cni: 'calico' as const,
      name: 'stub',
      description: 'stub',
      enforcesPolicy: true,
      attachment: 'routed' as const,
      hostIfPrefix: 'cali' as const,
      install: async (ctx: { progress?: unknown }) => (seen.push(ctx.progress), {}),
      update: async (ctx: { progress?: unknown }) => (seen.push(ctx.progress), { agentMs: 0, compileMs: 0, applyMs: 0, changed: {}, state: {} }),
    };
    const runner = new FakeRunner();
    const topology = planTopology({ runId: 'k3f9a', attachment: 'routed', placement: 'cross-node', hostIfPrefix: 'cali' });
    const plane = new LocalDataPlane({ model, topology, runner, cleanupRunner: runner, progress });
    await plane.install([], { namespaces: [], pods: [] });
    await plane.update([], { namespaces: [], pods: [] });
    expect(seen).toEqual([progress, progress]);
  });
});
