import { describe, expect, it } from 'vitest';
import { evaluateConnection } from './evaluate.js';
import { FIRST_FILLER_PORT, PolicyShapeError, fillerPorts, generatePolicySet, mulberry32, peerPodInfo, type PolicyShape } from './generate.js';
import { validatePolicies } from './resolve.js';
import type { Inventory, PodInfo } from './types.js';

const shape = (over: Partial<PolicyShape> = {}): PolicyShape => ({
  policies: 20,
  matchPosition: 'last',
  seed: 7,
  serverNamespace: 'cb-srv',
  clientNamespace: 'cb-cli',
  serverLabels: { app: 'server' },
  clientLabels: { app: 'client' },
  serverPort: 8080,
  runLabel: { 'cni-bench/run': 'r1' },
  ...over,
});

const fillerPortOf = (p: ReturnType<typeof generatePolicySet>['policies'][number]) => p.spec.ingress?.[0]?.ports?.[0]?.port;

describe('mulberry32', () => {
  it('is deterministic per seed and in [0, 1)', () => {
    const a = mulberry32(42);
    const b = mulberry32(42);
    const xs = Array.from({ length: 1000 }, () => a());
    expect(Array.from({ length: 1000 }, () => b())).toEqual(xs);
    expect(xs.every((x) => x >= 0 && x < 1)).toBe(true);
    expect(mulberry32(43)()).not.toBe(mulberry32(42)());
  });
});

