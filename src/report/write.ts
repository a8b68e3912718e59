// Report output: build everything in memory; the command's outputs then write the files (src/outputs), never
// over a file the tool did not write itself unless forced (isOurs).
import { existsSync, readFileSync } from 'node:fs';
import { analyze, type Analysis } from './analyze.js';
import { chartSpecs, renderSvg } from './charts.js';
import { collectResults } from './collect.js';
import { renderHtml, type RenderedChart } from './html.js';
import { GENERATED_MARK, renderMarkdown } from './markdown.js';
import { toPerfdash, type PerfData } from './perfdash.js';
import { BenchError } from '../errors.js';

export interface BuiltReport {
  analysis: Analysis;
  markdown: string;
  html: string;
  charts: RenderedChart[];
}

export function analyzeInputs(inputs: string[], opts: { seed?: number } = {}): Analysis {
  const c = collectResults(inputs);
  return analyze(c.results, { seed: opts.seed, manifests: c.manifests, verifies: c.verifies.map((v) => v.record), problems: c.problems });
}

export async function buildReport(a: Analysis): Promise<BuiltReport> {
  const charts: RenderedChart[] = [];
  for (const c of chartSpecs(a)) charts.push({ id: c.id, title: c.title, svg: await renderSvg(c.spec) });
  return { analysis: a, markdown: renderMarkdown(a, { chartsIn: 'report.html' }), html: renderHtml(a, charts), charts };
}

export function perfdashJson(a: Analysis): string {
  const data: PerfData = toPerfdash(a);
  for (const item of data.dataItems) for (const [k, v] of Object.entries(item.data)) if (!Number.isFinite(v)) delete item.data[k];
  return `${JSON.stringify(data, null, 2)}\n`;
}

export class OverwriteError extends BenchError {
  constructor(readonly file: string) {
    super('usage', `${file} exists and was not written by bench report; not overwriting it (use --force)`);
  }
}

/** True when the file is absent or carries the tool's generated-by mark near its top. */
export function isOurs(path: string, mark = GENERATED_MARK): boolean {
  if (!existsSync(path)) return true;
  return readFileSync(path, 'utf8').slice(0, 400).includes(mark);
}
