// bench report <dir…>: report.md and a self-contained report.html (or perfdash JSON) from result files.
import type { Command } from 'commander';
import type { Output } from '../../outputs/outputs.js';
import type { Analysis } from '../../report/analyze.js';
import type { BuiltReport } from '../../report/write.js';
import type { Collected } from '../../report/collect.js';
import type { FindingRecord } from '../../results/workload-verify.js';
import { outputOption } from '../output-paths.js';
import { join, resolve } from 'node:path';
import { existsSync, statSync } from 'node:fs';
import { EXIT_OK, EXIT_USAGE, processIo, reportInputProblems, reportUsage, type CommandIo } from '../io.js';

export interface ReportOptions {
  out?: string;
  format?: string;
  output?: string;
  force?: boolean;
  seed?: string;
  allowMixedMachines?: boolean;
}

/** The machine a result was measured on, as far as it moves the numbers. */
const machineOf = (m: { hostname: string; kernel: string; cpuModel: string; cpus: number }) => `${m.hostname} (kernel ${m.kernel}, ${m.cpus} × ${m.cpuModel})`;

/**
 * A workload sweep's verify records written before findings were stored: the findings are read from the workload
 * file the runs name, when it is still there and still has the policy count the runs recorded (else nothing is
 * said: the report does not guess).
 */
async function findingsAtReportTime(collected: Pick<Collected, 'results' | 'verifies'>): Promise<Map<string, FindingRecord[]>> {
  const files = new Map<string, number>();
  for (const { result } of collected.results) if (result.meta.workload) files.set(result.meta.workload.file, result.meta.workload.policies);
  for (const v of collected.verifies) if (v.record.findings) files.delete(v.record.workload.file);
  const out = new Map<string, FindingRecord[]>();
  if (!files.size) return out;
  const [{ loadWorkload }, { findPolicyProblems }] = await Promise.all([import('../../workload/load.js'), import('../../workload/findings.js')]);
  for (const [file, policies] of files) {
    if (!existsSync(file)) continue;
    try {
      const cluster = loadWorkload(file);
      if (cluster.policies.length === policies) out.set(file, findPolicyProblems(cluster));
    } catch {
      // A file that no longer reads as the workload: the report says the findings were not recorded.
    }
  }
  return out;
}

