// The benchmark shape: one client, one server, and N filler policies on the server (src/policy/generate.ts), each
// allowing a peer that exists only as an address, plus the policy that allows the client. `bench run` and the
// sweep's latency points measure its one probed flow, client -> server.
import type { RunConfig } from '../config/schema.js';
import { generatePolicySet, type PolicySet } from '../policy/generate.js';
import { NAMESPACE_NAME_LABEL } from '../policy/selectors.js';
import { CLIENT_LABELS, CLIENT_NAMESPACE, DEFAULT_TARGET, SERVER_LABELS, SERVER_NAMESPACE, SERVER_PORT, podId, type Workload, type WorkloadPod, type WorkloadTarget } from './workload.js';

/** The benchmark's policy set in the names of `namespaces`, carrying `runLabel` (kind/cluster: the run's). */
export function benchmarkPolicySet(config: Pick<RunConfig, 'policies' | 'matchPosition' | 'seed'>, namespaces = { server: SERVER_NAMESPACE, client: CLIENT_NAMESPACE }, runLabel?: Record<string, string>): PolicySet {
  return generatePolicySet({
    policies: config.policies,
    matchPosition: config.matchPosition,
    seed: config.seed,
    serverNamespace: namespaces.server,
    clientNamespace: namespaces.client,
    serverLabels: { ...SERVER_LABELS },
    clientLabels: { ...CLIENT_LABELS },
    serverPort: SERVER_PORT,
    runLabel,
  });
}

/** The benchmark's server pod (the declared port is the one its policies allow the client on). */
export function benchmarkServer(name: string, namespace: string, node: number): WorkloadPod {
  return { name, namespace, labels: { ...SERVER_LABELS }, ports: [{ name: 'http', containerPort: SERVER_PORT, protocol: 'TCP' }], node, presence: 'endpoint', role: 'server' };
}

/**
 * The benchmark as a workload for `target`'s names: the client on node 0 (node 1 with same-node placement), the
 * server on node 1, the generated policy set, and the flow client -> server that is measured.
 */
export function benchmarkWorkload(config: Pick<RunConfig, 'policies' | 'matchPosition' | 'seed' | 'placement'>, target: WorkloadTarget = DEFAULT_TARGET): Workload {
  const { server: serverNs, client: clientNs } = target.namespaces;
  const client: WorkloadPod = { name: 'client', namespace: clientNs, labels: { ...CLIENT_LABELS }, ports: [], node: config.placement === 'same-node' ? 1 : 0, presence: 'endpoint', role: 'client' };
  const server = benchmarkServer('server-0', serverNs, 1);
  return {
    shape: 'benchmark',
    nodes: 2,
    namespaces: [serverNs, clientNs].map((name) => ({ name, labels: { [NAMESPACE_NAME_LABEL]: name } })),
    pods: [client, server],
    hosts: [],
    policies: benchmarkPolicySet(config, target.namespaces, target.runLabel),
    flows: [{ from: podId(client), to: podId(server), protocol: 'TCP', port: SERVER_PORT, measured: true }],
  };
}
