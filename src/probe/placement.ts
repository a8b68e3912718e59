// Where the probe's work runs. On a small VM the scheduler's choice of CPUs for client, server and the
// softirq work of the veths moves latencies by multiples between runs (a cross-CPU wake-up costs tens of µs
// there), so by default every part of a connection is put on one CPU and the choice is recorded with the result.
import type { CommandSpec } from '../exec/runner.js';
import type { CpuPlacement } from '../results/schema.js';

/** What the user asked for: a CPU number, 'auto' (the default) or 'off'. */
export type PinCpuChoice = number | 'auto' | 'off';

/**
 * The CPU the auto placement uses: the last one. CPU 0 usually takes the host's device interrupts and timers,
 * the last CPU the fewest.
 */
export const autoCpu = (cpus: number) => Math.max(0, cpus - 1);

export const SOFTIRQ_PINNED = (cpu: number) =>
  `on CPU ${cpu}: receive packet steering (rps_cpus) of every veth in the run's own namespaces is set to CPU ${cpu}, so receive softirqs run where client and server run`;
export const SOFTIRQ_FREE = "wherever the sender runs (veth receive is processed in the sending CPU's softirq; RPS left unset)";

/** Why a pinned server runs SCHED_BATCH (cb-probe server --batch). */
export const BATCH_SERVER =
  "the echo server runs SCHED_BATCH, so its wake-ups never preempt the client inside a timed connect (on one CPU a normal server's wake-up sometimes did and sometimes did not, in phases: connect p50 came in two modes ~50% apart)";

/** Does this placement put client and server on one CPU (and so want the batch server)? */
export const sharesOneCpu = (p: CpuPlacement): boolean => (p.mode === 'auto' || p.mode === 'explicit') && p.cpus?.length === 1;

/** Decides the placement from the choice and the machine; pure, so the reason text is testable. */
export function choosePlacement(choice: PinCpuChoice, cpus: number): CpuPlacement {
  if (choice === 'off') {
    return { mode: 'off', cpus: null, softirq: SOFTIRQ_FREE, reason: '--pin-cpu off: the scheduler places client, server and softirq work; expect run-to-run differences on small or shared machines' };
  }
  if (typeof choice === 'number') {
    return { mode: 'explicit', cpus: [choice], softirq: SOFTIRQ_PINNED(choice), reason: `--pin-cpu ${choice}: client, server and their packets' softirq work on CPU ${choice}, as asked; ${BATCH_SERVER}` };
  }
  const cpu = autoCpu(cpus);
  return {
    mode: 'auto',
    cpus: [cpu],
    softirq: SOFTIRQ_PINNED(cpu),
    reason:
      `default: client, server and their packets' softirq work on one CPU (${cpu}, the last of ${cpus}; CPU 0 takes most host interrupts), ` +
      'so no packet or wake-up crosses CPUs: cross-CPU wake-ups cost tens of µs on a VM and made repeated unpinned runs disagree by multiples; ' +
      BATCH_SERVER,
  };
}

/** Placement record for backends that do not place work (kind, cluster): the pods' CPUs belong to the cluster. */
export const NOT_PLACED: CpuPlacement = { mode: 'n/a', cpus: null, softirq: 'decided by the cluster', reason: 'this backend runs pods on cluster nodes; bench does not place them' };

/** rps_cpus bitmap for one CPU: hex words of 32 bits, most significant first, comma-separated (as sysfs prints it). */
export function cpuMask(cpu: number): string {
  const words = Math.floor(cpu / 32) + 1;
  const out: string[] = [];
  for (let w = words - 1; w >= 0; w--) out.push((w === Math.floor(cpu / 32) ? (1 << cpu % 32) >>> 0 : 0).toString(16).padStart(w === words - 1 ? 1 : 8, '0'));
  return out.join(',');
}

/**
 * Commands that steer receive processing of the given veths to one CPU. Each runs inside the interface's own
 * namespace (ip netns exec mounts that namespace's sysfs), never in the host namespace. The mask and path are
 * passed as arguments, not interpolated into the shell text.
 */
export function planRpsPinning(links: Array<{ netns: string; dev: string }>, cpu: number): CommandSpec[] {
  const mask = cpuMask(cpu);
  return links.map((l) => ({
    argv: ['sh', '-c', 'printf %s "$1" > "$2"', 'rps', mask, `/sys/class/net/${l.dev}/queues/rx-0/rps_cpus`],
    netns: l.netns,
    purpose: `steer ${l.dev} receive softirq to CPU ${cpu}`,
  }));
}
