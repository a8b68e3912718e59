// The reference evaluator against the Kubernetes network-policy conformance suite
// (test/e2e/network/netpol/network_policy.go): every test of it, as a truth table of our own in
// fixtures/upstream/*.yaml (see the README there for the format). For each step of each test the evaluator must
// give exactly the written matrix, pod to pod, on every port and protocol the step checks; so must the resolved
// form the data-plane compilers consume (resolve.ts, read independently by test-support's allowedByResolved).
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseAllDocuments } from 'yaml';
import { describe, expect, it } from 'vitest';
import { normalizeCidr } from './cidr.js';
import { PolicyEvaluator } from './evaluate.js';
import { resolvePolicySet, validatePolicies } from './resolve.js';
import { allowedByResolved, grid, NAMESPACES, POD_NAMES } from './test-support/grid.js';
import type { Inventory, NetworkPolicy, Protocol } from './types.js';

type Reach = [from: string, to: string, allowed: boolean];
interface Check {
  ports: 'all' | string[];
  reach: Reach[];
}
interface Step {
  apply?: NetworkPolicy[];
  delete?: string[];
  podLabels?: Record<string, Record<string, string>>;
  namespaceLabels?: Record<string, Record<string, string>>;
  checks: Check[];
}
interface UpstreamCase {
  upstream: string;
  steps: Step[];
  file: string;
}

const FIXTURES = join(import.meta.dirname, 'fixtures', 'upstream');
const ALL_PORTS = ['TCP/80', 'TCP/81', 'UDP/80', 'UDP/81', 'SCTP/80', 'SCTP/81'];
const PODS = NAMESPACES.flatMap((ns) => POD_NAMES.map((p) => `${ns}/${p}`));

function loadFixtures(): UpstreamCase[] {
  const out: UpstreamCase[] = [];
  for (const file of readdirSync(FIXTURES).filter((f) => f.endsWith('.yaml')).sort()) {
    for (const doc of parseAllDocuments(readFileSync(join(FIXTURES, file), 'utf8'))) {
      if (doc.errors.length > 0) throw new Error(`${file}: ${doc.errors[0]?.message}`);
      out.push({ ...(doc.toJS() as Omit<UpstreamCase, 'file'>), file });
    }
  }
  return out;
}

/** `x/a`, `x/*`, `*\/a`, `*`, as upstream's Peer matcher (empty namespace or pod matches all). */
function matches(pattern: string, pod: string): boolean {
  if (pattern === '*') return true;
  const [pns, pname] = pattern.split('/');
  const [ns, name] = pod.split('/');
  return (pns === '*' || pns === ns) && (pname === '*' || pname === name);
}

/** The expected matrix: every pair allowed, then each statement in order, as upstream's Reachability does. */
function expectedMatrix(reach: Reach[]): Map<string, boolean> {
  const m = new Map<string, boolean>();
  for (const from of PODS) for (const to of PODS) if (from !== to) m.set(`${from} -> ${to}`, true);
  for (const [fp, tp, allowed] of reach) {
    for (const from of PODS) for (const to of PODS) if (from !== to && matches(fp, from) && matches(tp, to)) m.set(`${from} -> ${to}`, allowed);
  }
  return m;
}

/** `{{ x/b }}/4` -> the /4 holding x/b's address. */
function instantiate(policies: NetworkPolicy[], inv: Inventory): NetworkPolicy[] {
  const ipOf = (id: string) => {
    const pod = inv.pods.find((p) => `${p.namespace}/${p.name}` === id);
    if (!pod) throw new Error(`template names no pod: ${id}`);
    return pod.ip;
  };
  const subst = (s: string) => {
    const out = s.replace(/\{\{\s*([^}\s]+)\s*\}\}/g, (_, id: string) => ipOf(id));
    return out === s ? s : normalizeCidr(out);
  };
  return policies.map((p) => {
    const copy = structuredClone(p);
    const peers = [...(copy.spec.ingress ?? []).flatMap((r) => r.from ?? []), ...(copy.spec.egress ?? []).flatMap((r) => r.to ?? [])];
    for (const peer of peers) {
      if (peer.ipBlock) peer.ipBlock = { cidr: subst(peer.ipBlock.cidr), ...(peer.ipBlock.except ? { except: peer.ipBlock.except.map(subst) } : {}) };
    }
    return copy;
  });
}

