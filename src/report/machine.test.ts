// The machine's reference and the CPU figures in bench compare and bench report (issue 20), on synthetic sweeps
// with a known truth.
import { describe, expect, it } from 'vitest';
import { analyze } from './analyze.js';
import { collectResults } from './collect.js';
import { renderMarkdown } from './markdown.js';
import { writeSyntheticSweep, type SyntheticCurve, type SyntheticRun } from './test-support/fixtures.js';
import { cmdCompare } from '../cli/commands/compare.js';
import { bufferIo } from '../cli/test-support/cli.js';
import { tempDir } from '../test-support/temp.js';

const CURVES: SyntheticCurve[] = [
  { cni: 'none', baseNs: 40_000, slopeNs: 0 },
  { cni: 'calico', baseNs: 38_000, slopeNs: 700, cpuSlopeUs: 0.7 },
];

function sweep(o: { seed: number; scale?: number; reference?: SyntheticRun['reference']; legacyCpu?: boolean; policies?: number[]; repetitions?: number }): string {
  const dir = tempDir('cb-machine-');
  writeSyntheticSweep(dir, { curves: CURVES, policies: o.policies ?? [0, 1000], repetitions: o.repetitions ?? 4, samples: 300, seed: o.seed, scale: o.scale, reference: o.reference, legacyCpu: o.legacyCpu });
  return dir;
}

describe('bench compare with the machine reference', () => {
  const baseline = sweep({ seed: 1 });

  it('a machine 30% slower on the current side (reference and metrics alike): "machine slowed", exit 3, with the figures', async () => {
    const current = sweep({ seed: 5000, scale: 1.3, reference: { scale: 1.3 } });
    const io = bufferIo();
    expect(await cmdCompare(baseline, current, {}, io)).toBe(3);
    expect(io.out()).toContain('## cni-bench compare: the machine slowed: not judged');
    expect(io.out()).toMatch(/\| calico \| 1000 \| connect p50 \| [\d.]+ \| [\d.]+ \| \+\d+\.\d% \| \+\d+\.\d% \|/);
    expect(io.err()).toMatch(/the machine slowed, so these rows cannot be judged: .*reference \+\d/);
  });

  it('the same slow-down with the reference unchanged is the data plane: a regression, exit 1', async () => {
    const current = sweep({ seed: 5000, scale: 1.3 });
    const io = bufferIo();
    expect(await cmdCompare(baseline, current, {}, io)).toBe(1);
    expect(io.out()).toMatch(/REGRESSION/);
  });

  it('a task competing for the pinned CPU (CPU share 97% → 50%) and latencies 40% up: "machine slowed", exit 3', async () => {
    const current = sweep({ seed: 5000, scale: 1.4, reference: { share: 0.5 } });
    const io = bufferIo();
    expect(await cmdCompare(baseline, current, {}, io)).toBe(3);
    expect(io.out()).toContain('less of the CPU');
  });

  it('older files without the reference are judged as before, and the comparison says the reference was not measured', async () => {
    const old = sweep({ seed: 1, reference: false, legacyCpu: true });
    const slowed = sweep({ seed: 5000, scale: 1.3, reference: false, legacyCpu: true });
    const io = bufferIo();
    expect(await cmdCompare(old, slowed, {}, io)).toBe(1);
    expect(io.out()).toContain('Machine reference: not measured');
  });
});

describe('bench report: CPU section and machine reference', () => {
  it('shows CPU per connection with its resolution and what calico adds over none', () => {
    const c = collectResults([sweep({ seed: 3 })]);
    const a = analyze(c.results, { problems: c.problems });
    const calico = a.cpu.rows.find((r) => r.cni === 'calico' && r.policies === 1000)!;
    expect(calico.totalUs).toBeCloseTo(3 * (5 + 700), 0);
    expect(calico.cpuAddedUs).toBeCloseTo(3 * 700, 0);
    expect(calico.latencyAddedUs).toBeGreaterThan(600);
    const md = renderMarkdown(a);
    expect(md).toContain('## CPU per new connection');
    expect(md).toMatch(/\| calico \| 1000 \| 4 \| 2115\.0 \([\d.]+–[\d.]+\) \| ±21 \|/);
    expect(md).toContain("## The machine's reference");
    expect(md).toContain('the machine ran the same way throughout');
  });

  it('older files: CPU below its /proc/stat resolution is not shown as a number, the reference is "not measured"', () => {
    const c = collectResults([sweep({ seed: 3, reference: false, legacyCpu: true })]);
    const a = analyze(c.results, { problems: c.problems });
    // 15 µs per connection against 2 × 10 ms × 2 CPUs over 300 operations (133 µs): below; 2.1 ms of calico: shown.
    expect(a.cpu.rows.filter((r) => r.totalUs === null).map((r) => `${r.cni}@${r.policies}`)).toEqual(['none@0', 'none@1000', 'calico@0']);
    expect(a.cnis.find((x) => x.cni === 'none')!.metrics.cpu_per_conn.points).toHaveLength(0);
    const md = renderMarkdown(a);
    expect(md).toMatch(/\| none \| 0 \| 4 \| below resolution \|/);
    expect(md).toContain('Not measured (result files written before the reference existed');
  });

  it('names the runs that ran on a slowed machine', () => {
    const dir = sweep({ seed: 3 });
    writeSyntheticSweep(dir, { curves: [CURVES[1]!], policies: [2000], repetitions: 1, samples: 300, seed: 77, reference: { scale: 1.3 } });
    const c = collectResults([dir]);
    const a = analyze(c.results, { problems: c.problems });
    expect(a.machine.slowedRuns.map((r) => `${r.cni}@${r.policies}`)).toEqual(['calico@2000']);
    expect(a.machine.slowedRuns[0]!.referenceChange).toBeGreaterThan(0.2);
    expect(renderMarkdown(a)).toContain('**The machine slowed in 1 run**');
  });
});
