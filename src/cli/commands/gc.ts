// `bench gc`: remove what killed runs left behind, found by the cb-<runid>- prefix: namespaces and BPF pins of the
// local backend, or kind clusters. Listing always runs for real (it changes nothing); --dry-run holds back the
// deletes.
import type { Command } from 'commander';
import { InputError } from '../../errors.js';
import { ExecRunner } from '../../exec/runner.js';
import { EXIT_OK } from '../io.js';

interface GcFlags {
  backend?: string;
  run?: string;
  force?: boolean;
  dryRun?: boolean;
}

export async function cmdGc(opts: GcFlags): Promise<number> {
  if (opts.backend !== undefined && opts.backend !== 'local' && opts.backend !== 'kind') throw new InputError([{ where: '--backend', message: `must be local or kind, got '${String(opts.backend)}'` }]);
  if (typeof opts.run === 'string' && !/^[a-z][a-z0-9]{4}$/.test(opts.run)) throw new InputError([{ where: '--run', message: `not a run id: '${opts.run}' (5 characters, e.g. k3f9a)` }]);
  return opts.backend === 'kind' ? gcKind(opts) : gcLocal(opts);
}

async function gcLocal(opts: GcFlags): Promise<number> {
  const { collectGarbage } = await import('../../backends/local/gc.js');
  const report = await collectGarbage(new ExecRunner(), { only: opts.run, force: Boolean(opts.force), dryRun: Boolean(opts.dryRun) });
  if (report.removed.length === 0) process.stdout.write('nothing to remove\n');
  for (const r of report.removed) {
    const what = [`${r.namespaces.length} namespaces`, ...(r.pins.length ? [`BPF pins ${r.pins.join(' ')}`] : []), ...(r.kept ? ['the --keep record'] : r.locks.length ? ['its stale lock'] : [])];
    process.stdout.write(`${opts.dryRun ? 'would remove' : 'removed'} run ${r.runId}${r.kept ? ' (left up with --keep)' : ''}: ${what.join(', ')}\n`);
    for (const ns of r.namespaces) process.stdout.write(`  netns ${ns}\n`);
  }
  for (const id of report.skippedLive) process.stdout.write(`skipped run ${id}: its process is still running (use --force to remove anyway)\n`);
  return EXIT_OK;
}

async function gcKind(opts: GcFlags): Promise<number> {
  const { findKindLeftovers, deleteKindCluster } = await import('../../backends/kind/backend.js');
  const runner = new ExecRunner();
  const leftovers = (await findKindLeftovers(runner)).filter((l) => !opts.run || l.cluster === `cb-${String(opts.run)}`);
  if (leftovers.length === 0) process.stdout.write('no kind clusters to remove\n');
  for (const l of leftovers) {
    if (l.live && !opts.force) {
      process.stdout.write(`skipped kind cluster ${l.cluster}: its run is still going (use --force)\n`);
      continue;
    }
    if (!opts.dryRun) await deleteKindCluster(runner, l.cluster);
    process.stdout.write(`${opts.dryRun ? 'would remove' : 'removed'} kind cluster ${l.cluster}\n`);
  }
  return EXIT_OK;
}

export function register(program: Command): void {
  program
    .command('gc')
    .description('remove what killed runs left behind (namespaces, BPF pins), found by the cb-<runid>- prefix')
    .option('--backend <name>', 'local (namespaces, BPF pins) or kind (clusters named cb-<runid>)', 'local')
    .option('--run <id>', 'only this run id')
    .option('--force', 'also remove runs whose process still runs')
    .option('--dry-run', 'list what would be removed')
    .action(async (opts: GcFlags) => {
      process.exitCode = await cmdGc(opts);
    });
}
