// cb-probe watch in a pod, behind `kubectl exec -i`, streamed: "watching <ns>" says it is probing, each "mark"
// written to its stdin comes back stamped on its clock (clock samples, see clock.ts), "stop" (or closing
// stdin) ends it, and the JSON result follows. Signals do not cross `kubectl exec`, so stdin is the control line;
// the watch's own --max-ms bounds it if this side goes away.
import { InterruptedError } from '../../errors.js';
import { ExecRunner, shellQuote, type CommandSpec, type RunningProcess } from '../../exec/runner.js';
import { NativeProbeError, parseWatchOutput, watchArgv, type RunningWatch, type WatchOutput, type WatchSettings } from '../../probe/native.js';
import { fixClock, toHostNs, type ClockSample } from './clock.js';
import { kubectl } from './kubectl.js';

/** A started process whose stdout arrives in chunks and whose stdin stays open (the process layer's). */
export type StreamChild = RunningProcess;

/** How the watch is started: the runner's start (tests pass a simulated stream). */
export type Streamer = (spec: CommandSpec) => StreamChild;

/** The real one, through the one process layer: no shell, stdin a pipe, killed when this process exits (the watch in the pod stops on EOF). */
export const spawnStreamer: Streamer = (spec) => new ExecRunner().start(spec);

export interface K8sWatchOptions {
  /** kind: one kernel, the clocks must be shared (checked). */
  sharedClock: boolean;
  /** Marks sent right after the watch starts, one after another, before any change. */
  calibrationMarks?: number;
  readyTimeoutMs?: number;
  /** Longest the process may run in all (the watch's own maxMs plus slack). */
  timeoutMs: number;
  now?: () => bigint;
}

export interface K8sRunningWatch extends RunningWatch {
  /** Writes a mark now (host time recorded); its echo becomes a clock sample. */
  mark(): void;
  /**
   * Ctrl-C: "stop" and EOF to the probe, then the local kubectl is killed (`done` rejects). Killing kubectl alone
   * would leave the probe running in the pod (kubernetes/kubernetes#89031): it would stop only at its --max-ms.
   */
  abort(): void;
}

const DEFAULT_CALIBRATION_MARKS = 5;

/**
 * Starts the watch and resolves once it probes and its clock is calibrated. `done` resolves with the watch's
 * output put on THIS machine's clock (baseNs translated), and its `clock` fix, so the change's start
 * (process.hrtime.bigint()) and every probe are on one clock, as on the local backend.
 */
export async function startK8sWatch(streamer: Streamer, spec: CommandSpec, o: K8sWatchOptions): Promise<K8sRunningWatch> {
  const now = o.now ?? (() => process.hrtime.bigint());
  const child = streamer(spec);
  const describe = () => `${spec.purpose ? `${spec.purpose}: ` : ''}${shellQuote(spec.argv)}`;
  let out = '';
  let basePod: bigint | null = null;
  const writes: bigint[] = [];
  const samples: ClockSample[] = [];
  const waiters: Array<() => void> = [];
  let readyResolve!: (b: bigint) => void;
  const ready = new Promise<bigint>((r) => (readyResolve = r));
  let scanned = 0;
  child.onStdout((chunk) => {
    out += chunk;
    // Complete lines only; the JSON line is parsed at the end.
    let nl;
    while ((nl = out.indexOf('\n', scanned)) >= 0) {
      const line = out.slice(scanned, nl);
      scanned = nl + 1;
      const w = /^watching (\d+)$/.exec(line);
      if (w && basePod === null) {
        basePod = BigInt(w[1]!);
        readyResolve(basePod);
        continue;
      }
      const m = /^mark (\d+) (\d+)$/.exec(line);
      if (m && basePod !== null) {
        const i = Number(m[1]);
        const writeNs = writes[i];
        if (writeNs !== undefined) samples.push({ writeNs, markNs: basePod + BigInt(m[2]!), echoNs: now() });
        waiters.splice(0).forEach((f) => f());
      }
    }
  });
  let timer: NodeJS.Timeout | undefined;
  const overall = new Promise<never>((_, reject) => {
    timer = setTimeout(() => {
      child.kill();
      reject(new NativeProbeError(`${describe()} still running after ${o.timeoutMs} ms; killed`));
    }, o.timeoutMs);
  });
  overall.catch(() => undefined);
  const finished = child.exited.then((r) => {
    clearTimeout(timer);
    if (r.exitCode !== 0) throw new NativeProbeError(`${describe()} exited ${r.exitCode ?? r.signal}: ${r.stderr.trim() || out.trim().slice(-300) || 'no output'}`);
    return r;
  });
  finished.catch(() => undefined);
  let aborted = false;
  const interrupted = () => new InterruptedError(`interrupted: ${spec.purpose ?? 'the watch'} was stopped`);
  const done: Promise<WatchOutput> = Promise.race([finished, overall]).then(
    () => {
      if (aborted) throw interrupted();
      const w = parseWatchOutput(out);
      const fix = fixClock(samples, o.sharedClock);
      return { ...w, baseNs: toHostNs(w.baseNs, fix), clock: fix };
    },
    (e: unknown) => {
      throw aborted ? interrupted() : e;
    },
  );
  done.catch(() => undefined);

  const readyTimeout = o.readyTimeoutMs ?? 30_000;
  const fail = (e: Error) => {
    child.kill();
    throw e;
  };
  await Promise.race([
    ready,
    finished.then(() => Promise.reject(new NativeProbeError(`${describe()} ended before it started probing: ${out.trim().slice(-300)}`))),
    new Promise((_, reject) => setTimeout(() => reject(new NativeProbeError(`${describe()} did not start probing within ${readyTimeout} ms`)), readyTimeout).unref()),
  ]).catch(fail);
  const mark = () => {
    writes.push(now());
    child.write('mark\n');
  };
  // Calibration: marks one at a time, each after the previous echo, so none waits behind another. A watch that
  // settles before all marks are echoed (a new pod already allowed when it gets its address settles within
  // --settle probes, faster than a few kubectl exec round trips) keeps the marks it echoed: the clock fix is then
  // bounded by fewer round trips. With none echoed and no shared clock, its probes cannot be placed: an error.
  for (let i = 0; i < (o.calibrationMarks ?? DEFAULT_CALIBRATION_MARKS); i++) {
    const echoed = new Promise<'echoed'>((r) => waiters.push(() => r('echoed')));
    mark();
    const got = await Promise.race([
      echoed,
      finished.then(() => 'ended' as const),
      new Promise<never>((_, reject) => setTimeout(() => reject(new NativeProbeError(`${describe()}: no echo of clock mark ${i} within ${readyTimeout} ms`)), readyTimeout).unref()),
    ]).catch(fail);
    if (got === 'ended') {
      if (samples.length === 0 && !o.sharedClock) fail(new NativeProbeError(`${describe()} ended during clock calibration, before any clock mark was echoed`));
      break;
    }
  }
  const cal = fixClock(samples, o.sharedClock);
  let stopped = false;
  return {
    baseNs: toHostNs(basePod!, cal),
    done,
    mark,
    abort: () => {
      aborted = true;
      child.write('stop\n');
      child.end();
      setTimeout(() => child.kill(), 100).unref();
    },
    async stop() {
      if (!stopped) {
        stopped = true;
        child.write('stop\n');
        child.end();
      }
      return done;
    },
  };
}

