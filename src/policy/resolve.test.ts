import { describe, expect, it } from 'vitest';
import { generatePolicySet, peerPodInfo } from './generate.js';
import { effectivePolicyTypes, resolveEndpoints, resolvePolicySet, validatePolicies, validatePolicy } from './resolve.js';
import { grid, gridPod, gridPorts, np } from './test-support/grid.js';
import type { EndpointPolicy, Inventory, NetworkPolicy, PeerMatch, PodInfo, ResolvedRule } from './types.js';

const keys = (pods: PodInfo[]) => pods.map((p) => `${p.namespace}/${p.name}`);

function endpoint(eps: EndpointPolicy[], key: string): EndpointPolicy {
  const ep = eps.find((e) => `${e.pod.namespace}/${e.pod.name}` === key);
  if (!ep) throw new Error(`no endpoint ${key}`);
  return ep;
}

/** Pods of a rule's only peer, or the peer itself when it is not a pod peer. */
function peerView(peer: PeerMatch): unknown {
  return peer.kind === 'pods' ? keys(peer.pods) : peer;
}

function onlyIngressRules(inv: Inventory, policy: NetworkPolicy, pod = 'x/a'): ResolvedRule[] {
  const ep = endpoint(resolveEndpoints(inv, [policy]), pod);
  expect(ep.ingress.policies).toHaveLength(1);
  return ep.ingress.policies[0]!.rules;
}

const selectA = { matchLabels: { pod: 'a' } };

describe('policyTypes defaults', () => {
  it.each<[string, NetworkPolicy['spec'], { ingress: boolean; egress: boolean }]>([
    ['absent, ingress rules only', { podSelector: {}, ingress: [{}] }, { ingress: true, egress: false }],
    ['absent, no rules at all', { podSelector: {} }, { ingress: true, egress: false }],
    ['absent, egress rules present -> both', { podSelector: {}, egress: [{}] }, { ingress: true, egress: true }],
    ['absent, egress: [] -> ingress only (len 0, as the API server defaults)', { podSelector: {}, egress: [] }, { ingress: true, egress: false }],
    ['empty list behaves like absent', { podSelector: {}, policyTypes: [], egress: [{}] }, { ingress: true, egress: true }],
    ['Egress only', { podSelector: {}, policyTypes: ['Egress'], ingress: [{}] }, { ingress: false, egress: true }],
    ['both explicit', { podSelector: {}, policyTypes: ['Ingress', 'Egress'] }, { ingress: true, egress: true }],
  ])('%s', (_n, spec, want) => {
    const pol = np('x', 'p', spec);
    expect(effectivePolicyTypes(pol)).toEqual(want);
    const ep = endpoint(resolveEndpoints(grid(), [pol]), 'x/a');
    expect({ ingress: ep.ingress.isolated, egress: ep.egress.isolated }).toEqual(want);
  });
});

describe('which pods a policy selects', () => {
  it('isolates only selected pods in the policy namespace', () => {
    const eps = resolveEndpoints(grid(), [np('x', 'only-a', { podSelector: selectA, ingress: [] })]);
    const isolated = eps.filter((e) => e.ingress.isolated).map((e) => `${e.pod.namespace}/${e.pod.name}`);
    expect(isolated).toEqual(['x/a']);
    expect(eps).toHaveLength(9);
    expect(eps.every((e) => !e.egress.isolated)).toBe(true);
  });
  it('pods selected by no policy are not isolated and carry no policies', () => {
    const ep = endpoint(resolveEndpoints(grid(), [np('x', 'only-a', { podSelector: selectA })]), 'x/b');
    expect(ep.ingress).toEqual({ isolated: false, policies: [] });
    expect(ep.egress).toEqual({ isolated: false, policies: [] });
  });
  it('lists every selecting policy (union), ordered by namespace then name whatever the input order', () => {
    const pols = [
      np('x', 'zeta', { podSelector: {}, ingress: [{}] }),
      np('y', 'alpha', { podSelector: {}, ingress: [{}] }),
      np('x', 'alpha', { podSelector: selectA, ingress: [] }),
      np('x', 'mid', { podSelector: { matchExpressions: [{ key: 'pod', operator: 'In', values: ['a', 'b'] }] } }),
    ];
    const eps = resolveEndpoints(grid(), pols);
    expect(endpoint(eps, 'x/a').ingress.policies.map((p) => p.policy)).toEqual(['x/alpha', 'x/mid', 'x/zeta']);
    expect(endpoint(eps, 'x/c').ingress.policies.map((p) => p.policy)).toEqual(['x/zeta']);
    expect(endpoint(eps, 'y/c').ingress.policies.map((p) => p.policy)).toEqual(['y/alpha']);
  });
  it('endpoints come in namespace/name order', () => {
    const inv = grid();
    inv.pods.reverse();
    expect(resolveEndpoints(inv, []).map((e) => `${e.pod.namespace}/${e.pod.name}`)).toEqual(
      ['x/a', 'x/b', 'x/c', 'y/a', 'y/b', 'y/c', 'z/a', 'z/b', 'z/c'],
    );
  });
});

