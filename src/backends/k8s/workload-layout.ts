// A cluster-shaped workload (a snapshot or a generated shape, src/workload/cluster.ts) as kind/cluster runs it,
// decided before any work. Unlike the local backend, a real cluster gives its pods their own addresses and runs
// only pods that exist: so
// - at most K8S_WORKLOAD_POD_CAP pods run, each an agnhost pod with the workload pod's labels serving its declared
//   ports (./workload-manifests.ts): the probed flows' ends first, then the others in a seeded order; the rest do
//   not exist on the cluster at all (no selector matches them there);
// - hostNetwork pods are left out: run as hostNetwork they would open their ports on the cluster's nodes (on an
//   existing cluster, next to the node's own services), and NetworkPolicy never selects them anyway;
// - the policies go as written (namespaces renamed, ./grid-names.ts); an ipBlock that covered snapshot pod
//   addresses covers whatever the cluster puts at those addresses: a flow whose verdict rests on one is left out
//   (on the cluster its verdict would say nothing about the policy), and the policies are named in a note.
// Pure.
import { BenchError } from '../../errors.js';
import { NAME_PREFIX } from '../../identity/run-id.js';
import { parseIpv4 } from '../../policy/cidr.js';
import { PolicyEvaluator } from '../../policy/evaluate.js';
import { NAMESPACE_NAME_LABEL } from '../../policy/selectors.js';
import type { ContainerPort, NetworkPolicy, PodInfo } from '../../policy/types.js';
import { seededRandom } from '../../stats/summary.js';
import { ipBlockMatcher, type ClusterWorkload } from '../../workload/cluster.js';
import { flowKey, podName } from '../../workload/flows.js';
import { withoutInClusterIpBlocks } from '../../workload/semantics.js';
import type { Flow, Workload, WorkloadPod } from '../../workload/workload.js';

/**
 * Pods a workload runs on kind/cluster. Each is an agnhost pod with a container per declared port (a few MiB
 * each); 100 keeps a 3-node kind cluster on a laptop responsive and an existing cluster's scheduler unburdened,
 * and is far above the pods a default flow choice needs (its ends: a handful).
 */
export const K8S_WORKLOAD_POD_CAP = 100;
/** The longest namespace name Kubernetes takes (a DNS label). */
const MAX_NAMESPACE = 63;
/** cb-<runId>- : a run id is 5 characters (src/identity/run-id.ts). */
const PREFIX_LENGTH = NAME_PREFIX.length + 5 + 1;

export interface K8sWorkloadLayout {
  /** Endpoint pods run; address pods do not exist on the cluster. No fixed addresses: the cluster assigns them. */
  workload: Workload;
  /** Flows left out, and why (an ipBlock over snapshot pod addresses decides them). */
  leftOut: Array<{ flow: Flow; why: string }>;
  notes: string[];
}

/** Policies with an ipBlock covering a snapshot pod's address (pod-network pods only). */
function ipBlocksOverPods(w: ClusterWorkload): string[] {
  const pods = w.inventory.pods.filter((p) => !p.hostNetwork);
  const covers = (policy: NetworkPolicy) =>
    [...(policy.spec.ingress ?? []).flatMap((r) => r.from ?? []), ...(policy.spec.egress ?? []).flatMap((r) => r.to ?? [])].some((peer) => {
      if (!peer.ipBlock) return false;
      const inside = ipBlockMatcher(peer.ipBlock);
      return pods.some((p) => inside(parseIpv4(p.ip)));
    });
  return w.policies.filter(covers).map((p) => `${p.metadata.namespace}/${p.metadata.name}`);
}

/**
 * `w` as kind/cluster runs it, probing `flows` (those an ipBlock over pod addresses decides are left out). Throws a
 * capacity error naming every problem: a flow's end that cannot run there, more ends than the cap, a namespace
 * whose prefixed name Kubernetes would refuse.
 */
