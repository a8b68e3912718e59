// What every part of the native probe shares: where the binaries are, its error type, and argument validation.
// The probe is C because Node's event loop would add more to each new-connection sample than the data planes we
// are comparing.
import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { z } from 'zod';
import { BenchError } from '../errors.js';

// This file sits two levels below the package root both as src/probe/spec.ts and as dist/probe/spec.js.
const PACKAGE_ROOT = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
export const PROBE_BIN = join(PACKAGE_ROOT, 'dist', 'native', 'cb-probe');
export const CONNECT_LOOP_BIN = join(PACKAGE_ROOT, 'dist', 'native', 'connect-loop');

export const PROBE_MISSING_HINT =
  `the native probe is not built (expected ${PROBE_BIN} and ${CONNECT_LOOP_BIN}); ` +
  `run 'npm run build' (needs gcc) or 'bash scripts/setup.sh' to install the toolchain and build it`;

export class NativeProbeError extends BenchError {
  constructor(message: string) {
    super('probe', message);
  }
}

export function probeAvailable(): boolean {
  return existsSync(PROBE_BIN) && existsSync(CONNECT_LOOP_BIN);
}

export function assertProbeAvailable(): void {
  if (!probeAvailable()) throw new NativeProbeError(PROBE_MISSING_HINT);
}

export const portSchema = z.number().int().min(1).max(65535);
export const cpusSchema = z.array(z.number().int().min(0).max(1023)).min(1).optional();
export const ipSchema = z.union([z.ipv4(), z.ipv6()]);
export const nonNegInt = z.number().int().nonnegative();

/** Where a probe process may run (cb-probe --cpu). */
export interface Placement {
  cpus?: number[];
}

export const cpuArgs = (cpus: number[] | undefined) => (cpus ?? []).flatMap((c) => ['--cpu', String(c)]);

function formatIssues(error: z.ZodError): string {
  return error.issues.map((i) => `${i.path.length ? i.path.join('.') : '(root)'}: ${i.message}`).join('; ');
}

export function validate<T>(schema: z.ZodType<T>, value: unknown, what: string): T {
  const r = schema.safeParse(value);
  if (!r.success) throw new NativeProbeError(`${what}: ${formatIssues(r.error)}`);
  return r.data;
}

/** The last JSON object a probe command printed, parsed, or a NativeProbeError saying what was wrong. */
export function parseJsonOutput(stdout: string, what: string): unknown {
  const text = stdout.trim();
  if (text === '') throw new NativeProbeError(`${what} printed nothing (expected one JSON object)`);
  try {
    return JSON.parse(text);
  } catch (e) {
    const tail = text.length > 80 ? `…${text.slice(-80)}` : text;
    throw new NativeProbeError(`${what} output is not valid JSON (truncated?): ${(e as Error).message}; ends with: ${tail}`);
  }
}
