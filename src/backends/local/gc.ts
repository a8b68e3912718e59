// Finds and removes what killed local runs left behind: namespaces (and with them their links, rules, ipsets
// and tc programs), BPF pins, the run's cgroup v2 directory (where socket-level service load balancers attach),
// stale run locks and records of runs left up with --keep. Live runs (their pid still running, not a zombie, not
// a reused pid) are left alone.
import { existsSync, readdirSync, rmSync } from 'node:fs';
import type { Runner } from '../../exec/runner.js';
import { NETNS_RE, RUN_RESOURCE_RE, runResourceName } from '../../identity/run-id.js';
import { LOCK_FILE_RE, liveRuns, releaseRun, RUN_LOCK_DIR } from '../../identity/locks.js';
import { cgroup2Root, removeCgroupTree, runCgroupDir, runCgroups } from './cgroup.js';

export const BPF_PIN_ROOT = '/sys/fs/bpf';

export interface Leftovers {
  runs: Map<string, { namespaces: string[]; pins: string[]; cgroups: string[]; live: boolean; locks: string[]; kept: boolean }>;
}

/** Where gc looks: the system's places by default; tests give their own. */
export interface GcPlaces {
  pinRoot?: string;
  lockDir?: string;
  /** The cgroup2 mount; by default the system's, and only when the lock directory is the system's too. */
  cgroupRoot?: string;
}

/** A lock directory of its own (a test) must not judge the system's cgroups: without its own root, gc skips them. */
function cgroupRootOf(opts: GcPlaces): string | undefined {
  return opts.cgroupRoot ?? (opts.lockDir === undefined ? cgroup2Root() : undefined);
}

export async function findLeftovers(runner: Runner, opts: GcPlaces = {}): Promise<Leftovers> {
  const runs: Leftovers['runs'] = new Map();
  const live = liveRuns(opts.lockDir);
  const entry = (id: string) => {
    let e = runs.get(id);
    if (!e) runs.set(id, (e = { namespaces: [], pins: [], cgroups: [], live: live.has(id), locks: [], kept: false }));
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
  const cgroupRoot = cgroupRootOf(opts);
  if (cgroupRoot) for (const [id, dir] of runCgroups(cgroupRoot)) entry(id).cgroups.push(dir);
  return { runs };
}

/** Kills whatever still runs inside a namespace (probe servers, a killed run's orphans). */
export async function killNamespaceProcesses(runner: Runner, netns: string): Promise<void> {
  const r = await runner.run({ argv: ['ip', 'netns', 'pids', netns], allowFailure: true });
  const pids = r.stdout.split(/\s+/).filter(Boolean);
  if (pids.length) await runner.run({ argv: ['kill', '-9', ...pids], allowFailure: true, purpose: `stop processes in ${netns}` });
}

/** Names of what the kernel still holds of a run: namespaces, BPF pins, its cgroup. Empty when teardown was complete. */
export async function remainsOfRun(runner: Runner, runId: string, pinRoot = BPF_PIN_ROOT, cgroupRoot = cgroup2Root()): Promise<string[]> {
  const r = await runner.run({ argv: ['ip', 'netns', 'list'], allowFailure: true });
  const left = r.stdout
    .split('\n')
    .map((l) => l.split(' ')[0] ?? '')
    .filter((n) => n.startsWith(`${runResourceName(runId)}-`));
  const pin = `${pinRoot}/${runResourceName(runId)}`;
  if (existsSync(pin)) left.push(pin);
  const cgroup = runCgroupDir(cgroupRoot, runId);
  if (existsSync(cgroup)) left.push(cgroup);
  return left;
}

export interface GcReport {
  removed: { runId: string; namespaces: string[]; pins: string[]; cgroups: string[]; locks: string[]; kept: boolean }[];
  skippedLive: string[];
}

/** Removes leftovers; `only` limits it to one run id; `force` also removes runs whose process is alive. */
export async function collectGarbage(runner: Runner, opts: { only?: string; force?: boolean; dryRun?: boolean } & GcPlaces = {}): Promise<GcReport> {
  const { runs } = await findLeftovers(runner, opts);
  const report: GcReport = { removed: [], skippedLive: [] };
  for (const [runId, e] of [...runs].sort(([a], [b]) => a.localeCompare(b))) {
    if (opts.only && runId !== opts.only) continue;
    if (e.live && !opts.force) {
      report.skippedLive.push(runId);
      continue;
    }
    report.removed.push({ runId, namespaces: e.namespaces, pins: e.pins, cgroups: e.cgroups, locks: e.locks, kept: e.kept });
    if (opts.dryRun) continue;
    for (const ns of e.namespaces) await killNamespaceProcesses(runner, ns);
    // Pods first, nodes, then the switch: the order a run tears down in.
    const order = (n: string) => (n.endsWith('-sw') ? 2 : /-n\d+$/.test(n) ? 1 : 0);
    for (const ns of [...e.namespaces].sort((a, b) => order(a) - order(b))) {
      await runner.run({ argv: ['ip', 'netns', 'delete', ns], allowFailure: true, purpose: `delete namespace ${ns}` });
    }
    for (const pin of e.pins) rmSync(pin, { recursive: true, force: true });
    // After the namespaces: the cgroup's processes (a killed run's clients) are gone or killed here.
    for (const dir of e.cgroups) removeCgroupTree(dir);
    releaseRun(runId, opts.lockDir);
    for (const lock of e.locks) rmSync(lock, { force: true });
  }
  return report;
}

/** What `bench gc` prints: per run, what was (or would be) removed — namespaces, BPF pins, cgroups, its lock — then the runs left alone. */
export function gcSummary(report: GcReport, dryRun: boolean): string[] {
  const out: string[] = [];
  if (report.removed.length === 0) out.push('nothing to remove');
  for (const r of report.removed) {
    const what = [`${r.namespaces.length} namespaces`, ...(r.pins.length ? [`BPF pins ${r.pins.join(' ')}`] : []), ...(r.cgroups.length ? [`cgroup ${r.cgroups.join(' ')}`] : []), ...(r.kept ? ['the --keep record'] : r.locks.length ? ['its stale lock'] : [])];
    out.push(`${dryRun ? 'would remove' : 'removed'} run ${r.runId}${r.kept ? ' (left up with --keep)' : ''}: ${what.join(', ')}`);
    for (const ns of r.namespaces) out.push(`  netns ${ns}`);
  }
  for (const id of report.skippedLive) out.push(`skipped run ${id}: its process is still running (use --force to remove anyway)`);
  return out;
}
