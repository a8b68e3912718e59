// Finds and removes what killed local runs left behind: namespaces (and with them their links, rules, ipsets
// and tc programs), BPF pins, stale run locks and records of runs left up with --keep. Live runs (their pid still
// running, not a zombie, not a reused pid) are left alone.
import { existsSync, mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import type { Runner } from '../../exec/runner.js';
import { NETNS_RE } from './topology.js';

/** Where live runs announce themselves, so `bench gc` leaves them alone. */
export const RUN_LOCK_DIR = '/run/cni-bench';

export const BPF_PIN_ROOT = '/sys/fs/bpf';
const PIN_RE = /^cb-([a-z][a-z0-9]{4})$/;

export interface Leftovers {
  runs: Map<string, { namespaces: string[]; pins: string[]; live: boolean; locks: string[]; kept: boolean }>;
}

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
    const m = /^([a-z][a-z0-9]{4})\.pid$/.exec(f);
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

export async function findLeftovers(runner: Runner, opts: { pinRoot?: string; lockDir?: string } = {}): Promise<Leftovers> {
  const runs: Leftovers['runs'] = new Map();
  const live = liveRuns(opts.lockDir);
  const entry = (id: string) => {
    let e = runs.get(id);
    if (!e) runs.set(id, (e = { namespaces: [], pins: [], live: live.has(id), locks: [], kept: false }));
    return e;
  };
  // Locks of runs that are gone (dead or zombie holder), and records of runs left up with --keep.
  const lockDir = opts.lockDir ?? RUN_LOCK_DIR;
  if (existsSync(lockDir)) {
    for (const f of readdirSync(lockDir).sort()) {
      const m = /^([a-z][a-z0-9]{4})\.(pid|kept|server\.log)$/.exec(f);
      if (!m) continue;
      if (live.has(m[1]!)) continue;
      const e = entry(m[1]!);
      e.locks.push(`${lockDir}/${f}`);
      if (m[2] === 'kept') e.kept = true;
    }
  }
  const r = await runner.run({ argv: ['ip', 'netns', 'list'], allowFailure: true });
  for (const line of r.stdout.split('\n')) {
    const name = line.split(' ')[0] ?? '';
    const m = NETNS_RE.exec(name);
    if (m) entry(m[1]!).namespaces.push(name);
  }
  const pinRoot = opts.pinRoot ?? BPF_PIN_ROOT;
  if (existsSync(pinRoot)) {
    for (const f of readdirSync(pinRoot)) {
      const m = PIN_RE.exec(f);
      if (m) entry(m[1]!).pins.push(`${pinRoot}/${f}`);
    }
  }
  return { runs };
}

/** Kills whatever still runs inside a namespace (probe servers, a killed run's orphans). */
export async function killNamespaceProcesses(runner: Runner, netns: string): Promise<void> {
  const r = await runner.run({ argv: ['ip', 'netns', 'pids', netns], allowFailure: true });
  const pids = r.stdout.split(/\s+/).filter(Boolean);
  if (pids.length) await runner.run({ argv: ['kill', '-9', ...pids], allowFailure: true, purpose: `stop processes in ${netns}` });
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

/** Names of what the kernel still holds of a run: namespaces and BPF pins. Empty when teardown was complete. */
export async function remainsOfRun(runner: Runner, runId: string, pinRoot = BPF_PIN_ROOT): Promise<string[]> {
  const r = await runner.run({ argv: ['ip', 'netns', 'list'], allowFailure: true });
  const left = r.stdout
    .split('\n')
    .map((l) => l.split(' ')[0] ?? '')
    .filter((n) => n.startsWith(`cb-${runId}-`));
  if (existsSync(`${pinRoot}/cb-${runId}`)) left.push(`${pinRoot}/cb-${runId}`);
  return left;
}

export interface GcReport {
  removed: { runId: string; namespaces: string[]; pins: string[]; locks: string[]; kept: boolean }[];
  skippedLive: string[];
}

/** Removes leftovers; `only` limits it to one run id; `force` also removes runs whose process is alive. */
export async function collectGarbage(runner: Runner, opts: { only?: string; force?: boolean; dryRun?: boolean; pinRoot?: string; lockDir?: string } = {}): Promise<GcReport> {
  const { runs } = await findLeftovers(runner, opts);
  const report: GcReport = { removed: [], skippedLive: [] };
  for (const [runId, e] of [...runs].sort(([a], [b]) => a.localeCompare(b))) {
    if (opts.only && runId !== opts.only) continue;
    if (e.live && !opts.force) {
      report.skippedLive.push(runId);
      continue;
    }
    report.removed.push({ runId, namespaces: e.namespaces, pins: e.pins, locks: e.locks, kept: e.kept });
    if (opts.dryRun) continue;
    for (const ns of e.namespaces) await killNamespaceProcesses(runner, ns);
    // Pods first, nodes, then the switch: the order a run tears down in.
    const order = (n: string) => (n.endsWith('-sw') ? 2 : /-n\d+$/.test(n) ? 1 : 0);
    for (const ns of [...e.namespaces].sort((a, b) => order(a) - order(b))) {
      await runner.run({ argv: ['ip', 'netns', 'delete', ns], allowFailure: true, purpose: `delete namespace ${ns}` });
    }
    for (const pin of e.pins) rmSync(pin, { recursive: true, force: true });
    releaseRun(runId, opts.lockDir);
    for (const lock of e.locks) rmSync(lock, { force: true });
  }
  return report;
}
