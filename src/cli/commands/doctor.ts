// `bench doctor`: what this machine needs for each backend, and how to fix what is missing. Exit 1 when the
// local backend is not ready.
import type { Command } from 'commander';
import { EXIT_FAIL, EXIT_OK } from '../io.js';

export async function cmdDoctor(): Promise<number> {
  const [{ runDoctor, formatChecks }, { ExecRunner }] = await Promise.all([import('../doctor.js'), import('../../exec/runner.js')]);
  const checks = await runDoctor(new ExecRunner());
  process.stdout.write(`${formatChecks(checks)}\n`);
  const { BACKEND_DESCRIPTORS } = await import('../../backends/factory.js');
  return checks.filter((c) => BACKEND_DESCRIPTORS[c.for].doctorGate).every((c) => c.ok) ? EXIT_OK : EXIT_FAIL;
}

export function register(program: Command): void {
  program
    .command('doctor')
    .description('check what this machine needs for each backend and how to fix what is missing')
    .action(async () => {
      process.exitCode = await cmdDoctor();
    });
}
