// One `bench enforce --workload FILE` run on one data plane: the workload replayed as `bench run --workload` replays
// it (src/workload/replay.ts; the watched flows' ends are endpoints), its policies installed, then per repetition
// each change — a policy removed from or added to the live data plane through the agent's incremental update(),
// as the synthetic allow-removed/allow-added — with watch probes on the affected flows across it, on the same
// clock (src/enforce/run.ts). The result file is written whatever happens.
import { join } from 'node:path';
import type { BackendName, CniName } from '../config/schema.js';
import { BenchError, InterruptedError } from '../errors.js';
import { liveRuns } from '../identity/locks.js';
import type { AppliedChange, Progress } from '../backends/types.js';
import type { NetworkPolicy } from '../policy/types.js';
import type { RunningWatch, WatchSettings } from '../probe/native.js';
import { writeFileAtomic } from '../results/io.js';
import { errorRecord } from '../results/schema.js';
import { summarize } from '../stats/summary.js';
import type { ClusterWorkload } from '../workload/cluster.js';
import { replayWorkload } from '../workload/replay.js';
import type { PolicySet, Workload } from '../workload/workload.js';
import { analyzeFlip, revocationWindow, traceFrom } from './analyze.js';
import { CALIBRATION_MS, MAX_AUTO_TIMEOUT_MS, MIN_TIMEOUT_MS, requireChanges, timeoutFromCalibration, type EnforcePlane } from './run.js';
import { changeLabel, policyKey, watchedFlowsOf, type AffectedFlow, type PlannedWorkloadChange, type WorkloadChange } from './workload-changes.js';

export type { PlannedWorkloadChange };
import { ENFORCE_WORKLOAD_FILE, ENFORCE_WORKLOAD_RESULT_KIND, ENFORCE_WORKLOAD_SCHEMA_VERSION, type EnforceWorkloadResult, type WorkloadChangeResult, type WorkloadObservation } from './workload-result.js';

export interface WorkloadEnforceSettings {
  repetitions: number;
  intervalUs: number;
  probeTimeoutMs: number | 'auto';
  deadlineMs: number;
  settle: number;
  seed: number;
}

export interface WorkloadEnforceOptions {
  runId: string;
  backend: BackendName;
  cni: CniName;
  workload: ClusterWorkload;
  file: string;
  changes: readonly PlannedWorkloadChange[];
  /**
   * The workload as the backend runs it, the watched flows its flows (kind/cluster: layoutOnCluster, decided before
   * any work); default: replayWorkload as `bench run --workload` replays it locally.
   */
  replay?: Workload;
  settings: WorkloadEnforceSettings;
  plane: EnforcePlane;
  outDir?: string;
  progress?: Progress;
  signal?: AbortSignal;
  sleep?: (ms: number) => Promise<void>;
  otherLiveRuns?: () => string[];
}

const realSleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));
/** How long a no-effect watch runs across the change on a data plane that enforces nothing, ms. */
const NO_EFFECT_WATCH_MS = 300;
/** Where the agents take a state asynchronously: how long an unmeasured state change may take to show, ms; probes in a row that show it. */
export const STATE_WAIT_MS = 60_000;
const STATE_SETTLE = 20;

/** The policy set with and without the change's policy: `remove` goes from the first to the second, `add` back. */
export function changeStates(w: ClusterWorkload, c: WorkloadChange): { before: PolicySet; after: PolicySet } {
  const all: PolicySet = { policies: w.policies, peers: [] };
  const without: PolicySet = { policies: w.policies.filter((p: NetworkPolicy) => policyKey(p) !== c.policy), peers: [] };
  return c.op === 'remove' ? { before: all, after: without } : { before: without, after: all };
}

const verdict = (allowed: boolean) => (allowed ? 'open' : 'closed') as 'open' | 'closed';

