// Pods for a snapshot: the Pod objects it holds, and the pods of Deployments, StatefulSets and DaemonSets that
// stand in for theirs; then a node and an address for every pod that has none. Pure.
import type { Problem } from '../errors.js';
import { formatIpv4, parseCidr } from '../policy/cidr.js';
import { compileSelector } from '../policy/selectors.js';
import type { ContainerPort, PodInfo } from '../policy/types.js';
import { AddressPlan, naturalCompare, type ExpandedController } from './cluster.js';
import type { ContainerObject, ControllerObject, InitContainerObject } from './k8s-objects.js';

/** A pod before it has a node and an address for sure. */
export interface PodDraft {
  name: string;
  namespace: string;
  labels: Record<string, string>;
  node?: string;
  ip?: string;
  hostNetwork: boolean;
  ports: ContainerPort[];
  /** Where it came from, for problems (the Pod item, or the controller that stands in for it); computed only then. */
  where: () => string;
}

/** At most this many pods come out of controllers: a replicas typo must not exhaust memory. */
export const MAX_EXPANDED_PODS = 50_000;

/**
 * Container ports as a data plane sees them: protocol defaulted to TCP, exact repeats dropped — as Calico's
 * workload endpoint conversion reads them
 * (libcalico-go/lib/backend/k8s/conversion/workload_endpoint_default.go, appendEndpointPorts).
 */
export function containerPorts(containers: readonly ContainerObject[]): ContainerPort[] {
  const out: ContainerPort[] = [];
  const seen = new Set<string>();
  for (const c of containers) {
    for (const p of c.ports ?? []) {
      const port: ContainerPort = { ...(p.name ? { name: p.name } : {}), containerPort: p.containerPort, protocol: p.protocol ?? 'TCP' };
      const key = `${port.name ?? ''}/${port.containerPort}/${port.protocol}`;
      if (!seen.has(key)) out.push(port);
      seen.add(key);
    }
  }
  return out;
}

/**
 * The ports of a pod's running containers: its containers and its native sidecars (init containers with
 * restartPolicy Always, which run beside them). A plain init container has finished before the pod serves, so
 * its ports are not served and named ports do not resolve to them — as Kubernetes' FindPort resolves a Service's
 * named targetPort (pkg/api/v1/pod/util.go: containers, then sidecars only). Calico's endpoint conversion lists
 * every init container's named ports, Cilium's only the containers' (README "Workloads": what a snapshot holds).
 */
export function podPorts(spec: { containers: readonly ContainerObject[]; initContainers?: readonly InitContainerObject[] }): ContainerPort[] {
  return containerPorts([...spec.containers, ...(spec.initContainers ?? []).filter((c) => c.restartPolicy === 'Always')]);
}

export interface Controller {
  object: ControllerObject;
  where: () => string;
}

/**
 * The pods of each controller whose pods the file does not hold (no Pod in its namespace matches its selector):
 * `replicas` pods (default 1) for a Deployment or StatefulSet, named `<name>-<i>`, spread over the nodes in turn;
 * one per node for a DaemonSet (`<name>-<node>`; nodeSelector and tolerations are not read). No addresses.
 */
export function expandControllers(controllers: readonly Controller[], filePods: ReadonlyArray<Pick<PodDraft, 'namespace' | 'labels'>>, nodes: readonly string[], problems: Problem[]): { pods: PodDraft[]; expanded: ExpandedController[]; represented: string[] } {
  const pods: PodDraft[] = [];
  const expanded: ExpandedController[] = [];
  const represented: string[] = [];
  let turn = 0;
  for (const { object: c, where } of controllers) {
    const ns = c.metadata.namespace;
    const key = `${ns}/${c.metadata.name}`;
    const templateLabels = c.spec.template.metadata?.labels ?? {};
    const selects = compileSelector(c.spec.selector ?? { matchLabels: templateLabels });
    if (filePods.some((p) => p.namespace === ns && selects(p.labels))) {
      represented.push(`${c.kind} ${key}`);
      continue;
    }
    const spec = c.spec.template.spec;
    const base = { namespace: ns, labels: { ...templateLabels }, hostNetwork: spec.hostNetwork === true, ports: podPorts(spec), where };
    const made: PodDraft[] = [];
    if (c.kind === 'DaemonSet') {
      for (const node of nodes) made.push({ ...base, name: `${c.metadata.name}-${node}`, node });
    } else {
      const replicas = c.spec.replicas ?? 1;
      if (pods.length + replicas > MAX_EXPANDED_PODS) {
        problems.push({ where: where(), message: `${c.kind} ${key}: replicas ${replicas} would make more than ${MAX_EXPANDED_PODS} pods from controllers; lower it, or give the pods themselves` });
        continue;
      }
      for (let i = 0; i < replicas; i++) {
        const node = spec.nodeName ?? (nodes.length ? nodes[turn++ % nodes.length] : undefined);
        made.push({ ...base, labels: { ...templateLabels }, name: `${c.metadata.name}-${i}`, node });
      }
    }
    pods.push(...made);
    expanded.push({ kind: c.kind, name: key, pods: made.length });
  }
  return { pods, expanded, represented };
}

