import { describe, expect, it } from 'vitest';
import { PolicyEvaluator, evaluateConnection, type Decision, type Endpoint } from './evaluate.js';
import { resolvePolicySet } from './resolve.js';
import { allowedByResolved, findPod, grid, gridPod, np, NAMESPACES, POD_NAMES } from './test-support/grid.js';
import type { Inventory, NetworkPolicy, Protocol } from './types.js';

const host = gridPod('x', 'h', { hostNetwork: true, ip: '192.168.0.1', labels: { pod: 'h' } });
const INV = grid([host]);
const ep = (ref: string): Endpoint => (ref.includes('/') ? findPod(INV, ref) : { ip: ref });
const onA = { matchLabels: { pod: 'a' } };

interface Case {
  name: string;
  policies: NetworkPolicy[];
  conns: Array<[src: string, dst: string, protocol: Protocol, port: number, allowed: boolean, egress?: Decision, ingress?: Decision]>;
}

const cases: Case[] = [
  {
    name: 'no policies: everything allowed, nobody isolated',
    policies: [],
    conns: [['x/a', 'y/b', 'TCP', 80, true, 'not-isolated', 'not-isolated']],
  },
  {
    name: 'pods selected by no policy stay unisolated',
    policies: [np('x', 'deny-a', { podSelector: onA, ingress: [] })],
    conns: [
      ['y/a', 'x/b', 'TCP', 80, true, 'not-isolated', 'not-isolated'],
      ['y/a', 'x/a', 'TCP', 80, false, 'not-isolated', 'denied'],
      ['x/a', 'y/a', 'TCP', 80, true, 'not-isolated', 'not-isolated'],
    ],
  },
  {
    name: 'ingress: [] allows nothing',
    policies: [np('x', 'p', { podSelector: onA, ingress: [] })],
    conns: [['x/b', 'x/a', 'UDP', 81, false, 'not-isolated', 'denied']],
  },
  {
    name: 'ingress: [{}] allows everything',
    policies: [np('x', 'p', { podSelector: onA, ingress: [{}] })],
    conns: [
      ['z/c', 'x/a', 'SCTP', 81, true, 'not-isolated', 'allowed'],
      ['203.0.113.7', 'x/a', 'TCP', 80, true, 'not-subject', 'allowed'],
    ],
  },
  {
    name: 'namespaceSelector AND podSelector in one peer',
    policies: [np('x', 'p', { podSelector: onA, ingress: [{ from: [{ namespaceSelector: { matchLabels: { ns: 'y' } }, podSelector: { matchLabels: { pod: 'b' } } }] }] })],
    conns: [
      ['y/b', 'x/a', 'TCP', 80, true],
      ['y/a', 'x/a', 'TCP', 80, false],
      ['x/b', 'x/a', 'TCP', 80, false],
      ['z/b', 'x/a', 'TCP', 80, false],
    ],
  },
  {
    name: 'namespaceSelector OR podSelector as two peers',
    policies: [np('x', 'p', { podSelector: onA, ingress: [{ from: [{ namespaceSelector: { matchLabels: { ns: 'y' } } }, { podSelector: { matchLabels: { pod: 'b' } } }] }] })],
    conns: [
      ['y/b', 'x/a', 'TCP', 80, true],
      ['y/a', 'x/a', 'TCP', 80, true],
      ['x/b', 'x/a', 'TCP', 80, true],
      ['z/b', 'x/a', 'TCP', 80, false],
      ['x/c', 'x/a', 'TCP', 80, false],
    ],
  },
  {
    name: 'ipBlock with except (pod IPs and external addresses)',
    policies: [np('x', 'p', { podSelector: onA, ingress: [{ from: [{ ipBlock: { cidr: '10.0.0.0/16', except: ['10.0.2.0/24'] } }] }] })],
    conns: [
      ['x/b', 'x/a', 'TCP', 80, true],
      ['y/b', 'x/a', 'TCP', 80, false],
      ['10.0.9.9', 'x/a', 'TCP', 80, true, 'not-subject', 'allowed'],
      ['10.0.2.200', 'x/a', 'TCP', 80, false, 'not-subject', 'denied'],
      ['203.0.113.5', 'x/a', 'TCP', 80, false],
    ],
  },
  {
    name: 'endPort range, edges inclusive',
    policies: [np('x', 'p', { podSelector: onA, ingress: [{ ports: [{ port: 80, endPort: 81 }] }] })],
    conns: [
      ['y/a', 'x/a', 'TCP', 79, false],
      ['y/a', 'x/a', 'TCP', 80, true],
      ['y/a', 'x/a', 'TCP', 81, true],
      ['y/a', 'x/a', 'TCP', 82, false],
      ['y/a', 'x/a', 'UDP', 80, false],
    ],
  },
  {
    name: 'protocol defaults to TCP',
    policies: [np('x', 'p', { podSelector: onA, ingress: [{ ports: [{ port: 80 }] }] })],
    conns: [
      ['y/a', 'x/a', 'TCP', 80, true],
      ['y/a', 'x/a', 'UDP', 80, false],
      ['y/a', 'x/a', 'SCTP', 80, false],
    ],
  },
  {
    name: 'SCTP, and protocol without port',
    policies: [np('x', 'p', { podSelector: onA, ingress: [{ ports: [{ protocol: 'SCTP', port: 80 }, { protocol: 'UDP' }] }] })],
    conns: [
      ['y/a', 'x/a', 'SCTP', 80, true],
      ['y/a', 'x/a', 'SCTP', 81, false],
      ['y/a', 'x/a', 'TCP', 80, false],
      ['y/a', 'x/a', 'UDP', 12345, true],
    ],
  },
  {
    name: 'named port on ingress resolves on the destination pod, name and protocol',
    policies: [np('x', 'p', { podSelector: onA, ingress: [{ ports: [{ port: 'serve-81-tcp' }, { port: 'serve-80-udp', protocol: 'UDP' }] }] })],
    conns: [
      ['y/a', 'x/a', 'TCP', 81, true],
      ['y/a', 'x/a', 'TCP', 80, false],
      ['y/a', 'x/a', 'UDP', 80, true],
      ['y/a', 'x/a', 'UDP', 81, false],
    ],
  },
  {
    name: 'unresolvable named port matches nothing',
    policies: [np('x', 'p', { podSelector: onA, ingress: [{ ports: [{ port: 'no-such' }] }] })],
    conns: [['y/a', 'x/a', 'TCP', 80, false]],
  },
  {
    name: 'named port on egress resolves on the destination pod; external addresses never match',
    policies: [np('x', 'p', { podSelector: onA, policyTypes: ['Egress'], egress: [{ ports: [{ port: 'serve-80-udp', protocol: 'UDP' }] }] })],
    conns: [
      ['x/a', 'y/b', 'UDP', 80, true, 'allowed', 'not-isolated'],
      ['x/a', 'y/b', 'UDP', 81, false, 'denied', 'not-isolated'],
      ['x/a', 'y/b', 'TCP', 80, false],
      ['x/a', '203.0.113.5', 'UDP', 80, false, 'denied', 'not-subject'],
    ],
  },
  {
    name: 'egress rules without policyTypes isolate both directions',
    policies: [np('x', 'p', { podSelector: onA, egress: [{ to: [{ podSelector: { matchLabels: { pod: 'b' } } }] }] })],
    conns: [
      ['x/a', 'x/b', 'TCP', 80, true, 'allowed', 'not-isolated'],
      ['x/a', 'x/c', 'TCP', 80, false, 'denied', 'not-isolated'],
      ['x/b', 'x/a', 'TCP', 80, false, 'not-isolated', 'denied'],
    ],
  },
  {
    name: 'egress default-deny',
    policies: [np('x', 'deny-egress', { podSelector: {}, policyTypes: ['Egress'] })],
    conns: [
      ['x/a', 'y/a', 'TCP', 80, false, 'denied', 'not-isolated'],
      ['x/a', '203.0.113.5', 'UDP', 53, false, 'denied', 'not-subject'],
      ['y/a', 'x/a', 'TCP', 80, true, 'not-isolated', 'not-isolated'],
    ],
  },
  {
    name: 'multiple policies: union of what they allow',
    policies: [
      np('x', 'allow-b', { podSelector: onA, ingress: [{ from: [{ podSelector: { matchLabels: { pod: 'b' } } }] }] }),
      np('x', 'allow-c', { podSelector: {}, ingress: [{ from: [{ podSelector: { matchLabels: { pod: 'c' } } }], ports: [{ port: 81 }] }] }),
    ],
    conns: [
      ['x/b', 'x/a', 'TCP', 80, true],
      ['x/c', 'x/a', 'TCP', 81, true],
      ['x/c', 'x/a', 'TCP', 80, false],
      ['x/a', 'x/a', 'TCP', 80, false],
      ['x/b', 'x/c', 'TCP', 81, false],
    ],
  },
  {
    name: 'egress of the source AND ingress of the destination',
    policies: [
      np('x', 'a-to-y', { podSelector: onA, policyTypes: ['Egress'], egress: [{ to: [{ namespaceSelector: { matchLabels: { ns: 'y' } } }] }] }),
      np('y', 'b-from-xa', { podSelector: { matchLabels: { pod: 'b' } }, ingress: [{ from: [{ namespaceSelector: { matchLabels: { ns: 'x' } }, podSelector: onA }] }] }),
    ],
    conns: [
      ['x/a', 'y/b', 'TCP', 80, true, 'allowed', 'allowed'],
      ['x/a', 'z/b', 'TCP', 80, false, 'denied', 'not-isolated'],
      ['x/b', 'y/b', 'TCP', 80, false, 'not-isolated', 'denied'],
    ],
  },
  {
    name: 'hostNetwork pods: not subject, not selected by pod selectors, matched by ipBlock',
    policies: [
      np('x', 'deny-all', { podSelector: {}, policyTypes: ['Ingress', 'Egress'] }),
      np('x', 'from-x-pods', { podSelector: { matchLabels: { pod: 'b' } }, ingress: [{ from: [{ podSelector: {} }] }] }),
      np('x', 'from-node', { podSelector: { matchLabels: { pod: 'c' } }, ingress: [{ from: [{ ipBlock: { cidr: '192.168.0.0/24' } }] }] }),
    ],
    conns: [
      ['y/a', 'x/h', 'TCP', 80, true, 'not-isolated', 'not-subject'],
      ['x/h', 'y/a', 'TCP', 80, true, 'not-subject', 'not-isolated'],
      ['x/h', 'x/b', 'TCP', 80, false, 'not-subject', 'denied'],
      ['x/h', 'x/c', 'TCP', 80, true, 'not-subject', 'allowed'],
    ],
  },
];

