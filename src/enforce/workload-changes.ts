// `bench enforce --workload FILE`: the changes, each naming a policy of the workload (`remove:ns/name` deletes it
// from the live data plane, `add:ns/name` starts without it and adds it), and the flows each one affects on a data
// plane — those whose verdict differs with and without the policy under the data plane's documented semantics
// (the reference evaluator, ../workload/semantics.ts), among the TCP flows into and out of the pods the policy
// selects (a seeded sample of MAX_FLOWS_PER_POLICY above that). Without --change, a few are chosen (seeded): the
// policy whose removal changes the most flows, and a default-deny. Pure.
import { distance } from 'fastest-levenshtein';
import type { CniName } from '../config/schema.js';
import type { Problem } from '../errors.js';
import { effectivePolicyTypes } from '../policy/resolve.js';
import type { NetworkPolicy, PodInfo } from '../policy/types.js';
import { matchesSelector } from '../policy/selectors.js';
import { seededRandom } from '../stats/summary.js';
import type { ClusterWorkload } from '../workload/cluster.js';
import { flowKey, type Flow } from '../workload/flows.js';
import { podId } from '../workload/workload.js';
import { probeablePods } from '../workload/replay.js';
import { DataPlaneExpectations, POLICY_SEMANTICS } from '../workload/semantics.js';

export type ChangeOp = 'remove' | 'add';

/** One change: a policy of the workload removed from, or added to, the live data plane. */
export interface WorkloadChange {
  op: ChangeOp;
  /** `namespace/name` of the policy, as in the file. */
  policy: string;
}

/** A flow whose verdict the change flips: allowed before / after it, under one data plane's semantics. */
export interface AffectedFlow extends Flow {
  before: boolean;
  after: boolean;
}

export const CHANGE_SYNTAX = 'remove:NAMESPACE/POLICY or add:NAMESPACE/POLICY, e.g. remove:api/allow-frontend';
/** Flows a policy can decide that are weighed, per policy, before they are sampled (seeded). */
export const MAX_FLOWS_PER_POLICY = 400;
/** Policies weighed for the default choice before they are sampled (seeded): each costs an evaluator. */
export const MAX_DEFAULT_CANDIDATES = 20;

export const policyKey = (p: Pick<NetworkPolicy, 'metadata'>): string => `${p.metadata.namespace ?? 'default'}/${p.metadata.name}`;
export const changeLabel = (c: WorkloadChange): string => `${c.op}:${c.policy}`;

/** Up to five policy names closest to `asked` (edit distance), then others of its namespace. */
export function closePolicyNames(asked: string, w: ClusterWorkload): string[] {
  const names = w.policies.map(policyKey);
  const near = names.map((n) => ({ n, d: distance(asked, n) })).filter((x) => x.d <= Math.max(3, Math.floor(asked.length / 3))).sort((a, b) => a.d - b.d || a.n.localeCompare(b.n));
  const ns = asked.split('/')[0];
  const same = names.filter((n) => n.split('/')[0] === ns);
  return [...new Set([...near.map((x) => x.n), ...same])].slice(0, 5);
}

/** Parses and checks `--change` values against the workload's policies: every problem at once. */
export function parseWorkloadChanges(texts: readonly string[], w: ClusterWorkload): { changes: WorkloadChange[]; problems: Problem[] } {
  const known = new Set(w.policies.map(policyKey));
  const changes: WorkloadChange[] = [];
  const problems: Problem[] = [];
  for (const text of texts) {
    const m = /^(remove|add):([a-z0-9][-a-z0-9]*)\/([a-z0-9][-a-z0-9.]*)$/.exec(text.trim());
    if (!m) {
      problems.push({ where: '--change', message: `'${text}' is not ${CHANGE_SYNTAX}` });
      continue;
    }
    const policy = `${m[2]}/${m[3]}`;
    if (!known.has(policy)) {
      const close = closePolicyNames(policy, w);
      problems.push({ where: '--change', message: `'${text}': workload ${w.name} has no NetworkPolicy ${policy}${close.length ? ` (close: ${close.join(', ')})` : ` (it has ${known.size} policies; list them with kubectl-style names namespace/name)`}` });
      continue;
    }
    const c: WorkloadChange = { op: m[1] as ChangeOp, policy };
    if (changes.some((x) => x.policy === c.policy && x.op === c.op)) problems.push({ where: '--change', message: `'${text}' is given twice; each change runs once per repetition` });
    else changes.push(c);
  }
  return { changes, problems };
}

