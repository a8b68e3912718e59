// Generates a cluster-shaped workload from a shape (shape.ts), deterministically from its seed: application
// namespaces of apps with replicas dealt over the nodes, a call graph between the apps, kube-system's CoreDNS, a
// monitoring namespace (Prometheus, and a hostNetwork node-exporter on every node), and the policy habits of
// real clusters: default-deny per namespace, DNS egress to kube-system/kube-dns, ingress from each app's callers
// (namespaceSelector AND podSelector in one peer across namespaces), egress to its callees, metrics scraping from
// the monitoring namespace on a named port, egress ipBlocks, named ports and UDP port ranges. Pure.
import { seededRandom } from '../stats/summary.js';
import { NAMESPACE_NAME_LABEL } from '../policy/selectors.js';
import type { ContainerPort, NamespaceInfo, NetworkPolicy, NetworkPolicyEgressRule, NetworkPolicyIngressRule, NetworkPolicyPeer, NetworkPolicyPort, PodInfo } from '../policy/types.js';
import { InputError } from '../errors.js';
import { AddressPlan, MAX_PODS_PER_NODE, nodeAddress, type ClusterWorkload, type ShapeApp } from './cluster.js';
import type { Shape } from './shape.js';

const TEAMS = ['shop', 'payments', 'search', 'identity', 'media', 'ads', 'orders', 'billing', 'inventory', 'shipping', 'reviews', 'chat', 'maps', 'ledger', 'analytics', 'notify', 'profile', 'feed', 'pricing', 'support'];
const APPS = ['frontend', 'api', 'worker', 'cache', 'db', 'gateway', 'auth', 'queue', 'scheduler', 'events', 'images', 'graph', 'export', 'webhooks', 'reports', 'sessions'];
/** Service ports apps listen on, with the name a named port gets. */
const SERVICE_PORTS: ReadonlyArray<{ port: number; name: string }> = [
  { port: 8080, name: 'http' },
  { port: 8443, name: 'https' },
  { port: 9000, name: 'grpc' },
  { port: 3000, name: 'web' },
  { port: 6379, name: 'redis' },
  { port: 5432, name: 'postgres' },
];
const METRICS_PORT: ContainerPort = { name: 'metrics', containerPort: 9090, protocol: 'TCP' };
/** A range app serves UDP 30000-30002 and is allowed 30000-30009. */
const RANGE = { from: 30000, to: 30009, declared: [30000, 30001, 30002] };
const EXTERNAL_BLOCKS = ['203.0.113.0/24', '198.51.100.0/24', '192.0.2.10/32'];
/** The usual "anything on the internet but the cloud metadata service": it covers every pod address too. */
const INTERNET_WIDE = { cidr: '0.0.0.0/0', except: ['169.254.169.254/32'] };

/** `words`, then `word-2`, `word-3`… once they run out. */
function nameList(words: readonly string[], n: number): string[] {
  return Array.from({ length: n }, (_, i) => `${words[i % words.length]}${i >= words.length ? `-${Math.floor(i / words.length) + 1}` : ''}`);
}

interface App {
  ns: string;
  name: string;
  index: number;
  replicas: number;
  service: { port: number; name: string; named: boolean } | undefined;
  range: boolean;
  canary: boolean;
  ipBlock?: 'external' | 'internet';
  callees: App[];
  callers: App[];
}

const policy = (namespace: string, name: string, spec: NetworkPolicy['spec']): NetworkPolicy => ({ apiVersion: 'networking.k8s.io/v1', kind: 'NetworkPolicy', metadata: { name, namespace }, spec });
const nsPeer = (ns: string, labels: Record<string, string>): NetworkPolicyPeer => ({ namespaceSelector: { matchLabels: { [NAMESPACE_NAME_LABEL]: ns } }, podSelector: { matchLabels: labels } });

/** How a policy names an app's service port: by name, by number, or as the UDP range. */
function servicePorts(app: App): NetworkPolicyPort[] {
  if (app.range) return [{ protocol: 'UDP', port: RANGE.from, endPort: RANGE.to }];
  const s = app.service!;
  return [{ protocol: 'TCP', port: s.named ? s.name : s.port }];
}

function declaredPorts(app: App): ContainerPort[] {
  const ports: ContainerPort[] = app.range
    ? RANGE.declared.map((p) => ({ containerPort: p, protocol: 'UDP' as const }))
    : [{ ...(app.service!.named ? { name: app.service!.name } : {}), containerPort: app.service!.port, protocol: 'TCP' }];
  return [...ports, METRICS_PORT];
}

