// What the NetworkPolicy specification says each probe must do (the reference evaluator), how an observed
// matrix compares with it, and the verdicts: per case, and per CNI. Pure.
import { PolicyEvaluator, type Endpoint } from '../policy/evaluate.js';
import type { Inventory, NetworkPolicy } from '../policy/types.js';
import type { Attempt, Outcome } from '../backends/types.js';
import { type EndpointId, type GridAddresses, type ProbeSpec } from './grid.js';
import { BenchError } from '../errors.js';

/** What a data plane's probe saw (src/backends/types.ts). */
export type { Attempt, Outcome } from '../backends/types.js';

export interface Expectation extends ProbeSpec {
  allowed: boolean;
}

export interface ProbeResult extends Expectation {
  /** The outcome that counts: the first attempt that agreed with the reference, else the last attempt. */
  observed: Outcome;
  attempts: Attempt[];
}

export type MismatchKind = 'expected deny but connected' | 'expected allow but blocked';

export interface Mismatch extends ProbeSpec {
  kind: MismatchKind;
  reason: string;
  attempts: number;
}

export interface CaseResult {
  name: string;
  description: string;
  source: string;
  status: 'pass' | 'fail' | 'error';
  /** Set when status is 'error': the case could not be applied or probed. */
  error?: string;
  probes: ProbeResult[];
  mismatches: Mismatch[];
  /** Probes whose first attempt disagreed with the reference and a retry agreed: passed, but worth a look. */
  flaky: ProbeSpec[];
  /** The evaluator's notes (hostNetwork pods, implementation-defined matches), deduplicated. */
  notes: string[];
  modelState: Record<string, number | string | boolean>;
  timings: { applyMs: number; readyMs: number; probeMs: number };
}

/** The evaluator's decision for each probe, plus its notes. */
export function expectProbes(
  inventory: Inventory,
  policies: readonly NetworkPolicy[],
  probes: readonly ProbeSpec[],
  addr: Pick<GridAddresses, 'ips'>,
): { expectations: Expectation[]; notes: string[] } {
  const evaluator = new PolicyEvaluator(inventory, policies);
  const pods = new Map(inventory.pods.map((p) => [`${p.namespace}/${p.name}`, p]));
  const endpoint = (id: EndpointId): Endpoint => {
    const pod = pods.get(id);
    if (pod) return pod;
    const ip = addr.ips[id];
    if (!ip) throw new BenchError('internal', `grid endpoint ${id} has no address`);
    return { ip };
  };
  const notes = new Set<string>();
  const expectations = probes.map((p) => {
    const v = evaluator.evaluate({ src: endpoint(p.from), dst: endpoint(p.to), protocol: p.protocol, port: p.port });
    for (const n of v.notes) notes.add(n);
    return { ...p, allowed: v.allowed };
  });
  return { expectations, notes: [...notes].sort() };
}

export const agrees = (e: Expectation, outcome: Outcome): boolean => (outcome === 'connected') === e.allowed;

export function mismatchesOf(results: readonly ProbeResult[]): Mismatch[] {
  return results
    .filter((r) => !agrees(r, r.observed))
    .map((r) => ({
      from: r.from,
      to: r.to,
      protocol: r.protocol,
      port: r.port,
      kind: r.allowed ? ('expected allow but blocked' as const) : ('expected deny but connected' as const),
      reason: r.attempts[r.attempts.length - 1]?.reason ?? '',
      attempts: r.attempts.length,
    }));
}

export function flakyOf(results: readonly ProbeResult[]): ProbeSpec[] {
  return results
    .filter((r) => r.attempts.length > 1 && agrees(r, r.observed))
    .map(({ from, to, protocol, port }) => ({ from, to, protocol, port }));
}

// ---- the verdict per CNI ----

export type CniVerdictKind = 'enforced' | 'not-enforced' | 'partially-enforced';

export interface CniVerdict {
  kind: CniVerdictKind;
  /** The words printed and written to JUnit/JSON. */
  text: string;
  cases: number;
  failed: number;
  probes: number;
  expectedDeny: number;
  /** Expected-deny probes that connected. */
  denyConnected: number;
}

export function cniVerdict(results: readonly CaseResult[]): CniVerdict {
  const failed = results.filter((r) => r.status !== 'pass').length;
  const probes = results.reduce((n, r) => n + r.probes.length, 0);
  const denies = results.flatMap((r) => r.probes.filter((p) => !p.allowed));
  const denyConnected = denies.filter((p) => p.observed === 'connected').length;
  const base = { cases: results.length, failed, probes, expectedDeny: denies.length, denyConnected };
  // A data plane without a policy engine connects everything: no expected deny is ever blocked.
  if (denies.length > 0 && denyConnected === denies.length && results.every((r) => r.status !== 'error')) {
    return { kind: 'not-enforced', text: 'NOT ENFORCED — policies are accepted but have no effect', ...base };
  }
  if (failed === 0) return { kind: 'enforced', text: 'enforced', ...base };
  return { kind: 'partially-enforced', text: `partially enforced: ${failed} of ${results.length} cases differ`, ...base };
}

