// The built-in case library against the reference evaluator: every case loads, the evaluator's matrix agrees
// with an independent reading of the resolved form (what the compilers consume), the library stays clear of
// implementation-defined behaviour, and the tricky cases match expectations written out by hand.
import { describe, expect, it } from 'vitest';
import { allowedByResolved } from '../policy/test-support/grid.js';
import { resolvePolicySet } from '../policy/resolve.js';
import type { PodInfo } from '../policy/types.js';
import { BUILTIN_CASES_DIR, loadCases, type VerifyCase } from './cases.js';
import { expectProbes } from './expect.js';
import { gridInventory, gridLayout, gridWorkload, instantiatePolicies, planProbes, probeKey, type ProbeSpec } from './grid.js';
import { plannedAddresses } from '../backends/factory.js';

const layout = gridLayout();
const addresses = await plannedAddresses(gridWorkload(layout));
const inventory = gridInventory(layout, addresses);
const loaded = loadCases([BUILTIN_CASES_DIR], { layout, ips: addresses.ips });
const byName = new Map(loaded.cases.map((c) => [c.name, c]));

function matrix(c: VerifyCase) {
  const { policies, problems } = instantiatePolicies(c.policies, addresses.ips);
  expect(problems).toEqual([]);
  const r = expectProbes(inventory, policies, planProbes(layout, c.probes), addresses);
  return { ...r, policies };
}

/** The probe keys the evaluator denies in a case. */
function denied(name: string): string[] {
  const c = byName.get(name);
  if (!c) throw new Error(`no built-in case ${name}`);
  return matrix(c).expectations.filter((e) => !e.allowed).map(probeKey).sort();
}

/** The probe keys a hand-written rule denies. */
function deniedBy(rule: (p: ProbeSpec) => boolean): string[] {
  return planProbes(layout).filter(rule).map(probeKey).sort();
}

const ns = (id: string) => (id.includes('/') ? id.split('/')[0] : undefined);
const isExt = (id: string) => !id.includes('/');
const DNS = 'kube-system/coredns';

describe('built-in case library', () => {
  it('loads without problems', () => {
    expect(loaded.problems).toEqual([]);
    expect(loaded.cases.map((c) => c.name)).toEqual([
      'default-deny-ingress',
      'default-deny-egress',
      'allow-from-one-namespace',
      'namespace-and-pod-selector-and',
      'namespace-or-pod-selector-mistake',
      'ipblock-except',
      'port-range',
      'named-ports',
      'union-of-policies',
      'egress-deny-without-dns',
      'egress-deny-with-dns',
      'selects-no-pod',
      'both-directions',
      'same-namespace-only',
      'sctp-is-not-tcp',
      'any-port-of-one-protocol',
      'egress-namespace-notin',
    ]);
  });

  // What the evaluator says, per case. The first 13 probe the whole grid, 414 probes each (9 pods x 8 pods x 4,
  // + 9 x DNS x 2, + 9 x 2 ext x 2, + 2 ext x 9 x 4); the later ones name the probes that matter to them.
  it.each([
    ['default-deny-ingress', 414, 120],
    ['default-deny-egress', 414, 114],
    ['allow-from-one-namespace', 414, 84],
    ['namespace-and-pod-selector-and', 414, 36],
    ['namespace-or-pod-selector-mistake', 414, 24],
    ['ipblock-except', 414, 68],
    ['port-range', 414, 32],
    ['named-ports', 414, 87],
    ['union-of-policies', 414, 113],
    ['egress-deny-without-dns', 414, 78],
    ['egress-deny-with-dns', 414, 108],
    ['selects-no-pod', 414, 0],
    ['both-directions', 414, 70],
    // into x: (8 pods + 2 ext) x 3 pods x 4 ports; denied from y, z, ext
    ['same-namespace-only', 120, 96],
    // into x/a: 10 sources x 4 ports, all denied
    ['sctp-is-not-tcp', 40, 40],
    // into x/a: 10 sources x 4 ports, TCP denied
    ['any-port-of-one-protocol', 40, 20],
    // from x/a: 8 pods x 4 + DNS x 2 + 2 ext x 2; y and ext denied
    ['egress-namespace-notin', 38, 16],
  ])('%s: %i probes, %i denied', (name, probes, denies) => {
    const m = matrix(byName.get(name)!);
    expect(m.expectations).toHaveLength(probes);
    expect(m.expectations.filter((e) => !e.allowed)).toHaveLength(denies);
  });

  it.each(loaded.cases.map((c) => [c.name, c] as const))('%s: the resolved form (compilers\' input) agrees with the evaluator on every probe', (_, c) => {
    const m = matrix(c);
    const resolved = resolvePolicySet(inventory, m.policies);
    const endpoint = (id: string): PodInfo =>
      inventory.pods.find((p) => `${p.namespace}/${p.name}` === id) ?? ({ ip: addresses.ips[id] } as unknown as PodInfo);
    for (const e of m.expectations) {
      const viaResolved = allowedByResolved(resolved, { src: endpoint(e.from), dst: endpoint(e.to), protocol: e.protocol, port: e.port });
      expect(viaResolved, probeKey(e)).toBe(e.allowed);
    }
  });

  it.each(loaded.cases.map((c) => [c.name, c] as const))('%s: no implementation-defined behaviour (the evaluator leaves no notes)', (_, c) => {
    expect(matrix(c).notes).toEqual([]);
  });
});