describe('rules', () => {
  it('ingress: [] isolates and allows nothing; ingress: [{}] allows everything', () => {
    expect(onlyIngressRules(grid(), np('x', 'p', { podSelector: {}, ingress: [] }))).toEqual([]);
    expect(onlyIngressRules(grid(), np('x', 'p', { podSelector: {}, ingress: [{}] }))).toEqual([{ peers: [{ kind: 'any' }], ports: 'all' }]);
    expect(onlyIngressRules(grid(), np('x', 'p', { podSelector: {}, ingress: [{ from: [], ports: [] }] }))).toEqual([
      { peers: [{ kind: 'any' }], ports: 'all' },
    ]);
  });
  it('egress with policyTypes Egress and no rules is default-deny', () => {
    const ep = endpoint(resolveEndpoints(grid(), [np('x', 'deny-egress', { podSelector: {}, policyTypes: ['Egress'] })]), 'x/b');
    expect(ep.egress).toEqual({ isolated: true, policies: [{ policy: 'x/deny-egress', rules: [] }] });
    expect(ep.ingress.isolated).toBe(false);
  });
});

describe('peers', () => {
  it.each<[string, NonNullable<NetworkPolicy['spec']['ingress']>[number]['from'], unknown[]]>([
    ['podSelector alone: pods of the policy namespace', [{ podSelector: { matchLabels: { pod: 'b' } } }], [['x/b']]],
    ['empty podSelector: every pod of the policy namespace', [{ podSelector: {} }], [['x/a', 'x/b', 'x/c']]],
    ['namespaceSelector alone: every pod of matching namespaces', [{ namespaceSelector: { matchLabels: { ns: 'y' } } }], [['y/a', 'y/b', 'y/c']]],
    [
      'empty namespaceSelector: every pod of every namespace',
      [{ namespaceSelector: {} }],
      [['x/a', 'x/b', 'x/c', 'y/a', 'y/b', 'y/c', 'z/a', 'z/b', 'z/c']],
    ],
    [
      'both in one peer: AND',
      [{ namespaceSelector: { matchExpressions: [{ key: 'ns', operator: 'In', values: ['y', 'z'] }] }, podSelector: { matchLabels: { pod: 'b' } } }],
      [['y/b', 'z/b']],
    ],
    [
      'as two peers: OR',
      [
        { namespaceSelector: { matchExpressions: [{ key: 'ns', operator: 'In', values: ['y', 'z'] }] } },
        { podSelector: { matchLabels: { pod: 'b' } } },
      ],
      [['y/a', 'y/b', 'y/c', 'z/a', 'z/b', 'z/c'], ['x/b']],
    ],
    [
      'automatic kubernetes.io/metadata.name namespace label',
      [{ namespaceSelector: { matchLabels: { 'kubernetes.io/metadata.name': 'z' } }, podSelector: { matchLabels: { pod: 'c' } } }],
      [['z/c']],
    ],
    ['selector matching nobody', [{ podSelector: { matchLabels: { pod: 'nope' } } }], [[]]],
    [
      'ipBlock with except (host bits cleared)',
      [{ ipBlock: { cidr: '10.0.2.9/16', except: ['10.0.2.0/24'] } }],
      [{ kind: 'cidr', cidr: '10.0.0.0/16', except: ['10.0.2.0/24'] }],
    ],
  ])('%s', (_n, from, want) => {
    const rules = onlyIngressRules(grid(), np('x', 'p', { podSelector: selectA, ingress: [{ from }] }));
    expect(rules).toHaveLength(1);
    expect(rules[0]!.peers.map(peerView)).toEqual(want);
  });

  it('hostNetwork pods are not endpoints and are never selected as peers', () => {
    const host = gridPod('x', 'h', { hostNetwork: true, labels: { pod: 'a' }, ip: '192.168.0.1' });
    const set = resolvePolicySet(grid([host]), [
      np('x', 'p', { podSelector: {}, ingress: [{ from: [{ podSelector: selectA }, { namespaceSelector: {} }] }] }),
    ]);
    expect(keys(set.hostNetworkPods)).toEqual(['x/h']);
    expect(set.endpoints.map((e) => e.pod.name)).not.toContain('h');
    for (const peer of set.endpoints[0]!.ingress.policies[0]!.rules[0]!.peers) {
      expect(peer.kind === 'pods' && keys(peer.pods)).not.toContain('x/h');
    }
  });
});

