import { defineConfig } from 'vitest/config';
import { fileURLToPath } from 'node:url';

// Unit tests run in parallel; kernel tests build namespaces and measure latency, so they run one file at a
// time to keep timing-sensitive assertions away from each other's load.
const root = fileURLToPath(new URL('..', import.meta.url));
// Every test file runs with a temp directory of its own and fails if it leaves a cb-* directory there.
const setupFiles = ['src/test-support/temp-guard.ts'];

export default defineConfig({
  test: {
    root,
    // One temp directory for the run, TMPDIR of every test process (src/test-support/temp-run.ts).
    globalSetup: ['src/test-support/temp-run.ts'],
    projects: [
      {
        test: {
          name: 'unit',
          root,
          include: ['src/**/*.test.ts', 'scripts/**/*.test.mjs'],
          exclude: ['src/**/*.kernel.test.ts', 'node_modules/**'],
          setupFiles,
          // Not vitest's 5 s: the files run in parallel on a shared 2-CPU machine, where tests that take 0.1–2 s
          // quiet took 2–5.3 s (the first CLI call of src/cli/reliability.test.ts timed out at 5 s, 2026-12-07). A
          // hang still fails, at 30 s; a test that asserts speed measures it itself.
          testTimeout: 30_000,
          hookTimeout: 30_000,
        },
      },
      {
        test: {
          name: 'kernel',
          root,
          include: ['src/**/*.kernel.test.ts'],
          fileParallelism: false,
          setupFiles,
          testTimeout: 180_000,
          hookTimeout: 180_000,
        },
      },
    ],
  },
});
