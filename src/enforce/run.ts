// One `bench enforce` point: bring the data plane up in its starting state, then per repetition run each
// change with watch probes across it, and summarise over repetitions. The result file is written whatever
// happens, with every probe outcome.
import { join } from 'node:path';
import type { BackendName, RunConfig } from '../config/schema.js';
import { machineInfo, toolInfo } from '../metrics/machine.js';
import { writeFileAtomic } from '../results/io.js';
import { liveRuns } from '../identity/locks.js';
import { capacityOverflowOf } from '../results/capacity-overflow.js';
import { errorRecord } from '../results/schema.js';
import { InterruptedError } from '../errors.js';
import { summarize } from '../stats/summary.js';
import { BenchError } from '../errors.js';
import type { AppliedChange, DataPlane, PlaneChanges, Progress, ServiceChanges } from '../backends/types.js';
import type { RunningWatch, WatchSettings } from '../probe/native.js';
import { analyzeFlip, analyzeLeak, revocationWindow, traceFrom, type ProbeTrace } from './analyze.js';
import { INITIAL_SERVICE_STATE, SERVICE_STEPS, enforceServices, frontAddress, sameServiceState, type EnforceServices, type ServiceState } from './services.js';
import { CHANGE_SPECS, CHANGE_TITLES, ENFORCE_POD_NAMES, JOINER_LABELS, STARTS_OPEN, changeOrder, isServiceChange, enforcePodId, enforcePolicies, enforceWorkload, newServerPod, type ChangeKind, type EnforcePod } from './plan.js';
import { CLIENT_LABELS, SERVER_LABELS, SERVER_PORT } from '../workload/workload.js';
import { ENFORCE_RESULT_KIND, ENFORCE_SCHEMA_VERSION, type ChangeSummary, type EnforceObservation, type EnforceResult } from './result.js';

export interface EnforceConfig {
  cni: EnforceResult['meta']['cni'];
  policies: number;
  repetitions: number;
  changes: ChangeKind[];
  matchPosition: 'first' | 'last';
  seed: number;
  /** Probe cadence, µs (≤ 1000). */
  intervalUs: number;
  /** Per-probe timeout, ms; 'auto': 5 × the p99 of an allowed connect measured first, at least 10 ms. */
  probeTimeoutMs: number | 'auto';
  /** Longest wait for a change to be seen, ms. */
  deadlineMs: number;
  /** Consecutive probes with the new verdict that count as enforced. */
  settle: number;
  /** Service changes: filler Services beside the probed one (unset: no Services, and no Service change can run). */
  services?: number;
  endpointsPerService: number;
  servicePosition: 'first' | 'last';
}

/** What enforce asks of a data plane: bring the enforce workload up, its starting state, its changes. */
export type EnforcePlane = Pick<DataPlane, 'model' | 'target' | 'changes' | 'fit' | 'up' | 'install' | 'down'>;

export interface EnforceRunOptions {
  runId: string;
  backend: BackendName;
  config: EnforceConfig;
  plane: EnforcePlane;
  /** Where enforce-result.json goes; absent: not written (dry run, tests). */
  outDir?: string;
  progress?: Progress;
  signal?: AbortSignal;
  sweepId?: string;
  sleep?: (ms: number) => Promise<void>;
  /** Ids of other live runs on this machine (default: the run locks in /run/cni-bench). */
  otherLiveRuns?: () => string[];
}

const realSleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

/** A data plane whose agent takes no incremental change cannot be measured: a full reinstall is not a change. */
export class EnforceUnsupportedError extends BenchError {
  constructor(model: string) {
    super('usage', `the ${model} has no incremental update() yet, and enforcement latency must come from an incremental change, never a full reinstall; use a data plane whose local model implements update(), or merge the branch that adds it`);
  }
}

/** The plane's incremental changes, or the refusal that says why there are none. */
export function requireChanges(plane: Pick<DataPlane, 'changes' | 'model'>): PlaneChanges {
  if (!plane.changes) throw new EnforceUnsupportedError(plane.model.name);
  return plane.changes;
}
export const MIN_TIMEOUT_MS = 10;
export const MAX_AUTO_TIMEOUT_MS = 1_000;
export const CALIBRATION_MS = 300;

