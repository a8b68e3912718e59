#!/usr/bin/env node
// The `bench` command. Every command lives in commands/<name>.ts and stays thin: parse, validate, hand over to the
// modules that do the work, set the exit code. Usage errors exit 2; a failed run or check exits 1.
import { Command, CommanderError } from 'commander';
import { readFileSync, realpathSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { InputError } from '../errors.js';
import { EXIT_FAIL, EXIT_OK, EXIT_USAGE, processIo, reportUsage } from './io.js';
import { installGuards } from './guards.js';
import { keepRunningOnClosedOutput } from './process.js';
import { register as registerRun } from './commands/run.js';
import { register as registerPolicies } from './commands/policies.js';
import { register as registerGc } from './commands/gc.js';
import { register as registerDoctor } from './commands/doctor.js';
import { register as registerVerify } from './commands/verify.js';
import { register as registerSweep } from './commands/sweep.js';
import { register as registerReport } from './commands/report.js';
import { register as registerCompare } from './commands/compare.js';
import { register as registerEnforce } from './commands/enforce.js';
import { register as registerSnapshot } from './commands/snapshot.js';

function packageVersion(): string {
  // main.ts sits two levels below the package root both as src/cli/main.ts and as dist/cli/main.js.
  return (JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { version: string }).version;
}

export function buildProgram(): Command {
  const program = new Command('bench')
    .description('Measure Kubernetes CNI data planes: is NetworkPolicy enforced, and what does a new connection cost as policies grow?')
    .version(packageVersion(), '-V, --version', 'print the version of cni-bench')
    .exitOverride()
    .showHelpAfterError('(run with --help for usage)');
  for (const register of [registerRun, registerPolicies, registerGc, registerDoctor, registerSweep, registerVerify, registerReport, registerCompare, registerEnforce, registerSnapshot]) register(program);
  installGuards(program);
  return program;
}

export async function main(argv: string[]): Promise<number> {
  const program = buildProgram();
  try {
    await program.parseAsync(argv);
    return typeof process.exitCode === 'number' ? process.exitCode : EXIT_OK;
  } catch (e) {
    if (e instanceof CommanderError) return e.exitCode === 0 ? EXIT_OK : EXIT_USAGE;
    if (e instanceof InputError) return reportUsage(processIo(), e.problems);
    process.stderr.write(`bench: ${(e as Error).message}\n`);
    return EXIT_FAIL;
  }
}

function invokedDirectly(): boolean {
  try {
    return process.argv[1] !== undefined && realpathSync(process.argv[1]) === fileURLToPath(import.meta.url);
  } catch {
    return false;
  }
}
if (invokedDirectly()) {
  keepRunningOnClosedOutput();
  main(process.argv).then((code) => {
    process.exitCode = code;
  });
}
