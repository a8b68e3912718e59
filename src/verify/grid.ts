// The verification grid, as the upstream network-policy conformance suite builds it: namespaces x, y, z with
// pods a, b, c, every pod serving TCP and UDP on 80 and 81 under named container ports; a DNS pod in
// kube-system (k8s-app: kube-dns) for the egress-DNS cases; and two hosts outside the cluster, so ipBlock cases
// can be written without matching pod IPs (whether an ipBlock matches a pod IP is implementation-defined:
// Calico matches it, Cilium does not). Pure: layout, inventory, probe list, and case-template substitution.
import { normalizeCidr } from '../policy/cidr.js';
import type { ContainerPort, Inventory, NamespaceInfo, NetworkPolicy, PodInfo, Protocol } from '../policy/types.js';
import { podId, type EndpointId, type Flow, type Workload, type WorkloadAddresses } from '../workload/workload.js';
import { BenchError } from '../errors.js';

export const GRID_NAMESPACES = ['x', 'y', 'z'] as const;
export const GRID_POD_NAMES = ['a', 'b', 'c'] as const;
export const GRID_SERVE_PORTS = [80, 81] as const;
export const GRID_PROTOCOLS: Protocol[] = ['TCP', 'UDP'];
export const DNS_NAMESPACE = 'kube-system';
export const DNS_POD = 'coredns';
export const DNS_LABELS = { 'k8s-app': 'kube-dns' } as const;
/** Hosts outside the cluster (ipBlock targets); they serve TCP and UDP on 80. */
export const EXTERNAL_HOSTS = ['ext1', 'ext2'] as const;

/** A grid endpoint: a pod (`namespace/name`) or an external host (`ext1`). */
export type { EndpointId };

export interface GridPod {
  id: EndpointId;
  name: string;
  namespace: string;
  labels: Record<string, string>;
  ports: ContainerPort[];
  /** Index of the node it runs on. */
  node: number;
  /** Probes start from client pods; the DNS pod only answers. */
  client: boolean;
}

export interface GridExternal {
  id: EndpointId;
  ports: ContainerPort[];
}

export interface GridLayout {
  namespaces: NamespaceInfo[];
  pods: GridPod[];
  externals: GridExternal[];
  nodes: number;
}

/** Where a backend placed the grid: one address per endpoint, and the node name of each pod. */
export type GridAddresses = WorkloadAddresses;

/** One probe of the grid: a flow of its workload. */
export type ProbeSpec = Flow;

export const probeKey = (p: ProbeSpec): string => `${p.from} -> ${p.to} ${p.protocol}/${p.port}`;

export function servePorts(): ContainerPort[] {
  return GRID_PROTOCOLS.flatMap((protocol) =>
    GRID_SERVE_PORTS.map((containerPort) => ({ name: `serve-${containerPort}-${protocol.toLowerCase()}`, containerPort, protocol })),
  );
}

/** CoreDNS's own container port names. */
export function dnsPorts(): ContainerPort[] {
  return [
    { name: 'dns', containerPort: 53, protocol: 'UDP' },
    { name: 'dns-tcp', containerPort: 53, protocol: 'TCP' },
  ];
}

/** Pods alternate between nodes in declaration order, so every namespace has pods on both nodes. */
export function gridLayout(nodes = 2): GridLayout {
  const pods: GridPod[] = [];
  for (const ns of GRID_NAMESPACES) {
    for (const name of GRID_POD_NAMES) {
      pods.push({ id: `${ns}/${name}`, name, namespace: ns, labels: { pod: name }, ports: servePorts(), node: pods.length % nodes, client: true });
    }
  }
  pods.push({ id: `${DNS_NAMESPACE}/${DNS_POD}`, name: DNS_POD, namespace: DNS_NAMESPACE, labels: { ...DNS_LABELS }, ports: dnsPorts(), node: pods.length % nodes, client: false });
  return {
    // kubernetes.io/metadata.name is added by the evaluator and resolver, as the API server does.
    namespaces: [...GRID_NAMESPACES.map((name) => ({ name, labels: { ns: name } })), { name: DNS_NAMESPACE, labels: {} }],
    pods,
    externals: EXTERNAL_HOSTS.map((id) => ({ id, ports: GRID_PROTOCOLS.map((protocol) => ({ containerPort: 80, protocol })) })),
    nodes,
  };
}

/** The grid as a workload: every pod an endpoint serving its ports (the DNS pod only answers), the hosts outside. */
export function gridWorkload(layout: GridLayout): Workload {
  return {
    shape: 'verify-grid',
    nodes: layout.nodes,
    namespaces: layout.namespaces.map((n) => ({ name: n.name, labels: { ...n.labels } })),
    pods: layout.pods.map((p) => ({ name: p.name, namespace: p.namespace, labels: { ...p.labels }, ports: p.ports.map((cp) => ({ ...cp })), node: p.node, presence: 'endpoint', role: p.client ? 'both' : 'server' })),
    hosts: layout.externals.map((e) => ({ id: e.id, ports: e.ports.map((cp) => ({ ...cp })) })),
    policies: { policies: [], peers: [] },
    flows: planProbes(layout),
  };
}

/** The grid as a data plane runs it (after fit()): its hosts that exist there are the layout's external hosts. */
export function gridLayoutOf(w: Workload): GridLayout {
  return {
    namespaces: w.namespaces,
    pods: w.pods.map((p) => ({ id: podId(p), name: p.name, namespace: p.namespace, labels: p.labels, ports: p.ports, node: p.node, client: p.role !== 'server' })),
    externals: w.hosts.filter((h) => h.presence !== 'address').map((h) => ({ id: h.id, ports: h.ports })),
    nodes: w.nodes,
  };
}