/**
 * The flows a policy can decide: TCP flows into the pods it selects (ingress) on the ports they declare, and out of
 * them (egress) to every pod's declared TCP ports, between pods the local backend can run as endpoints; a seeded
 * sample of `max` above that, with the total.
 */
export function policyFlows(w: ClusterWorkload, policy: NetworkPolicy, seed: number, max = MAX_FLOWS_PER_POLICY): { flows: Flow[]; total: number } {
  const pods = probeablePods(w);
  const ns = policy.metadata.namespace ?? 'default';
  const selected = pods.filter((p) => p.namespace === ns && matchesSelector(policy.spec.podSelector ?? {}, p.labels));
  const t = effectivePolicyTypes(policy);
  const tcp = (p: PodInfo) => p.ports.filter((x) => x.protocol === 'TCP').map((x) => x.containerPort);
  const seen = new Set<string>();
  const flows: Flow[] = [];
  const add = (src: PodInfo, dst: PodInfo, port: number) => {
    if (src === dst) return;
    const f: Flow = { from: podId(src), to: podId(dst), port, protocol: 'TCP' };
    const k = flowKey(f);
    if (!seen.has(k)) flows.push(f), seen.add(k);
  };
  if (t.ingress) for (const d of selected) for (const port of new Set(tcp(d))) for (const src of pods) add(src, d, port);
  if (t.egress) for (const src of selected) for (const d of pods) for (const port of new Set(tcp(d))) add(src, d, port);
  if (flows.length <= max) return { flows, total: flows.length };
  const rand = seededRandom(seed);
  const picked = flows.map((f, i) => ({ i, r: rand() })).sort((a, b) => a.r - b.r).slice(0, max).map((x) => x.i).sort((a, b) => a - b);
  return { flows: picked.map((i) => flows[i]!), total: flows.length };
}

/**
 * The data plane whose semantics decide which flows a change affects: its own, or — where it enforces nothing
 * (its answer would be "none") — the spec's reading, so the flows it is shown on are the ones the policy governs.
 */
export function semanticsFor(cni: CniName): CniName {
  return POLICY_SEMANTICS[cni].enforces ? cni : 'calico';
}

/**
 * The flows among `flows` whose verdict differs with and without `policy` on data plane `cni` (its documented
 * semantics: an ipBlock never selecting a pod on Cilium, nothing enforced on Flannel). A policy selects pods of its
 * own namespace only, so only flows into (ingress) or out of (egress) that namespace are evaluated.
 */
export function affectedFlows(w: ClusterWorkload, cni: CniName, policy: string, flows: readonly Flow[], withAll?: DataPlaneExpectations): AffectedFlow[] {
  const p = w.policies.find((x) => policyKey(x) === policy);
  if (!p) return [];
  const ns = p.metadata.namespace ?? 'default';
  const types = effectivePolicyTypes(p);
  const inNs = (id: string) => id.split('/')[0] === ns;
  const relevant = flows.filter((f) => (types.ingress && inNs(f.to)) || (types.egress && inNs(f.from)));
  if (!relevant.length) return [];
  // The full set's expectations are the same for every policy weighed: built once by a caller that weighs many.
  const withP = withAll?.cni === cni && withAll.workload === w ? withAll : new DataPlaneExpectations(w, cni);
  const withoutP = new DataPlaneExpectations({ ...w, policies: w.policies.filter((x) => x !== p) }, cni);
  const out: AffectedFlow[] = [];
  for (const f of relevant) {
    const a = withP.expect(f).allowed;
    const b = withoutP.expect(f).allowed;
    if (a === undefined || b === undefined || a === b) continue;
    out.push({ from: f.from, to: f.to, port: f.port, protocol: f.protocol, before: a, after: b });
  }
  return out;
}

/** The flows a change affects, as it runs: `remove` goes from with to without the policy, `add` the other way. */
export function changeEffect(w: ClusterWorkload, cni: CniName, c: WorkloadChange, flows: readonly Flow[]): AffectedFlow[] {
  const removal = affectedFlows(w, semanticsFor(cni), c.policy, flows);
  return c.op === 'remove' ? removal : removal.map((f) => ({ ...f, before: f.after, after: f.before }));
}

/** A default-deny: selects every pod of its namespace and allows nothing in the directions it isolates. */
export function isDefaultDeny(p: NetworkPolicy): boolean {
  const sel = p.spec.podSelector ?? {};
  const empty = !Object.keys(sel.matchLabels ?? {}).length && !(sel.matchExpressions ?? []).length;
  const t = effectivePolicyTypes(p);
  return empty && (!t.ingress || !(p.spec.ingress ?? []).length) && (!t.egress || !(p.spec.egress ?? []).length);
}

