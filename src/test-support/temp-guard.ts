// Vitest setup file (scripts/vitest.config.ts): every test file gets a temp directory of its own as TMPDIR, and
// fails if it leaves a `cb-*` entry there. Set at module level, before the test file is imported, so a directory
// the test file makes at import time lands in it too; child processes the tests start inherit it.
// Only this test file writes there, so other processes' directories in the system temp directory are never judged.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { basename, join } from 'node:path';
import { afterAll } from 'vitest';
import { leftovers, removeTempDirs } from './temp.js';

const previous = process.env.TMPDIR;
// Inside the run's directory (temp-run.ts), which goes at the end of the run with whatever a file that failed
// while being collected (it runs no afterAll) left.
const own = mkdtempSync(join(tmpdir(), 'file-'));
process.env.TMPDIR = own;

afterAll(() => {
  removeTempDirs();
  const left = leftovers(own);
  if (previous === undefined) delete process.env.TMPDIR;
  else process.env.TMPDIR = previous;
  rmSync(own, { recursive: true, force: true });
  if (left.length > 0) {
    throw new Error(
      `this test file left ${left.length} temp dir(s) behind: ${left.join(', ')} (in ${basename(own)}). ` +
        'Make them with tempDir() from src/test-support/temp.ts, or remove them in afterEach/afterAll/finally.',
    );
  }
});
