// report.html: one self-contained file (inline CSS and SVG, no scripts, nothing fetched) holding the same text as
// report.md plus the charts. The markdown is the single source; a small converter handles the subset it uses.
import { GENERATED_MARK, renderMarkdown, reportTitle } from './markdown.js';
import type { Analysis } from './analyze.js';

export interface RenderedChart {
  id: string;
  title: string;
  svg: string;
}

const escapeHtml = (s: string) => s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;');

function inline(s: string): string {
  return escapeHtml(s)
    .replace(/\\\|/g, '|')
    .replace(/`([^`]+)`/g, '<code>$1</code>')
    .replace(/\*\*([^*]+)\*\*/g, '<strong>$1</strong>');
}

const splitRow = (line: string) => line.replace(/^\|\s?|\s?\|$/g, '').split(/\s\|\s/).map((c) => c.trim());

/** Markdown subset: headings, paragraphs, "- " lists, pipe tables, **bold**, `code`, HTML comments dropped. */
export function markdownToHtml(md: string): string {
  const out: string[] = [];
  const lines = md.split('\n');
  for (let i = 0; i < lines.length; ) {
    const line = lines[i]!;
    if (line.startsWith('<!--') || line.trim() === '') {
      i++;
    } else if (/^<details><summary>[^<>]*<\/summary>$/.test(line) || line === '</details>') {
      // Our own collapsible sections (fixed text written by renderMarkdown), passed through as they are.
      out.push(line);
      i++;
    } else if (/^#{1,4} /.test(line)) {
      const level = line.indexOf(' ');
      const text = line.slice(level + 1);
      const id = text.toLowerCase().replace(/[^a-z0-9]+/g, '-').replace(/^-|-$/g, '');
      out.push(`<h${level} id="${id}">${inline(text)}</h${level}>`);
      i++;
    } else if (line.startsWith('|')) {
      const block: string[] = [];
      while (i < lines.length && lines[i]!.startsWith('|')) block.push(lines[i++]!);
      const [head, sep, ...body] = block;
      const right = splitRow(sep ?? '').map((c) => c.endsWith(':'));
      const cell = (tag: string, c: string, k: number) => `<${tag}${right[k] ? ' class="r"' : ''}>${inline(c)}</${tag}>`;
      out.push(`<table><thead><tr>${splitRow(head!).map((c, k) => cell('th', c, k)).join('')}</tr></thead><tbody>${body.map((r) => `<tr>${splitRow(r).map((c, k) => cell('td', c, k)).join('')}</tr>`).join('')}</tbody></table>`);
    } else if (line.startsWith('- ')) {
      const items: string[] = [];
      while (i < lines.length && lines[i]!.startsWith('- ')) items.push(lines[i++]!.slice(2));
      out.push(`<ul>${items.map((t) => `<li>${inline(t)}</li>`).join('')}</ul>`);
    } else {
      const para: string[] = [];
      while (i < lines.length && lines[i]!.trim() !== '' && !/^(#{1,4} |\||- |<!--|<details>|<\/details>)/.test(lines[i]!)) para.push(lines[i++]!);
      out.push(`<p>${inline(para.join(' '))}</p>`);
    }
  }
  return out.join('\n');
}

const CSS = `body{font:15px/1.5 system-ui,sans-serif;max-width:1100px;margin:2em auto;padding:0 1em;color:#222}
table{border-collapse:collapse;margin:1em 0;font-size:13px}th,td{border:1px solid #ddd;padding:3px 7px;vertical-align:top}
th{background:#f5f5f5}td.r,th.r{text-align:right;font-variant-numeric:tabular-nums}code{background:#f3f3f3;padding:0 3px}
figure{margin:1.5em 0}figure svg{max-width:100%;height:auto}h2{border-bottom:1px solid #eee;padding-bottom:.2em;margin-top:2em}`;

export function renderHtml(a: Analysis, charts: RenderedChart[]): string {
  const body = markdownToHtml(renderMarkdown(a));
  const figures = charts.map((c) => `<figure id="chart-${c.id}" class="chart" data-chart="${c.id}">${c.svg}</figure>`).join('\n');
  // Charts go right after "What ran", before the tables they summarise.
  const marker = '<h2 id="new-connection-latency';
  const at = body.indexOf(marker);
  const withCharts = at >= 0 ? `${body.slice(0, at)}<h2 id="charts">Charts</h2>\n${figures}\n${body.slice(at)}` : `${body}\n${figures}`;
  return `<!doctype html>\n<!-- ${GENERATED_MARK} -->\n<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width,initial-scale=1"><title>${escapeHtml(reportTitle(a))}</title><style>${CSS}</style></head><body>\n${withCharts}\n</body></html>\n`;
}
