// Throw-away directories for tests, and the guard that no test file leaves one behind.
//
// The guard (temp-guard.ts, a vitest setup file) points TMPDIR of the test process at a directory of its own for
// each test file, inside the run's (temp-run.ts), so os.tmpdir() there names it and nothing else writes into it; when the file's tests are done,
// any `cb-*` entry still in it is a directory some test made and did not remove, and the file fails.
import { mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const made: string[] = [];

/** A new empty directory under the temp directory, removed when the test file's tests are done (temp-guard.ts),
 *  so it may be made at module level, in a describe body or in a test alike. */
export function tempDir(prefix = 'cb-test-'): string {
  const dir = mkdtempSync(join(tmpdir(), prefix));
  made.push(dir);
  return dir;
}

/** Removes every directory tempDir() made so far. */
export function removeTempDirs(): void {
  for (const dir of made.splice(0)) rmSync(dir, { recursive: true, force: true });
}

/** The `cb-*` entries left in dir: what the test file made there and did not remove. */
export function leftovers(dir: string): string[] {
  return readdirSync(dir).filter((name) => name.startsWith('cb-')).sort();
}