export interface GenerateOptions {
  /** Overrides the shape's scale (the knob a sweep turns). */
  scale?: number;
  /** The shape file, for the source record. */
  file?: string;
}

export function generateWorkload(shape: Shape, opts: GenerateOptions = {}): ClusterWorkload {
  const rand = seededRandom(shape.seed);
  const chance = (p: number) => p > 0 && rand() < p;
  const between = (min: number, max: number) => min + Math.floor(rand() * (max - min + 1));
  const scale = opts.scale ?? shape.scale;
  const nodes = Array.from({ length: shape.nodes }, (_, i) => `node-${i}`);
  const teamNames = nameList(TEAMS, shape.namespaces * scale);
  const appNames = nameList(APPS, shape.appsPerNamespace);

  // ---- apps and the call graph ----
  const byNs = teamNames.map((ns) =>
    appNames.map((name, index): App => {
      const range = chance(shape.ports.ranges);
      const svc = SERVICE_PORTS[Math.floor(rand() * SERVICE_PORTS.length)]!;
      return { ns, name, index, replicas: between(shape.replicas.min, shape.replicas.max), service: range ? undefined : { ...svc, named: chance(shape.ports.named) }, range, canary: chance(0.1), callees: [], callers: [] };
    }),
  );
  const apps = byNs.flat();
  for (const nsApps of byNs) {
    for (const app of nsApps) {
      for (let c = 0; c < shape.calls.perApp; c++) {
        const later = nsApps.slice(app.index + 1);
        const crossOk = byNs.length > 1;
        const cross = crossOk && (later.length === 0 || chance(shape.calls.crossNamespace));
        let callee: App | undefined;
        if (cross) {
          const others = byNs.filter((a) => a[0]!.ns !== app.ns);
          const nsPick = others[Math.floor(rand() * others.length)]!;
          callee = nsPick[Math.floor(rand() * nsPick.length)];
        } else if (later.length) callee = later[Math.floor(rand() * later.length)];
        if (callee && !app.callees.includes(callee)) {
          app.callees.push(callee);
          callee.callers.push(app);
        }
      }
      if (chance(shape.policies.egressIpBlocks)) app.ipBlock = chance(shape.policies.internetWide) ? 'internet' : 'external';
    }
  }

  // ---- namespaces and pods ----
  const namespaces: NamespaceInfo[] = [
    { name: 'kube-system', labels: { [NAMESPACE_NAME_LABEL]: 'kube-system' } },
    { name: 'monitoring', labels: { purpose: 'monitoring', [NAMESPACE_NAME_LABEL]: 'monitoring' } },
    ...teamNames.map((ns) => ({ name: ns, labels: { team: ns, env: 'prod', [NAMESPACE_NAME_LABEL]: ns } })),
  ];
  const plan = new AddressPlan(new Set());
  let turn = 0;
  const pods: PodInfo[] = [];
  const addPod = (namespace: string, name: string, labels: Record<string, string>, ports: ContainerPort[]) => {
    const nodeIndex = turn++ % nodes.length;
    const ip = plan.podAddress(nodeIndex);
    if (!ip) throw new InputError([{ where: opts.file ?? shape.name, message: `scale ${scale}: more pods than ${shape.nodes} nodes hold (a node's pod CIDR 10.244.<node>.0/24 holds ${MAX_PODS_PER_NODE}); raise nodes or lower scale` }]);
    pods.push({ name, namespace, labels, ip, node: nodes[nodeIndex]!, ports });
  };
  const dnsPorts: ContainerPort[] = [
    { name: 'dns', containerPort: 53, protocol: 'UDP' },
    { name: 'dns-tcp', containerPort: 53, protocol: 'TCP' },
    { name: 'metrics', containerPort: 9153, protocol: 'TCP' },
  ];
  for (let i = 0; i < 2; i++) addPod('kube-system', `coredns-${i}`, { 'k8s-app': 'kube-dns' }, dnsPorts);
  addPod('monitoring', 'prometheus-0', { app: 'prometheus' }, [{ name: 'web', containerPort: 9090, protocol: 'TCP' }]);
  nodes.forEach((node, i) => pods.push({ name: `node-exporter-${node}`, namespace: 'monitoring', labels: { app: 'node-exporter' }, ip: nodeAddress(i), node, ports: [{ name: 'metrics', containerPort: 9100, protocol: 'TCP' }], hostNetwork: true }));
  const tier = (app: App) => (app.index === 0 ? 'web' : app.index === appNames.length - 1 ? 'data' : 'api');
  for (const app of apps) {
    for (let r = 0; r < app.replicas; r++) {
      addPod(app.ns, `${app.name}-${r}`, { app: app.name, tier: tier(app), version: app.canary && r === app.replicas - 1 && r > 0 ? 'v2' : 'v1' }, declaredPorts(app));
    }
  }

  // ---- policies ----
  const p = shape.policies;
  const policies: NetworkPolicy[] = [];
  const dnsRule: NetworkPolicyEgressRule = { to: [nsPeer('kube-system', { 'k8s-app': 'kube-dns' })], ports: [{ protocol: 'UDP', port: 53 }, { protocol: 'TCP', port: 53 }] };
  if (p.metrics) {
    policies.push(policy('monitoring', 'prometheus', { podSelector: { matchLabels: { app: 'prometheus' } }, policyTypes: ['Egress'], egress: [{ to: [{ namespaceSelector: {}, podSelector: {} }], ports: [{ protocol: 'TCP', port: 'metrics' }] }, { to: [{ ipBlock: { cidr: '172.18.0.0/16' } }], ports: [{ protocol: 'TCP', port: 9100 }] }, dnsRule] }));
  }
  for (const ns of teamNames) {
    if (!chance(p.defaultDeny)) continue;
    policies.push(policy(ns, 'default-deny', { podSelector: {}, policyTypes: ['Ingress', 'Egress'] }));
    if (chance(p.allowDns)) policies.push(policy(ns, 'allow-dns', { podSelector: {}, policyTypes: ['Egress'], egress: [dnsRule] }));
  }
  for (const app of apps) {
    const selector = { matchLabels: { app: app.name } };
    const peerTo = (other: App, mistakes: boolean): NetworkPolicyPeer[] => {
      if (other.ns === app.ns) return [{ podSelector: { matchLabels: { app: other.name } } }];
      if (mistakes && chance(shape.mistakes.orPeers)) return [{ namespaceSelector: { matchLabels: { [NAMESPACE_NAME_LABEL]: other.ns } } }, { podSelector: { matchLabels: { app: other.name } } }];
      return [nsPeer(other.ns, { app: other.name })];
    };
    if (p.callGraph) {
      const ingress: NetworkPolicyIngressRule[] = app.callers.length ? [{ from: app.callers.flatMap((c) => peerTo(c, true)), ports: servicePorts(app) }] : [{ ports: servicePorts(app) }];
      policies.push(policy(app.ns, `${app.name}-ingress`, { podSelector: selector, policyTypes: ['Ingress'], ingress }));
    }
    const egress: NetworkPolicyEgressRule[] = p.callGraph ? app.callees.map((c) => ({ to: peerTo(c, false), ports: servicePorts(c) })) : [];
    if (app.ipBlock === 'internet') egress.push({ to: [{ ipBlock: { ...INTERNET_WIDE, except: [...INTERNET_WIDE.except] } }], ports: [{ protocol: 'TCP', port: 443 }, { protocol: 'TCP', port: 8443 }] });
    if (app.ipBlock === 'external') egress.push({ to: [{ ipBlock: { cidr: EXTERNAL_BLOCKS[Math.floor(rand() * EXTERNAL_BLOCKS.length)]! } }], ports: [{ protocol: 'TCP', port: 443 }] });
    if (egress.length) policies.push(policy(app.ns, `${app.name}-egress`, { podSelector: selector, policyTypes: ['Egress'], egress }));
    if (p.metrics) policies.push(policy(app.ns, `${app.name}-metrics`, { podSelector: selector, policyTypes: ['Ingress'], ingress: [{ from: [nsPeer('monitoring', { app: 'prometheus' })], ports: [{ protocol: 'TCP', port: 'metrics' }] }] }));
  }

  const shapeApps: ShapeApp[] = apps.map((a) => ({ namespace: a.ns, app: a.name, replicas: a.replicas, ports: declaredPorts(a).map((cp) => `${cp.name ? `${cp.name}=` : ''}${cp.containerPort}/${cp.protocol}`) }));
  return {
    name: shape.name,
    inventory: { namespaces, pods },
    policies,
    nodes,
    assignedAddresses: pods.map((pod) => `${pod.namespace}/${pod.name}`),
    source: { kind: 'shape', file: opts.file ?? `${shape.name}.yaml`, seed: shape.seed, scale, apps: shapeApps, calls: apps.flatMap((a) => a.callees.map((c) => ({ from: `${a.ns}/${a.name}`, to: `${c.ns}/${c.name}` }))) },
  };
}
