// Putting a probe that runs in a pod and a change issued from this machine on one clock (kind/cluster). Pure.
//
// cb-probe stamps every probe with CLOCK_MONOTONIC of the node it runs on; the change's start is
// process.hrtime.bigint() here, CLOCK_MONOTONIC of this machine. The watch runs with --control-stdin behind
// `kubectl exec -i`: the harness writes "mark" at host time w, the probe stamps it m on its clock when it reads it
// and echoes it, the echo arrives here at host time e. The probe read the mark at a host time in [w, e], so
// the pod clock's offset is m − (w + e)/2 within ±(e − w)/2 (Cristian's method), taken from the sample with the
// shortest round trip.
//
// kind: the nodes are containers on this machine's kernel. CLOCK_MONOTONIC is one per boot and is only offset
// per process by a time namespace (Linux 5.6, CLONE_NEWTIME), which neither kind's node containers nor the pods'
// runtimes create, so every sample must satisfy w ≤ m ≤ e with no offset at all: that is checked, and when it
// holds the change's start is used as is (bound 0). If it does not hold, the offset method is used and the
// result says the clocks were found not shared.
import { BenchError } from '../../errors.js';

export interface ClockSample {
  /** Host CLOCK_MONOTONIC just before "mark" was written. */
  writeNs: bigint;
  /** The probe's CLOCK_MONOTONIC when it read the mark. */
  markNs: bigint;
  /** Host CLOCK_MONOTONIC when the echo arrived. */
  echoNs: bigint;
}

export interface ClockFix {
  /** shared: the host's clock itself (verified on every sample); offset: estimated, within ±boundNs. */
  method: 'shared' | 'offset';
  /** Pod clock − host clock, ns (0 when shared). */
  offsetNs: number;
  /** Half the shortest round trip (offset), 0 (shared): how far a probe time may be off on the host clock. */
  boundNs: number;
  /** Shortest round trip of a mark, ns. */
  rttNs: number;
  samples: number;
  note: string;
}

export class ClockError extends BenchError {
  constructor(message: string) {
    super('probe', message);
  }
}

export function fixClock(samples: readonly ClockSample[], expectShared: boolean): ClockFix {
  if (samples.length === 0) throw new ClockError('no clock sample: the watch in the pod echoed no mark, so its probes cannot be put on this machine\'s clock');
  const rtt = (s: ClockSample) => Number(s.echoNs - s.writeNs);
  const best = samples.reduce((a, b) => (rtt(b) < rtt(a) ? b : a));
  const shared = samples.every((s) => s.writeNs <= s.markNs && s.markNs <= s.echoNs);
  if (expectShared && shared) {
    return { method: 'shared', offsetNs: 0, boundNs: 0, rttNs: rtt(best), samples: samples.length, note: `one kernel: every one of ${samples.length} marks was stamped in the pod between its write and its echo here, so the pod's CLOCK_MONOTONIC is this machine's` };
  }
  const offsetNs = Number(best.markNs - (best.writeNs + best.echoNs) / 2n);
  const why = expectShared
    ? `kind, but a mark was stamped outside its write..echo window (clocks not shared: a time namespace?), so the offset was estimated`
    : `the probe runs on a node, the change is issued here: offset estimated from the mark with the shortest round trip`;
  return { method: 'offset', offsetNs, boundNs: Math.ceil(rtt(best) / 2), rttNs: rtt(best), samples: samples.length, note: `${why} (±${(rtt(best) / 2e6).toFixed(2)} ms)` };
}

/** A pod-clock instant on the host clock. */
export const toHostNs = (podNs: bigint, fix: ClockFix): bigint => podNs - BigInt(fix.offsetNs);
