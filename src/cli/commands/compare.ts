// bench compare <baseline> <current>: the nightly regression gate. Exit 1 on any regression, 0 otherwise,
// 2 on bad input (unreadable files are named and skipped; incomparable sides are refused unless --force),
// 3 when a point has too few repetitions on a side to judge, or the machine's reference says the machine slowed
// (and nothing else was a regression).
import type { Command } from 'commander';
import { outputOption } from '../output-paths.js';
import { existsSync } from 'node:fs';
import { DEFAULT_MIN_REPETITIONS } from '../../stats/compare.js';
import { EXIT_FAIL, EXIT_INSUFFICIENT, EXIT_OK, EXIT_USAGE, processIo, reportInputProblems, reportUsage, type CommandIo } from '../io.js';

export interface CompareCliOptions {
  maxRegression?: string;
  alpha?: string;
  minRepetitions?: string;
  force?: boolean;
  json?: boolean;
  output?: string;
}

function parsePercent(s: string): number | null {
  const m = /^\s*(\d+(?:\.\d+)?)\s*(%?)\s*$/.exec(s);
  if (!m) return null;
  const v = Number(m[1]);
  // Always percent ("5" and "5%" are both 5%): a fraction form would make "0.5" ambiguous.
  return v / 100;
}

export async function cmdCompare(baseline: string, current: string, opts: CompareCliOptions, io: CommandIo = processIo()): Promise<number> {
  const problems: Array<{ where: string; message: string }> = [];
  const maxRegression = opts.maxRegression === undefined ? 0.05 : parsePercent(opts.maxRegression);
  if (maxRegression === null || maxRegression <= 0) problems.push({ where: '--max-regression', message: `expected a percentage such as 5 or 5%, got '${opts.maxRegression}'` });
  const alpha = opts.alpha === undefined ? 0.05 : Number(opts.alpha);
  if (!(alpha > 0 && alpha < 1)) problems.push({ where: '--alpha', message: `expected a number between 0 and 1, got '${opts.alpha}'` });
  const minRepetitions = opts.minRepetitions === undefined ? DEFAULT_MIN_REPETITIONS : Number(opts.minRepetitions);
  if (!(Number.isInteger(minRepetitions) && minRepetitions >= 2)) problems.push({ where: '--min-repetitions', message: `expected a whole number ≥ 2 (a t test needs two runs a side), got '${opts.minRepetitions}'` });
  if (opts.output && existsSync(opts.output) && !opts.force) problems.push({ where: '--output', message: `${opts.output} exists; not overwriting it (use --force)` });
  if (problems.length) return reportUsage(io, problems);

  const { collectResults } = await import('../../report/collect.js');
  const { compareResults, renderCompareMarkdown } = await import('../../report/compare.js');
  const b = collectResults([baseline]);
  const c = collectResults([current]);
  const inputProblems = [...b.problems, ...c.problems];
  reportInputProblems(io, inputProblems);
  if (b.results.length === 0 || c.results.length === 0) {
    io.stderr.write(`bench compare: no usable result files in ${b.results.length === 0 ? baseline : current}\n`);
    return EXIT_USAGE;
  }
  const report = compareResults(b.results, c.results, { maxRegression: maxRegression!, alpha, minRepetitions, force: opts.force, problems: inputProblems });
  const { Outputs, fileOutput, summaryOutput } = await import('../../outputs/outputs.js');
  type Report = typeof report;
  const markdown = (r: Report) => renderCompareMarkdown(r, { baseline, current });
  const outputs = new Outputs<Report>([...(opts.output ? [fileOutput<Report>(opts.output, 'markdown summary', markdown)] : []), summaryOutput<Report>(Boolean(opts.json), io.stdout, { summary: markdown, document: (r) => r })]);
  await outputs.start();
  await outputs.stop(report);
  if (report.refused) {
    io.stderr.write(`bench compare: refusing to compare:\n${report.incompatibilities.map((x) => `  ${x}`).join('\n')}\n  (use --force to compare anyway)\n`);
    return EXIT_USAGE;
  }
  for (const w of report.warnings) io.stderr.write(`bench compare: warning: ${w}\n`);
  if (report.regressions.length) return EXIT_FAIL;
  if (report.rows.length === 0) {
    io.stderr.write('bench compare: no CNI × policy count is present on both sides\n');
    return EXIT_USAGE;
  }
  if (report.machineSlowed.length) {
    const rows = report.machineSlowed.map((x) => `${x.cni} @ ${x.policies} ${x.label} ${x.change >= 0 ? '+' : ''}${(x.change * 100).toFixed(1)}% (reference ${x.machine?.reference ? `${x.machine.reference.change >= 0 ? '+' : ''}${(x.machine.reference.change * 100).toFixed(1)}%` : 'not measured'}, CPU share ${x.machine?.availability ? `${(x.machine.availability.baseline * 100).toFixed(0)}% → ${(x.machine.availability.current * 100).toFixed(0)}%` : 'not measured'})`);
    io.stderr.write(`bench compare: the machine slowed, so these rows cannot be judged: ${rows.join('; ')}; re-run on a quiet machine\n`);
  }
  if (report.machineSlowed.length && !report.insufficient.length) return inputProblems.length ? EXIT_USAGE : EXIT_INSUFFICIENT;
  if (report.insufficient.length) {
    io.stderr.write(`bench compare: not enough repetitions to judge: ${[...new Set(report.insufficient.map((x) => `${x.cni} @ ${x.policies} (${x.baselineRuns}/${x.currentRuns} runs)`))].join('; ')}; the gate needs at least ${minRepetitions} runs per side (bench run --repetitions ${minRepetitions}, or repetitions: ${minRepetitions} in the sweep scenario)\n`);
    // A corrupt or unreadable input outranks "too few runs": part of the evidence was never looked at.
    return inputProblems.length ? EXIT_USAGE : EXIT_INSUFFICIENT;
  }
  return inputProblems.length ? EXIT_USAGE : EXIT_OK;
}

export function register(program: Command): void {
  program
    .command('compare')
    .description('regression gate on run-level statistics: compare current results against a baseline (exit 1 on a regression, 2 on bad input, 3 when there are not enough repetitions to judge or the machine slowed)')
    .argument('<baseline>', 'baseline: a sweep/results directory or a result.json')
    .argument('<current>', 'current: a sweep/results directory or a result.json')
    .option('--max-regression <pct>', 'a significant slow-down larger than this is a regression (default 5%)')
    .option('--alpha <p>', 'false-alarm rate of the whole comparison (Holm over all rows; default 0.05)')
    .option('--min-repetitions <n>', `runs needed on each side before a change can be called significant (default ${DEFAULT_MIN_REPETITIONS})`)
    .option('--force', 'compare even across backends, models, machine classes or policy shapes; overwrite --output')
    .option('--json', 'print the comparison as JSON instead of markdown')
    .addOption(outputOption('--output <file>', 'also write the markdown summary to this file', 'file'))
    .action(async (baseline: string, current: string, opts: CompareCliOptions) => {
      process.exitCode = await cmdCompare(baseline, current, opts);
    });
}
