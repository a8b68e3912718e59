// Measuring a flow on the local backend: cb-probe in the source pod's namespace against the echo server of the
// destination, warm-up apart from the measured window, CPU from this machine's accounting around it.
import type { CommandSpec, Runner } from '../../exec/runner.js';
import { readCpuTimes, readProcessCpuNs } from '../../metrics/machine.js';
import { planClient, runClient } from '../../probe/native.js';
import type { MetricName, MetricResult } from '../../results/schema.js';
import type { MeasureSettings } from '../types.js';

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

/** A few connects along the flow: whether the data plane still lets it through ('allowed', 'partly allowed', 'denied'). */
export async function probeVerdict(runner: Runner, f: FlowEnds, purpose: string): Promise<'allowed' | 'partly allowed' | 'denied'> {
  const probe = await runClient(runner, {
    ...wrapped(f, planClient({ netns: f.netns, target: f.target, port: f.port, mode: 'connect', samples: OVERFLOW_PROBES, warmup: 0, concurrency: 1, timeoutMs: 300, cpus: f.cpus })),
    purpose,
  });
  return probe.samplesNs.length === 0 ? 'denied' : probe.samplesNs.length === OVERFLOW_PROBES ? 'allowed' : 'partly allowed';
}

/**
 * `metric` along the flow. `serverPid`: the destination's echo server, whose CPU is counted apart. A denied flow
 * (`denied`) gets a few samples only: every connection of a denied client waits out its timeout.
 */
export async function measureFlow(runner: Runner, f: FlowEnds, metric: MetricName, given: MeasureSettings, o: { serverPid?: number; denied?: boolean }): Promise<Omit<MetricResult, 'summary'>> {
  const s = o.denied ? { ...given, samples: Math.min(given.samples, OVERFLOW_PROBES), warmup: 0 } : given;
  const plan = (samples: number) => wrapped(f, planClient({ netns: f.netns, target: f.target, port: f.port, mode: metric, samples, warmup: 0, concurrency: Math.min(s.concurrency, samples), timeoutMs: s.timeoutMs, cpus: f.cpus }));
  // Warm-up is its own invocation so the CPU window below holds measured work only (plus one process start).
  if (s.warmup > 0) await runClient(runner, { ...plan(s.warmup), purpose: `warm up (${metric})` });
  const cpuBefore = readCpuTimes();
  const serverBefore = o.serverPid ? readProcessCpuNs(o.serverPid) : null;
  const out = await runClient(runner, { ...plan(s.samples), purpose: `measure ${metric}` });
  const cpuAfter = readCpuTimes();
  const serverAfter = o.serverPid ? readProcessCpuNs(o.serverPid) : null;
  const ops = out.samplesNs.length + Object.values(out.errors).reduce((a, b) => a + b, 0);
  const perOp = (ns: number) => (ops > 0 ? ns / 1000 / ops : 0);
  // /proc/stat covers the whole client invocation: its start and exit add a few ms of CPU, well under 1% of
  // the window at default sample counts, so the figures are not scaled. Its 10 ms tick is the resolution limit.
  const total = cpuAfter.busyNs - cpuBefore.busyNs;
  const softirq = cpuAfter.softirqNs - cpuBefore.softirqNs;
  const client = out.cpuUserNs + out.cpuSysNs;
  const server = serverBefore !== null && serverAfter !== null ? serverAfter - serverBefore : null;
  return {
    samplesNs: out.samplesNs,
    errors: out.errors,
    wallNs: out.wallNs,
    cpu: runner.dryRun
      ? null
      : {
          totalUsPerOp: perOp(total),
          probeClientUsPerOp: perOp(client),
          probeServerUsPerOp: server === null ? null : perOp(server),
          dataPlaneUsPerOp: perOp(Math.max(0, total - client - (server ?? 0))),
          softirqUsPerOp: perOp(softirq),
        },
  };
}
