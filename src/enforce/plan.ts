// What `bench enforce` changes, as data: its workload (the pods of its topology and the flows it watches), the two
// policy states it moves between, the Service states (with --services), and the changes it measures. Pure.
import { ENFORCE_CHANGES, SERVICE_CHANGES, type EnforceChange, type ServiceChange } from '../config/schema.js';
import { BenchError } from '../errors.js';
import { ROLE_LABEL, type PolicySet } from '../policy/generate.js';
import type { NetworkPolicy } from '../policy/types.js';
import { benchmarkPolicySet, benchmarkServer } from '../workload/benchmark.js';
import { CLIENT_LABELS, DEFAULT_TARGET, SERVER_LABELS, SERVER_PORT, podId, type EndpointId, type Workload, type WorkloadPod, type WorkloadTarget } from '../workload/workload.js';

/** The changes measured, as the config names them. */
export const CHANGES = ENFORCE_CHANGES;
export type ChangeKind = EnforceChange;

export const CHANGE_TITLES: Record<ChangeKind, string> = {
  'allow-added': 'allow added (client denied → a policy allowing it is added)',
  'allow-removed': 'allow removed (client allowed → its policy is deleted; passing meanwhile = fail-open)',
  'new-pod': 'new pod under existing policy (allowed client: fail-closed window; denied peer: fail-open)',
  'peer-joins': 'peer joins a selector (a pod gains the label the allow rule selects)',
  'endpoint-removed': "endpoint removed (the Service's only endpoint leaves its EndpointSlice; connecting meanwhile = blackhole/stale window)",
  'endpoint-added': 'endpoint added (a Service without endpoints gets one: first connection to the ClusterIP that reaches it)',
  'service-added': 'Service added (a new ClusterIP with the server as endpoint: first connection that reaches it)',
};

/**
 * What a change is, as data. `family`: which state it changes (the policy set, or the Service set on the CNI's
 * service data plane). `expect`: the verdict the watch waits for. `startsOpen`: the policy state it starts from
 * (client allowed or not). `window`: what traffic counts as passing where it must not — `revocation` (probes that
 * still connect after the change, before the flip: allow-removed's fail-open, endpoint-removed's blackhole window),
 * `intruder` (a denied peer's probes of a new pod), or none.
 */
export interface ChangeSpec {
  family: 'policy' | 'service';
  expect: 'open' | 'closed';
  startsOpen: boolean;
  window: 'revocation' | 'intruder' | null;
}

export const CHANGE_SPECS: Record<ChangeKind, ChangeSpec> = {
  'allow-added': { family: 'policy', expect: 'open', startsOpen: false, window: null },
  'allow-removed': { family: 'policy', expect: 'closed', startsOpen: true, window: 'revocation' },
  'new-pod': { family: 'policy', expect: 'open', startsOpen: true, window: 'intruder' },
  'peer-joins': { family: 'policy', expect: 'open', startsOpen: true, window: null },
  // Service changes run with the client allowed by policy, so only the Service decides the verdict.
  'endpoint-removed': { family: 'service', expect: 'closed', startsOpen: true, window: 'revocation' },
  'endpoint-added': { family: 'service', expect: 'open', startsOpen: true, window: null },
  'service-added': { family: 'service', expect: 'open', startsOpen: true, window: null },
};

export const isServiceChange = (k: ChangeKind): k is ServiceChange => (SERVICE_CHANGES as readonly string[]).includes(k);

/** The pod that must stay denied throughout: its connections to a new pod are the fail-open evidence. */
export const INTRUDER_LABELS = { app: 'bench-intruder' } as const;
/** The pod that joins the allow rule's selector by taking the client's labels. */
export const JOINER_LABELS = { app: 'bench-joiner' } as const;
/** The enforce topology's pods by what they do in it. */
export const ENFORCE_POD_NAMES = { client: 'client', server: 'server-0', intruder: 'intruder', joiner: 'joiner' } as const;
export type EnforcePod = keyof typeof ENFORCE_POD_NAMES;