export function layoutOnCluster(w: ClusterWorkload, flows: readonly Flow[], o: { seed: number; cap?: number; barrier?: boolean }): K8sWorkloadLayout {
  const cap = o.cap ?? K8S_WORKLOAD_POD_CAP;
  const byName = new Map(w.inventory.pods.map((p) => [podName(p), p]));
  const problems: string[] = [];
  for (const n of w.inventory.namespaces) {
    if (PREFIX_LENGTH + n.name.length > MAX_NAMESPACE) problems.push(`namespace ${n.name}: as the run's cb-<runId>-${n.name} it would be longer than Kubernetes' ${MAX_NAMESPACE} characters`);
  }
  // Flows whose verdict rests on an ipBlock matching a snapshot pod address: not probed.
  const full = new PolicyEvaluator(w.inventory, w.policies);
  const withoutBlocks = new PolicyEvaluator(w.inventory, withoutInClusterIpBlocks(w.policies));
  const kept: Flow[] = [];
  const leftOut: K8sWorkloadLayout['leftOut'] = [];
  const endpoints = new Set<string>();
  const extraPorts = new Map<string, ContainerPort[]>();
  for (const f of flows) {
    const ends = [byName.get(f.from), byName.get(f.to)];
    const missing = [f.from, f.to].filter((_, i) => !ends[i]);
    if (missing.length) {
      problems.push(`flow ${flowKey(f)}: no pod ${missing.join(', ')} in workload ${w.name}`);
      continue;
    }
    const [src, dst] = ends as [PodInfo, PodInfo];
    const host = [src, dst].filter((p) => p.hostNetwork).map(podName);
    if (host.length) {
      problems.push(`flow ${flowKey(f)}: ${host.join(' and ')} ${host.length > 1 ? 'are hostNetwork pods' : 'is a hostNetwork pod'}, which kind/cluster leave out (they would open ports on the nodes)`);
      continue;
    }
    const c = { src, dst, port: f.port, protocol: f.protocol };
    if (full.evaluate(c).allowed !== withoutBlocks.evaluate(c).allowed) {
      leftOut.push({ flow: f, why: 'its verdict rests on an ipBlock covering snapshot pod addresses; on the cluster the pods have other addresses' });
      continue;
    }
    kept.push(f);
    endpoints.add(f.from).add(f.to);
    if (!dst.ports.some((cp) => cp.containerPort === f.port && cp.protocol === f.protocol)) {
      const list = extraPorts.get(f.to) ?? [];
      if (!list.some((cp) => cp.containerPort === f.port && cp.protocol === f.protocol)) list.push({ containerPort: f.port, protocol: f.protocol });
      extraPorts.set(f.to, list);
    }
  }
  if (endpoints.size > cap) problems.push(`the flows have ${endpoints.size} distinct pods at their ends; kind/cluster run at most ${cap} pods of a workload: name fewer flows`);
  if (problems.length) throw new BenchError('capacity', `workload ${w.name} cannot run on kind/cluster:\n  ${problems.slice(0, 8).join('\n  ')}${problems.length > 8 ? `\n  … and ${problems.length - 8} more` : ''}`);

  // The rest, in a seeded order, up to the cap.
  const rand = seededRandom(o.seed);
  const rest = w.inventory.pods.filter((p) => !p.hostNetwork && !endpoints.has(podName(p))).map((p) => ({ p, r: rand() })).sort((a, b) => a.r - b.r);
  for (const { p } of rest) {
    if (endpoints.size >= cap) break;
    endpoints.add(podName(p));
  }
  const nodeIndex = new Map(w.nodes.map((n, i) => [n, i]));
  const pods: WorkloadPod[] = w.inventory.pods.map((p) => {
    const id = podName(p);
    const presence = endpoints.has(id) ? ('endpoint' as const) : ('address' as const);
    const ports = [...p.ports.map((cp) => ({ ...cp })), ...(extraPorts.get(id) ?? [])];
    return { name: p.name, namespace: p.namespace, labels: { ...p.labels }, ports, node: nodeIndex.get(p.node) ?? 0, presence, role: 'both', ...(p.hostNetwork ? { hostNetwork: true } : {}) };
  });
  const namespaces = w.inventory.namespaces.map((n) => ({ name: n.name, labels: { [NAMESPACE_NAME_LABEL]: n.name, ...n.labels } }));
  const workload: Workload = { shape: 'cluster', nodes: Math.max(1, w.nodes.length), namespaces, pods, hosts: [], policies: { policies: w.policies, peers: [] }, flows: kept.map((f) => ({ from: f.from, to: f.to, port: f.port, protocol: f.protocol })) };

  if (o.barrier) {
    const barrier = findBarrier(w, kept, endpoints, full, withoutBlocks);
    if (barrier) workload.barrier = barrier;
  }

  const notes: string[] = [];
  const podNetwork = w.inventory.pods.filter((p) => !p.hostNetwork).length;
  const absent = podNetwork - endpoints.size;
  notes.push(
    absent > 0
      ? `${endpoints.size} of the ${podNetwork} pod-network pods run (cap ${cap}): the probed flows' ends, then a seeded choice (seed ${o.seed}); the other ${absent} do not exist on the cluster, so no selector matches them there`
      : `all ${podNetwork} pod-network pods run (cap ${cap})`,
  );
  const hostNetwork = w.inventory.pods.filter((p) => p.hostNetwork).map(podName);
  if (hostNetwork.length) notes.push(`${hostNetwork.length} hostNetwork pod${hostNetwork.length === 1 ? '' : 's'} left out (${hostNetwork.slice(0, 3).join(', ')}${hostNetwork.length > 3 ? ', …' : ''}): as hostNetwork pods they would open their ports on the cluster's nodes, and no NetworkPolicy selects them`);
  const blocks = ipBlocksOverPods(w);
  if (blocks.length) notes.push(`ipBlocks of ${blocks.join(', ')} cover snapshot pod addresses and are applied as written: on the cluster they cover whatever pods get those addresses there`);
  if (o.barrier) {
    notes.push(
      workload.barrier
        ? `measured once the policies are enforced: ${flowKey(workload.barrier)}, which they deny on every data plane that enforces, is blocked`
        : 'no flow between the running pods that the policies deny on every data plane: measured as soon as the apply returns (the agents may still be programming)',
    );
  }
  if (leftOut.length) {
    const one = leftOut.length === 1;
    notes.push(`${leftOut.length} flow${one ? '' : 's'} left out (${leftOut.slice(0, 3).map((l) => flowKey(l.flow)).join(', ')}${leftOut.length > 3 ? ', …' : ''}): ${one ? 'its verdict rests' : 'their verdicts rest'} on an ipBlock covering snapshot pod addresses, and on the cluster the pods have other addresses`);
  }
  return { workload, leftOut, notes };
}

/**
 * A TCP flow between running pods, to a port the destination declares, denied with and without the ipBlocks (so
 * on Calico and Cilium alike), whose source serves no measured flow (it keeps its agnhost container to probe from)
 * and whose destination port is not a measured one (agnhost serves it). The first in the workload's pod order.
 */
function findBarrier(w: ClusterWorkload, measured: readonly Flow[], running: ReadonlySet<string>, full: PolicyEvaluator, withoutBlocks: PolicyEvaluator): Flow | undefined {
  const servers = new Set(measured.map((f) => f.to));
  const pods = w.inventory.pods.filter((p) => running.has(podName(p)));
  for (const src of pods) {
    if (servers.has(podName(src))) continue;
    for (const dst of pods) {
      if (dst === src || servers.has(podName(dst))) continue;
      for (const cp of dst.ports) {
        if (cp.protocol !== 'TCP') continue;
        const c = { src, dst, port: cp.containerPort, protocol: 'TCP' as const };
        if (!full.evaluate(c).allowed && !withoutBlocks.evaluate(c).allowed) return { from: podName(src), to: podName(dst), port: cp.containerPort, protocol: 'TCP' };
      }
    }
  }
  return undefined;
}
