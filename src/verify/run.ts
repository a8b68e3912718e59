// `bench verify`, backend-independent: bring the data plane up with the grid on it, then for each case replace the
// policy set, wait until the data plane shows it, probe the whole grid in parallel, and compare with the
// reference evaluator. The data plane is any backend's (src/backends/types.ts): up, install, probe, down.
import type { ServicesResult } from '../results/schema.js';
import type { BackendName, CniName } from '../config/schema.js';
import { BenchError, InterruptedError } from '../errors.js';
import type { DataPlane, ModelDescription, Progress } from '../backends/types.js';
import type { Inventory } from '../policy/types.js';
import type { Workload } from '../workload/workload.js';
import type { VerifyCase } from './cases.js';
import { agrees, cniVerdict, expectProbes, flakyOf, mismatchesOf, type Attempt, type CaseResult, type CniVerdict, type Expectation, type ProbeResult } from './expect.js';
import { DNS_NAMESPACE, gridInventory, gridLayoutOf, instantiatePolicies, planProbes, type GridAddresses, type GridLayout, type ProbeSpec } from './grid.js';
import { assertTruthTableKept, verifyFillers } from './fillers.js';
import { capacityOverflowOf } from '../results/capacity-overflow.js';

/** What verify asks of a data plane. */
export type VerifyPlane = Pick<DataPlane, 'name' | 'cni' | 'model' | 'settleMs' | 'up' | 'install' | 'probe' | 'down'>;

export interface VerifySettings {
  /** Probes in flight at once. */
  parallelism: number;
  /** Extra attempts for a probe that disagrees with the reference. */
  retries: number;
  timeoutMs: number;
  /** Filler policies on every pod group a case isolates (issue 15, `--policies N`); the truth table is kept. */
  fillers?: number;
}

export const DEFAULT_SETTINGS: VerifySettings = { parallelism: 32, retries: 2, timeoutMs: 300 };

export interface VerifyOptions extends Partial<VerifySettings> {
  plane: VerifyPlane;
  /** The grid as the plane runs it: plane.fit(gridWorkload(layout)). */
  workload: Workload;
  cases: readonly VerifyCase[];
  /** Leave the grid up afterwards (no teardown). */
  keep?: boolean;
  signal?: AbortSignal;
  progress?: Progress;
  /** Called as each case finishes, for streaming output. */
  onCase?: (result: CaseResult) => void;
}

export interface VerifyReport {
  backend: BackendName;
  cni: CniName;
  model: ModelDescription;
  startedAt: string;
  settings: VerifySettings;
  addresses: GridAddresses;
  verdict: CniVerdict;
  cases: CaseResult[];
  timings: { setupMs: number; casesMs: number; teardownMs: number; totalMs: number };
  /** --services (local): every pod-to-pod probe went to the destination's Service, on this service data plane. */
  services?: ServicesResult;
}

/** The abort as an InterruptedError (the signal's reason already is one when the CLI's Ctrl-C handler aborted). */
function interrupted(reason: unknown): InterruptedError {
  return reason instanceof InterruptedError ? reason : new InterruptedError(reason instanceof Error ? reason.message : undefined);
}

function checkAborted(signal?: AbortSignal): void {
  if (signal?.aborted) throw interrupted(signal.reason);
}

/** Runs `fn` over `items`, at most `limit` at once, results in input order. After a failure no new item
 * starts, and the error is rethrown once the items in flight have settled (nothing keeps running behind it). */
export async function boundedMap<T, R>(items: readonly T[], limit: number, fn: (item: T) => Promise<R>, signal?: AbortSignal): Promise<R[]> {
  const out = new Array<R>(items.length);
  let next = 0;
  let failure: { error: unknown } | undefined;
  const worker = async () => {
    while (next < items.length && !failure) {
      if (signal?.aborted) {
        failure ??= { error: interrupted(signal.reason) };
        return;
      }
      const i = next++;
      try {
        out[i] = await fn(items[i]!);
      } catch (e) {
        failure ??= { error: e };
      }
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker));
  if (failure) throw failure.error;
  return out;
}

/** Probes until an attempt agrees with the reference or the retries run out: a flake can only turn an allowed
 * connection into a blocked one, or (a stale conntrack entry) let one denied connection through. */
export async function probeWithRetries(grid: VerifyPlane, e: Expectation, retries: number, timeoutMs: number, signal?: AbortSignal): Promise<ProbeResult> {
  const attempts: Attempt[] = [];
  for (let i = 0; i <= retries; i++) {
    checkAborted(signal);
    const a = await grid.probe(e, timeoutMs);
    attempts.push(a);
    if (agrees(e, a.outcome)) break;
  }
  return { ...e, observed: attempts[attempts.length - 1]!.outcome, attempts };
}

