// The built CLI with its output closed by the reader, as `bench … | head` sees it (closed-output tests).
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { PACKAGE_ROOT } from '../../metrics/machine.js';

export const BENCH = join(PACKAGE_ROOT, 'dist', 'cli', 'main.js');

/** The built CLI with stdout closed at once, or (closeAfterStderr) at its first stderr output, with stderr too when `both`. */
export function benchWithClosedOutput(argv: string[], o: { both?: boolean; closeAfterStderr?: boolean } = {}): Promise<{ code: number | null; signal: string | null; stderr: string }> {
  if (!existsSync(BENCH)) throw new Error(`${BENCH} missing: run npm run build first`);
  const child = spawn(process.execPath, [BENCH, ...argv], { stdio: ['ignore', 'pipe', 'pipe'] });
  let stderr = '';
  if (!o.closeAfterStderr) child.stdout.destroy();
  child.stderr.on('data', (d: Buffer) => {
    stderr += d.toString();
    if (o.closeAfterStderr) {
      child.stdout.destroy();
      if (o.both) child.stderr.destroy();
    }
  });
  return new Promise((resolve) => child.on('close', (code, signal) => resolve({ code, signal, stderr })));
}