describe('ports', () => {
  it.each<[string, NonNullable<NetworkPolicy['spec']['ingress']>[number]['ports'], ResolvedRule['ports']]>([
    ['protocol defaults to TCP', [{ port: 80 }], [{ protocol: 'TCP', from: 80, to: 80 }]],
    ['UDP', [{ protocol: 'UDP', port: 53 }], [{ protocol: 'UDP', from: 53, to: 53 }]],
    ['SCTP', [{ protocol: 'SCTP', port: 80 }], [{ protocol: 'SCTP', from: 80, to: 80 }]],
    ['endPort range', [{ port: 8000, endPort: 8080 }], [{ protocol: 'TCP', from: 8000, to: 8080 }]],
    ['protocol without port: every port of it', [{ protocol: 'UDP' }], [{ protocol: 'UDP' }]],
    ['empty port entry: every TCP port', [{}], [{ protocol: 'TCP' }]],
    [
      'several entries',
      [{ port: 80 }, { protocol: 'UDP', port: 81 }],
      [{ protocol: 'TCP', from: 80, to: 80 }, { protocol: 'UDP', from: 81, to: 81 }],
    ],
    ['named port (ingress, resolved on the selected pod)', [{ port: 'serve-81-udp', protocol: 'UDP' }], [{ protocol: 'UDP', from: 81, to: 81 }]],
    ['named port needs the protocol to match too', [{ port: 'serve-81-udp' }, { port: 80 }], [{ protocol: 'TCP', from: 80, to: 80 }]],
  ])('%s', (_n, ports, want) => {
    const rules = onlyIngressRules(grid(), np('x', 'p', { podSelector: selectA, ingress: [{ ports }] }));
    expect(rules).toEqual([{ peers: [{ kind: 'any' }], ports: want }]);
  });

  it('a rule whose ports all fail to resolve is dropped, the policy still isolates', () => {
    const ep = endpoint(
      resolveEndpoints(grid(), [np('x', 'p', { podSelector: selectA, ingress: [{ ports: [{ port: 'no-such-port' }] }, { ports: [{ port: 9000, endPort: 8000 }] }] })]),
      'x/a',
    );
    expect(ep.ingress).toEqual({ isolated: true, policies: [{ policy: 'x/p', rules: [] }] });
  });

  it('ingress named ports resolve per selected pod', () => {
    const inv = grid();
    inv.pods = inv.pods.map((p) =>
      p.namespace === 'x' && p.name === 'b' ? { ...p, ports: [{ name: 'http', containerPort: 8080, protocol: 'TCP' as const }] } : p,
    );
    inv.pods = inv.pods.map((p) =>
      p.namespace === 'x' && p.name === 'a' ? { ...p, ports: [{ name: 'http', containerPort: 80, protocol: 'TCP' as const }] } : p,
    );
    const eps = resolveEndpoints(inv, [np('x', 'p', { podSelector: {}, ingress: [{ ports: [{ port: 'http' }] }] })]);
    expect(endpoint(eps, 'x/a').ingress.policies[0]!.rules).toEqual([{ peers: [{ kind: 'any' }], ports: [{ protocol: 'TCP', from: 80, to: 80 }] }]);
    expect(endpoint(eps, 'x/b').ingress.policies[0]!.rules).toEqual([{ peers: [{ kind: 'any' }], ports: [{ protocol: 'TCP', from: 8080, to: 8080 }] }]);
    expect(endpoint(eps, 'x/c').ingress.policies[0]!.rules).toEqual([]);
  });

  describe('egress named ports resolve per destination pod', () => {
    // y/a serves http on 80, y/b on 8080, y/c declares no http; z/a serves http on 80.
    const inv = grid();
    const http = (port: number) => [...gridPorts(), { name: 'http', containerPort: port, protocol: 'TCP' as const }];
    inv.pods = inv.pods.map((p) => {
      const key = `${p.namespace}/${p.name}`;
      if (key === 'y/a' || key === 'z/a') return { ...p, ports: http(80) };
      if (key === 'y/b') return { ...p, ports: http(8080) };
      return p;
    });
    const egressRules = (egress: NonNullable<NetworkPolicy['spec']['egress']>) =>
      endpoint(resolveEndpoints(inv, [np('x', 'p', { podSelector: selectA, egress })]), 'x/a').egress.policies[0]!.rules.map((r) => ({
        peers: r.peers.map(peerView),
        ports: r.ports,
      }));

    it('splits a pod peer into one rule per resolved number', () => {
      expect(egressRules([{ to: [{ namespaceSelector: { matchLabels: { ns: 'y' } } }], ports: [{ port: 'http' }] }])).toEqual([
        { peers: [['y/a']], ports: [{ protocol: 'TCP', from: 80, to: 80 }] },
        { peers: [['y/b']], ports: [{ protocol: 'TCP', from: 8080, to: 8080 }] },
      ]);
    });
    it('keeps numeric ports on the original peers', () => {
      expect(egressRules([{ to: [{ namespaceSelector: { matchLabels: { ns: 'y' } }, podSelector: { matchLabels: { pod: 'b' } } }], ports: [{ port: 'http' }, { port: 443 }] }])).toEqual([
        { peers: [['y/b']], ports: [{ protocol: 'TCP', from: 443, to: 443 }] },
        { peers: [['y/b']], ports: [{ protocol: 'TCP', from: 8080, to: 8080 }] },
      ]);
    });
    it('with no `to`, resolves against every pod declaring the name (upstream conformance)', () => {
      expect(egressRules([{ ports: [{ port: 'http' }] }])).toEqual([
        { peers: [['y/a', 'z/a']], ports: [{ protocol: 'TCP', from: 80, to: 80 }] },
        { peers: [['y/b']], ports: [{ protocol: 'TCP', from: 8080, to: 8080 }] },
      ]);
    });
    it('with an ipBlock, resolves against the pods inside the block only', () => {
      expect(egressRules([{ to: [{ ipBlock: { cidr: '10.0.2.0/24', except: ['10.0.2.2/32'] } }], ports: [{ port: 'http' }] }])).toEqual([
        { peers: [['y/a']], ports: [{ protocol: 'TCP', from: 80, to: 80 }] },
      ]);
    });
    it('an unresolvable name matches nothing', () => {
      expect(egressRules([{ to: [{ podSelector: {} }], ports: [{ port: 'http' }] }])).toEqual([]);
      expect(egressRules([{ ports: [{ port: 'http', protocol: 'UDP' }] }])).toEqual([]);
    });
  });
});

