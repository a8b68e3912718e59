// cb-probe watch in a pod, behind `kubectl exec -i`, streamed: "watching <ns>" says it is probing, each "mark"
// written to its stdin comes back stamped on its clock (clock samples, see clock.ts), "stop" (or closing
// stdin) ends it, and the JSON result follows. Signals do not cross `kubectl exec`, so stdin is the control line;
// the watch's own --max-ms bounds it if this side goes away.
import { InterruptedError } from '../../errors.js';
import { ExecRunner, shellQuote, type CommandSpec, type RunningProcess } from '../../exec/runner.js';
import { NativeProbeError, parseWatchOutput, type RunningWatch, type WatchOutput } from '../../probe/native.js';
import { fixClock, toHostNs, type ClockSample } from './clock.js';

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
