// Vitest global setup (scripts/vitest.config.ts): one temp directory for the whole test run, the TMPDIR the test
// workers inherit; temp-guard.ts gives each test file a directory inside it. Removed when the run ends, with
// whatever a file that failed before its afterAll left there.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export default function setup(): () => void {
  const previous = process.env.TMPDIR;
  // The system temp directory, for what a test keeps on purpose for a person to look at (the report's screenshot).
  process.env.CB_TEST_SYSTEM_TMPDIR = tmpdir();
  const run = mkdtempSync(join(tmpdir(), 'cni-bench-test-'));
  process.env.TMPDIR = run;
  return () => {
    rmSync(run, { recursive: true, force: true });
    if (previous === undefined) delete process.env.TMPDIR;
    else process.env.TMPDIR = previous;
  };
}
