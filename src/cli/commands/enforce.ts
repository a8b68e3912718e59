// `bench enforce`: how long until a policy change or a new pod is enforced, and whether anything leaks
// meanwhile. Thin: resolve the settings, have the backend's descriptor build the data plane, hand over to
// src/enforce, reach the outputs, set the exit code (0 measured, 1 failed or not enforced, 2 usage, 130 interrupted).
import type { Command } from 'commander';
import { backendDescriptor } from '../../backends/factory.js';
import { capacityOverflowOf } from '../../results/capacity-overflow.js';
import { EXIT_FAIL, EXIT_OK, processIo, reportUsage, type CommandIo } from '../io.js';
import { concurrentRunsWarning, detectEnvironment, onInterrupt, stepPrinter } from '../process.js';
import { declareFlags } from '../settings-flags.js';
import { enforceBackendProblems, enforceFlags, parseEnforceFlags, type EnforceFlags } from './enforce-flags.js';

export async function cmdEnforce(flags: EnforceFlags, io: CommandIo = processIo()): Promise<number> {
  if (flags.workload !== undefined) return (await import('./enforce-workload.js')).cmdEnforceWorkload(flags, io);
  for (const f of ['change', 'flow'] as const) if (flags[f] !== undefined) return reportUsage(io, [{ where: `--${f}`, message: 'only with --workload FILE (the synthetic changes are --changes)' }]);
  const parsed = parseEnforceFlags(flags);
  if (!parsed.ok) return reportUsage(io, parsed.problems);
  const config = parsed.value;
  const [{ resolve }, { ExecRunner, DryRunRunner, renderPlan }, { newRunId }, { createBackend }, { selectBackend }, { executeEnforce, planEnforceDry, enforceConfigOf, EnforceUnsupportedError }, { formatEnforceSummary }, { Outputs, summaryOutput }] = await Promise.all([
    import('node:path'),
    import('../../exec/runner.js'),
    import('../../identity/run-id.js'),
    import('../../backends/factory.js'),
    import('../../backends/registry.js'),
    import('../../enforce/run.js'),
    import('../../enforce/format.js'),
    import('../../outputs/outputs.js'),
  ]);
  const selection = selectBackend(config.backend, config.backend === 'auto' ? await detectEnvironment() : { dockerEngine: false, kind: false }, config.cni);
  const backend = selection.backend;
  if (config.backend === 'auto') {
    const problems = enforceBackendProblems(backend, config, flags);
    if (problems.length) return reportUsage(io, problems);
    io.stderr.write(`${selection.note}\n`);
  }
  if (!config.dryRun) {
    // As run does: a backend whose tools are missing is refused before a run id, a lock or a directory exists.
    const { backendPreflight, targetPreflight } = await import('../doctor.js');
    const missing = await backendPreflight(new ExecRunner(), backend);
    if (missing.length) return reportUsage(io, missing);
    const target = await targetPreflight(new ExecRunner(), backend, config);
    if (target.length) return reportUsage(io, target);
  }
  const descriptor = backendDescriptor(backend)!;
  const enforce = enforceConfigOf(config);
  const runId = newRunId();
  const outDir = resolve(config.out, runId);
  if (!config.dryRun && !descriptor.onKubernetes && process.getuid?.() !== 0) {
    io.stderr.write('bench enforce: the local backend builds network namespaces and needs root (run with sudo)\n');
    return EXIT_FAIL;
  }
  const interrupt = onInterrupt('stopping and cleaning up', undefined, () => [runId]);
  try {
    const progress = stepPrinter(!config.json && !config.dryRun);
    const runner = config.dryRun ? new DryRunRunner() : new ExecRunner(interrupt.signal);
    const plane = await createBackend({ config, backend, runId, shape: 'enforce', runner, cleanupRunner: config.dryRun ? runner : undefined, signal: interrupt.signal, progress, outDir });
    if (!plane.changes) return reportUsage(io, [{ where: '--cni', message: new EnforceUnsupportedError(plane.model.name).message }]);
    if (config.dryRun) {
      const watches = await planEnforceDry(plane, enforce);
      const clock = descriptor.onKubernetes ? `# clock: ${plane.changes.clockDescription}\n` : '';
      io.stdout.write(`# enforce plan for run ${runId} on the ${backend} backend (dry run: nothing was executed)\n${clock}${renderPlan(runner.log)}\n# watch probes (${plane.changes.watchNote}):\n${watches.map((w) => `#   ${w}`).join('\n')}\n`);
      return EXIT_OK;
    }
    progress.step(`enforce run ${runId} on ${backend}: ${config.cni}, ${config.policies} policies, ${enforce.repetitions} repetitions of ${enforce.changes.join(', ')}`);
    type Done = Awaited<ReturnType<typeof executeEnforce>>;
    const outputs = new Outputs<Done>([
      summaryOutput<Done>(config.json, io.stdout, {
        summary: ({ result, path }) => `\n${formatEnforceSummary(result, path)}\n`,
        document: ({ result, path }) => ({ runId: result.runId, status: result.status, path, notEnforced: result.notEnforced, capacityOverflow: capacityOverflowOf(result.modelState) ?? null, summary: result.summary, errors: result.errors }),
      }),
    ]);
    await outputs.start();
    const done = await executeEnforce({ runId, backend, config: enforce, plane, outDir, progress, signal: interrupt.signal });
    await outputs.stop(done);
    const others = done.result.meta.concurrentRuns ?? [];
    if (others.length) io.stderr.write(`${concurrentRunsWarning(others)}\n`);
    if (interrupt.signal.aborted) return 130;
    return done.result.status === 'ok' ? EXIT_OK : EXIT_FAIL;
  } finally {
    interrupt.dispose();
  }
}

export function register(program: Command): void {
  declareFlags(
    program.command('enforce').description('how long until a policy change or a new pod is enforced (ms, one clock), and whether anything leaks meanwhile'),
    enforceFlags(),
    'enforce',
  ).action(async (opts: EnforceFlags) => {
    process.exitCode = await cmdEnforce(opts);
  });
}
