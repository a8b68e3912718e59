// Live-run detection: a run announces itself with a pid file named by its run id, so `bench gc` and other
// runs know it is alive (its pid still running, not a zombie, not reused) and leave it alone.
import { existsSync, mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { RUN_ID_PATTERN } from './run-id.js';

/** Where live runs announce themselves, so `bench gc` leaves them alone. */
export const RUN_LOCK_DIR = '/run/cni-bench';

/** Files in the lock directory: `<run-id>.pid`, `<run-id>.kept`, `<run-id>.server.log`. */
export const LOCK_FILE_RE = new RegExp(`^(${RUN_ID_PATTERN})\\.(pid|kept|server\\.log)$`);
const PID_FILE_RE = new RegExp(`^(${RUN_ID_PATTERN})\\.pid$`);

/** Start time of a process (clock ticks since boot, /proc/<pid>/stat field 22) and whether it is a zombie. */
function procState(pid: number): { state: string; startTime: string } | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // comm (field 2) may hold spaces and parentheses; the fields after the last ')' are fixed.
    const rest = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return { state: rest[0] ?? '?', startTime: rest[19] ?? '' };
  } catch {
    return undefined;
  }
}

/**
 * Is the process that wrote a lock still running? A zombie (killed, not yet reaped by its parent) is not, and a
 * pid reused by another process since (its start time differs from the one in the lock) is not either.
 */
export function processAlive(pid: number, startTime?: string): boolean {
  if (existsSync('/proc/self/stat')) {
    const st = procState(pid);
    if (!st) return false;
    if (st.state === 'Z' || st.state === 'X') return false;
    return startTime === undefined || startTime === '' || st.startTime === startTime;
  }
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/** A lock file's contents: `<pid> [<start time>]`. */
export function lockHolder(text: string): { pid: number; startTime?: string } | undefined {
  const [pid, startTime] = text.trim().split(/\s+/);
  const n = Number(pid);
  return Number.isInteger(n) && n > 0 ? { pid: n, startTime } : undefined;
}

/** What a lock file records about this process. */
export function lockContent(pid = process.pid): string {
  return `${pid} ${procState(pid)?.startTime ?? ''}`.trim() + '\n';
}

/** Is the lock at `file` held by a running process other than this one? */
export function lockLive(file: string): boolean {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch {
    return false;
  }
  const h = lockHolder(text);
  return h !== undefined && h.pid !== process.pid && processAlive(h.pid, h.startTime);
}

export function liveRuns(lockDir = RUN_LOCK_DIR): Set<string> {
  const live = new Set<string>();
  if (!existsSync(lockDir)) return live;
  for (const f of readdirSync(lockDir)) {
    const m = PID_FILE_RE.exec(f);
    if (m && lockLive(`${lockDir}/${f}`)) live.add(m[1]!);
  }
  return live;
}

/** What `--keep` left up: recorded so `bench gc --run <id>` knows it is no longer anyone's live run. */
export interface KeptRun {
  runId: string;
  keptAt: string;
  namespaces: string[];
  /** The detached probe server left serving in the server pod. */
  serverPid: number | null;
}

/** Replaces the run's live lock by a record of what was kept. */
export function recordKeptRun(k: KeptRun, lockDir = RUN_LOCK_DIR): string {
  mkdirSync(lockDir, { recursive: true });
  const file = `${lockDir}/${k.runId}.kept`;
  writeFileSync(file, `${JSON.stringify(k, null, 2)}\n`);
  rmSync(`${lockDir}/${k.runId}.pid`, { force: true });
  return file;
}

/** Marks a run as live for `bench gc` (a pid file named by the run id). */
export function announceRun(runId: string, lockDir = RUN_LOCK_DIR): void {
  mkdirSync(lockDir, { recursive: true });
  writeFileSync(`${lockDir}/${runId}.pid`, lockContent());
}

/** Removes the run's lock (and a --keep record). */
export function releaseRun(runId: string, lockDir = RUN_LOCK_DIR): void {
  rmSync(`${lockDir}/${runId}.pid`, { force: true });
  rmSync(`${lockDir}/${runId}.kept`, { force: true });
  rmSync(`${lockDir}/${runId}.server.log`, { force: true });
}