describe('hand-written expectations for the tricky cases', () => {
  it('one peer with namespaceSelector and podSelector is an AND: only y/b reaches x/a', () => {
    expect(denied('namespace-and-pod-selector-and')).toEqual(deniedBy((p) => p.to === 'x/a' && p.from !== 'y/b'));
  });

  it('the same selectors as two peers are an OR: every pod of y and x/b reach x/a', () => {
    expect(denied('namespace-or-pod-selector-mistake')).toEqual(deniedBy((p) => p.to === 'x/a' && ns(p.from) !== 'y' && p.from !== 'x/b'));
  });

  it('ipBlock except carves ext2 out of the block in both directions, and the block matches no pod', () => {
    const intoXa = (p: ProbeSpec) => p.to === 'x/a' && p.from !== 'ext1';
    const fromYa = (p: ProbeSpec) => p.from === 'y/a' && p.to !== 'ext1';
    expect(denied('ipblock-except')).toEqual(deniedBy((p) => intoXa(p) || fromYa(p)));
    expect(denied('ipblock-except')).toContain('ext2 -> x/a TCP/80');
    expect(denied('ipblock-except')).toContain('y/a -> ext2 UDP/80');
  });

  it('default-deny egress without a DNS allowance blocks DNS; only namespace y is reachable from x', () => {
    expect(denied('egress-deny-without-dns')).toEqual(deniedBy((p) => ns(p.from) === 'x' && ns(p.to) !== 'y'));
    expect(denied('egress-deny-without-dns')).toContain(`x/a -> ${DNS} UDP/53`);
  });

  it('the kube-dns allowance lets exactly UDP and TCP 53 to the DNS pod out of x', () => {
    expect(denied('egress-deny-with-dns')).toEqual(deniedBy((p) => ns(p.from) === 'x' && p.to !== DNS));
    expect(denied('egress-deny-with-dns')).not.toContain(`x/b -> ${DNS} TCP/53`);
  });

  it('endPort: TCP 81..90 into x/a from pods; TCP 80, UDP and external hosts denied', () => {
    expect(denied('port-range')).toEqual(deniedBy((p) => p.to === 'x/a' && (isExt(p.from) || p.protocol !== 'TCP' || p.port !== 81)));
  });

  it('named ports resolve on the destination: x takes serve-80-tcp and serve-81-udp; y/a only reaches ports named serve-81-tcp', () => {
    const intoX = (p: ProbeSpec) => ns(p.to) === 'x' && !((p.protocol === 'TCP' && p.port === 80) || (p.protocol === 'UDP' && p.port === 81));
    // The DNS pod and the external hosts declare no serve-81-tcp, so y/a reaches neither.
    const fromYa = (p: ProbeSpec) => p.from === 'y/a' && !(p.protocol === 'TCP' && p.port === 81 && !isExt(p.to) && p.to !== DNS);
    expect(denied('named-ports')).toEqual(deniedBy((p) => intoX(p) || fromYa(p)));
  });

  it('egress and ingress must both allow: x/a -> y/b is denied by y/b ingress although x/a egress allows it', () => {
    const fromXa = (p: ProbeSpec) => p.from === 'x/a' && p.to !== 'y/b';
    const intoYb = (p: ProbeSpec) => p.to === 'y/b' && p.from !== 'x/c';
    expect(denied('both-directions')).toEqual(deniedBy((p) => fromXa(p) || intoYb(p)));
    expect(denied('both-directions')).toContain('x/a -> y/b TCP/80');
  });

  it('policies are a union: y on TCP/80 plus x/b on every port reach x/a; x pods other than a stay default-denied', () => {
    const intoXa = (p: ProbeSpec) => p.to === 'x/a' && p.from !== 'x/b' && !(ns(p.from) === 'y' && p.protocol === 'TCP' && p.port === 80);
    const intoOtherX = (p: ProbeSpec) => ns(p.to) === 'x' && p.to !== 'x/a';
    expect(denied('union-of-policies')).toEqual(deniedBy((p) => intoXa(p) || intoOtherX(p)));
  });

  it('podSelector {} as the only peer: pods of x reach each other, nothing from y, z or outside reaches x', () => {
    expect(denied('same-namespace-only')).toEqual(deniedBy((p) => ns(p.to) === 'x' && ns(p.from) !== 'x'));
  });

  it('an SCTP rule opens no TCP or UDP port: every probe into x/a is denied, TCP/81 and UDP/81 included', () => {
    expect(denied('sctp-is-not-tcp')).toEqual(deniedBy((p) => p.to === 'x/a'));
    expect(denied('sctp-is-not-tcp')).toContain('y/a -> x/a TCP/81');
  });

  it('a port entry with only a protocol allows every port of it: UDP into x/a from anywhere, no TCP', () => {
    expect(denied('any-port-of-one-protocol')).toEqual(deniedBy((p) => p.to === 'x/a' && p.protocol === 'TCP'));
  });

  it('namespaceSelector NotIn [y] on the default name label: x/a reaches x, z and DNS, not y and not the external hosts', () => {
    expect(denied('egress-namespace-notin')).toEqual(deniedBy((p) => p.from === 'x/a' && (ns(p.to) === 'y' || isExt(p.to))));
    expect(denied('egress-namespace-notin')).not.toContain(`x/a -> ${DNS} UDP/53`);
  });
});