export interface DefaultChoice {
  change: WorkloadChange;
  /** Why it was chosen, for the output. */
  why: string;
}

/**
 * Without --change: the removal that changes the most flows on `cni` (ties: the first by name), and a default-deny
 * (seeded among those that affect a flow), each removed. Above MAX_DEFAULT_CANDIDATES policies, a seeded sample is
 * weighed (said in the reason).
 */
export function defaultChanges(w: ClusterWorkload, cni: CniName, seed: number): DefaultChoice[] {
  const rand = seededRandom(seed);
  const sorted = [...w.policies].sort((a, b) => policyKey(a).localeCompare(policyKey(b)));
  const sampled = sorted.length > MAX_DEFAULT_CANDIDATES;
  const weighed = sampled ? sorted.map((p) => ({ p, r: rand() })).sort((a, b) => a.r - b.r).slice(0, MAX_DEFAULT_CANDIDATES).map((x) => x.p).sort((a, b) => policyKey(a).localeCompare(policyKey(b))) : sorted;
  const all = new DataPlaneExpectations(w, semanticsFor(cni));
  const counts = weighed
    .map((p) => {
      const c = policyFlows(w, p, seed);
      const n = affectedFlows(w, semanticsFor(cni), policyKey(p), c.flows, all).length;
      // Above the per-policy sample, the count is estimated from it.
      return { p, n, estimate: c.flows.length ? Math.round((n * c.total) / c.flows.length) : 0, exact: c.flows.length === c.total };
    })
    .filter((x) => x.n > 0);
  const count = (x: (typeof counts)[number]) => (x.exact ? `${x.n}` : `≈ ${x.estimate} (${x.n} of a seeded sample of ${MAX_FLOWS_PER_POLICY})`);
  const out: DefaultChoice[] = [];
  const of = sampled ? ` (of a seeded sample of ${MAX_DEFAULT_CANDIDATES} of its ${sorted.length} policies)` : '';
  const most = counts.reduce<(typeof counts)[number] | undefined>((best, x) => (!best || x.estimate > best.estimate ? x : best), undefined);
  if (most) out.push({ change: { op: 'remove', policy: policyKey(most.p) }, why: `its removal changes the most flows${of}: ${count(most)}${isDefaultDeny(most.p) ? ' (a default-deny)' : ''}` });
  const denies = counts.filter((x) => isDefaultDeny(x.p) && x.p !== most?.p);
  if (denies.length) {
    const d = denies[Math.floor(rand() * denies.length)]!;
    out.push({ change: { op: 'remove', policy: policyKey(d.p) }, why: `a default-deny (seeded among ${denies.length}): its removal changes ${count(d)} flows` });
  }
  return out;
}

/**
 * The flows a change is watched on: those named (each must be affected), or up to `k` chosen seeded — one of each
 * direction first when the change both opens and closes flows.
 */
export function probedFlows(affected: readonly AffectedFlow[], k: number, seed: number, named?: readonly Flow[]): AffectedFlow[] {
  if (named?.length) {
    const byKey = new Map(affected.map((f) => [flowKey(f), f]));
    return named.map((f) => byKey.get(flowKey(f))).filter((f): f is AffectedFlow => f !== undefined);
  }
  const rand = seededRandom(seed);
  const order = affected.map((f) => ({ f, r: rand() })).sort((a, b) => a.r - b.r).map((x) => x.f);
  const out: AffectedFlow[] = [];
  for (const dir of [false, true]) {
    const f = order.find((x) => x.after === dir);
    if (f && out.length < k) out.push(f);
  }
  for (const f of order) if (out.length < k && !out.includes(f)) out.push(f);
  return out;
}

export const describeFlow = (f: Omit<AffectedFlow, 'protocol'> & { protocol: string }): string => `${f.from} -> ${f.to} ${f.port}/${f.protocol} (${f.before ? 'allowed' : 'denied'} → ${f.after ? 'allowed' : 'denied'})`;

/** A change as it is measured on one data plane: what it flips there, and the flows watched. */
export interface PlannedWorkloadChange {
  change: WorkloadChange;
  why: string;
  affected: AffectedFlow[];
  candidates: number;
  probed: AffectedFlow[];
}

/** Flows watched per change by default. */
export const DEFAULT_PROBED_FLOWS = 2;