export function summarizeWorkloadChange(obs: readonly WorkloadObservation[], seed: number): NonNullable<WorkloadChangeResult['summary']> {
  const reps = [...new Set(obs.map((o) => o.repetition))];
  // Per repetition, the change is enforced when its first watched flow shows the new verdict.
  const perRep = reps.map((r) => obs.filter((o) => o.repetition === r));
  const firstOf = (os: WorkloadObservation[]) => os.filter((o) => o.enforcedMs !== null).sort((a, b) => a.enforcedMs! - b.enforcedMs!)[0];
  const enforced = perRep.map(firstOf).filter((o): o is WorkloadObservation => o !== undefined);
  const brackets = enforced.map((o) => o.bracketMs).filter((x): x is number => x !== null);
  const failOpen = perRep.map((os) => os.map((o) => o.failOpen).filter((f): f is NonNullable<typeof f> => f !== null)).filter((fs) => fs.length);
  const windows = failOpen.map((fs) => Math.max(...fs.map((f) => f.windowMs)));
  return {
    repetitions: reps.length,
    notEnforced: perRep.filter((os) => !firstOf(os)).length,
    preconditionFailures: perRep.filter((os) => os.some((o) => !o.preconditionHeld)).length,
    enforcedMs: summarize(enforced.map((o) => o.enforcedMs!), { seed }),
    enforcedAllMs: summarize(perRep.filter((os) => os.every((o) => o.enforcedMs !== null)).map((os) => Math.max(...os.map((o) => o.enforcedMs!))), { seed }),
    agentMs: summarize(perRep.map((os) => os[0]!.agent.agentMs), { seed }),
    failOpenMs: windows.length ? summarize(windows, { seed }) : null,
    failOpenRepetitions: failOpen.filter((fs) => fs.some((f) => f.leaked > 0)).length,
    resolutionMs: brackets.length ? Math.max(...brackets) : null,
    resolutionMedianMs: brackets.length ? summarize(brackets, { resamples: 10 }).p50 : null,
  };
}

