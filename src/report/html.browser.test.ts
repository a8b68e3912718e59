// The HTML report in a real browser: Debian's headless Chromium via playwright-core. Where Chromium is absent it
// skips and says so on stderr and in the test's name; under CI=true it fails instead, naming what to install.
import { describe, expect, it } from 'vitest';
import { existsSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { analyze } from './analyze.js';
import { chartSpecs } from './charts.js';
import { collectResults } from './collect.js';
import { buildReport } from './write.js';
import { writeSyntheticSweep } from './test-support/fixtures.js';
import { tempDir } from '../test-support/temp.js';

const CHROMIUM = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';
const FLAGS = ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update', '--disable-sync'];
const NO_CHROMIUM = `no Chromium at ${CHROMIUM}: install it (bash scripts/setup.sh does) or set CHROMIUM_PATH`;

/** `it` for a test that needs Chromium: runs where it is; without it fails under CI=true, and skips loudly elsewhere. */
const itBrowser = (name: string, fn: () => Promise<void>, timeoutMs: number): void => {
  if (existsSync(CHROMIUM)) return void it(name, fn, timeoutMs);
  if (process.env.CI === 'true') {
    return void it(name, () => {
      throw new Error(`${NO_CHROMIUM}; under CI=true the browser test must run, not skip`);
    });
  }
  process.stderr.write(`\n*** SKIPPED the report's browser test: ${NO_CHROMIUM} (under CI=true this fails) ***\n\n`);
  it.skip(`${name} — SKIPPED: ${NO_CHROMIUM}`, fn);
};
/** Where the screenshot goes, so a person can look at it: the system temp directory, which outlives the test file's. */
export const SCREENSHOT = join(process.env.CB_TEST_SYSTEM_TMPDIR ?? tmpdir(), 'cb-report-screenshot.png');

describe('report.html in headless Chromium', () => {
  itBrowser(
    'opens, and every chart shows one mark per CNI × policy count with visible curves',
    async () => {
      const dir = tempDir('cb-report-');
      writeSyntheticSweep(dir, {
        curves: [
          { cni: 'none', baseNs: 40_000, slopeNs: 0 },
          { cni: 'flannel', baseNs: 45_000, slopeNs: 0 },
          { cni: 'calico', baseNs: 38_000, slopeNs: 10, cpuSlopeUs: 0.002 },
          { cni: 'cilium', baseNs: 48_000, slopeNs: 0 },
        ],
        policies: [0, 100, 500, 1000, 2000, 5000, 10000],
        repetitions: 3,
        samples: 300,
      });
      const c = collectResults([dir]);
      const a = analyze(c.results);
      const expected = Object.fromEntries(chartSpecs(a).map((s) => [s.id, s.rows.length]));
      const report = await buildReport(a);
      const file = join(dir, 'report.html');
      writeFileSync(file, report.html);

      const { chromium } = await import('playwright-core');
      const browser = await chromium.launch({ executablePath: CHROMIUM, args: FLAGS });
      try {
        const page = await browser.newPage({ viewport: { width: 1200, height: 1000 } });
        const requests: string[] = [];
        page.on('request', (r) => {
          if (!r.url().startsWith('file://')) requests.push(r.url());
        });
        await page.goto(`file://${file}`);
        const charts = await page.$$eval('figure.chart', (figs) =>
          figs.map((f) => ({
            id: f.getAttribute('data-chart'),
            symbols: f.querySelectorAll('g.mark-symbol.role-mark path').length,
            lines: [...f.querySelectorAll('g.mark-line.role-mark path')].map((p) => {
              const b = (p as SVGGraphicsElement).getBoundingClientRect();
              return { w: b.width, h: b.height };
            }),
          })),
        );
        expect(charts.map((x) => x.id)).toEqual(Object.keys(expected));
        for (const ch of charts) {
          expect(ch.symbols, ch.id!).toBe(expected[ch.id!]);
          expect(ch.lines).toHaveLength(4);
          // Each curve spans most of the plot's width (0…10000 policies on a symlog axis).
          for (const l of ch.lines) expect(l.w, ch.id!).toBeGreaterThan(300);
        }
        // Calico's line climbs: its box is much taller than a flat line's.
        const connect = charts.find((x) => x.id === 'connect_p50')!;
        expect(Math.max(...connect.lines.map((l) => l.h))).toBeGreaterThan(100);
        expect(requests).toEqual([]);
        const fig = await page.$('#chart-connect_p50');
        await fig!.screenshot({ path: SCREENSHOT });
        expect(existsSync(SCREENSHOT)).toBe(true);
      } finally {
        await browser.close();
      }
    },
    60_000,
  );
});