/** Applies a step to the running state (policies keyed by namespace/name, inventory labels replaced). */
function applyStep(state: { inv: Inventory; policies: Map<string, NetworkPolicy> }, step: Step): void {
  for (const [id, labels] of Object.entries(step.podLabels ?? {})) {
    const pod = state.inv.pods.find((p) => `${p.namespace}/${p.name}` === id);
    if (!pod) throw new Error(`podLabels names no pod: ${id}`);
    pod.labels = { ...labels };
  }
  for (const [name, labels] of Object.entries(step.namespaceLabels ?? {})) {
    const ns = state.inv.namespaces.find((n) => n.name === name);
    if (!ns) throw new Error(`namespaceLabels names no namespace: ${name}`);
    ns.labels = { ...labels };
  }
  for (const p of instantiate(step.apply ?? [], state.inv)) state.policies.set(`${p.metadata.namespace}/${p.metadata.name}`, p);
  for (const key of step.delete ?? []) {
    if (!state.policies.delete(key)) throw new Error(`delete names no policy: ${key}`);
  }
}

/** The pairs where the evaluator's answer differs from the expected matrix, on one protocol/port. */
function disagreements(inv: Inventory, policies: NetworkPolicy[], check: Check, portSpec: string): string[] {
  const [protocol, port] = portSpec.split('/') as [Protocol, string];
  const ev = new PolicyEvaluator(inv, policies);
  const resolved = resolvePolicySet(inv, policies);
  const pod = (id: string) => inv.pods.find((p) => `${p.namespace}/${p.name}` === id)!;
  const out: string[] = [];
  for (const [pair, want] of expectedMatrix(check.reach)) {
    const [from, to] = pair.split(' -> ') as [string, string];
    const conn = { src: pod(from), dst: pod(to), protocol, port: Number(port) };
    const got = ev.evaluate(conn).allowed;
    const say = (b: boolean) => (b ? 'allowed' : 'denied');
    if (got !== want) out.push(`${pair} ${portSpec}: expected ${say(want)}, evaluator says ${say(got)}`);
    const viaResolved = allowedByResolved(resolved, conn);
    if (viaResolved !== want) out.push(`${pair} ${portSpec}: expected ${say(want)}, the resolved form says ${say(viaResolved)}`);
  }
  return out;
}

const cases = loadFixtures();

describe('upstream network-policy conformance cases (network_policy.go)', () => {
  it('has every test of the suite, once', () => {
    // 42 in the TCP context, 3 with UDP, 3 with SCTP.
    expect(cases).toHaveLength(48);
    expect(new Set(cases.map((c) => c.upstream)).size).toBe(48);
    expect(cases.filter((c) => c.upstream.includes('using UDP'))).toHaveLength(3);
    expect(cases.filter((c) => c.upstream.includes('using SCTP'))).toHaveLength(3);
  });

  it('every check names known ports and endpoints, and every policy is one the API server accepts', () => {
    for (const c of cases) {
      for (const step of c.steps) {
        const policies = instantiate(step.apply ?? [], grid());
        expect(validatePolicies(policies), c.upstream).toEqual([]);
        expect(step.checks.length, c.upstream).toBeGreaterThan(0);
        for (const check of step.checks) {
          if (check.ports !== 'all') for (const p of check.ports) expect(ALL_PORTS, `${c.upstream}: ${p}`).toContain(p);
          for (const [from, to] of check.reach) {
            expect(PODS.some((p) => matches(from, p)) && PODS.some((p) => matches(to, p)), `${c.upstream}: ${from} -> ${to}`).toBe(true);
          }
        }
      }
    }
  });

  describe.each(cases.map((c) => [c.upstream, c] as const))('%s', (_name, c) => {
    it(`gives the written matrix at every step (${c.file})`, () => {
      const state = { inv: grid(), policies: new Map<string, NetworkPolicy>() };
      const problems: string[] = [];
      c.steps.forEach((step, i) => {
        applyStep(state, step);
        for (const check of step.checks) {
          for (const portSpec of check.ports === 'all' ? ALL_PORTS : check.ports) {
            problems.push(...disagreements(state.inv, [...state.policies.values()], check, portSpec).map((d) => `step ${i + 1}: ${d}`));
          }
        }
      });
      expect(problems).toEqual([]);
    });
  });
});
