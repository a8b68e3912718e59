import { describe, expect, it } from 'vitest';
import { cpuResolutionUsPerOp, cpuSummaryLine, cpuText } from './cpu.js';

const meta = (rounds: number | undefined, cpus = 2) => ({ meta: { probe: { tool: 'cb-probe', samples: 1000, warmup: 100, concurrency: 1, timeoutMs: 1000, rounds }, machine: { hostname: 'h', kernel: 'k', cpuModel: 'c', cpus, memoryBytes: 1, loadavg: [0, 0, 0] as [number, number, number] } } }) as never;
const legacy = (total: number) => ({ totalUsPerOp: total, probeClientUsPerOp: 5, probeServerUsPerOp: 5, dataPlaneUsPerOp: total - 10, softirqUsPerOp: 1 });
const samples = (n: number) => Array.from({ length: n }, () => 10_000);

describe('CPU figures and their resolution', () => {
  it("older files (/proc/stat): the issue's \"115 µs per connect\" at 1000 samples in 10 rounds on 2 CPUs is below its 400 µs resolution", () => {
    const m = { samplesNs: samples(1000), errors: {}, cpu: legacy(115) };
    expect(cpuResolutionUsPerOp(meta(10), m)).toBeCloseTo(400);
    expect(cpuText(115, cpuResolutionUsPerOp(meta(10), m))).toBe('below resolution');
    expect(cpuSummaryLine(meta(10), m)).toBe('below resolution (±400)');
    // 80 µs at 10000 samples in 10 rounds: ±40, still coarser than 10%.
    expect(cpuText(80, cpuResolutionUsPerOp(meta(10), { samplesNs: samples(10_000), errors: {}, cpu: legacy(80) }))).toBe('below resolution');
  });

  it('task clocks: the recorded resolution decides, and parts below it are bounded, not printed', () => {
    const cpu = { totalUsPerOp: 40, probeClientUsPerOp: 22, probeServerUsPerOp: 17.5, dataPlaneUsPerOp: null, softirqUsPerOp: 0.5, source: 'task-clock' as const, resolutionUsPerOp: 0.2 };
    expect(cpuSummaryLine(meta(10), { samplesNs: samples(1000), errors: {}, cpu })).toBe('40.0 = 22.0 + 17.5 + <2 (±0.20)');
    expect(cpuText(1.5, 0.2)).toBe('below resolution');
    expect(cpuText(1.5, 0.2, { compact: true })).toBe('<2');
    expect(cpuText(150, 21, { compact: true })).toBe('<210');
    expect(cpuText(2.5, 0.2)).toBe('2.5');
  });
});
