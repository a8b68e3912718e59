// `bench verify --workload`: what a cluster's policy set means on a data plane. The replayed workload
// (src/workload/replay.ts) is brought up on the data plane, its policies installed as written, every chosen flow
// probed, and each observed verdict compared with what the reference evaluator says under the data plane's
// documented semantics (src/workload/semantics.ts); with several data planes, the flows whose observed verdict
// differs between them (the migration question). Backend-independent: the plane is any DataPlane.
import type { BackendName, CniName } from '../config/schema.js';
import { InterruptedError } from '../errors.js';
import type { DataPlane, ModelDescription, Progress } from '../backends/types.js';
import { PolicyEvaluator } from '../policy/evaluate.js';
import type { ClusterWorkload } from '../workload/cluster.js';
import { flowKey, podName } from '../workload/flows.js';
import { DataPlaneExpectations, diffExpectations, fromOwnNode } from '../workload/semantics.js';
import type { Flow, Workload } from '../workload/workload.js';
import { boundedMap, probeWithRetries, readinessProbes } from './run.js';
import type { Expectation } from './expect.js';

export type Verdict = 'allowed' | 'denied';

/** One probed flow: `expected` under the data plane's documented semantics, `observed` on it. */
export interface WorkloadProbe extends Flow {
  expected: Verdict;
  observed: Verdict;
  /** What the NetworkPolicy spec says (the reference evaluator, ipBlocks matching any address; the pod's own node let in). */
  spec: Verdict;
  /** The policies that allow it (allowed) or isolate it (denied) under the data plane's semantics. */
  policies: string[];
  attempts: number;
  /** The last probe's words ('open', 'timeout ETIMEDOUT'…). */
  reason: string;
}

export type WorkloadVerdictKind = 'as-documented' | 'not-enforced' | 'differs';

export interface WorkloadPlaneResult {
  cni: CniName;
  backend: BackendName;
  model: ModelDescription;
  verdict: { kind: WorkloadVerdictKind; text: string };
  probes: WorkloadProbe[];
  /** Probes whose observed verdict is not the documented one. */
  mismatches: WorkloadProbe[];
  /** Probes whose documented verdict differs from the spec's (Cilium's ipBlocks, a data plane without policy). */
  documentedDifferences: number;
  modelState: Record<string, number | string | boolean>;
  timings: { setupMs: number; installMs: number; readyMs: number; probeMs: number; teardownMs: number };
  notes: string[];
}

/** What verify asks of a data plane. */
export type WorkloadVerifyPlane = Pick<DataPlane, 'name' | 'cni' | 'model' | 'settleMs' | 'up' | 'install' | 'probe' | 'down'>;

export interface WorkloadVerifyOptions {
  plane: WorkloadVerifyPlane;
  cluster: ClusterWorkload;
  /** The replayed workload as the plane runs it (plane.fit(replayWorkload(...))). */
  workload: Workload;
  parallelism: number;
  retries: number;
  timeoutMs: number;
  signal?: AbortSignal;
  progress?: Progress;
  keep?: boolean;
}