describe('evaluateConnection', () => {
  for (const c of cases) {
    describe(c.name, () => {
      const evaluator = new PolicyEvaluator(INV, c.policies);
      it.each(c.conns)('%s -> %s %s/%d: allowed=%s', (src, dst, protocol, port, allowed, egress, ingress) => {
        const conn = { src: ep(src), dst: ep(dst), protocol, port };
        const v = evaluateConnection(INV, evaluator, conn);
        expect(v.allowed).toBe(allowed);
        if (egress) expect(v.egress.decision).toBe(egress);
        if (ingress) expect(v.ingress.decision).toBe(ingress);
        // The one-shot form agrees with the prepared evaluator.
        expect(evaluateConnection(INV, c.policies, conn)).toEqual(v);
      });
    });
  }

  it('names the allowing policies in name order and the isolating ones', () => {
    const pols = [
      np('x', 'b-second', { podSelector: onA, ingress: [{}] }),
      np('x', 'a-first', { podSelector: onA, ingress: [{ ports: [{ port: 80 }] }] }),
      np('x', 'c-deny', { podSelector: onA, ingress: [] }),
    ];
    const v = evaluateConnection(INV, pols, { src: ep('y/a'), dst: ep('x/a'), protocol: 'TCP', port: 80 });
    expect(v.ingress).toEqual({ decision: 'allowed', isolatedBy: ['x/a-first', 'x/b-second', 'x/c-deny'], allowedBy: ['x/a-first', 'x/b-second'] });
  });

  it('treats a bare pod address as the pod, with a note', () => {
    const pols = [np('x', 'p', { podSelector: onA, ingress: [{ from: [{ namespaceSelector: { matchLabels: { ns: 'y' } } }] }] })];
    const v = evaluateConnection(INV, pols, { src: { ip: '10.0.2.1' }, dst: { ip: '10.0.1.1' }, protocol: 'TCP', port: 80 });
    expect(v.allowed).toBe(true);
    expect(v.notes).toEqual(['source 10.0.2.1 is pod y/a', 'destination 10.0.1.1 is pod x/a']);
  });

  it('notes hostNetwork endpoints and ipBlocks matching pod IPs', () => {
    const pols = [np('x', 'p', { podSelector: onA, ingress: [{ from: [{ ipBlock: { cidr: '10.0.0.0/8' } }] }] })];
    const v = evaluateConnection(INV, pols, { src: ep('y/c'), dst: ep('x/a'), protocol: 'TCP', port: 80 });
    expect(v.notes.join('\n')).toMatch(/ipBlock 10\.0\.0\.0\/8 matched pod IP 10\.0\.2\.3/);
    const h = evaluateConnection(INV, pols, { src: ep('x/h'), dst: ep('y/a'), protocol: 'TCP', port: 80 });
    expect(h.notes.join('\n')).toMatch(/hostNetwork/);
  });

  it('refuses an evaluator built for another inventory', () => {
    expect(() => evaluateConnection(grid(), new PolicyEvaluator(INV, []), { src: ep('x/a'), dst: ep('x/b'), protocol: 'TCP', port: 80 })).toThrow(/different inventory/);
  });
});

