// Finds and removes what killed local runs left behind: namespaces (and with them their links, rules, ipsets
// and tc programs), BPF pins, stale run locks and records of runs left up with --keep. Live runs (their pid still
// running, not a zombie, not a reused pid) are left alone.
import { existsSync, readdirSync, rmSync } from 'node:fs';
import type { Runner } from '../../exec/runner.js';
import { NETNS_RE, RUN_RESOURCE_RE, runResourceName } from '../../identity/run-id.js';
import { LOCK_FILE_RE, liveRuns, releaseRun, RUN_LOCK_DIR } from '../../identity/locks.js';

export const BPF_PIN_ROOT = '/sys/fs/bpf';

export interface Leftovers {
  runs: Map<string, { namespaces: string[]; pins: string[]; live: boolean; locks: string[]; kept: boolean }>;
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
      const m = LOCK_FILE_RE.exec(f);
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
      const m = RUN_RESOURCE_RE.exec(f);
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

/** Names of what the kernel still holds of a run: namespaces and BPF pins. Empty when teardown was complete. */
export async function remainsOfRun(runner: Runner, runId: string, pinRoot = BPF_PIN_ROOT): Promise<string[]> {
  const r = await runner.run({ argv: ['ip', 'netns', 'list'], allowFailure: true });
  const left = r.stdout
    .split('\n')
    .map((l) => l.split(' ')[0] ?? '')
    .filter((n) => n.startsWith(`${runResourceName(runId)}-`));
  const pin = `${pinRoot}/${runResourceName(runId)}`;
  if (existsSync(pin)) left.push(pin);
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