/** A run config's enforce settings, as one enforce run (the command's, or a sweep's point) takes them. */
export function enforceConfigOf(c: RunConfig): EnforceConfig {
  return {
    cni: c.cni,
    policies: c.policies,
    repetitions: c.enforceRepetitions,
    changes: [...c.changes],
    matchPosition: c.matchPosition,
    seed: c.seed,
    intervalUs: c.intervalUs,
    probeTimeoutMs: c.probeTimeoutMs,
    deadlineMs: c.deadlineMs,
    settle: c.settle,
    ...(c.services !== undefined ? { services: c.services } : {}),
    endpointsPerService: c.endpointsPerService,
    servicePosition: c.servicePosition,
  };
}

/** Service changes need the Service set (`--services N`) and a backend whose data plane takes them. */
export function requireServiceChanges(changes: PlaneChanges, config: Pick<EnforceConfig, 'services' | 'changes'>): ServiceChanges {
  const asked = config.changes.filter(isServiceChange);
  if (config.services === undefined) throw new BenchError('usage', `the Service changes ${asked.join(', ')} need a Service set: add --services N (N filler Services beside the probed one, 0 for none)`);
  if (!changes.serviceChanges) throw new BenchError('usage', `this backend has no Service changes in bench enforce yet (${asked.join(', ')}): use --backend local, kind or cluster`);
  return changes.serviceChanges;
}

/** 5 × p99 of allowed connects, so an allowed probe never passes for a dropped one, at least MIN_TIMEOUT_MS. */
export function timeoutFromCalibration(trace: ProbeTrace): number {
  const lat = trace.result.map((r, i) => (r === 'open' ? (trace.endUs[i]! - trace.startUs[i]!) / 1000 : null)).filter((x): x is number => x !== null);
  if (lat.length === 0) throw new BenchError('probe', 'calibration: no allowed connect succeeded with the client allowed; the data plane does not pass allowed traffic');
  const s = summarize(lat, { resamples: 10 });
  return Math.min(MAX_AUTO_TIMEOUT_MS, Math.max(MIN_TIMEOUT_MS, Math.ceil(5 * s.p99)));
}

export function summarizeChange(kind: ChangeKind, obs: EnforceObservation[], seed: number): ChangeSummary {
  const mine = obs.filter((o) => o.change === kind);
  const enforced = mine.map((o) => o.enforcedMs).filter((x): x is number => x !== null);
  const brackets = mine.map((o) => o.bracketMs).filter((x): x is number => x !== null);
  const failOpen = mine.map((o) => o.failOpen).filter((x): x is NonNullable<typeof x> => x !== null);
  return {
    change: kind,
    title: CHANGE_TITLES[kind],
    repetitions: mine.length,
    notEnforced: mine.filter((o) => o.enforcedMs === null).length,
    preconditionFailures: mine.filter((o) => !o.preconditionHeld).length,
    enforcedMs: summarize(enforced, { seed }),
    agentMs: summarize(mine.map((o) => o.agent.agentMs), { seed }),
    cniAddMs: kind === 'new-pod' ? summarize(mine.map((o) => o.agent.attachMs).filter((x): x is number => x !== null), { seed }) : null,
    failOpenMs: failOpen.length ? summarize(failOpen.map((f) => f.windowMs), { seed }) : null,
    failOpenRepetitions: failOpen.filter((f) => f.leaked > 0).length,
    resolutionMs: brackets.length ? Math.max(...brackets) : null,
    resolutionMedianMs: brackets.length ? summarize(brackets, { resamples: 10 }).p50 : null,
  };
}