describe('performance', () => {
  it('10000 generated policies with their peers resolve well under a second', () => {
    const { policies, peers } = generatePolicySet({
      policies: 10000,
      matchPosition: 'last',
      seed: 1,
      serverNamespace: 'srv',
      clientNamespace: 'cli',
      serverLabels: { app: 'server' },
      clientLabels: { app: 'client' },
      serverPort: 8080,
    });
    const inv: Inventory = {
      namespaces: [{ name: 'srv', labels: {} }, { name: 'cli', labels: {} }],
      pods: [
        ...[0, 1, 2].map((i) => ({ name: `server-${i}`, namespace: 'srv', labels: { app: 'server' }, ip: `10.1.0.${i + 1}`, node: 'n0', ports: [] })),
        { name: 'client', namespace: 'cli', labels: { app: 'client' }, ip: '10.2.0.1', node: 'n1', ports: [] },
        ...peers.map((p, i) => peerPodInfo(p, `10.3.${i >> 8}.${i & 255}`, 'n1')),
      ],
    };
    const t0 = performance.now();
    const eps = resolveEndpoints(inv, policies);
    const ms = performance.now() - t0;
    const server = endpoint(eps, 'srv/server-0');
    expect(server.ingress.policies).toHaveLength(10001);
    expect(server.ingress.policies.at(-1)!.policy).toBe('srv/np-10000');
    const last = server.ingress.policies.at(-1)!.rules[0]!.peers[0]!;
    expect(peerView(last)).toEqual(['cli/client']);
    // Every filler names exactly its own peer.
    expect(server.ingress.policies.slice(0, -1).every((p) => p.rules[0]!.peers[0]!.kind === 'pods' && (p.rules[0]!.peers[0] as { pods: PodInfo[] }).pods.length === 1)).toBe(true);
    expect(endpoint(eps, 'srv/peer-00042').ingress.isolated).toBe(false);
    expect(ms).toBeLessThan(10_000); // loose: catches quadratic blow-ups on a loaded machine, not drift
  });
});