const verdictOf = (allowed: boolean): Verdict => (allowed ? 'allowed' : 'denied');
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Brings the workload up on the plane, installs its policies, probes every flow, tears down (in finally). */
export async function verifyWorkloadOn(o: WorkloadVerifyOptions): Promise<WorkloadPlaneResult> {
  const { plane, cluster, workload, signal, progress } = o;
  const documented = new DataPlaneExpectations(cluster, plane.cni);
  const spec = new PolicyEvaluator(cluster.inventory, cluster.policies);
  const pods = new Map(cluster.inventory.pods.map((p) => [podName(p), p]));
  const notes: string[] = [];
  const expectations: Array<Expectation & { spec: Verdict; policies: string[] }> = [];
  for (const f of workload.flows) {
    const e = documented.expect(f);
    if (e.allowed === undefined) {
      notes.push(`${flowKey(f)} not probed: ${f.protocol} rules are not implemented on ${plane.cni}, so nothing is documented to compare with`);
      continue;
    }
    const [src, dst] = [pods.get(f.from)!, pods.get(f.to)!];
    const s = fromOwnNode(src, dst) || spec.evaluate({ src, dst, port: f.port, protocol: f.protocol }).allowed;
    expectations.push({ from: f.from, to: f.to, port: f.port, protocol: f.protocol, allowed: e.allowed, spec: verdictOf(s), policies: e.policies });
  }
  const timings = { setupMs: 0, installMs: 0, readyMs: 0, probeMs: 0, teardownMs: 0 };
  let modelState: Record<string, number | string | boolean> = {};
  let probes: WorkloadProbe[] = [];
  let failed = true;
  try {
    let t = performance.now();
    const endpoints = workload.pods.filter((p) => p.presence === 'endpoint').length;
    progress?.step(`${plane.cni}: bringing up ${workload.nodes} nodes, ${endpoints} endpoint pods and ${workload.pods.length - endpoints} address-only pods (${plane.model.name})`);
    await plane.up(workload);
    timings.setupMs = performance.now() - t;
    t = performance.now();
    progress?.step(`${plane.cni}: installing ${workload.policies.policies.length} policies`);
    modelState = (await plane.install(workload.policies)).modelState;
    timings.installMs = performance.now() - t;
    t = performance.now();
    if (plane.model.enforcesPolicy) {
      const sentinels = readinessProbes(expectations);
      const deadline = performance.now() + plane.settleMs;
      for (;;) {
        const seen = await boundedMap(sentinels, sentinels.length, (e) => plane.probe(e, o.timeoutMs), signal);
        if (seen.every((a, i) => (a.outcome === 'connected') === sentinels[i]!.allowed)) break;
        if (performance.now() >= deadline) {
          notes.push(`readiness probes still disagreed with the documented verdicts after ${plane.settleMs} ms; probed anyway`);
          break;
        }
        await sleep(100);
      }
    }
    timings.readyMs = performance.now() - t;
    t = performance.now();
    progress?.step(`${plane.cni}: probing ${expectations.length} flows`);
    const results = await boundedMap(expectations, o.parallelism, (e) => probeWithRetries(plane, e, o.retries, o.timeoutMs, signal), signal);
    timings.probeMs = performance.now() - t;
    probes = results.map((r, i) => {
      const e = expectations[i]!;
      const last = r.attempts[r.attempts.length - 1]!;
      return { from: r.from, to: r.to, port: r.port, protocol: r.protocol, expected: verdictOf(e.allowed), observed: r.observed === 'connected' ? 'allowed' : 'denied', spec: e.spec, policies: e.policies, attempts: r.attempts.length, reason: last.reason };
    });
    failed = false;
  } catch (e) {
    if (signal?.aborted && !(e instanceof InterruptedError)) throw new InterruptedError();
    throw e;
  } finally {
    const t = performance.now();
    try {
      if (!o.keep) await plane.down();
    } catch (e) {
      if (!failed) throw e;
      progress?.step(`teardown failed too: ${(e as Error).message}`);
    }
    timings.teardownMs = performance.now() - t;
  }
  const mismatches = probes.filter((p) => p.expected !== p.observed);
  const specDenies = probes.filter((p) => p.spec === 'denied');
  const notEnforced = specDenies.length > 0 && specDenies.every((p) => p.observed === 'allowed');
  const verdict =
    notEnforced ? { kind: 'not-enforced' as const, text: `NOT ENFORCED — the ${specDenies.length} flows the policies deny all connected: policies are accepted and have no effect` }
    : mismatches.length ? { kind: 'differs' as const, text: `DIFFERS from its documented semantics on ${mismatches.length} of ${probes.length} flows` }
    : { kind: 'as-documented' as const, text: `as documented: ${probes.length} flows probed, every verdict as its documented semantics say` };
  return { cni: plane.cni, backend: plane.name, model: plane.model, verdict, probes, mismatches, documentedDifferences: probes.filter((p) => p.expected !== p.spec).length, modelState, timings, notes };
}

/** A flow whose observed verdict differs between data planes, with the documented reason where there is one. */
export interface ObservedDiff extends Flow {
  observed: Partial<Record<CniName, Verdict>>;
  reason: string;
}

/** The flows probed on every plane whose observed verdicts are not all the same, in the first plane's order. */
export function diffObserved(cluster: ClusterWorkload, results: readonly WorkloadPlaneResult[]): ObservedDiff[] {
  if (results.length < 2) return [];
  const maps = results.map((r) => new Map(r.probes.map((p) => [flowKey(p), p])));
  const out: ObservedDiff[] = [];
  for (const p of results[0]!.probes) {
    const key = flowKey(p);
    const seen = maps.map((m) => m.get(key));
    if (seen.some((x) => !x)) continue;
    const verdicts = seen.map((x) => x!.observed);
    if (verdicts.every((v) => v === verdicts[0])) continue;
    const observed = Object.fromEntries(results.map((r, i) => [r.cni, verdicts[i]!]));
    // The documented reason between the first plane and the first that differs from it.
    const j = verdicts.findIndex((v) => v !== verdicts[0]);
    const documented = diffExpectations(cluster, results[0]!.cni, results[j]!.cni, [p])[0];
    out.push({ from: p.from, to: p.to, port: p.port, protocol: p.protocol, observed, reason: documented?.reason ?? 'not a documented difference: the data planes disagree where their semantics agree (see the mismatches above)' });
  }
  return out;
}