export interface WorkloadChangePlan {
  /** Per data plane, the changes measured there. */
  byCni: Map<CniName, PlannedWorkloadChange[]>;
  notes: string[];
  problems: Problem[];
}

/**
 * The changes each data plane measures. Named changes (`--change`) must each flip a flow on every data plane that
 * enforces policy — else a problem (exit 2), since its time to enforcement would be a timeout that means nothing;
 * on a data plane without a policy engine they run to show they have no effect. Without --change, the default
 * choice is made once, under the first enforcing data plane's semantics, so every data plane is timed on the same
 * policies; a default change that flips nothing on another data plane is left out there, with a note. `named`
 * flows (--flow): each change watches those it flips; a flow no change flips is a problem.
 */
export function planWorkloadChanges(w: ClusterWorkload, cnis: readonly CniName[], o: { changes: readonly WorkloadChange[]; flows?: readonly Flow[]; seed: number; probes?: number }): WorkloadChangePlan {
  const k = o.probes ?? DEFAULT_PROBED_FLOWS;
  /** The flows the change's policy can decide (a seeded sample above the cap), and the named ones. */
  const candidatesOf = (policy: string): Flow[] => {
    const keys = new Set<string>();
    const p = w.policies.find((x) => policyKey(x) === policy)!;
    return [...policyFlows(w, p, o.seed).flows, ...(o.flows ?? [])].filter((f) => !keys.has(flowKey(f)) && keys.add(flowKey(f)));
  };
  const problems: Problem[] = [];
  const notes: string[] = [];
  const chooser = cnis.find((c) => POLICY_SEMANTICS[c].enforces) ?? cnis[0]!;
  const chosen: DefaultChoice[] = o.changes.length ? o.changes.map((change) => ({ change, why: 'named with --change' })) : defaultChanges(w, chooser, o.seed);
  if (!chosen.length) problems.push({ where: '--workload', message: `no policy of workload ${w.name} changes the verdict of a TCP flow between its pods on ${chooser} (weighed: ${Math.min(w.policies.length, MAX_DEFAULT_CANDIDATES)} policies, up to ${MAX_FLOWS_PER_POLICY} flows each): there is no change to time; name one with --change` });
  if (!o.changes.length && chosen.length) notes.push(`changes chosen (seed ${o.seed}, on ${chooser}'s semantics): ${chosen.map((c) => `${changeLabel(c.change)} — ${c.why}`).join('; ')}`);
  const byCni = new Map<CniName, PlannedWorkloadChange[]>();
  const flipped = new Set<string>();
  for (const cni of cnis) {
    const planned: PlannedWorkloadChange[] = [];
    for (const c of chosen) {
      const candidates = candidatesOf(c.change.policy);
      const affected = changeEffect(w, cni, c.change, candidates);
      if (!affected.length) {
        const msg = `${changeLabel(c.change)} flips no TCP flow between the workload's pods on ${cni} (${candidates.length} flows considered, under its documented semantics: ${POLICY_SEMANTICS[cni].summary})`;
        if (o.changes.length) problems.push({ where: '--change', message: `${msg}; its time to enforcement would be a timeout that means nothing: name a policy that governs a flow` });
        else notes.push(`${msg}: left out on ${cni}`);
        continue;
      }
      const named = o.flows?.filter((f) => affected.some((a) => flowKey(a) === flowKey(f)));
      for (const f of named ?? []) flipped.add(flowKey(f));
      if (o.flows?.length && !named?.length) {
        problems.push({ where: '--flow', message: `${changeLabel(c.change)} flips none of the flows named on ${cni}; it flips e.g. ${affected.slice(0, 3).map(describeFlow).join('; ')}` });
        continue;
      }
      planned.push({ change: c.change, why: c.why, affected, candidates: candidates.length, probed: probedFlows(affected, k, o.seed, named) });
    }
    byCni.set(cni, planned);
  }
  for (const f of o.flows ?? []) if (!flipped.has(flowKey(f)) && !problems.some((p) => p.where === '--flow')) problems.push({ where: '--flow', message: `${flowKey(f)}: no change flips its verdict, so it cannot show one enforced; name a flow the policy governs` });
  return { byCni, notes, problems };
}

/** The flows the changes watch, once each, as a replay's flows (their ends become endpoints). */
export function watchedFlowsOf(changes: readonly PlannedWorkloadChange[]): Flow[] {
  const seen = new Map<string, Flow>();
  for (const c of changes) for (const f of c.probed) seen.set(flowKey(f), { from: f.from, to: f.to, port: f.port, protocol: f.protocol });
  return [...seen.values()];
}
