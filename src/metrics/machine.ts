// What machine a result came from, and /proc/stat parsing (the machine-wide CPU time the kind and cluster backends
// still read from a pod; the local backend counts CPU per task, src/metrics/cpu.ts).
import { cpus, hostname, loadavg, release, totalmem } from 'node:os';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { dirname, join } from 'node:path';
import { ExecRunner, type Runner } from '../exec/runner.js';

export interface MachineInfo {
  hostname: string;
  kernel: string;
  cpuModel: string;
  cpus: number;
  memoryBytes: number;
  loadavg: [number, number, number];
}

export function machineInfo(): MachineInfo {
  const c = cpus();
  const [a, b, d] = loadavg() as [number, number, number];
  return { hostname: hostname(), kernel: release(), cpuModel: c[0]?.model.trim() ?? 'unknown', cpus: c.length, memoryBytes: totalmem(), loadavg: [a, b, d] };
}

export const PACKAGE_ROOT = join(dirname(fileURLToPath(import.meta.url)), '..', '..');

/** The tool's name, version and git commit (null outside a git checkout); git runs through the one runner. */
export async function toolInfo(runner: Runner = new ExecRunner()): Promise<{ name: string; version: string; gitCommit: string | null }> {
  const pkg = JSON.parse(readFileSync(join(PACKAGE_ROOT, 'package.json'), 'utf8')) as { name: string; version: string };
  const r = await runner.run({ argv: ['git', '-C', PACKAGE_ROOT, 'rev-parse', 'HEAD'], allowFailure: true, timeoutMs: 10_000, purpose: "read the tool's git commit" });
  const head = r.stdout.trim();
  return { name: pkg.name, version: pkg.version, gitCommit: r.exitCode === 0 && /^[0-9a-f]{40}$/.test(head) ? head : null };
}

/** Machine-wide CPU time from /proc/stat, in nanoseconds (USER_HZ ticks converted). */
export interface CpuTimes {
  busyNs: number;
  softirqNs: number;
  /** CPUs the kernel counts (its cpuN lines); a tick on each, at each edge of a window, is the resolution. */
  cpus?: number;
}

/** /proc/stat counts in USER_HZ ticks. */
export const USER_HZ = 100;

export function parseProcStat(text: string): CpuTimes {
  const line = text.split('\n').find((l) => l.startsWith('cpu '));
  if (!line) throw new Error('/proc/stat has no aggregate cpu line');
  // user nice system idle iowait irq softirq steal guest guest_nice
  const f = line.trim().split(/\s+/).slice(1).map(Number);
  const [user = 0, nice = 0, system = 0, , , irq = 0, softirq = 0, steal = 0] = f;
  const tick = 1e9 / USER_HZ;
  const cpus = text.split('\n').filter((l) => /^cpu\d+ /.test(l)).length;
  return { busyNs: (user + nice + system + irq + softirq + steal) * tick, softirqNs: softirq * tick, ...(cpus ? { cpus } : {}) };
}
