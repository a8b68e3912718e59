// `bench gc`: remove what killed runs left behind, found by the cb-<runid>- prefix: namespaces and BPF pins of the
// local backend, or kind clusters. Listing always runs for real (it changes nothing); --dry-run holds back the
// deletes.
import type { Command } from 'commander';
import { InputError } from '../../errors.js';
import { BACKEND_DESCRIPTORS, backendDescriptor } from '../../backends/factory.js';
import { RUN_ID_RE } from '../../identity/run-id.js';
import { EXIT_OK } from '../io.js';

interface GcFlags {
  backend?: string;
  run?: string;
  force?: boolean;
  dryRun?: boolean;
}

export async function cmdGc(opts: GcFlags): Promise<number> {
  const gc = backendDescriptor(opts.backend === undefined ? 'local' : String(opts.backend))?.gc;
  if (!gc) throw new InputError([{ where: '--backend', message: `must be ${Object.values(BACKEND_DESCRIPTORS).filter((d) => d.gc).map((d) => d.name).join(' or ')}, got '${String(opts.backend)}'` }]);
  if (typeof opts.run === 'string' && !RUN_ID_RE.test(opts.run)) throw new InputError([{ where: '--run', message: `not a run id: '${opts.run}' (5 characters, e.g. k3f9a)` }]);
  for (const line of await gc({ run: opts.run, force: Boolean(opts.force), dryRun: Boolean(opts.dryRun) })) process.stdout.write(`${line}\n`);
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