/** The id of an enforce pod in `target`'s names. */
export function enforcePodId(pod: EnforcePod, target: WorkloadTarget = DEFAULT_TARGET): EndpointId {
  const ns = pod === 'server' ? target.namespaces.server : target.namespaces.client;
  return podId({ namespace: ns, name: ENFORCE_POD_NAMES[pod] });
}

/** A server pod that joins during the new-pod change: the server's labels and port, on the server's node. */
export function newServerPod(name: string, target: WorkloadTarget = DEFAULT_TARGET): WorkloadPod {
  return benchmarkServer(name, target.namespaces.server, 1);
}

/**
 * The enforce workload in `target`'s names: client, intruder and joiner on node 0, the server on node 1 (every probe
 * crosses the node network); the closed policy state first; the flows the watches probe, client's first.
 */
export function enforceWorkload(cfg: { policies: number; matchPosition: 'first' | 'last'; seed: number }, target: WorkloadTarget = DEFAULT_TARGET): Workload {
  const { server: serverNs, client: clientNs } = target.namespaces;
  const probe = (name: string, labels: Record<string, string>): WorkloadPod => ({ name, namespace: clientNs, labels: { ...labels }, ports: [], node: 0, presence: 'endpoint', role: 'client' });
  const server = newServerPod(ENFORCE_POD_NAMES.server, target);
  const pods = [probe(ENFORCE_POD_NAMES.client, CLIENT_LABELS), server, probe(ENFORCE_POD_NAMES.intruder, INTRUDER_LABELS), probe(ENFORCE_POD_NAMES.joiner, JOINER_LABELS)];
  return {
    shape: 'enforce',
    nodes: 2,
    namespaces: [serverNs, clientNs].map((name) => ({ name, labels: { 'kubernetes.io/metadata.name': name } })),
    pods,
    hosts: [],
    policies: enforcePolicies(cfg, target).closed,
    flows: (['client', 'intruder', 'joiner'] as const).map((p) => ({ from: enforcePodId(p, target), to: podId(server), protocol: 'TCP' as const, port: SERVER_PORT })),
  };
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
export function enforcePolicies(cfg: { policies: number; matchPosition: 'first' | 'last'; seed: number }, target: WorkloadTarget = DEFAULT_TARGET): EnforcePolicies {
  const withClient = benchmarkPolicySet({ ...cfg, policies: Math.max(1, cfg.policies) }, target.namespaces, target.runLabel);
  const allowClient = withClient.policies.find((p) => p.metadata.labels?.[ROLE_LABEL] === 'allow-client');
  if (!allowClient) throw new BenchError('internal', 'the generated policy set has no allow-client policy');
  const fillers = cfg.policies === 0 ? [] : withClient.policies.filter((p) => p !== allowClient);
  const peers = cfg.policies === 0 ? [] : withClient.peers;
  const isolate: NetworkPolicy = {
    apiVersion: 'networking.k8s.io/v1',
    kind: 'NetworkPolicy',
    metadata: { name: 'np-isolate', namespace: target.namespaces.server, labels: { ...target.runLabel, [ROLE_LABEL]: 'isolate' } },
    spec: { podSelector: { matchLabels: { ...SERVER_LABELS } }, policyTypes: ['Ingress'] },
  };
  return {
    closed: { policies: [...fillers, isolate], peers },
    open: { policies: [...fillers, isolate, allowClient], peers },
    allowClient,
  };
}

/** The policy state each change starts from: closed for allow-added, open (client allowed) for the others. */
export const STARTS_OPEN = Object.fromEntries(ENFORCE_CHANGES.map((k) => [k, CHANGE_SPECS[k].startsOpen])) as Record<ChangeKind, boolean>;

/**
 * Run order within a repetition: each change starts where the previous left the state, so no reset is measured
 * (allow-removed leaves the client denied: the Service changes, which need it allowed, come before it).
 */
export function changeOrder(kinds: readonly ChangeKind[]): ChangeKind[] {
  const order: ChangeKind[] = ['allow-added', 'peer-joins', 'new-pod', 'endpoint-removed', 'endpoint-added', 'service-added', 'allow-removed'];
  return order.filter((k) => kinds.includes(k));
}