describe('resolve.ts and the evaluator agree on the whole grid', () => {
  // A mix of every feature; a compiler that implements the resolved form faithfully must decide like the evaluator.
  const inv: Inventory = grid([host]);
  inv.pods = inv.pods.map((p) => (p.namespace === 'z' && p.name === 'b' ? { ...p, ports: [{ name: 'serve-80-tcp', containerPort: 8080, protocol: 'TCP' }] } : p));
  const policies: NetworkPolicy[] = [
    np('x', 'a-and', { podSelector: onA, ingress: [{ from: [{ namespaceSelector: { matchLabels: { ns: 'y' } }, podSelector: { matchLabels: { pod: 'b' } } }], ports: [{ port: 80, endPort: 81 }] }] }),
    np('x', 'b-or', { podSelector: { matchLabels: { pod: 'b' } }, ingress: [{ from: [{ namespaceSelector: { matchLabels: { ns: 'z' } } }, { podSelector: {} }], ports: [{ protocol: 'UDP' }] }] }),
    np('x', 'c-named', { podSelector: { matchExpressions: [{ key: 'pod', operator: 'NotIn', values: ['a'] }] }, ingress: [{ ports: [{ port: 'serve-81-tcp' }] }] }),
    np('y', 'egress-named', { podSelector: {}, egress: [{ ports: [{ port: 'serve-80-tcp' }] }, { to: [{ ipBlock: { cidr: '10.0.0.0/16', except: ['10.0.3.0/24'] } }], ports: [{ protocol: 'SCTP', port: 81 }] }] }),
    np('z', 'deny-egress-c', { podSelector: { matchLabels: { pod: 'c' } }, policyTypes: ['Egress'] }),
    np('z', 'ingress-ipblock', { podSelector: { matchLabels: { pod: 'a' } }, ingress: [{ from: [{ ipBlock: { cidr: '10.0.1.0/24', except: ['10.0.1.3/32'] } }] }] }),
    np('z', 'ingress-none', { podSelector: { matchLabels: { pod: 'a' } }, ingress: [] }),
  ];
  it('for every pod pair, protocol and port', () => {
    const resolved = resolvePolicySet(inv, policies);
    const evaluator = new PolicyEvaluator(inv, policies);
    const pods = [...NAMESPACES.flatMap((ns) => POD_NAMES.map((n) => findPod(inv, `${ns}/${n}`))), findPod(inv, 'x/h')];
    const tally = { allowed: 0, denied: 0 };
    const disagreements: string[] = [];
    for (const src of pods)
      for (const dst of pods)
        for (const [protocol, port] of [['TCP', 80], ['TCP', 81], ['TCP', 8080], ['UDP', 80], ['SCTP', 81], ['SCTP', 80]] as const) {
          const conn = { src, dst, protocol, port };
          const truth = evaluator.evaluate(conn).allowed;
          tally[truth ? 'allowed' : 'denied']++;
          if (allowedByResolved(resolved, conn) !== truth) disagreements.push(`${src.namespace}/${src.name} -> ${dst.namespace}/${dst.name} ${protocol}/${port}: evaluator ${truth}`);
        }
    expect(disagreements).toEqual([]);
    // The set really exercises both outcomes.
    expect(tally.allowed).toBeGreaterThan(100);
    expect(tally.denied).toBeGreaterThan(100);
  });
});
