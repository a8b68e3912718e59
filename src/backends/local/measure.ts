// Measuring a flow on the local backend: cb-probe in the source pod's namespace against the echo server of the
// destination. Warm-up, measured window and the machine's loopback reference run in one invocation; the client
// reads, at the window's edges, its own CPU-time clock, the server's, the pinned CPU's ksoftirqd's and the run's BPF
// programs' run time (issue 20; src/metrics/cpu.ts turns them into CPU per operation with its resolution).
import type { CommandSpec, Runner } from '../../exec/runner.js';
import { ksoftirqdPids, softirqCharging, windowCpu, type SoftirqCharging } from '../../metrics/cpu.js';
import { parseBpfProgs, planBpfProgs, planClient, runClient } from '../../probe/native.js';
import type { MetricName, MetricResult } from '../../results/schema.js';
import type { MeasureSettings } from '../types.js';
import { BPFFS_ROOT } from './bpf/native.js';

/** Connections probed after a capacity overflow, and measured per metric when they are denied. */
export const OVERFLOW_PROBES = 5;

export interface FlowEnds {
  /** The source pod's namespace. */
  netns: string;
  target: string;
  port: number;
  cpus?: number[];
  /** How the client must start for the data plane to see it (a socket-level Service load balancer's cgroup). */
  wrap?: (spec: CommandSpec) => CommandSpec;
}

const wrapped = (f: FlowEnds, spec: CommandSpec): CommandSpec => (f.wrap ? f.wrap(spec) : spec);

/** What the probe client accounts beside its samples: the CPU's ksoftirqd threads and the run's BPF programs. */
export interface Accounting {
  softirqPids: number[];
  bpfProgIds: number[];
  softirq: SoftirqCharging;
}

/**
 * Found once, after the policies are installed: ksoftirqd of `cpus`, and the programs the BPF models pin under
 * /sys/fs/bpf/cb-<run id>/ (`bpf`: whether the model's data plane is BPF programs), whose run time is the data plane's own CPU.
 */
export async function findAccounting(runner: Runner, o: { runId: string; cpus: number[]; bpf: boolean }): Promise<Accounting> {
  const listed = o.bpf ? await runner.run(planBpfProgs(`${BPFFS_ROOT}/cb-${o.runId}`)) : null;
  if (runner.dryRun) return { softirqPids: [], bpfProgIds: [], softirq: { inTasks: null, how: 'dry run' } };
  return { softirqPids: ksoftirqdPids(o.cpus), bpfProgIds: listed ? parseBpfProgs(listed.stdout) : [], softirq: softirqCharging() };
}

/** A few connects along the flow: whether the data plane still lets it through ('allowed', 'partly allowed', 'denied'). */
export async function probeVerdict(runner: Runner, f: FlowEnds, purpose: string): Promise<'allowed' | 'partly allowed' | 'denied'> {
  const probe = await runClient(runner, {
    ...wrapped(f, planClient({ netns: f.netns, target: f.target, port: f.port, mode: 'connect', samples: OVERFLOW_PROBES, warmup: 0, concurrency: 1, timeoutMs: 300, cpus: f.cpus })),
    purpose,
  });
  return probe.samplesNs.length === 0 ? 'denied' : probe.samplesNs.length === OVERFLOW_PROBES ? 'allowed' : 'partly allowed';
}

export interface MeasureContext {
  /** The destination's echo server, whose CPU is counted apart. */
  serverPid?: number;
  /** A denied flow gets a few samples only: every connection of a denied client waits out its timeout. */
  denied?: boolean;
  accounting: Accounting;
  /** CPUs the figures are accounted over (the placement's, or the machine's). */
  cpuCount: number;
  /** The reference's loopback server runs SCHED_BATCH, as the measured one does, when it shares the client's CPU. */
  batchServer: boolean;
}

/** `metric` along the flow, with its CPU per operation and the machine's loopback reference of the same round. */
export async function measureFlow(runner: Runner, f: FlowEnds, metric: MetricName, given: MeasureSettings, o: MeasureContext): Promise<Omit<MetricResult, 'summary'>> {
  const s = o.denied ? { ...given, samples: Math.min(given.samples, OVERFLOW_PROBES), warmup: 0 } : given;
  const serverPid = o.serverPid ?? null;
  const concurrency = Math.min(s.concurrency, s.samples);
  const acct = o.accounting;
  const out = await runClient(runner, {
    ...wrapped(f, planClient({
      netns: f.netns, target: f.target, port: f.port, mode: metric, samples: s.samples, warmup: s.warmup, concurrency, timeoutMs: s.timeoutMs, cpus: f.cpus,
      accountPids: [...(serverPid === null ? [] : [serverPid]), ...acct.softirqPids],
      bpfProgIds: acct.bpfProgIds,
      reference: s.reference && s.reference.samples > 0 ? { ...s.reference, batchServer: o.batchServer } : undefined,
    })),
    purpose: `measure ${metric}`,
  });
  // A dry run measures nothing: say so with an empty result rather than invent numbers.
  if (runner.dryRun) return { samplesNs: [], errors: {}, wallNs: 0, cpu: null };
  const ops = out.samplesNs.length + Object.values(out.errors).reduce((a, b) => a + b, 0);
  const cpu = windowCpu(out, { ops, concurrency, serverPid, softirqPids: acct.softirqPids, cpus: o.cpuCount, softirq: acct.softirq });
  return { samplesNs: out.samplesNs, errors: out.errors, wallNs: out.wallNs, cpu, ...(out.reference ? { reference: out.reference } : {}) };
}
