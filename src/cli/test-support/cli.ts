// The bench CLI in-process, for tests: main() as the binary calls it with stdout and stderr captured, a
// CommandIo that writes to strings for the command functions, and throw-away directories.
import { vi } from 'vitest';
import { main } from '../main.js';
import type { CommandIo } from '../io.js';
import { tempDir as testTempDir } from '../../test-support/temp.js';

export interface CliOutcome {
  code: number;
  stdout: string;
  stderr: string;
}

/** `bench <argv…>` through the real entry point; process.exitCode is left as it was found (unset). */
export async function runBench(argv: string[]): Promise<CliOutcome> {
  let stdout = '';
  let stderr = '';
  const out = vi.spyOn(process.stdout, 'write').mockImplementation((s: string | Uint8Array) => ((stdout += String(s)), true));
  const err = vi.spyOn(process.stderr, 'write').mockImplementation((s: string | Uint8Array) => ((stderr += String(s)), true));
  try {
    process.exitCode = undefined;
    const code = await main(['node', 'bench', ...argv]);
    return { code, stdout, stderr };
  } finally {
    out.mockRestore();
    err.mockRestore();
    process.exitCode = undefined;
  }
}

/** A CommandIo that keeps what is written; out() and err() return it so far. */
export function bufferIo(): CommandIo & { out: () => string; err: () => string } {
  let out = '';
  let err = '';
  return { stdout: { write: (s: string) => (out += s) }, stderr: { write: (s: string) => (err += s) }, out: () => out, err: () => err };
}

/** A new empty directory under the temp directory, removed when the test file is done. */
export const tempDir = (prefix = 'cb-cli-') => testTempDir(prefix);