/**
 * Every pod on a node with an address. A pod without one gets the local topology's scheme: the node's pod CIDR
 * 10.244.<node index>.0/24 (from .2, skipping addresses the file's pods hold), or for a hostNetwork pod its node's
 * address (the address a hostNetwork pod on that node has in the file, else 172.18.0.x). Node names in natural
 * order; with none at all, `defaultNodes` nodes named node-0, node-1, ….
 */
/** The first free address of a Node's own pod CIDR (spec.podCIDR), from its second host on, as the local topology's .2. */
function fromNodeCidr(cidr: string, taken: ReadonlySet<string>): string | undefined {
  const { first, last } = parseCidr(cidr);
  for (let n = first + 2; n < last; n++) if (!taken.has(formatIpv4(n))) return formatIpv4(n);
  return undefined;
}

export function placePods(drafts: readonly PodDraft[], problems: Problem[], nodeCidrs: Readonly<Record<string, readonly string[]>> = {}): { pods: PodInfo[]; nodes: string[]; assigned: string[] } {
  const nodes = [...new Set(drafts.flatMap((d) => (d.node ? [d.node] : [])))].sort(naturalCompare);
  const index = new Map(nodes.map((n, i) => [n, i]));
  const taken = new Set(drafts.flatMap((d) => (d.ip ? [d.ip] : [])));
  const nodeIps = new Map<string, string>();
  for (const d of drafts) if (d.hostNetwork && d.ip && d.node && !nodeIps.has(d.node)) nodeIps.set(d.node, d.ip);
  let nextNodeHost = 2;
  const nodeIp = (node: string): string => {
    let ip = nodeIps.get(node);
    while (!ip) {
      const candidate = `172.18.0.${nextNodeHost++}`;
      if (!taken.has(candidate) && ![...nodeIps.values()].includes(candidate)) ip = candidate;
    }
    nodeIps.set(node, ip);
    return ip;
  };
  const plan = new AddressPlan(taken);
  const full = new Set<string>();
  const pods: PodInfo[] = [];
  const assigned: string[] = [];
  for (const d of drafts) {
    const node = d.node as string;
    let ip = d.ip;
    if (!ip) {
      ip = d.hostNetwork ? nodeIp(node) : nodeCidrs[node]?.length ? fromNodeCidr(nodeCidrs[node]![0]!, taken) : plan.podAddress(index.get(node) as number);
      if (ip) taken.add(ip);
      if (!ip) {
        if (!full.has(node)) problems.push({ where: d.where(), message: `node ${node}: no address left for pod ${d.namespace}/${d.name} in ${nodeCidrs[node]?.[0] ?? `10.244.${index.get(node)}.0/24 (a node's pod CIDR holds 253 pods, and only the first 200 nodes get one)`}; give the pods their addresses (status.podIP) or spread them over more nodes` });
        full.add(node);
        continue;
      }
      assigned.push(`${d.namespace}/${d.name}`);
    }
    pods.push({ name: d.name, namespace: d.namespace, labels: d.labels, ip, node, ports: d.ports, ...(d.hostNetwork ? { hostNetwork: true } : {}) });
  }
  return { pods, nodes, assigned };
}