/** A dry run's stand-in for an address not known yet (TEST-NET-1, RFC 5737: never routed). */
export const DRY_RUN_TARGET = '192.0.2.1';

/**
 * The probe's watch in a pod's probe container behind `kubectl exec -i`. No --realtime: the probe container runs
 * unprivileged (no CAP_SYS_NICE); the cadence achieved is in every observation. A target that is not an address yet
 * (a dry run's placeholder) is planned with a stand-in and printed as given.
 */
export function probeWatchSpec(kube: Parameters<typeof kubectl>[0], w: { namespace: string; pod: string; container: string; probePath: string; what: string }, target: string, port: number, s: WatchSettings): CommandSpec {
  const placeholder = !/^[0-9.:a-fA-F]+$/.test(target);
  const argv = watchArgv(w.probePath, { target: placeholder ? DRY_RUN_TARGET : target, port, ...s, realtime: false, controlStdin: true }).map((a) => (placeholder && a === DRY_RUN_TARGET ? target : a));
  return kubectl(kube, ['exec', '-i', '-n', w.namespace, w.pod, '-c', w.container, '--', ...argv], `watch ${target}:${port} from ${w.what} every ${s.intervalUs} µs`, { timeoutMs: s.maxMs + s.timeoutMs + 60_000 });
}

/** The watches a plane has running: started with startK8sWatch, aborted with the run's signal, marked and stopped together. */
export class ProbeWatches {
  private readonly active = new Set<K8sRunningWatch>();

  constructor(private readonly streamer: Streamer, private readonly now?: () => bigint) {}

  async start(spec: CommandSpec, o: { sharesHostClock?: boolean; calibrationMarks?: number; signal?: AbortSignal }): Promise<K8sRunningWatch> {
    const w = await startK8sWatch(this.streamer, spec, { sharedClock: Boolean(o.sharesHostClock), timeoutMs: spec.timeoutMs!, calibrationMarks: o.calibrationMarks, now: this.now });
    this.active.add(w);
    const onAbort = () => w.abort();
    o.signal?.addEventListener('abort', onAbort, { once: true });
    void w.done
      .finally(() => {
        this.active.delete(w);
        o.signal?.removeEventListener('abort', onAbort);
      })
      .catch(() => undefined);
    return w;
  }

  /** A mark on every running watch (host time recorded), at a change's start. */
  mark(): void {
    for (const w of this.active) w.mark();
  }

  /** Stops every running watch, waiting at most 5 s for each. */
  async stopAll(): Promise<void> {
    for (const w of [...this.active]) await Promise.race([w.stop().catch(() => undefined), new Promise<void>((r) => setTimeout(r, 5_000))]);
  }
}

/** How the watches' clock is described in a result: kind shares this machine's kernel; a cluster's nodes are put on it by marks. */
export const watchClockDescription = (sharesHostClock: boolean | undefined) =>
  sharesHostClock
    ? "CLOCK_MONOTONIC of this machine: kind's nodes share its kernel, and every watch checks it (each stdin mark is stamped in the pod between its write and its echo here); the change starts when kubectl is started"
    : "this machine's CLOCK_MONOTONIC; each watch's node clock is put on it by stdin marks through kubectl exec (offset from the shortest round trip, ±half of it: observation.k8s.clock.boundNs); the change starts when kubectl is started";