export async function executeEnforce(opts: EnforceRunOptions): Promise<{ result: EnforceResult; path: string | null }> {
  const { config, plane, progress } = opts;
  const sleep = opts.sleep ?? realSleep;
  const startedAt = new Date();
  const t0 = performance.now();
  const errors: EnforceResult['errors'] = [];
  const observations: EnforceObservation[] = [];
  let modelState: EnforceResult['modelState'] = {};
  let installMs: number | null = null;
  let notEnforced: EnforceResult['notEnforced'] = null;
  let servicesRecord: EnforceResult['services'] = null;
  let timeoutMs = config.probeTimeoutMs === 'auto' ? MIN_TIMEOUT_MS : config.probeTimeoutMs;
  let timeoutFromNote: string | null = null;
  const sets = enforcePolicies(config, plane.target);
  const id = (p: EnforcePod) => enforcePodId(p, plane.target);
  let stage = 'setup';
  // Asked at the start and at the end, so a run that started meanwhile is noticed too (as bench run does).
  const others = opts.otherLiveRuns ?? (() => [...liveRuns()].filter((id) => id !== opts.runId));
  const concurrent = new Set(others());
  if (concurrent.size) progress?.step(`warning: other cni-bench runs are live on this machine (${[...concurrent].join(', ')}): their load disturbs this run's numbers`);
  try {
    const changes = requireChanges(plane);
    const addresses = await plane.up(plane.fit(enforceWorkload(config, plane.target)));
    stage = 'install';
    const ti = performance.now();
    modelState = (await plane.install(sets.closed)).modelState;
    installMs = performance.now() - ti;
    let open = false;
    const server = addresses.ips[id('server')]!;
    // --services: the Service set's first sync, in its starting state; Service changes move it on from there.
    let svc: { changes: ServiceChanges; sets: EnforceServices; state: ServiceState } | null = null;
    if (config.changes.some(isServiceChange)) {
      stage = 'install services';
      const sc = requireServiceChanges(changes, config);
      const sets = enforceServices({ services: config.services!, endpointsPerService: config.endpointsPerService, servicePosition: config.servicePosition, seed: config.seed }, { ip: server, namespace: plane.target.namespaces.server, name: ENFORCE_POD_NAMES.server, labels: { ...SERVER_LABELS }, targetPort: SERVER_PORT });
      const installed = await sc.install(sets.setFor(INITIAL_SERVICE_STATE));
      servicesRecord = { ...installed, count: config.services!, endpointsPerService: config.endpointsPerService, position: config.servicePosition, clusterIP: frontAddress(sc, sets.probed) ?? sets.probed.clusterIP, port: sets.probed.port };
      svc = { changes: sc, sets, state: INITIAL_SERVICE_STATE };
    }
    const settings = (s: Partial<WatchSettings>): WatchSettings => ({ intervalUs: config.intervalUs, timeoutMs, maxMs: lead() + config.deadlineMs, settle: config.settle, ...s });
    const watch = (from: EnforcePod, target: string, s: Partial<WatchSettings>): Promise<RunningWatch> => changes.watch(id(from), target, SERVER_PORT, settings(s));
    const lead = () => Math.max(20, Math.ceil((10 * config.intervalUs) / 1000));
    const setOpen = async (want: boolean) => {
      if (open !== want) await changes.setPolicies(want ? sets.open : sets.closed);
      open = want;
    };

    if (!plane.model.enforcesPolicy && config.changes.some((k) => CHANGE_SPECS[k].family === 'policy')) {
      // No policy engine: show it with the client denied by policy and still connecting; measure no policy change.
      stage = 'not-enforced';
      const w = await watch('client', server, { maxMs: 200 });
      const out = await w.done;
      const probesOpen = out.result.filter((r) => r === 'open').length;
      notEnforced = { reason: `${plane.model.name} has no policy engine: with the client denied by policy, ${probesOpen} of ${out.result.length} probes connected`, probesOpen, probes: out.result.length };
    }
    // What is measured: every asked change, but no policy change where nothing enforces policy.
    const measured = changeOrder(config.changes).filter((k) => plane.model.enforcesPolicy || CHANGE_SPECS[k].family === 'service');
    if (!measured.length) timeoutFromNote = 'not used: nothing to enforce';
    if (measured.length) {
      if (config.probeTimeoutMs === 'auto') {
        stage = 'calibrate';
        await setOpen(true);
        const w = await watch('client', server, { maxMs: CALIBRATION_MS, timeoutMs: MAX_AUTO_TIMEOUT_MS });
        const out = await w.done;
        timeoutMs = timeoutFromCalibration(traceFrom(out, out.baseNs));
        progress?.step(`probe timeout ${timeoutMs} ms (5 × p99 of an allowed connect, at least ${MIN_TIMEOUT_MS} ms)`);
      }
      const agentOf = (c: AppliedChange) => ({ agentMs: c.report.agentMs, compileMs: c.report.compileMs, applyMs: c.report.applyMs, resolveMs: c.resolveMs, attachMs: c.attachMs ?? null, changed: c.report.changed });
      const intervalMs = config.intervalUs / 1000;
      for (let rep = 0; rep < config.repetitions; rep++) {
        for (const kind of measured) {
          if (opts.signal?.aborted) throw new InterruptedError();
          stage = `${kind} #${rep + 1}`;
          progress?.step(`repetition ${rep + 1}/${config.repetitions}: ${kind}`);
          await setOpen(STARTS_OPEN[kind]);
          const spec = CHANGE_SPECS[kind];
          const expect = spec.expect;
          let from: EnforcePod = 'client';
          let target = server;
          let applied: AppliedChange;
          let intruderTrace: ProbeTrace | null = null;
          let out;
          let lateTarget = false;
          if (kind === 'new-pod') {
            const pod = await changes.preparePod(newServerPod(`new-${rep}`, plane.target));
            // kind/cluster (ip null): the pod exists only once attach() created it; the watches start on its address.
            lateTarget = pod.ip === null;
            let wc: RunningWatch | undefined;
            let wi: RunningWatch | undefined;
            const startWatches = async (ip: string) => {
              target = ip;
              wc = await watch('client', ip, { until: 'open' });
              wi = await watch('intruder', ip, {});
            };
            try {
              if (pod.ip !== null) {
                await startWatches(pod.ip);
                await sleep(lead());
              }
              applied = await pod.attach();
              if (lateTarget) {
                if (!applied.ip) throw new BenchError('k8s-step', 'the new pod got no address after it was created');
                await startWatches(applied.ip);
              }
              out = await wc!.done;
              // The intruder keeps probing a little past the client's settling, then stops.
              await sleep(lead());
              intruderTrace = traceFrom(await wi!.stop(), applied.startNs);
            } finally {
              await wc?.stop().catch(() => undefined);
              await wi?.stop().catch(() => undefined);
              await pod.remove();
            }
          } else if (isServiceChange(kind)) {
            const step = SERVICE_STEPS[kind];
            const s = svc!;
            // Unmeasured: the state this change starts from (the previous change may have left another).
            if (!sameServiceState(s.state, step.from)) {
              await s.changes.setServices(s.sets.setFor(step.from));
              await sleep(lead()); // written; a data plane that applies later gets the lead time before the watch
            }
            s.state = step.from;
            const front = step.watch === 'added' ? s.sets.added : s.sets.probed;
            const known = frontAddress(s.changes, front);
            // kind/cluster, service-added: the API server gives the ClusterIP with the Service; the watch starts on it then.
            lateTarget = known === null;
            let w = known === null ? undefined : await s.changes.watch(id('client'), (target = known), front.port, settings({ until: expect }));
            try {
              if (w) await sleep(lead());
              applied = await s.changes.setServices(s.sets.setFor(step.to));
              s.state = step.to;
              if (!w) {
                if (!applied.ip) throw new BenchError('k8s-step', `the new Service ${front.name} got no ClusterIP after it was applied`);
                w = await s.changes.watch(id('client'), (target = applied.ip), front.port, settings({ until: expect }));
              }
              out = await w.done;
            } finally {
              await w?.stop().catch(() => undefined);
            }
          } else {
            if (kind === 'peer-joins') from = 'joiner';
            const w = await watch(from, target, { until: expect });
            try {
              await sleep(lead());
              if (kind === 'allow-added') applied = await changes.setPolicies(sets.open);
              else if (kind === 'allow-removed') applied = await changes.setPolicies(sets.closed);
              else applied = await changes.setLabels(id('joiner'), { ...CLIENT_LABELS });
              out = await w.done;
            } finally {
              await w.stop().catch(() => undefined);
            }
            if (kind === 'allow-added') open = true;
            if (kind === 'allow-removed') open = false;
            if (kind === 'peer-joins') await changes.setLabels(id('joiner'), { ...JOINER_LABELS });
          }
          const trace = traceFrom(out!, applied!.startNs);
          const flip = analyzeFlip(trace, expect, config.settle);
          const failOpen = spec.window === 'revocation' ? revocationWindow(trace, flip, intervalMs) : spec.window === 'intruder' && intruderTrace ? analyzeLeak(intruderTrace, intervalMs) : null;
          observations.push({
            change: kind,
            repetition: rep,
            expect,
            from,
            target,
            // A pod that did not exist before cannot be probed before: its absence is the precondition.
            preconditionHeld: lateTarget || flip.preconditionHeld,
            enforcedMs: flip.enforcedMs,
            lastOldMs: flip.lastOldMs,
            bracketMs: flip.bracketMs,
            relapses: flip.relapses,
            maxStartGapMs: flip.maxStartGapMs,
            agent: agentOf(applied),
            failOpen,
            probes: trace,
            intruderProbes: intruderTrace,
            capacityOverflow: capacityOverflowOf(applied!.report.state)?.summary ?? null,
            ...(applied!.k8s ? { k8s: { ...applied!.k8s, watchStartedMs: lateTarget && trace.startUs.length ? trace.startUs[0]! / 1000 : null, clock: out!.clock ?? null } } : {}),
          });
        }
      }
    }
  } catch (e) {
    // After a stop signal, whatever failed next (a command killed halfway) is the signal's doing: say that.
    const reason = opts.signal?.reason as unknown;
    errors.push(opts.signal?.aborted ? errorRecord(stage, new InterruptedError(`${reason instanceof Error ? reason.message : 'interrupted'} during ${stage}`), { interrupted: true }) : errorRecord(stage, e));
  } finally {
    for (const id of others()) concurrent.add(id);
    try {
      await plane.down();
    } catch (e) {
      errors.push(errorRecord('teardown', e));
    }
  }
  const result: EnforceResult = {
    schemaVersion: ENFORCE_SCHEMA_VERSION,
    kind: ENFORCE_RESULT_KIND,
    runId: opts.runId,
    status: errors.length ? 'failed' : notEnforced ? 'not-enforced' : 'ok',
    meta: {
      startedAt: startedAt.toISOString(),
      finishedAt: new Date().toISOString(),
      tool: await toolInfo(),
      machine: machineInfo(),
      backend: opts.backend,
      cni: config.cni,
      model: plane.model,
      policy: { count: config.policies, matchPosition: config.matchPosition, seed: config.seed, shape: 'enforce (fillers + isolate, allow-client toggled)' },
      probe: {
        tool: 'cb-probe watch',
        intervalUs: config.intervalUs,
        timeoutMs,
        timeoutFrom: timeoutFromNote ?? (config.probeTimeoutMs === 'auto' ? 'auto: 5 × p99 of an allowed connect, at least 10 ms' : '--probe-timeout-ms'),
        deadlineMs: config.deadlineMs,
        settle: config.settle,
        clock: plane.changes?.clockDescription ?? 'CLOCK_MONOTONIC (probe starts and the change start on one clock)',
      },
      repetitions: config.repetitions,
      changes: changeOrder(config.changes),
      sweepId: opts.sweepId ?? null,
      concurrentRuns: [...concurrent].sort(),
    },
    notEnforced,
    services: servicesRecord,
    installMs,
    modelState,
    observations,
    summary: changeOrder(config.changes)
      .filter((k) => !notEnforced || CHANGE_SPECS[k].family === 'service')
      .map((k) => summarizeChange(k, observations, config.seed)),
    errors,
    totalMs: performance.now() - t0,
  };
  if (!opts.outDir) return { result, path: null };
  const path = join(opts.outDir, 'enforce-result.json');
  writeFileAtomic(path, `${JSON.stringify(result, (_k, v: unknown) => (typeof v === 'number' && !Number.isFinite(v) ? null : v))}\n`);
  return { result, path };
}


