// What `bench enforce` changes, as data: the pods of its topology, the two policy states it moves between,
// and the four changes it measures. Pure.
import { benchmarkPolicySet } from '../workload/workload.js';
import { ROLE_LABEL } from '../policy/generate.js';
import type { NetworkPolicy } from '../policy/types.js';
import type { PolicySet } from '../backends/types.js';
import { type PodRequest } from '../backends/local/topology.js';
import { CLIENT_LABELS, CLIENT_NAMESPACE, SERVER_LABELS, SERVER_NAMESPACE } from '../workload/workload.js';
import { BenchError } from '../errors.js';

export const CHANGES = ['allow-added', 'allow-removed', 'new-pod', 'peer-joins'] as const;
export type ChangeKind = (typeof CHANGES)[number];

export const CHANGE_TITLES: Record<ChangeKind, string> = {
  'allow-added': 'allow added (client denied → a policy allowing it is added)',
  'allow-removed': 'allow removed (client allowed → its policy is deleted; passing meanwhile = fail-open)',
  'new-pod': 'new pod under existing policy (allowed client: fail-closed window; denied peer: fail-open)',
  'peer-joins': 'peer joins a selector (a pod gains the label the allow rule selects)',
};

/** The pod that must stay denied throughout: its connections to a new pod are the fail-open evidence. */
export const INTRUDER_LABELS = { app: 'bench-intruder' } as const;
/** The pod that joins the allow rule's selector by taking the client's labels. */
export const JOINER_LABELS = { app: 'bench-joiner' } as const;
export const CLIENT_POD = 'client';

/** Client and intruder and joiner on node-0, the server on node-1: every probe crosses the node network. */
export function enforcePods(): PodRequest[] {
  return [
    { name: 'client', namespace: CLIENT_NAMESPACE, labels: { ...CLIENT_LABELS }, role: 'client', node: 0 },
    { name: 'server-0', namespace: SERVER_NAMESPACE, labels: { ...SERVER_LABELS }, role: 'server', node: 1 },
    { name: 'intruder', namespace: CLIENT_NAMESPACE, labels: { ...INTRUDER_LABELS }, role: 'grid', node: 0 },
    { name: 'joiner', namespace: CLIENT_NAMESPACE, labels: { ...JOINER_LABELS }, role: 'grid', node: 0 },
  ];
}

export interface EnforcePolicies {
  /** The N fillers and the isolating policy: the client is denied. */
  closed: PolicySet;
  /** The same plus the policy that allows the client. */
  open: PolicySet;
  allowClient: NetworkPolicy;
}

/**
 * N filler policies (the benchmark's, each selecting the server and allowing a peer that is not the client),
 * plus one that selects the server and allows nothing so it is isolated even at N = 0; "open" adds the
 * benchmark's allow-client policy. N = 0 therefore means one policy in place, and N fillers N + 1.
 */
export function enforcePolicies(cfg: { policies: number; matchPosition: 'first' | 'last'; seed: number }): EnforcePolicies {
  const withClient = benchmarkPolicySet({ ...cfg, policies: Math.max(1, cfg.policies) });
  const allowClient = withClient.policies.find((p) => p.metadata.labels?.[ROLE_LABEL] === 'allow-client');
  if (!allowClient) throw new BenchError('internal', 'the generated policy set has no allow-client policy');
  const fillers = cfg.policies === 0 ? [] : withClient.policies.filter((p) => p !== allowClient);
  const peers = cfg.policies === 0 ? [] : withClient.peers;
  const isolate: NetworkPolicy = {
    apiVersion: 'networking.k8s.io/v1',
    kind: 'NetworkPolicy',
    metadata: { name: 'np-isolate', namespace: SERVER_NAMESPACE, labels: { [ROLE_LABEL]: 'isolate' } },
    spec: { podSelector: { matchLabels: { ...SERVER_LABELS } }, policyTypes: ['Ingress'] },
  };
  return {
    closed: { policies: [...fillers, isolate], peers },
    open: { policies: [...fillers, isolate, allowClient], peers },
    allowClient,
  };
}

/** The state each change starts from: closed for allow-added, open (client allowed) for the others. */
export const STARTS_OPEN: Record<ChangeKind, boolean> = { 'allow-added': false, 'allow-removed': true, 'new-pod': true, 'peer-joins': true };

/** Run order within a repetition: each change starts where the previous left the policies, so no reset is measured. */
export function changeOrder(kinds: readonly ChangeKind[]): ChangeKind[] {
  const order: ChangeKind[] = ['allow-added', 'peer-joins', 'new-pod', 'allow-removed'];
  return order.filter((k) => kinds.includes(k));
}