export async function executeWorkloadEnforce(opts: WorkloadEnforceOptions): Promise<{ result: EnforceWorkloadResult; path: string | null }> {
  const { plane, settings: s, progress, workload: w } = opts;
  const sleep = opts.sleep ?? realSleep;
  const startedAt = new Date();
  const t0 = performance.now();
  const errors: EnforceWorkloadResult['errors'] = [];
  const results: WorkloadChangeResult[] = opts.changes.map((c) => ({ change: changeLabel(c.change), op: c.change.op, policy: c.change.policy, why: c.why, affectedCount: c.affected.length, candidates: c.candidates, affected: c.affected.slice(0, 20), probed: [...c.probed], noEffect: null, observations: [], summary: null }));
  let modelState: EnforceWorkloadResult['modelState'] = {};
  let installMs: number | null = null;
  let timeoutMs = s.probeTimeoutMs === 'auto' ? MIN_TIMEOUT_MS : s.probeTimeoutMs;
  const timeoutFrom = s.probeTimeoutMs === 'auto' ? 'auto: 5 × p99 of an allowed connect, at least 10 ms' : '--probe-timeout-ms';
  let endpoints = 0;
  let stage = 'setup';
  const others = opts.otherLiveRuns ?? (() => [...liveRuns()].filter((id) => id !== opts.runId));
  const concurrent = new Set(others());
  const lead = () => Math.max(20, Math.ceil((10 * s.intervalUs) / 1000));
  try {
    const changes = requireChanges(plane);
    const flows = watchedFlowsOf(opts.changes);
    const replay = plane.fit(opts.replay ?? replayWorkload(w, flows));
    endpoints = replay.pods.filter((p) => p.presence === 'endpoint').length;
    progress?.step(`replaying workload ${w.name}: ${replay.pods.length} pods (${endpoints} endpoints), ${w.policies.length} policies`);
    const addresses = await plane.up(replay);
    stage = 'install';
    const full: PolicySet = { policies: w.policies, peers: [] };
    const ti = performance.now();
    modelState = (await plane.install(full)).modelState;
    installMs = performance.now() - ti;
    let current: PolicySet = full;
    /** Moves to `set` (unmeasured); true when it changed anything. */
    const setState = async (set: PolicySet): Promise<boolean> => {
      if (current === set || (current.policies.length === set.policies.length && current.policies.every((p, i) => p === set.policies[i]))) return false;
      await changes.setPolicies(set);
      current = set;
      await sleep(lead()); // unmeasured: the state the change starts from, given the lead time to be in place
      return true;
    };
    const ip = (id: string) => {
      const a = addresses.ips[id];
      if (!a) throw new BenchError('internal', `the replay gave no address to ${id}`);
      return a;
    };
    const settings = (p: Partial<WatchSettings>): WatchSettings => ({ intervalUs: s.intervalUs, timeoutMs, maxMs: lead() + s.deadlineMs, settle: s.settle, ...p });
    const watch = (f: AffectedFlow, p: Partial<WatchSettings>): Promise<RunningWatch> => changes.watch(f.from, ip(f.to), f.port, settings(p));

    if (opts.changes.length && s.probeTimeoutMs === 'auto') {
      stage = 'calibrate';
      // On a watched flow, in the state where it is allowed (also where nothing enforces: the first connects warm the path).
      const c = opts.changes[0]!;
      const f = c.probed[0]!;
      const states = changeStates(w, c.change);
      await setState(f.before ? states.before : states.after);
      const cal = await watch(f, { maxMs: CALIBRATION_MS, timeoutMs: MAX_AUTO_TIMEOUT_MS });
      const out = await cal.done;
      timeoutMs = timeoutFromCalibration(traceFrom(out, out.baseNs));
      progress?.step(`probe timeout ${timeoutMs} ms (5 × p99 of an allowed connect on ${f.from} -> ${f.to}, at least ${MIN_TIMEOUT_MS} ms)`);
    }
    if (!plane.model.enforcesPolicy) {
      // No policy engine: each change is made and its flows watched across it; they connect throughout.
      for (const [i, c] of opts.changes.entries()) {
        stage = `${changeLabel(c.change)} (no policy engine)`;
        const states = changeStates(w, c.change);
        await setState(states.before);
        const ws = await Promise.all(c.probed.map((f) => watch(f, { maxMs: NO_EFFECT_WATCH_MS })));
        try {
          await sleep(lead());
          await changes.setPolicies(states.after);
          current = states.after;
          const outs = await Promise.all(ws.map((x) => x.done));
          const open = outs.reduce((n, o) => n + o.result.filter((r) => r === 'open').length, 0);
          const all = outs.reduce((n, o) => n + o.result.length, 0);
          results[i]!.noEffect = { reason: `${plane.model.name} has no policy engine: ${open} of ${all} probes of the flows the policy governs connected, before and after the change`, probesOpen: open, probes: all };
        } finally {
          for (const x of ws) await x.stop().catch(() => undefined);
        }
      }
    } else if (opts.changes.length) {
      const intervalMs = s.intervalUs / 1000;
      for (let rep = 0; rep < s.repetitions; rep++) {
        for (const [i, c] of opts.changes.entries()) {
          if (opts.signal?.aborted) throw new InterruptedError();
          stage = `${changeLabel(c.change)} #${rep + 1}`;
          progress?.step(`repetition ${rep + 1}/${s.repetitions}: ${changeLabel(c.change)} (watching ${c.probed.length} flow${c.probed.length === 1 ? '' : 's'})`);
          const states = changeStates(w, c.change);
          if ((await setState(states.before)) && changes.appliesAsynchronously) {
            // kind/cluster: the agents program the starting state in their own time; a watch until it shows.
            const f = c.probed[0]!;
            const out = await (await watch(f, { until: verdict(f.before), settle: STATE_SETTLE, maxMs: STATE_WAIT_MS })).done;
            if (out.settledIndex < 0) throw new BenchError('k8s-step', `the starting state of ${changeLabel(c.change)} (${f.from} -> ${f.to}:${f.port} ${verdict(f.before)}) did not show within ${STATE_WAIT_MS / 1000} s of its change`);
          }
          const ws: RunningWatch[] = [];
          let applied: AppliedChange;
          let outs;
          try {
            for (const f of c.probed) ws.push(await watch(f, { until: verdict(f.after) }));
            await sleep(lead());
            applied = await changes.setPolicies(states.after);
            current = states.after;
            outs = await Promise.all(ws.map((x) => x.done));
          } finally {
            for (const x of ws) await x.stop().catch(() => undefined);
          }
          for (const [j, f] of c.probed.entries()) {
            const trace = traceFrom(outs[j]!, applied.startNs);
            const expect = verdict(f.after);
            const flip = analyzeFlip(trace, expect, s.settle);
            results[i]!.observations.push({
              repetition: rep,
              flow: { from: f.from, to: f.to, port: f.port, protocol: f.protocol },
              expect,
              from: f.from,
              target: ip(f.to),
              preconditionHeld: flip.preconditionHeld,
              enforcedMs: flip.enforcedMs,
              lastOldMs: flip.lastOldMs,
              bracketMs: flip.bracketMs,
              relapses: flip.relapses,
              maxStartGapMs: flip.maxStartGapMs,
              agent: { agentMs: applied.report.agentMs, compileMs: applied.report.compileMs, applyMs: applied.report.applyMs, resolveMs: applied.resolveMs, attachMs: null, changed: applied.report.changed },
              // A flow the change denies: connections still passing after it was handed over are the fail-open window.
              failOpen: expect === 'closed' ? revocationWindow(trace, flip, intervalMs) : null,
              probes: trace,
              capacityOverflow: null,
              ...(applied!.k8s ? { k8s: { ...applied!.k8s, clock: outs[j]!.clock ?? null } } : {}),
            });
          }
        }
      }
      for (const r of results) r.summary = summarizeWorkloadChange(r.observations, s.seed);
    }
  } catch (e) {
    const reason = opts.signal?.reason as unknown;
    errors.push(opts.signal?.aborted ? errorRecord(stage, new InterruptedError(`${reason instanceof Error ? reason.message : 'interrupted'} during ${stage}`), { interrupted: true }) : errorRecord(stage, e));
    for (const r of results) if (r.observations.length && !r.summary) r.summary = summarizeWorkloadChange(r.observations, s.seed);
  } finally {
    for (const id of others()) concurrent.add(id);
    try {
      await plane.down();
    } catch (e) {
      errors.push(errorRecord('teardown', e));
    }
  }
  const result: EnforceWorkloadResult = {
    schemaVersion: ENFORCE_WORKLOAD_SCHEMA_VERSION,
    kind: ENFORCE_WORKLOAD_RESULT_KIND,
    runId: opts.runId,
    status: errors.length ? 'failed' : plane.model.enforcesPolicy ? 'ok' : 'not-enforced',
    meta: {
      startedAt: startedAt.toISOString(),
      finishedAt: new Date().toISOString(),
      backend: opts.backend,
      cni: opts.cni,
      model: plane.model,
      workload: { name: w.name, file: opts.file, pods: w.inventory.pods.length, endpoints, policies: w.policies.length },
      probe: { tool: 'cb-probe watch', intervalUs: s.intervalUs, timeoutMs, timeoutFrom, deadlineMs: s.deadlineMs, settle: s.settle, clock: plane.changes?.clockDescription ?? 'CLOCK_MONOTONIC (probe starts and the change start on one clock)' },
      repetitions: s.repetitions,
      seed: s.seed,
      concurrentRuns: [...concurrent].sort(),
    },
    installMs,
    modelState,
    changes: results,
    errors,
    totalMs: performance.now() - t0,
  };
  if (!opts.outDir) return { result, path: null };
  const path = join(opts.outDir, ENFORCE_WORKLOAD_FILE);
  writeFileAtomic(path, `${JSON.stringify(result, (_k, v: unknown) => (typeof v === 'number' && !Number.isFinite(v) ? null : v))}\n`);
  return { result, path };
}