/**
 * The dry-run plan: the topology, the initial install and each change once, through a DryRunRunner-backed
 * plane (commands recorded, nothing run); returns the watch command lines that would run across each change.
 */
export async function planEnforceDry(plane: EnforcePlane, config: EnforceConfig): Promise<string[]> {
  const changes = requireChanges(plane);
  const sets = enforcePolicies(config, plane.target);
  const id = (p: EnforcePod) => enforcePodId(p, plane.target);
  const addresses = await plane.up(plane.fit(enforceWorkload(config, plane.target)));
  await plane.install(sets.closed);
  const server0 = addresses.ips[id('server')]!;
  const svc = config.changes.some(isServiceChange) ? requireServiceChanges(changes, config) : null;
  const svcSets = svc ? enforceServices({ services: config.services!, endpointsPerService: config.endpointsPerService, servicePosition: config.servicePosition, seed: config.seed }, { ip: server0, namespace: plane.target.namespaces.server, name: ENFORCE_POD_NAMES.server, labels: { ...SERVER_LABELS }, targetPort: SERVER_PORT }) : null;
  if (svc && svcSets) await svc.install(svcSets.setFor(INITIAL_SERVICE_STATE));
  let svcState = INITIAL_SERVICE_STATE;
  const timeoutMs = config.probeTimeoutMs === 'auto' ? MIN_TIMEOUT_MS : config.probeTimeoutMs;
  const s = (until?: 'open' | 'closed'): WatchSettings => ({ intervalUs: config.intervalUs, timeoutMs, maxMs: config.deadlineMs, until, settle: config.settle });
  const server = addresses.ips[id('server')]!;
  const lines: string[] = [];
  const describe = (kind: ChangeKind, from: EnforcePod, target: string, until?: 'open' | 'closed') => `${kind}: ${changes.watchCommand(id(from), target, SERVER_PORT, s(until))}`;
  let open = false;
  // Some models keep no installed state in a dry run, so their update() cannot be planned; say so, go on.
  let refused: string | null = null;
  const tryUpdate = async (f: () => Promise<unknown>) => {
    try {
      await f();
    } catch (e) {
      refused ??= (e as Error).message;
    }
  };
  for (const kind of changeOrder(config.changes)) {
    if (open !== STARTS_OPEN[kind]) await tryUpdate(() => changes.setPolicies(STARTS_OPEN[kind] ? sets.open : sets.closed));
    open = STARTS_OPEN[kind];
    if (kind === 'allow-added') {
      lines.push(describe(kind, 'client', server, 'open'));
      await tryUpdate(() => changes.setPolicies(sets.open));
      open = true;
    } else if (kind === 'allow-removed') {
      lines.push(describe(kind, 'client', server, 'closed'));
      await tryUpdate(() => changes.setPolicies(sets.closed));
      open = false;
    } else if (isServiceChange(kind) && svc && svcSets) {
      const step = SERVICE_STEPS[kind];
      if (!sameServiceState(svcState, step.from)) await tryUpdate(() => svc.setServices(svcSets.setFor(step.from)));
      const front = step.watch === 'added' ? svcSets.added : svcSets.probed;
      lines.push(`${kind}: ${svc.watchCommand(id('client'), frontAddress(svc, front) ?? `<ClusterIP of ${front.name}>`, front.port, s(CHANGE_SPECS[kind].expect))}`);
      await tryUpdate(() => svc.setServices(svcSets.setFor(step.to)));
      svcState = step.to;
    } else if (kind === 'peer-joins') {
      lines.push(describe(kind, 'joiner', server, 'open'));
      await tryUpdate(() => changes.setLabels(id('joiner'), { ...CLIENT_LABELS }));
      await tryUpdate(() => changes.setLabels(id('joiner'), { ...JOINER_LABELS }));
    } else {
      const pod = await changes.preparePod(newServerPod('new-0', plane.target));
      lines.push(describe(kind, 'client', pod.ip ?? '<new-pod-ip>', 'open'), describe(kind, 'intruder', pod.ip ?? '<new-pod-ip>'));
      await tryUpdate(() => pod.attach());
      await tryUpdate(() => pod.remove());
    }
  }
  await plane.down();
  if (refused) lines.push(`(the model's incremental updates are not in this plan: ${refused}; in a real run each change writes only what differs)`);
  return lines;
}
