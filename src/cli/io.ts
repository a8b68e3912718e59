// What a command writes to; tests pass buffers, the CLI passes the process streams.
import type { Problem } from '../errors.js';

export interface CommandIo {
  stdout: { write(s: string): unknown };
  stderr: { write(s: string): unknown; isTTY?: boolean; columns?: number };
}

export const processIo = (): CommandIo => ({ stdout: process.stdout, stderr: process.stderr });

export const EXIT_OK = 0;
export const EXIT_FAIL = 1;
export const EXIT_USAGE = 2;

/** Every problem of an input error on stderr; the usage exit code. */
export function reportUsage(io: CommandIo, problems: readonly Problem[]): number {
  io.stderr.write(`bench: invalid input\n${problems.map((p) => `  ${p.where}: ${p.message}`).join('\n')}\n`);
  return EXIT_USAGE;
}

export function reportInputProblems(io: CommandIo, problems: Array<{ file: string; message: string }>): void {
  for (const p of problems) io.stderr.write(`bench: skipped ${p.file}: ${p.message}\n`);
}
/** bench compare: a point has fewer repetitions than the gate needs, so nothing could be judged there. */
export const EXIT_INSUFFICIENT = 3;
