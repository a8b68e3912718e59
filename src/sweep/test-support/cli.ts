// Runs the sweep/report/compare commands in a child process exactly as `bench` wires them (register on a
// commander program), from the built dist/ — so a test can kill it like a user would.
import { execa, type ResultPromise } from 'execa';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { PACKAGE_ROOT } from '../../metrics/machine.js';

const COMMANDS = join(PACKAGE_ROOT, 'dist', 'cli', 'commands');

const ENTRY = `
import { Command } from 'commander';
const program = new Command('bench').exitOverride();
for (const m of ['sweep', 'report', 'compare']) (await import(${JSON.stringify(`file://${COMMANDS}/`)} + m + '.js')).register(program);
await program.parseAsync(process.argv.slice(1), { from: 'user' });
`;

export function benchCommand(args: string[], opts: { timeout?: number } = {}): ResultPromise<{ reject: false }> {
  if (!existsSync(join(COMMANDS, 'sweep.js'))) throw new Error(`${COMMANDS}/sweep.js missing: run npm run build first`);
  return execa(process.execPath, ['--input-type=module', '-e', ENTRY, ...args], { reject: false, timeout: opts.timeout ?? 180_000, cwd: PACKAGE_ROOT, env: { CI: process.env.CI ?? '' } }) as ResultPromise<{ reject: false }>;
}
