// Server-side apply in batches, the one way the kind/cluster backends put many objects on a cluster: NetworkPolicies
// (./session.ts) and Services with their EndpointSlices (./services.ts). Each batch is one `kubectl apply
// --server-side` of a v1 List; up to `concurrency` kubectl processes run at once, each with its own client-side
// rate limiter (see APPLY_CONCURRENCY in ./manifests.ts); the first failed batch stops the rest (./pool.ts).
import type { Runner } from '../../exec/runner.js';
import { kubectl, type KubeTarget } from './kubectl.js';
import { APPLY_CONCURRENCY, POLICY_BATCH_SIZE, policyBatches } from './manifests.js';
import { mapBounded } from './pool.js';
import { toListJson } from './yaml.js';

/** The field manager every apply of the tool names (`kubectl get --show-managed-fields` shows it). */
export const FIELD_MANAGER = 'cni-bench';

/** One server-side apply of `items` as a List. */
export function applySpec(t: KubeTarget, items: readonly object[], purpose: string) {
  return kubectl(t, ['apply', '--server-side', `--field-manager=${FIELD_MANAGER}`, '-f', '-'], purpose, { input: toListJson(items), timeoutMs: 180_000 });
}

export interface BatchApply {
  /** Plural noun for the purposes: "filler policies", "Services and EndpointSlices". */
  what: string;
  batchSize?: number;
  concurrency?: number;
}

/** Applies `items` in batches; returns how many batches ran. Throws the first failed batch's error. */
export async function applyInBatches(runner: Runner, t: KubeTarget, items: readonly object[], o: BatchApply): Promise<number> {
  const batches = policyBatches(items, o.batchSize ?? POLICY_BATCH_SIZE);
  await mapBounded(batches, o.concurrency ?? APPLY_CONCURRENCY, (b, i) => runner.run(applySpec(t, b, `apply ${o.what} batch ${i + 1}/${batches.length} (${b.length})`)));
  return batches.length;
}