describe('validatePolicy', () => {
  it('accepts a well-formed policy', () => {
    expect(
      validatePolicy(
        np('x', 'ok', {
          podSelector: selectA,
          policyTypes: ['Ingress', 'Egress'],
          ingress: [{ from: [{ ipBlock: { cidr: '10.0.0.0/16', except: ['10.0.1.0/24'] } }], ports: [{ port: 80, endPort: 90 }, { port: 'http' }] }],
          egress: [{ to: [{ namespaceSelector: {}, podSelector: {} }], ports: [{ protocol: 'SCTP' }] }],
        }),
      ),
    ).toEqual([]);
  });
  it.each<[string, NetworkPolicy['spec'], string[]]>([
    ['In without values', { podSelector: { matchExpressions: [{ key: 'a', operator: 'In' }] } }, ['x/p.spec.podSelector.matchExpressions[0].values']],
    ['empty peer', { podSelector: {}, ingress: [{ from: [{}] }] }, ['x/p.spec.ingress[0].from[0]']],
    ['ipBlock with selector', { podSelector: {}, egress: [{ to: [{ ipBlock: { cidr: '10.0.0.0/8' }, podSelector: {} }] }] }, ['x/p.spec.egress[0].to[0]']],
    ['bad cidr', { podSelector: {}, ingress: [{ from: [{ ipBlock: { cidr: '10.0.0.0/40' } }] }] }, ['x/p.spec.ingress[0].from[0].ipBlock.cidr']],
    ['except outside cidr', { podSelector: {}, ingress: [{ from: [{ ipBlock: { cidr: '10.0.0.0/16', except: ['10.1.0.0/24'] } }] }] }, ['x/p.spec.ingress[0].from[0].ipBlock.except[0]']],
    ['endPort below port', { podSelector: {}, ingress: [{ ports: [{ port: 90, endPort: 80 }] }] }, ['x/p.spec.ingress[0].ports[0].endPort']],
    ['endPort with named port', { podSelector: {}, ingress: [{ ports: [{ port: 'http', endPort: 80 }] }] }, ['x/p.spec.ingress[0].ports[0].endPort']],
    ['port out of range', { podSelector: {}, ingress: [{ ports: [{ port: 70000 }] }] }, ['x/p.spec.ingress[0].ports[0].port']],
    ['bad port name', { podSelector: {}, ingress: [{ ports: [{ port: 'Not_A-Name' }] }] }, ['x/p.spec.ingress[0].ports[0].port']],
    ['bad protocol', { podSelector: {}, ingress: [{ ports: [{ protocol: 'ICMP' as 'TCP' }] }] }, ['x/p.spec.ingress[0].ports[0].protocol']],
    ['bad policyType', { podSelector: {}, policyTypes: ['Ingress', 'Both' as 'Ingress'] }, ['x/p.spec.policyTypes[1]']],
  ])('%s', (_n, spec, paths) => {
    expect(validatePolicy(np('x', 'p', spec)).map((i) => i.path)).toEqual(paths);
  });
  it('reports duplicates across a set', () => {
    const p = np('x', 'dup', { podSelector: {} });
    expect(validatePolicies([p, p]).map((i) => i.message)).toEqual(['duplicate policy (same namespace and name)']);
  });
});