export async function cmdReport(inputs: string[], opts: ReportOptions, io: CommandIo = processIo()): Promise<number> {
  const format = opts.format ?? 'html';
  if (!['html', 'md', 'perfdash', 'json'].includes(format)) return reportUsage(io, [{ where: '--format', message: `must be html (report.md + report.html), md, json or perfdash, got '${format}'` }]);
  const seed = opts.seed === undefined ? 1 : Number(opts.seed);
  if (!Number.isInteger(seed) || seed < 0) return reportUsage(io, [{ where: '--seed', message: `expected a whole number, got '${opts.seed}'` }]);
  const { buildReport, perfdashJson, isOurs, OverwriteError } = await import('../../report/write.js');
  const { collectResults } = await import('../../report/collect.js');
  const { analyze } = await import('../../report/analyze.js');
  const t0 = performance.now();
  const collected = collectResults(inputs);
  // One curve across machines would read machine differences as data-plane costs.
  const machines = new Map<string, string[]>();
  for (const l of collected.results) machines.set(machineOf(l.result.meta.machine), [...(machines.get(machineOf(l.result.meta.machine)) ?? []), l.path]);
  if (machines.size > 1) {
    const lines = [...machines].map(([m, files]) => `${m}: ${files.length} result${files.length > 1 ? 's' : ''}, e.g. ${files[0]}`);
    if (!opts.allowMixedMachines) {
      return reportUsage(io, [{ where: 'inputs', message: `results from ${machines.size} machines; a report compares data planes on one machine. Report each machine's results separately (or pass --allow-mixed-machines):\n    ${lines.join('\n    ')}` }]);
    }
    io.stderr.write(`bench report: warning: mixing results from ${machines.size} machines (--allow-mixed-machines):\n  ${lines.join('\n  ')}\n`);
  }
  const findings = await findingsAtReportTime(collected);
  const a = analyze(collected.results, { seed, manifests: collected.manifests, verifies: collected.verifies.map((v) => v.record), findings, problems: collected.problems });
  reportInputProblems(io, a.problems);
  // bench enforce --workload results: their own table (enforce-workload.md), beside the report or alone.
  if (collected.enforceWorkloads.length) {
    const { enforceWorkloadMarkdown } = await import('../../report/enforce-workload.js');
    const first = resolve(inputs[0]!);
    const path = join(opts.out ?? (existsSync(first) && statSync(first).isDirectory() ? first : '.'), 'enforce-workload.md');
    (await import('../../results/io.js')).writeFileAtomic(path, enforceWorkloadMarkdown(collected.enforceWorkloads));
    io.stdout.write(`wrote ${path} (${collected.enforceWorkloads.length} bench enforce --workload runs)\n`);
    if (a.runs === 0) return a.problems.length ? EXIT_USAGE : EXIT_OK;
  }
  if (a.runs === 0) {
    // A sweep.json alone (a committed example whose run directories were left out): say where the results would be.
    const listed = collected.manifests.map(({ dir, manifest }) => `${join(dir, 'sweep.json')}: sweep ${manifest.id} lists ${manifest.points.filter((p) => p.resultPath).length} result files, none of them here (its run directories were not kept beside it)`);
    io.stderr.write(`bench report: no usable result files${listed.length ? `\n  ${listed.join('\n  ')}` : ''}\n`);
    return EXIT_USAGE;
  }
  const [{ Outputs, terminalOutput }, { writeFileAtomic }] = await Promise.all([import('../../outputs/outputs.js'), import('../../results/io.js')]);
  /** A report file: refused before anything is written when it exists and is not one bench report wrote (unless --force). */
  const reportFile = <R>(path: string, render: (r: R) => string, owned: (p: string) => boolean = isOurs): Output<R> => ({
    description: path,
    start: () => {
      if (!opts.force && !owned(path)) throw new OverwriteError(path);
    },
    stop: (r) => writeFileAtomic(path, render(r)),
  });
  try {
    if (format === 'perfdash' || format === 'json') {
      const json = await import('../../report/json.js');
      const document = format === 'json' ? json.reportJson : perfdashJson;
      const toStdout = !opts.output || opts.output === '-';
      // A report.json bench report wrote is its own to replace (it names its kind at the top); perfdash JSON names none.
      const owned = format === 'json' ? (p: string) => isOurs(p, `"kind": "${json.REPORT_JSON_KIND}"`) : (p: string) => !existsSync(p);
      // perfdash/JSON text is complete as rendered: written to stdout as it is, or to the file.
      const outputs = new Outputs<Analysis>([toStdout ? terminalOutput<Analysis>(io.stdout, { summary: document }) : reportFile<Analysis>(opts.output!, document, owned)]);
      await outputs.start();
      await outputs.stop(a);
      if (!toStdout) io.stderr.write(`wrote ${opts.output}\n`);
    } else {
      const first = resolve(inputs[0]!);
      const outDir = opts.out ?? (existsSync(first) && statSync(first).isDirectory() ? first : '.');
      const files = [reportFile<BuiltReport>(join(outDir, 'report.md'), (b) => b.markdown), ...(format === 'html' ? [reportFile<BuiltReport>(join(outDir, 'report.html'), (b) => b.html)] : [])];
      const outputs = new Outputs<BuiltReport>(files);
      await outputs.start();
      await outputs.stop(await buildReport(a));
      for (const f of files) io.stdout.write(`wrote ${f.description}\n`);
    }
  } catch (e) {
    if (e instanceof OverwriteError) return reportUsage(io, [{ where: e.file, message: 'exists and was not written by bench report; not overwriting it (use --force)' }]);
    throw e;
  }
  io.stderr.write(`analysed ${a.runs} runs of ${a.cnis.length} CNIs in ${((performance.now() - t0) / 1000).toFixed(2)} s\n`);
  return a.problems.length ? EXIT_USAGE : EXIT_OK;
}

export function register(program: Command): void {
  program
    .command('report')
    .description('analyse result files (a sweep directory, any directory of results, or files): slopes, verdicts, charts, CNI selection advice')
    .argument('<inputs...>', 'sweep directories, result directories or result.json files')
    .addOption(outputOption('--out <dir>', 'where report.md/report.html go (default: the first input directory)', 'dir'))
    .option('--format <fmt>', 'html (report.md + report.html), md, json (the whole analysis as one document) or perfdash (PerfData JSON for perfdash dashboards)', 'html')
    .addOption(outputOption('-o, --output <file>', 'json/perfdash: write here instead of stdout (- for stdout)', 'file', { stdout: true }))
    .option('--seed <n>', 'seed of the bootstrap CIs (default 1)')
    .option('--force', 'overwrite files not written by bench report')
    .option('--allow-mixed-machines', 'analyse results from different machines (hosts, kernels, CPUs) together instead of refusing')
    .action(async (inputs: string[], opts: ReportOptions) => {
      process.exitCode = await cmdReport(inputs, opts);
    });
}