describe('generatePolicySet', () => {
  it('same seed gives identical output; another seed permutes the ports differently', () => {
    const one = generatePolicySet(shape({ policies: 500 }));
    expect(generatePolicySet(shape({ policies: 500 }))).toEqual(one);
    const other = generatePolicySet(shape({ policies: 500, seed: 8 }));
    expect(other.policies.map(fillerPortOf)).not.toEqual(one.policies.map(fillerPortOf));
    // Only the permutation changes: names and the set of ports stay.
    expect(other.policies.map((p) => p.metadata.name)).toEqual(one.policies.map((p) => p.metadata.name));
    expect(new Set(other.peers.map((p) => p.port))).toEqual(new Set(one.peers.map((p) => p.port)));
  });

  it('0 policies: nothing at all', () => {
    expect(generatePolicySet(shape({ policies: 0 }))).toEqual({ policies: [], peers: [] });
  });

  it.each<['first' | 'last', string]>([
    ['first', 'np-00'],
    ['last', 'np-20'],
  ])('match position %s puts the client policy at %s, first/last in name order', (matchPosition, clientName) => {
    const { policies } = generatePolicySet(shape({ matchPosition }));
    expect(policies).toHaveLength(21);
    const names = policies.map((p) => p.metadata.name);
    expect(names).toEqual([...names].sort());
    expect(new Set(names).size).toBe(21);
    const client = policies.filter((p) => p.metadata.labels?.['cni-bench/role'] === 'allow-client');
    expect(client.map((p) => p.metadata.name)).toEqual([clientName]);
    expect(matchPosition === 'first' ? policies[0] : policies[20]).toBe(client[0]);
  });

  it('pads names to the width of N', () => {
    expect(generatePolicySet(shape({ policies: 10000 })).policies.at(-1)!.metadata.name).toBe('np-10000');
    expect(generatePolicySet(shape({ policies: 3, matchPosition: 'first' })).policies.map((p) => p.metadata.name)).toEqual(['np-0', 'np-1', 'np-2', 'np-3']);
  });

  it('has the documented shape', () => {
    const { policies, peers } = generatePolicySet(shape({ policies: 2, matchPosition: 'first' }));
    expect(policies[0]).toEqual({
      apiVersion: 'networking.k8s.io/v1',
      kind: 'NetworkPolicy',
      metadata: { name: 'np-0', namespace: 'cb-srv', labels: { 'cni-bench/run': 'r1', 'cni-bench/role': 'allow-client' } },
      spec: {
        podSelector: { matchLabels: { app: 'server' } },
        policyTypes: ['Ingress'],
        ingress: [
          {
            from: [{ namespaceSelector: { matchLabels: { 'kubernetes.io/metadata.name': 'cb-cli' } }, podSelector: { matchLabels: { app: 'client' } } }],
            ports: [{ protocol: 'TCP', port: 8080 }],
          },
        ],
      },
    });
    const filler = policies[1]!;
    expect(filler.metadata.labels).toEqual({ 'cni-bench/run': 'r1', 'cni-bench/role': 'filler' });
    expect(filler.spec.podSelector).toEqual({ matchLabels: { app: 'server' } });
    expect(filler.spec.policyTypes).toEqual(['Ingress']);
    expect(filler.spec.ingress).toEqual([{ from: [{ podSelector: { matchLabels: { 'cni-bench/peer': 'p-1' } } }], ports: [{ protocol: 'TCP', port: peers[0]!.port }] }]);
    expect(peers[0]).toEqual({ name: 'peer-1', namespace: 'cb-srv', labels: { 'cni-bench/run': 'r1', 'cni-bench/peer': 'p-1' }, port: peers[0]!.port, protocol: 'TCP' });
    expect(validatePolicies(policies)).toEqual([]);
  });

  it('gives every filler a distinct port, never the server port, and a distinct peer', () => {
    const { policies, peers } = generatePolicySet(shape({ policies: 3000, serverPort: 10500 }));
    const ports = peers.map((p) => p.port);
    expect(new Set(ports).size).toBe(3000);
    expect(ports).not.toContain(10500);
    expect(Math.min(...ports)).toBe(FIRST_FILLER_PORT);
    expect(Math.max(...ports)).toBe(FIRST_FILLER_PORT + 3000); // one past, because 10500 was skipped
    expect(new Set(peers.map((p) => p.labels['cni-bench/peer'])).size).toBe(3000);
    expect(policies.filter((p) => p.metadata.labels?.['cni-bench/role'] === 'filler').map(fillerPortOf)).toEqual(ports);
  });

  it('fits 55536 fillers below 65536 and refuses one more', () => {
    const ports = fillerPorts(55536, 80, 1);
    expect(Math.max(...ports)).toBe(65535);
    expect(() => fillerPorts(55537, 80, 1)).toThrow(PolicyShapeError);
    expect(() => fillerPorts(55536, 20000, 1)).toThrow(/past 65535/);
  });

  it.each<[string, Partial<PolicyShape>, RegExp]>([
    ['negative count', { policies: -1 }, /policies must be an integer/],
    ['fractional count', { policies: 1.5 }, /policies must be an integer/],
    ['bad server port', { serverPort: 0 }, /serverPort/],
    ['empty server labels', { serverLabels: {} }, /serverLabels must not be empty/],
    ['server labels that the peers carry', { serverLabels: { 'cni-bench/run': 'r1' } }, /match the peer pods/],
  ])('rejects %s', (_n, over, msg) => {
    expect(() => generatePolicySet(shape(over))).toThrow(msg);
  });

  it('generates 10000 policies without a quadratic blow-up', () => {
    generatePolicySet(shape({ policies: 100 })); // warm the JIT
    const t0 = performance.now();
    const { policies } = generatePolicySet(shape({ policies: 10000 }));
    const ms = performance.now() - t0;
    expect(policies).toHaveLength(10001);
    expect(ms).toBeLessThan(5000); // loose: catches quadratic blow-ups on a loaded machine; speed itself is a benchmark's job
  });

  it.each<'first' | 'last'>(['first', 'last'])('allows the client and each peer on its own port only (%s)', (matchPosition) => {
    const { policies, peers } = generatePolicySet(shape({ policies: 50, matchPosition }));
    const pod = (name: string, namespace: string, labels: Record<string, string>, ip: string): PodInfo => ({ name, namespace, labels, ip, node: 'n', ports: [] });
    const server = pod('server', 'cb-srv', { app: 'server' }, '10.1.0.1');
    const client = pod('client', 'cb-cli', { app: 'client' }, '10.2.0.1');
    const impostor = pod('client', 'cb-srv', { app: 'client' }, '10.1.0.9');
    const peerPods = peers.map((p, i) => peerPodInfo(p, `10.3.0.${i + 1}`, 'n'));
    const inv: Inventory = { namespaces: [{ name: 'cb-srv', labels: {} }, { name: 'cb-cli', labels: {} }], pods: [server, client, impostor, ...peerPods] };
    const allowed = (src: PodInfo, port: number) => evaluateConnection(inv, policies, { src, dst: server, protocol: 'TCP', port }).allowed;
    const clientVerdict = evaluateConnection(inv, policies, { src: client, dst: server, protocol: 'TCP', port: 8080 });
    expect(clientVerdict.ingress.allowedBy).toEqual([`cb-srv/${matchPosition === 'first' ? 'np-00' : 'np-50'}`]);
    expect(clientVerdict.ingress.isolatedBy).toHaveLength(51);
    expect(allowed(client, 8081)).toBe(false);
    // Same labels in the server's namespace: the namespaceSelector keeps it out.
    expect(allowed(impostor, 8080)).toBe(false);
    expect(allowed(peerPods[7]!, peers[7]!.port)).toBe(true);
    expect(allowed(peerPods[7]!, peers[8]!.port)).toBe(false);
    expect(allowed(peerPods[7]!, 8080)).toBe(false);
    // Peers themselves are not selected by any policy.
    expect(evaluateConnection(inv, policies, { src: client, dst: peerPods[0]!, protocol: 'TCP', port: 1 }).ingress.decision).toBe('not-isolated');
  });
});
