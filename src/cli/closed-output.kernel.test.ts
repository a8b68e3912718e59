// `bench run … | head` and `bench enforce … | head` on the kernel: the reader goes away after the first progress line
// (stdout and stderr both closed); the run still tears everything down and writes its result file.
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect } from 'vitest';
import { itKernel, namespacesOfRun } from '../backends/local/test-support/kernel.js';
import { RUN_LOCK_DIR } from '../identity/locks.js';
import { benchWithClosedOutput } from './test-support/closed-output.js';
import { tempDir } from '../test-support/temp.js';

describe('closed output during a run', () => {
  for (const [command, file, extra] of [
    ['run', 'result.json', ['--samples', '400', '--warmup', '0']],
    ['enforce', 'enforce-result.json', ['--repetitions', '1', '--changes', 'allow-added']],
  ] as const) {
    itKernel(`bench ${command} with stdout and stderr closed after its first line: torn down, result written`, async () => {
      const out = tempDir('cb-closed-');
      const r = await benchWithClosedOutput([command, '--cni', 'calico', '--policies', '20', '--backend', 'local', '--out', out, ...extra], { both: true, closeAfterStderr: true });
      expect(r.signal).toBeNull();
      const [runId] = readdirSync(out);
      expect(runId, `no run directory; stderr: ${r.stderr}`).toBeDefined();
      expect(namespacesOfRun(runId!)).toEqual([]);
      expect(existsSync(join(RUN_LOCK_DIR, `${runId}.pid`))).toBe(false);
      const result = JSON.parse(readFileSync(join(out, runId!, file), 'utf8')) as { status: string; errors: unknown[] };
      expect(result.errors).toEqual([]);
    });
  }
});
