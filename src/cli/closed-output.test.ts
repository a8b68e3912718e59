// A closed output (`bench … | head`, a pager quit) must not kill the process: it finishes, and writes nothing more
// to the closed stream. The built CLI, as a pipe sees it.
import { describe, expect, it } from 'vitest';
import { benchWithClosedOutput } from './test-support/closed-output.js';

describe('a closed stdout', () => {
  it('does not kill bench with an unhandled EPIPE: the command finishes with its own exit code', async () => {
    const r = await benchWithClosedOutput(['run', '--cni', 'none', '--backend', 'local', '--dry-run', '--policies', '2000']);
    expect(r.stderr).not.toMatch(/EPIPE|Unhandled 'error'/);
    expect(r.code).toBe(0);
  });
});
