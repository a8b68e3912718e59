// An optional capability of a local model (issue 15, "new pod under existing policy"): the agent's part of a
// pod's CNI ADD. The real agents program a new pod's interface before it can pass traffic, with a verdict that
// denies until the endpoint's policy is in place: cilium-cni ADD creates the endpoint and waits for its first
// regeneration (an endpoint's fresh policy map is empty, and an empty map denies); Felix attaches its tc
// programs with the default-deny policy program in the endpoint's jump-map slot, and until then neither its
// FIB redirect nor its iptables dispatch chain forwards to the not-ready interface. A model without this step
// attaches in update(), after the pod is reachable, and would let a denied peer in meanwhile.
import type { LocalModel, ModelContext } from './types.js';
import type { PodSpec } from './topology.js';

export interface PodAttachStep {
  /**
   * Runs after the pod's veth pair exists and before it is up and routed (planPodAttachSteps: between `link` and
   * `connect`), after install() on the same topology. Attaches the programs closed in both directions; the next
   * update() writes the pod's real policy and must not attach it again.
   */
  attachPod(ctx: Pick<ModelContext, 'runner' | 'topology'>, pod: PodSpec): Promise<void>;
}

/** The model's pod-attach step, if it has one (found by shape, as an optional capability). */
export function podAttachStep(model: LocalModel): PodAttachStep | undefined {
  const m = model as LocalModel & Partial<PodAttachStep>;
  return typeof m.attachPod === 'function' ? { attachPod: m.attachPod.bind(model) } : undefined;
}
