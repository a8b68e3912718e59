// Every committed example under results/examples/ (a sweep.json, or one a level deeper) against today's report code:
// `bench report` on it must not throw; where its result files are committed, the render has the answer table,
// holds back every p99 coarser than 10% of its value, and is the committed report.md (so an example cannot drift
// from the code silently: when report code changes what an example prints, re-render it with the command below).
// Where the result files are not committed, bench report says so, and the example's README says what made it.
import { existsSync, readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { cmdReport } from '../cli/commands/report.js';
import { bufferIo, tempDir } from '../cli/test-support/cli.js';
import { collectResults } from './collect.js';
import { readManifest } from '../sweep/manifest.js';

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '../..');
const EXAMPLES = join(ROOT, 'results/examples');
const isDir = (p: string) => statSync(p).isDirectory();

/** Example directories holding a sweep.json: results/examples/<name>/ or results/examples/<name>/<part>/. */
const sweeps = readdirSync(EXAMPLES)
  .map((n) => join(EXAMPLES, n))
  .filter(isDir)
  .flatMap((d) => [d, ...readdirSync(d).map((n) => join(d, n)).filter(isDir)])
  .filter((d) => existsSync(join(d, 'sweep.json')))
  .map((d) => relative(EXAMPLES, d))
  .sort();

/** report.md without its generation time (the one line that differs between two renders of the same runs). */
const stable = (md: string) => md.replace(/^Generated \S+ from/m, 'Generated <time> from');

interface TailPoint { policies: number; value: number | null; resolutionNs: number | null; belowResolution?: boolean }
interface ReportJson {
  cnis: Array<{ cni: string; metrics: Array<{ id: string; points: TailPoint[] }> }>;
  workloads?: Array<{ name: string }>;
  services?: unknown[];
}

it('finds the committed example sweeps, and at least two with their result files', () => {
  expect(sweeps.length).toBeGreaterThanOrEqual(2);
  expect(sweeps.filter((s) => collectResults([join(EXAMPLES, s)]).results.length > 0).length).toBeGreaterThanOrEqual(2);
});

describe.each(sweeps)('results/examples/%s', (rel) => {
  const dir = join(EXAMPLES, rel);
  const collected = collectResults([dir]);

  it('its sweep.json and result files read without problems', () => {
    expect(() => readManifest(dir)).not.toThrow();
    expect(collected.problems).toEqual([]);
  });

  if (collected.results.length === 0) {
    it('without its result files: bench report names the sweep whose runs are missing, and the README says they are not committed', async () => {
      const io = bufferIo();
      expect(await cmdReport([dir], { out: tempDir('cb-example-'), format: 'md' }, io)).toBe(2);
      expect(io.err()).toMatch(/no usable result files\n .*sweep\.json: sweep sweep-\S+ lists \d+ result files, none of them here/);
      const readme = join(dir, 'README.md');
      expect(existsSync(readme), `${rel} has no README.md saying where its runs are`).toBe(true);
      expect(readFileSync(readme, 'utf8')).toMatch(/not committed|(run directories|result files)[^.]*\bare not\b/);
    });
    return;
  }

  it('bench report renders it: the answer table, p99s coarser than 10% held back, and the committed report.md is this render', async () => {
    const out = tempDir('cb-example-');
    const io = bufferIo();
    expect(await cmdReport([dir], { out, format: 'md' }, io), io.err()).toBe(0);
    const md = readFileSync(join(out, 'report.md'), 'utf8');
    const jsonPath = join(out, 'report.json');
    expect(await cmdReport([dir], { format: 'json', output: jsonPath }, bufferIo())).toBe(0);
    const doc = JSON.parse(readFileSync(jsonPath, 'utf8')) as ReportJson;
    // The commands in an example's README run again: a report.json bench report wrote is replaced, another file is not.
    expect(await cmdReport([dir], { format: 'json', output: jsonPath }, bufferIo())).toBe(0);
    const foreign = join(out, 'foreign.json');
    writeFileSync(foreign, '{"kind": "something-else"}\n');
    const refused = bufferIo();
    expect(await cmdReport([dir], { format: 'json', output: foreign }, refused)).toBe(2);
    expect(refused.err()).toContain('exists and was not written by bench report');

    // The answer table: a workload's answer, else a verdict row for every data plane measured.
    if (doc.workloads?.length) for (const w of doc.workloads) expect(md).toMatch(new RegExp(`## ${w.name}: the answer\\n\\n\\| CNI \\|`));
    else {
      expect(md).toContain('## Scaling: verdicts\n\n| CNI | metric | verdict | headline | why |');
      for (const c of doc.cnis) expect(md).toMatch(new RegExp(`\\n\\| ${c.cni} \\| [^|]+ \\| \\*\\*(O\\(1\\)|O\\(n\\)|super-linear|inconclusive)\\*\\* \\|`));
    }
    // Every p99 coarser than 10% of its value: no value in report.json, named below resolution in report.md.
    for (const c of doc.cnis) {
      for (const p of c.metrics.find((m) => m.id === 'connect_p99')?.points ?? []) {
        const coarse = p.resolutionNs !== null && p.value !== null ? p.resolutionNs > 0.1 * p.value : p.belowResolution === true;
        if (coarse) {
          expect(p.value, `${rel}: ${c.cni} connect p99 at ${p.policies}`).toBeNull();
          expect(md).toContain(`${c.cni} connect p99 at ${p.policies} policies (±`);
        }
      }
    }
    // The committed report is what today's code prints (else: bench report results/examples/<dir> --force).
    expect(stable(readFileSync(join(dir, 'report.md'), 'utf8')), `results/examples/${rel}/report.md differs from today's render: re-render it with \`bench report results/examples/${rel} --force\``).toBe(stable(md));
  }, 120_000);
});