export function endpointIds(layout: GridLayout): EndpointId[] {
  return [...layout.pods.map((p) => p.id), ...layout.externals.map((e) => e.id)];
}

export function gridInventory(layout: GridLayout, addr: GridAddresses): Inventory {
  const pods: PodInfo[] = layout.pods.map((p) => {
    const ip = addr.ips[p.id];
    const node = addr.nodeOf[p.id];
    if (!ip || !node) throw new BenchError('internal', `the backend did not place grid pod ${p.id}`);
    return { name: p.name, namespace: p.namespace, labels: { ...p.labels }, ip, node, ports: p.ports.map((cp) => ({ ...cp })) };
  });
  return { namespaces: layout.namespaces.map((n) => ({ name: n.name, labels: { ...n.labels } })), pods };
}

/** A pattern names endpoints: `x/a`, `x/*`, `*\/a`, `ext1`, `*`. */
export function matchesPattern(pattern: string, id: EndpointId): boolean {
  const re = new RegExp(`^${pattern.split('*').map((s) => s.replace(/[.+?^${}()|[\]\\/]/g, '\\$&')).join('[^/]*')}$`);
  return pattern === '*' || re.test(id);
}

export interface ProbeFilter {
  from?: string[];
  to?: string[];
  /** `TCP/80`, `UDP/53`. */
  ports?: string[];
}

/**
 * Every probe of the grid: each client pod to every other pod (a pod's traffic to itself stays on its own
 * loopback and no data plane sees it), to the DNS pod and to the external hosts; each external host to every
 * client pod. Each on every port/protocol the destination serves. `filter` keeps a subset.
 */
export function planProbes(layout: GridLayout, filter: ProbeFilter = {}): ProbeSpec[] {
  const probes: ProbeSpec[] = [];
  const add = (from: EndpointId, to: EndpointId, ports: ContainerPort[]) => {
    for (const cp of ports) probes.push({ from, to, protocol: cp.protocol, port: cp.containerPort });
  };
  const clients = layout.pods.filter((p) => p.client);
  for (const src of clients) {
    for (const dst of layout.pods) if (dst.id !== src.id) add(src.id, dst.id, dst.ports);
    for (const ext of layout.externals) add(src.id, ext.id, ext.ports);
  }
  for (const ext of layout.externals) for (const dst of clients) add(ext.id, dst.id, dst.ports);
  const any = (patterns: string[] | undefined, id: string) => !patterns || patterns.some((p) => matchesPattern(p, id));
  return probes.filter((p) => any(filter.from, p.from) && any(filter.to, p.to) && (!filter.ports || filter.ports.includes(`${p.protocol}/${p.port}`)));
}

// ---- case templates: `{{ x/a }}` or `{{ ext1 }}` in an ipBlock stands for that endpoint's address ----

const TEMPLATE_RE = /\{\{\s*([^}\s]+)\s*\}\}/g;

export interface TemplateProblem {
  /** Path inside the policy list, e.g. [2, 'spec', 'ingress', 0, 'from', 0, 'ipBlock', 'cidr']. */
  path: Array<string | number>;
  message: string;
}

/**
 * Substitutes endpoint addresses into ipBlock cidr/except strings and clears host bits (`{{ ext1 }}/28` ->
 * 172.18.0.96/28), so the same case file works wherever the grid's addresses fall.
 */
export function instantiatePolicies(policies: readonly NetworkPolicy[], ips: Record<EndpointId, string>): { policies: NetworkPolicy[]; problems: TemplateProblem[] } {
  const problems: TemplateProblem[] = [];
  const subst = (text: string, path: Array<string | number>): string => {
    if (!text.includes('{{')) return text;
    let bad = false;
    const out = text.replace(TEMPLATE_RE, (_, id: string) => {
      const ip = ips[id];
      if (ip === undefined) {
        bad = true;
        problems.push({ path, message: `'{{ ${id} }}' names no grid endpoint (known: ${Object.keys(ips).join(', ')})` });
        return '0.0.0.0';
      }
      return ip;
    });
    if (bad) return out;
    if (out.includes('{{') || out.includes('}}')) {
      problems.push({ path, message: `malformed template in '${text}' (write {{ x/a }} or {{ ext1 }})` });
      return out;
    }
    try {
      return out.includes('/') ? normalizeCidr(out) : out;
    } catch {
      return out; // left for the policy validator to report with its own message
    }
  };
  const out = policies.map((policy, i) => {
    const copy = structuredClone(policy) as NetworkPolicy;
    const visit = (peers: Array<{ ipBlock?: { cidr: string; except?: string[] } }> | undefined, base: Array<string | number>) => {
      peers?.forEach((peer, j) => {
        if (!peer.ipBlock) return;
        const at = [...base, j, 'ipBlock'];
        peer.ipBlock.cidr = subst(peer.ipBlock.cidr, [...at, 'cidr']);
        if (peer.ipBlock.except) peer.ipBlock.except = peer.ipBlock.except.map((e, k) => subst(e, [...at, 'except', k]));
      });
    };
    copy.spec.ingress?.forEach((r, k) => visit(r.from, [i, 'spec', 'ingress', k, 'from']));
    copy.spec.egress?.forEach((r, k) => visit(r.to, [i, 'spec', 'egress', k, 'to']));
    return copy;
  });
  return { policies: out, problems };
}
