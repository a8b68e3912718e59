// The benchmark's policy set, generated deterministically from a seed: N "filler" policies that select the
// server pods and each allow one other peer on its own port, plus one policy that allows the probe client.
// Every filler selects the server, so a data plane that evaluates policies one after another pays for all of
// them on a new connection; `matchPosition` puts the client's policy first (best case) or last (worst case)
// in name order, the tie-break data planes use between policies of equal precedence.
import { NAMESPACE_NAME_LABEL, matchesSelector } from './selectors.js';
import { seededRandom as mulberry32 } from '../stats/summary.js';
import type { NetworkPolicy, PodInfo, Protocol } from './types.js';
import { BenchError } from '../errors.js';

export interface PolicyShape {
  /** Number of filler policies (0: no policies at all, the server is not isolated). */
  policies: number;
  matchPosition: 'first' | 'last';
  seed: number;
  serverNamespace: string;
  clientNamespace: string;
  serverLabels: Record<string, string>;
  clientLabels: Record<string, string>;
  serverPort: number;
  /** Put on every generated object's labels so a run's objects can be found and removed together. */
  runLabel?: Record<string, string>;
}

/** A peer pod a filler policy allows. It is never started; backends add it to their inventory with an
 * address so selectors resolve to real members, as in a cluster where those peers exist. */
export interface PeerPodSpec {
  name: string;
  namespace: string;
  labels: Record<string, string>;
  /** The server port its filler policy lets it reach. */
  port: number;
  protocol: Protocol;
  /** A fixed address; absent: the backend gives it one from a range no pod uses. */
  ip?: string;
}

/** Policies, and the peer pods they name that exist only as addresses (a backend that can, accounts for them). */
export interface PolicySet {
  policies: NetworkPolicy[];
  peers: PeerPodSpec[];
}

export const ROLE_LABEL = 'cni-bench/role';
export const PEER_LABEL = 'cni-bench/peer';
export const FIRST_FILLER_PORT = 10000;

export class PolicyShapeError extends BenchError {
  constructor(message: string) {
    super('usage', `invalid policy shape: ${message}`);
  }
}

export { seededRandom as mulberry32 } from '../stats/summary.js';

/** `count` ports from FIRST_FILLER_PORT upward, skipping `avoid` (the server port), in a seeded order. */
export function fillerPorts(count: number, avoid: number, seed: number): number[] {
  const ports: number[] = [];
  for (let p = FIRST_FILLER_PORT; ports.length < count; p++) {
    if (p > 65535) {
      throw new PolicyShapeError(`${count} filler policies need ${count} distinct ports from ${FIRST_FILLER_PORT}, which runs past 65535`);
    }
    if (p !== avoid) ports.push(p);
  }
  const rand = mulberry32(seed);
  for (let i = ports.length - 1; i > 0; i--) {
    const j = Math.floor(rand() * (i + 1));
    const t = ports[i] as number;
    ports[i] = ports[j] as number;
    ports[j] = t;
  }
  return ports;
}

function checkShape(s: PolicyShape): void {
  const problems: string[] = [];
  if (!Number.isInteger(s.policies) || s.policies < 0) problems.push(`policies must be an integer >= 0 (got ${s.policies})`);
  if (!Number.isInteger(s.seed)) problems.push(`seed must be an integer (got ${s.seed})`);
  if (!Number.isInteger(s.serverPort) || s.serverPort < 1 || s.serverPort > 65535) problems.push(`serverPort must be 1..65535 (got ${s.serverPort})`);
  if (!s.serverNamespace) problems.push('serverNamespace must not be empty');
  if (!s.clientNamespace) problems.push('clientNamespace must not be empty');
  // An empty server selector would select the peers too and make them isolated endpoints of the policies.
  if (Object.keys(s.serverLabels).length === 0) problems.push('serverLabels must not be empty');
  if (s.matchPosition !== 'first' && s.matchPosition !== 'last') problems.push(`matchPosition must be first or last (got ${String(s.matchPosition)})`);
  if (problems.length > 0) throw new PolicyShapeError(problems.join('; '));
}

export function generatePolicySet(shape: PolicyShape): PolicySet {
  checkShape(shape);
  const n = shape.policies;
  if (n === 0) return { policies: [], peers: [] };

  const width = String(n).length;
  const pad = (i: number) => String(i).padStart(width, '0');
  const runLabel = shape.runLabel ?? {};
  const ports = fillerPorts(n, shape.serverPort, shape.seed);
  const clientIndex = shape.matchPosition === 'first' ? 0 : n;
  const firstFiller = shape.matchPosition === 'first' ? 1 : 0;
  const meta = (index: number, role: string) => ({
    name: `np-${pad(index)}`,
    namespace: shape.serverNamespace,
    labels: { ...runLabel, [ROLE_LABEL]: role },
  });
  const serverSelector = { matchLabels: { ...shape.serverLabels } };

  const policies: NetworkPolicy[] = new Array<NetworkPolicy>(n + 1);
  const peers: PeerPodSpec[] = new Array<PeerPodSpec>(n);
  for (let k = 0; k < n; k++) {
    const index = firstFiller + k;
    const port = ports[k] as number;
    const peerId = `p-${pad(index)}`;
    const peerLabels = { ...runLabel, [PEER_LABEL]: peerId };
    if (k === 0 && matchesSelector(serverSelector, peerLabels)) {
      throw new PolicyShapeError('serverLabels also match the peer pods (they are a subset of runLabel); give the server a label of its own');
    }
    peers[k] = { name: `peer-${pad(index)}`, namespace: shape.serverNamespace, labels: peerLabels, port, protocol: 'TCP' };
    policies[index] = {
      apiVersion: 'networking.k8s.io/v1',
      kind: 'NetworkPolicy',
      metadata: meta(index, 'filler'),
      spec: {
        podSelector: { matchLabels: { ...shape.serverLabels } },
        policyTypes: ['Ingress'],
        ingress: [{ from: [{ podSelector: { matchLabels: { [PEER_LABEL]: peerId } } }], ports: [{ protocol: 'TCP', port }] }],
      },
    };
  }
  policies[clientIndex] = {
    apiVersion: 'networking.k8s.io/v1',
    kind: 'NetworkPolicy',
    metadata: meta(clientIndex, 'allow-client'),
    spec: {
      podSelector: { matchLabels: { ...shape.serverLabels } },
      policyTypes: ['Ingress'],
      ingress: [
        {
          // One peer with both selectors: the client's pods AND in the client's namespace.
          from: [
            {
              namespaceSelector: { matchLabels: { [NAMESPACE_NAME_LABEL]: shape.clientNamespace } },
              podSelector: { matchLabels: { ...shape.clientLabels } },
            },
          ],
          ports: [{ protocol: 'TCP', port: shape.serverPort }],
        },
      ],
    },
  };
  return { policies, peers };
}

/** A peer as an inventory pod, with the address and node the backend gave it. */
export function peerPodInfo(peer: PeerPodSpec, ip: string, node: string): PodInfo {
  return {
    name: peer.name,
    namespace: peer.namespace,
    labels: { ...peer.labels },
    ip,
    node,
    // The peer is a client of the server's `port`; it listens on nothing.
    ports: [],
  };
}
