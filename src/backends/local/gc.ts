// Finds and removes what killed local runs left behind: namespaces (and with them their links, rules, ipsets
// and tc programs), BPF pins, and stale run locks. Live runs (their pid still running) are left alone.
import { existsSync, mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import type { Runner } from '../../exec/runner.js';
import { NETNS_RE } from './topology.js';

/** Where live runs announce themselves, so `bench gc` leaves them alone. */
export const RUN_LOCK_DIR = '/run/cni-bench';

export const BPF_PIN_ROOT = '/sys/fs/bpf';
const PIN_RE = /^cb-([a-z][a-z0-9]{4})$/;

export interface Leftovers {
  runs: Map<string, { namespaces: string[]; pins: string[]; live: boolean }>;
}

function pidAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'EPERM';
  }
}

export function liveRuns(lockDir = RUN_LOCK_DIR): Set<string> {
  const live = new Set<string>();
  if (!existsSync(lockDir)) return live;
  for (const f of readdirSync(lockDir)) {
    const m = /^([a-z][a-z0-9]{4})\.pid$/.exec(f);
    if (!m) continue;
    const pid = Number(readFileSync(`${lockDir}/${f}`, 'utf8').trim());
    if (Number.isInteger(pid) && pid > 0 && pid !== process.pid && pidAlive(pid)) live.add(m[1]!);
  }
  return live;
}

export async function findLeftovers(runner: Runner, opts: { pinRoot?: string; lockDir?: string } = {}): Promise<Leftovers> {
  const runs: Leftovers['runs'] = new Map();
  const live = liveRuns(opts.lockDir);
  const entry = (id: string) => {
    let e = runs.get(id);
    if (!e) runs.set(id, (e = { namespaces: [], pins: [], live: live.has(id) }));
    return e;
  };
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
  writeFileSync(`${lockDir}/${runId}.pid`, `${process.pid}\n`);
}

export function releaseRun(runId: string, lockDir = RUN_LOCK_DIR): void {
  rmSync(`${lockDir}/${runId}.pid`, { force: true });
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
  removed: { runId: string; namespaces: string[]; pins: string[] }[];
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
    report.removed.push({ runId, namespaces: e.namespaces, pins: e.pins });
    if (opts.dryRun) continue;
    for (const ns of e.namespaces) await killNamespaceProcesses(runner, ns);
    // Pods first, nodes, then the switch: the order a run tears down in.
    const order = (n: string) => (n.endsWith('-sw') ? 2 : /-n\d+$/.test(n) ? 1 : 0);
    for (const ns of [...e.namespaces].sort((a, b) => order(a) - order(b))) {
      await runner.run({ argv: ['ip', 'netns', 'delete', ns], allowFailure: true, purpose: `delete namespace ${ns}` });
    }
    for (const pin of e.pins) rmSync(pin, { recursive: true, force: true });
    releaseRun(runId, opts.lockDir);
  }
  return report;
}