/** A few probes whose outcome the new policy set decides: some expected denies and some expected allows. */
export function readinessProbes(expectations: readonly Expectation[], denies = 4, allows = 2): Expectation[] {
  const spread = (list: Expectation[], n: number) =>
    list.length <= n ? list : Array.from({ length: n }, (_, i) => list[Math.floor((i * list.length) / n)]!);
  return [...spread(expectations.filter((e) => !e.allowed), denies), ...spread(expectations.filter((e) => e.allowed), allows)];
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Polls the readiness probes until they all agree with the reference; false if the deadline passes first. */
async function waitProgrammed(grid: VerifyPlane, sentinels: Expectation[], timeoutMs: number, signal?: AbortSignal): Promise<boolean> {
  const deadline = performance.now() + grid.settleMs;
  for (;;) {
    const results = await boundedMap(sentinels, sentinels.length, (e) => grid.probe(e, timeoutMs), signal);
    if (results.every((a, i) => agrees(sentinels[i]!, a.outcome))) return true;
    if (performance.now() >= deadline) return false;
    await sleep(100);
  }
}

async function runCase(c: VerifyCase, ctx: { grid: VerifyPlane; layout: GridLayout; addresses: GridAddresses; inventory: Inventory; settings: VerifySettings; signal?: AbortSignal; services?: (s: ServicesResult) => void }): Promise<CaseResult> {
  const { grid, settings, signal } = ctx;
  const result: CaseResult = {
    name: c.name,
    description: c.description,
    source: c.source,
    status: 'pass',
    probes: [],
    mismatches: [],
    flaky: [],
    notes: [],
    modelState: {},
    timings: { applyMs: 0, readyMs: 0, probeMs: 0 },
  };
  const inst = instantiatePolicies(c.policies, ctx.addresses.ips);
  if (inst.problems.length) {
    return { ...result, status: 'error', error: inst.problems.map((p) => `policies.${p.path.join('.')}: ${p.message}`).join('; ') };
  }
  const probes = planProbes(ctx.layout, c.probes);
  const { expectations, notes } = expectProbes(ctx.inventory, inst.policies, probes, ctx.addresses);
  result.notes = notes;
  let t = performance.now();
  try {
    // --policies N: fillers that leave every verdict as it is, checked with the reference evaluator first.
    const fill = verifyFillers(ctx.inventory, inst.policies, settings.fillers ?? 0);
    if (settings.fillers) {
      assertTruthTableKept(ctx.inventory, inst.policies, fill, probes, ctx.addresses);
      result.notes.push(
        fill.groups.length
          ? `${fill.policies.length} filler policies: ${settings.fillers} on each of ${fill.groups.length} isolated pod groups (${fill.groups.map((g) => `${g.namespace}/{${g.pods.join(',')}} ${g.direction.toLowerCase()}`).join('; ')})`
          : 'no filler policies: the case isolates no pod, and a filler on a pod it does not isolate would change its verdicts',
      );
    }
    const installed = await grid.install({ policies: [...inst.policies, ...fill.policies], peers: fill.peerSpecs });
    result.modelState = installed.modelState;
    if (installed.services) ctx.services?.(installed.services);
    // A data plane that ran out of room says so in its state (Cilium 1.18 keeps an overflowing endpoint's old map,
    // Felix the first 24 programs of its chain): the case's differences are then explained, not mysterious.
    const overflow = capacityOverflowOf(result.modelState);
    if (overflow) result.notes.push(`capacity overflow: ${overflow.summary}`);
  } catch (e) {
    checkAborted(signal);
    return { ...result, status: 'error', error: `applying the policies failed: ${(e as Error).message}`, timings: { ...result.timings, applyMs: performance.now() - t } };
  }
  result.timings.applyMs = performance.now() - t;
  t = performance.now();
  try {
    // Nothing is programmed by a data plane without a policy engine: waiting for it would only burn the deadline.
    if (grid.model.enforcesPolicy) {
      const sentinels = readinessProbes(expectations);
      if (sentinels.length && !(await waitProgrammed(grid, sentinels, settings.timeoutMs, signal))) {
        result.notes.push(`readiness probes still disagreed with the reference after ${grid.settleMs} ms; probed anyway`);
      }
    }
    result.timings.readyMs = performance.now() - t;
    t = performance.now();
    result.probes = await boundedMap(expectations, settings.parallelism, (e) => probeWithRetries(grid, e, settings.retries, settings.timeoutMs, signal), signal);
  } catch (e) {
    // A probe that gives no verdict (its binary missing, the namespace gone) says nothing about the policies.
    if (e instanceof InterruptedError || signal?.aborted) throw e instanceof InterruptedError ? e : interrupted(signal?.reason);
    return { ...result, status: 'error', error: `probing failed: ${(e as Error).message}`, probes: [] };
  }
  result.timings.probeMs = performance.now() - t;
  result.mismatches = mismatchesOf(result.probes);
  result.flaky = flakyOf(result.probes);
  result.status = result.mismatches.length ? 'fail' : 'pass';
  return result;
}

/** Builds the grid, runs every case, tears the grid down (in finally: errors and Ctrl-C included). */
export async function runVerify(opts: VerifyOptions): Promise<VerifyReport> {
  const settings: VerifySettings = {
    parallelism: opts.parallelism ?? DEFAULT_SETTINGS.parallelism,
    retries: opts.retries ?? DEFAULT_SETTINGS.retries,
    timeoutMs: opts.timeoutMs ?? DEFAULT_SETTINGS.timeoutMs,
    ...(opts.fillers ? { fillers: opts.fillers } : {}),
  };
  const { plane: grid, signal, progress } = opts;
  const layout = gridLayoutOf(opts.workload);
  const startedAt = new Date().toISOString();
  const t0 = performance.now();
  const cases: CaseResult[] = [];
  let setupMs = 0;
  let casesMs = 0;
  let teardownMs = 0;
  let addresses: GridAddresses;
  let services: ServicesResult | undefined;
  let failed = true;
  try {
    progress?.step(`building the grid (${layout.pods.length} pods, ${layout.externals.length} external hosts) on ${grid.name}: ${grid.model.name}`);
    addresses = await grid.up(opts.workload);
    setupMs = performance.now() - t0;
    const inventory = gridInventory(layout, addresses);
    const tc = performance.now();
    for (const [i, c] of opts.cases.entries()) {
      checkAborted(signal);
      progress?.step(`case ${i + 1}/${opts.cases.length}: ${c.name}`);
      const r = await runCase(c, { grid, layout, addresses, inventory, settings, signal, services: (s) => (services ??= s) });
      cases.push(r);
      opts.onCase?.(r);
    }
    casesMs = performance.now() - tc;
    failed = false;
  } finally {
    const td = performance.now();
    if (!opts.keep) progress?.step('tearing down');
    try {
      if (!opts.keep) await grid.down();
    } catch (e) {
      // A teardown error must not hide the error that brought us here.
      if (!failed) throw e;
      progress?.step(`teardown failed too: ${(e as Error).message}`);
    }
    teardownMs = performance.now() - td;
  }
  return {
    backend: grid.name,
    cni: grid.cni,
    model: grid.model,
    startedAt,
    settings,
    addresses,
    verdict: cniVerdict(cases),
    cases,
    timings: { setupMs, casesMs, teardownMs, totalMs: performance.now() - t0 },
    ...(services ? { services } : {}),
  };
}

/** Cases to run on a grid as a data plane runs it, and the ones left out because it cannot make any of their probes. */
export function casesOnGrid(cases: readonly VerifyCase[], layout: GridLayout): { run: VerifyCase[]; skipped: Array<{ name: string; why: string }> } {
  const run: VerifyCase[] = [];
  const skipped: Array<{ name: string; why: string }> = [];
  for (const c of cases) {
    if (planProbes(layout, c.probes).length) run.push(c);
    else skipped.push({ name: c.name, why: 'every probe it makes goes to or from an external host, which the kind/cluster grid does not have' });
  }
  return { run, skipped };
}

/**
 * `bench verify --dry-run`: every command the grid would run, manifests included — bring-up, each case's policy
 * set, one example probe of each kind (a case runs every probe of its matrix like these), teardown — recorded by
 * the plane's dry-run runner. Returns how many probes each case would make.
 */
export async function planVerify(plane: VerifyPlane, workload: Workload, cases: readonly VerifyCase[], timeoutMs: number): Promise<Record<string, number>> {
  const layout = gridLayoutOf(workload);
  const counts: Record<string, number> = {};
  try {
    const addresses = await plane.up(workload);
    let examplesShown = false;
    for (const c of cases) {
      const inst = instantiatePolicies(c.policies, addresses.ips);
      if (inst.problems.length) throw new BenchError('usage', `case ${c.name}: ${inst.problems.map((p) => p.message).join('; ')}`);
      await plane.install({ policies: inst.policies, peers: [] });
      const probes = planProbes(layout, c.probes);
      counts[c.name] = probes.length;
      if (!examplesShown) {
        examplesShown = true;
        // One per (destination kind, protocol): TCP and UDP to a grid pod, TCP and UDP (dig) to the DNS pod.
        const examples = new Map<string, ProbeSpec>();
        for (const p of probes) {
          const key = `${p.to.startsWith(`${DNS_NAMESPACE}/`) ? 'dns' : 'pod'} ${p.protocol}`;
          if (!examples.has(key)) examples.set(key, p);
        }
        for (const p of examples.values()) await plane.probe(p, timeoutMs);
      }
    }
  } finally {
    await plane.down();
  }
  return counts;
}
