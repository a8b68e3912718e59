// The benchmark workload as the data planes see it: checked with the reference evaluator (the NetworkPolicy spec),
// not by the policies' shape, so a generator change that still means the same passes and one that does not fails.
import { describe, expect, it } from 'vitest';
import { peerPodInfo } from '../policy/generate.js';
import { evaluateConnection } from '../policy/evaluate.js';
import { NAMESPACE_NAME_LABEL } from '../policy/selectors.js';
import type { Inventory, PodInfo } from '../policy/types.js';
import { benchmarkPolicySet } from './benchmark.js';
import { CLIENT_LABELS, CLIENT_NAMESPACE, DEFAULT_TARGET, SERVER_LABELS, SERVER_NAMESPACE, SERVER_PORT } from './workload.js';

const pod = (namespace: string, name: string, labels: Record<string, string>, ip: string): PodInfo => ({ name, namespace, labels: { ...labels }, ip, node: 'n0', ports: [] });

/** The server, the client, a stranger in the client's namespace, a client-labelled pod elsewhere, and the filler peers. */
function world(namespaces = DEFAULT_TARGET.namespaces, policies = 3, matchPosition: 'first' | 'last' = 'last', runLabel?: Record<string, string>) {
  const set = benchmarkPolicySet({ policies, matchPosition, seed: 7 }, namespaces, runLabel);
  const server = pod(namespaces.server, 'server', SERVER_LABELS, '10.244.1.2');
  const client = pod(namespaces.client, 'client', CLIENT_LABELS, '10.244.0.2');
  const stranger = pod(namespaces.client, 'stranger', { app: 'other' }, '10.244.0.3');
  const elsewhere = pod('elsewhere', 'lookalike', CLIENT_LABELS, '10.244.0.4');
  const peers = set.peers.map((p, i) => peerPodInfo(p, `10.244.2.${i + 2}`, 'n1'));
  const nsNames = [...new Set([namespaces.server, namespaces.client, 'elsewhere'])];
  const inv: Inventory = { namespaces: nsNames.map((name) => ({ name, labels: { [NAMESPACE_NAME_LABEL]: name } })), pods: [server, client, stranger, elsewhere, ...peers] };
  const to = (src: PodInfo, port = SERVER_PORT) => evaluateConnection(inv, set.policies, { src, dst: server, protocol: 'TCP', port });
  return { set, server, client, stranger, elsewhere, peers, to };
}

describe('the benchmark workload', () => {
  it('N filler policies plus one for the client, all on the server pod in its namespace', () => {
    const { set, to, client } = world();
    expect(set.policies).toHaveLength(4);
    expect(set.peers).toHaveLength(3);
    expect(set.policies.every((p) => p.metadata.namespace === SERVER_NAMESPACE)).toBe(true);
    expect(to(client).ingress.isolatedBy).toHaveLength(4);
  });

  it('the client reaches the server port, and only through its own policy; strangers and look-alikes do not', () => {
    const { to, client, stranger, elsewhere } = world();
    const v = to(client);
    expect(v.allowed).toBe(true);
    expect(v.ingress.allowedBy).toHaveLength(1);
    expect(to(client, SERVER_PORT + 1).allowed).toBe(false);
    expect(to(stranger).allowed).toBe(false);
    expect(to(elsewhere).allowed).toBe(false); // client labels, wrong namespace: both selectors in one peer
  });

  it('each filler allows its own peer on its own port, and nothing of it reaches the client', () => {
    const { set, peers, to } = world();
    const ports = set.peers.map((p) => p.port);
    expect(new Set(ports).size).toBe(ports.length);
    expect(ports).not.toContain(SERVER_PORT);
    peers.forEach((p, i) => {
      expect(to(p, set.peers[i]!.port).allowed).toBe(true);
      expect(to(p, SERVER_PORT).allowed).toBe(false);
      expect(to(p, set.peers[(i + 1) % peers.length]!.port).allowed).toBe(false);
    });
  });

  it("match position: the client's policy is the first or the last the server's policies hold in name order", () => {
    for (const [position, index] of [['first', 0], ['last', 3]] as const) {
      const { to, client } = world(undefined, 3, position);
      const v = to(client).ingress;
      expect(v.isolatedBy.indexOf(v.allowedBy[0]!)).toBe(index);
    }
  });

  it('a backend gives its own namespaces and run label: the policies follow them', () => {
    const namespaces = { server: 'cb-abcde-server', client: 'cb-abcde-client' };
    const { set, to, client } = world(namespaces, 2, 'last', { 'cni-bench/run': 'abcde' });
    expect(set.policies.every((p) => p.metadata.namespace === namespaces.server && p.metadata.labels?.['cni-bench/run'] === 'abcde')).toBe(true);
    expect(to(client).allowed).toBe(true);
    expect(CLIENT_NAMESPACE).not.toBe(namespaces.client);
  });

  it('0 policies: no policy at all, so the server is not isolated; the same seed gives the same set', () => {
    const { set, to, client } = world(undefined, 0);
    expect(set.policies).toEqual([]);
    expect(to(client).ingress.decision).toBe('not-isolated');
    expect(benchmarkPolicySet({ policies: 50, matchPosition: 'last', seed: 7 })).toEqual(benchmarkPolicySet({ policies: 50, matchPosition: 'last', seed: 7 }));
    expect(benchmarkPolicySet({ policies: 50, matchPosition: 'last', seed: 7 })).not.toEqual(benchmarkPolicySet({ policies: 50, matchPosition: 'last', seed: 8 }));
  });
});
