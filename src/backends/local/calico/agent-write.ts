// One write of a Felix-style agent to the kernel (ipset restore, iptables-restore, nft -f), as the Calico-family
// models run it: with a timeout sized to the work rather than a blanket one, and with progress on the caller's
// step line while a write runs longer than a few seconds (at 50000 policies one write takes minutes).
//
// Where the time of a large write goes, measured on this 2-vCPU VM (perf, see the README's "Install time"):
// the kernel finds ipsets and nft sets by name in a list (ip_set_create/ip_set_ad, xt_set's get-by-name for every
// `--match-set` rule, nf_tables' nft_set_lookup for every set, rule and element), iptables-nft-restore inserts the
// chain named by each command into a sorted list (nft-cache.c cache_chain_list_insert), and an interval set's
// element insert yields the CPU (nft_rbtree_insert's cond_resched). So each write costs about (commands ×
// names) plus, for interval sets, a yield per element — quadratic in the policy count, and what Felix pays too,
// since it runs the same binaries with the same input.
import { cpus, loadavg } from 'node:os';
import type { CommandResult, CommandSpec, Runner } from '../../../exec/runner.js';
import type { Progress } from '../../types.js';

// The cost model, calibrated on this 2-vCPU VM at a load average of about 2 (10000 policies: ipset restore 2.6 s,
// iptables-nft-restore 3.3 s, nft table listing 4.2 s; an interval-set transaction of 10000 sets 30 s at load 13):
// it overestimates each by 1.3-4×.
/** Per name comparison the kernel or the restore tool makes, ms. */
const MS_PER_NAME_COMPARISON = 3.5e-5;
/** Per element of an interval set: its insert yields the CPU (a scheduler slice whenever anything else wants it), ms. */
const MS_PER_INTERVAL_ELEMENT = 1;
/** Per line of input, ms (parsing, netlink messages). */
const MS_PER_LINE = 0.05;
/**
 * A timeout is this many times the expected time, times how much busier than one task per CPU the machine is
 * (the load average over its CPUs): a loaded machine still finishes, a hung command is still caught.
 */
const TIMEOUT_FACTOR = 10;
const MIN_TIMEOUT_MS = 120_000;

/** The work of one write: what the cost model counts. */
export interface WriteWork {
  /** Input lines (commands). */
  lines: number;
  /** Name comparisons the kernel or the tool makes looking names up in lists (e.g. rules × chains). */
  nameComparisons: number;
  /** Elements written into interval sets. */
  intervalElements?: number;
}

/** What a write is expected to take on a machine with a task per CPU, ms. */
export function expectedWriteMs(w: WriteWork): number {
  return w.lines * MS_PER_LINE + w.nameComparisons * MS_PER_NAME_COMPARISON + (w.intervalElements ?? 0) * MS_PER_INTERVAL_ELEMENT;
}

/** The timeout of a write: TIMEOUT_FACTOR × the expected time × the machine's load per CPU (at least 1), at least MIN_TIMEOUT_MS. */
export function writeTimeoutMs(w: WriteWork, loadPerCpu = loadavg()[0]! / Math.max(1, cpus().length)): number {
  return Math.max(MIN_TIMEOUT_MS, Math.ceil(TIMEOUT_FACTOR * Math.max(1, loadPerCpu) * expectedWriteMs(w)));
}

/** When a running write is first reported, how often after that, and how often once it has run for minutes. */
const FIRST_NOTICE_MS = 5_000;
const NOTICE_EVERY_MS = 15_000;
const LONG_WRITE_MS = 120_000;
const LONG_NOTICE_EVERY_MS = 60_000;

const seconds = (ms: number): string => `${(ms / 1000).toFixed(ms < 10_000 ? 1 : 0)} s`;

/**
 * Runs `spec` and, while it runs longer than FIRST_NOTICE_MS, reports `what` with the time so far every
 * NOTICE_EVERY_MS (every LONG_NOTICE_EVERY_MS after LONG_WRITE_MS) on `progress`, and its duration when it ends.
 * Short writes print nothing.
 */
export async function runWrite(runner: Runner, spec: CommandSpec, progress: Progress | undefined, what: string): Promise<CommandResult> {
  if (!progress || runner.dryRun) return runner.run(spec);
  const started = performance.now();
  let noticed = false;
  const notice = (): void => {
    noticed = true;
    progress.step(`${what}: running for ${seconds(performance.now() - started)}${spec.timeoutMs ? ` (timeout ${seconds(spec.timeoutMs)})` : ''}`);
  };
  let timer: NodeJS.Timeout | undefined = setTimeout(function tick() {
    notice();
    timer = setTimeout(tick, performance.now() - started < LONG_WRITE_MS ? NOTICE_EVERY_MS : LONG_NOTICE_EVERY_MS);
    timer.unref();
  }, FIRST_NOTICE_MS);
  timer.unref();
  let ok = false;
  try {
    const r = await runner.run(spec);
    ok = r.exitCode === 0 && !r.timedOut;
    return r;
  } finally {
    clearTimeout(timer);
    if (noticed) progress.step(`${what}: ${ok ? 'done in' : 'failed after'} ${seconds(performance.now() - started)}`);
  }
}
