// The benchmark workload every backend deploys: the server and client namespaces, their pods' labels, the
// server port, and the NetworkPolicy set. The orchestrator generates the set once; backends apply it as handed.
import type { RunConfig } from '../config/schema.js';
import { generatePolicySet } from '../policy/generate.js';
import type { PolicySet } from '../backends/types.js';

/** Namespaces of the workload where a backend does not give them its own names (local: fixed names). */
export const SERVER_NAMESPACE = 'bench-server';
export const CLIENT_NAMESPACE = 'bench-client';
export const SERVER_LABELS = { app: 'bench-server' } as const;
export const CLIENT_LABELS = { app: 'bench-client' } as const;
export const SERVER_PORT = 8080;

/** Where a backend deploys the workload: the orchestrator generates the policy set for exactly these names. */
export interface WorkloadTarget {
  namespaces: { server: string; client: string };
  /** Label every generated policy carries (kind/cluster: the run label the teardown selects by). */
  runLabel?: Record<string, string>;
}

/** The fixed names, for backends that do not give the workload their own (local). */
export const DEFAULT_WORKLOAD: WorkloadTarget = { namespaces: { server: SERVER_NAMESPACE, client: CLIENT_NAMESPACE } };

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
