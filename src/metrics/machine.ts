// What machine a result came from, and kernel CPU accounting over a measured window.
import { cpus, hostname, loadavg, release, totalmem } from 'node:os';
import { readFileSync } from 'node:fs';
import { execFileSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { dirname, join } from 'node:path';

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

export function toolInfo(): { name: string; version: string; gitCommit: string | null } {
  const pkg = JSON.parse(readFileSync(join(PACKAGE_ROOT, 'package.json'), 'utf8')) as { name: string; version: string };
  let gitCommit: string | null = null;
  try {
    gitCommit = execFileSync('git', ['-C', PACKAGE_ROOT, 'rev-parse', 'HEAD'], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).trim();
  } catch {
    gitCommit = null;
  }
  return { name: pkg.name, version: pkg.version, gitCommit };
}

/** Machine-wide CPU time from /proc/stat, in nanoseconds (USER_HZ ticks converted). */
export interface CpuTimes {
  busyNs: number;
  softirqNs: number;
}

const USER_HZ = 100;

export function parseProcStat(text: string): CpuTimes {
  const line = text.split('\n').find((l) => l.startsWith('cpu '));
  if (!line) throw new Error('/proc/stat has no aggregate cpu line');
  // user nice system idle iowait irq softirq steal guest guest_nice
  const f = line.trim().split(/\s+/).slice(1).map(Number);
  const [user = 0, nice = 0, system = 0, , , irq = 0, softirq = 0, steal = 0] = f;
  const tick = 1e9 / USER_HZ;
  return { busyNs: (user + nice + system + irq + softirq + steal) * tick, softirqNs: softirq * tick };
}

export function readCpuTimes(): CpuTimes {
  return parseProcStat(readFileSync('/proc/stat', 'utf8'));
}

/** utime+stime of a process, nanoseconds, from /proc/<pid>/stat (its children included once reaped). */
export function parsePidStat(text: string): number {
  // Field 2 (comm) may contain spaces; fields after the last ')' are fixed.
  const rest = text.slice(text.lastIndexOf(')') + 2).split(' ');
  const utime = Number(rest[11]);
  const stime = Number(rest[12]);
  return ((utime + stime) * 1e9) / USER_HZ;
}

export function readProcessCpuNs(pid: number): number | null {
  try {
    return parsePidStat(readFileSync(`/proc/${pid}/stat`, 'utf8'));
  } catch {
    return null;
  }
}
