// Snapshots as real clusters print them (fixtures/real/, written for these tests): every field kubectl adds,
// kube-system's static and hostNetwork pods, finished and pending pods, dual-stack and IPv6-only pods, native
// sidecars, other engines' policies. Each loads to the workload a faithful replay holds.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { PolicyEvaluator } from '../policy/evaluate.js';
import type { PodInfo } from '../policy/types.js';
import type { ClusterWorkload } from './cluster.js';
import { findPolicyProblems } from './findings.js';
import { parseWorkload } from './load.js';
import { decodeWorkloadText, parseSnapshot } from './snapshot.js';

const REAL = join(import.meta.dirname, 'fixtures', 'real');
const DUAL = join(REAL, 'dualstack-1.30.json');
const CALICO = join(REAL, 'calico-1.19.yaml');
const MULTIDOC = join(REAL, 'gitops-multidoc.yaml');
const text = (f: string) => readFileSync(f, 'utf8');
const load = (f: string, t = text(f)) => parseWorkload(f, t);

const pod = (w: ClusterWorkload, key: string): PodInfo | undefined => w.inventory.pods.find((p) => `${p.namespace}/${p.name}` === key);
const snapshotSource = (w: ClusterWorkload) => {
  if (w.source.kind !== 'snapshot') throw new Error('not a snapshot');
  return w.source;
};
const verdict = (w: ClusterWorkload, from: string, to: string, port: number, protocol: 'TCP' | 'UDP' = 'TCP') => new PolicyEvaluator(w.inventory, w.policies).evaluate({ src: pod(w, from)!, dst: pod(w, to)!, protocol, port }).allowed;

describe('a dual-stack 1.30 cluster, kubectl get … -A -o json', () => {
  let w: ClusterWorkload;
  let src: ReturnType<typeof snapshotSource>;
  beforeAll(() => {
    w = load(DUAL);
    src = snapshotSource(w);
  });

  it('keeps running pods (hostNetwork and mirror pods on their node), leaves out the others and says why', () => {
    expect(src.items).toEqual({ Namespace: 8, Node: 3, Pod: 21, Deployment: 1, StatefulSet: 1, NetworkPolicy: 9 });
    expect(w.inventory.pods).toHaveLength(17);
    expect(Object.fromEntries(src.skippedPods.map((s) => [s.pod, s.reason.split(' ')[0]]))).toEqual({
      'shop/cart-1': 'not',
      'payments/ledger-v6-5f7c8d9b4-wd7mn': 'IPv6',
      'batch/nightly-report-29421840-8hv5n': 'finished',
      'batch/reindex-fk8wp': 'finished',
    });
    // A finished Job pod's address is free: the running pod that holds it now is no conflict.
    expect(pod(w, 'batch/loader-5b6c7d8e9-vx4zt')?.ip).toBe('10.244.1.9');
    // The static pods the kubelet mirrors, and the DaemonSets' agents, are hostNetwork pods at the node address.
    expect(pod(w, 'kube-system/kube-apiserver-ds-control-plane')).toMatchObject({ hostNetwork: true, ip: '172.19.0.2', node: 'ds-control-plane' });
    expect(pod(w, 'kube-system/cilium-m3v7p')).toMatchObject({ hostNetwork: true, ip: '172.19.0.3' });
    // Dual-stack pods keep their IPv4 address; a hostPort is a container port like any other.
    expect(pod(w, 'shop/edge-proxy-7d4b9c6f5-kk2rj')).toMatchObject({ ip: '10.244.1.12', ports: [{ name: 'https', containerPort: 8443, protocol: 'TCP' }, { name: 'stats', containerPort: 8404, protocol: 'TCP' }] });
    expect(src.representedByPods).toEqual(['Deployment shop/web', 'StatefulSet shop/cart']);
    expect(src.expanded).toEqual([]);
    expect(w.nodePodCidrs).toEqual({ 'ds-control-plane': ['10.244.0.0/24'], 'ds-worker': ['10.244.1.0/24'], 'ds-worker2': ['10.244.2.0/24'] });
  });

  it('serves and resolves the ports of containers and native sidecars, not of plain init containers', () => {
    expect(pod(w, 'shop/web-6c9f7d8b5-tq2lw')?.ports).toEqual([
      { name: 'http', containerPort: 8080, protocol: 'TCP' },
      { name: 'proxy', containerPort: 15001, protocol: 'TCP' },
      { name: 'envoy-prom', containerPort: 15090, protocol: 'TCP' },
    ]);
    // scrape-sidecars admits prometheus on the named port envoy-prom, which only the sidecar declares.
    expect(verdict(w, 'monitoring/prometheus-0', 'shop/web-6c9f7d8b5-tq2lw', 15090)).toBe(true);
    // A policy naming the plain init container's port (migrate-dbg): it resolves on no pod, so it admits nothing.
    const doc = JSON.parse(text(DUAL)) as { items: Array<{ kind: string; metadata: { name: string }; spec: { ingress?: Array<{ ports?: unknown[] }> } }> };
    doc.items = doc.items.filter((i) => i.metadata.name !== 'web-from-anywhere');
    doc.items.find((i) => i.metadata.name === 'scrape-sidecars')!.spec.ingress![0]!.ports!.push({ port: 'migrate-dbg', protocol: 'TCP' });
    const named = load('d.json', JSON.stringify(doc));
    expect(verdict(named, 'monitoring/prometheus-0', 'shop/web-6c9f7d8b5-tq2lw', 9000)).toBe(false);
    expect(verdict(named, 'monitoring/prometheus-0', 'shop/web-6c9f7d8b5-tq2lw', 15090)).toBe(true);
    expect(findPolicyProblems(named).filter((f) => f.kind === 'named-port-undeclared').map((f) => f.message.split(':')[0])).toEqual(["port 'migrate-dbg' (TCP) is declared by none of the 3 pods it selects (shop/web-6c9f7d8b5-4hx9z, shop/web-6c9f7d8b5-tq2lw, shop/cart-0)"]);
    // web-to-cart resolves grpc against cart's containers; cart-from-web admits it.
    expect(verdict(w, 'shop/web-6c9f7d8b5-4hx9z', 'shop/cart-0', 7070)).toBe(true);
    expect(verdict(w, 'shop/web-6c9f7d8b5-4hx9z', 'kube-system/coredns-7db6d8ff4d-5wq8v', 53, 'UDP')).toBe(true);
  });

  it('leaves IPv6 ipBlock peers out of the IPv4 replay, and keeps what the rest of each policy means', () => {
    const byName = (n: string) => w.policies.find((p) => p.metadata.name === n)!;
    expect(byName('api-egress').spec).toEqual({
      egress: [{ to: [{ ipBlock: { cidr: '0.0.0.0/0', except: ['10.244.0.0/16', '169.254.169.254/32'] } }], ports: [{ port: 443, protocol: 'TCP' }] }],
      podSelector: { matchLabels: { app: 'pay-api' } },
      policyTypes: ['Egress'],
    });
    // Its only rule allowed an IPv6 range: no IPv4 connection to ledger is allowed (the policy still isolates).
    expect(byName('ledger-v6-only').spec).toMatchObject({ ingress: [], policyTypes: ['Ingress'] });
    expect(src.ipv6Peers).toEqual(['payments/api-egress spec.egress[0].to[1]', 'payments/api-egress spec.egress[1].to[0]', 'payments/ledger-v6-only spec.ingress[0].from[0]']);
    expect(byName('web-from-anywhere').spec.ingress).toEqual([{}]);
  });

  it('finds the policies it does not replay, per kind, and what IPv6 leaves out', () => {
    const f = findPolicyProblems(w).filter((x) => x.kind === 'not-replayed');
    expect(f.map((x) => x.policy)).toEqual(['AdminNetworkPolicy.policy.networking.k8s.io', 'BaselineAdminNetworkPolicy.policy.networking.k8s.io', 'CiliumClusterwideNetworkPolicy.cilium.io', 'CiliumNetworkPolicy.cilium.io', 'IPv6']);
    expect(f[3]!.message).toContain('this snapshot holds 2 CiliumNetworkPolicies (Cilium: shop/web-l7, shop/cart-fqdn): only Kubernetes NetworkPolicy is replayed');
    expect(f[0]!.fix).toContain('evaluated before NetworkPolicy');
    expect(f[4]!.message).toContain('3 IPv6 ipBlock peers');
    expect(f[4]!.message).toContain('1 IPv6-only pod (payments/ledger-v6-5f7c8d9b4-wd7mn)');
    // The policy on the IPv6-only pod selects it on the cluster: not a leftover to delete.
    expect(findPolicyProblems(w).find((x) => x.policy === 'payments/ledger-v6-only')?.message).toBe('podSelector {app=ledger} selects only pods the replay leaves out (payments/ledger-v6-5f7c8d9b4-wd7mn: IPv6 only): in the replay the policy has no effect; on your cluster it applies to them');
  });

  it('refuses a bad IPv6 ipBlock, naming the item and the field', () => {
    const bad = text(DUAL).replace('"cidr": "2001:db8:77::/64"', '"cidr": "2001:db8:77::/129"');
    const { problems } = parseSnapshot('d.json', bad);
    expect(problems).toEqual([{ where: 'd.json#/items/47/spec/egress/1/to/0/ipBlock/cidr', message: 'NetworkPolicy payments/api-egress: spec.egress[1].to[0].ipBlock.cidr: invalid IPv6 CIDR "2001:db8:77::/129": expected address/prefix, prefix 0-128' }]);
  });
});

describe('a 1.19 Calico cluster, kubectl get … -A -o yaml (a List)', () => {
  let w: ClusterWorkload;
  let src: ReturnType<typeof snapshotSource>;
  beforeAll(() => {
    w = load(CALICO);
    src = snapshotSource(w);
  });

  it("reads only networking.k8s.io NetworkPolicies: Calico's kinds of the same name are counted, not refused", () => {
    expect(src.items).toEqual({ Namespace: 3, Node: 2, Pod: 7, DaemonSet: 1, NetworkPolicy: 4 });
    expect(src.ignoredKinds).toEqual({ Endpoints: 1, CronJob: 1, 'NetworkPolicy (crd.projectcalico.org/v1)': 1, GlobalNetworkPolicy: 1, 'NetworkPolicy (projectcalico.org/v3)': 1, GlobalNetworkSet: 1 });
    expect(findPolicyProblems(w).filter((f) => f.kind === 'not-replayed' && !f.field).map((f) => f.policy)).toEqual(['GlobalNetworkPolicy.projectcalico.org', 'NetworkPolicy.crd.projectcalico.org', 'NetworkPolicy.projectcalico.org']);
  });

  it('keeps pods, leaves out the one still creating (no address) and the finished Job pod', () => {
    expect(w.inventory.pods.map((p) => `${p.namespace}/${p.name}`)).toEqual(['kube-system/coredns-f9fd979d6-jz8xq', 'kube-system/kube-scheduler-worker-a', 'kube-system/calico-node-7lq2v', 'frontend/storefront-5c7d9f8b6-2xkpl', 'backend/orders-0']);
    expect(src.skippedPods.map((s) => s.pod)).toEqual(['frontend/storefront-5c7d9f8b6-q8mzn', 'backend/cleanup-1625018400-v9k2d']);
    // A plain init container's port (warmup) is not served: it finished before the pod ran.
    expect(pod(w, 'frontend/storefront-5c7d9f8b6-2xkpl')?.ports).toEqual([{ name: 'http', containerPort: 3000, protocol: 'TCP' }]);
    expect(w.nodePodCidrs).toEqual({ 'worker-a': ['192.168.41.0/24'], 'worker-b': ['192.168.77.0/24'] });
  });

  it('gives the namespaces of a cluster before 1.21 the kubernetes.io/metadata.name label the replay clusters set, and says where that changes a selector', () => {
    expect(w.inventory.namespaces.find((n) => n.name === 'frontend')?.labels).toEqual({ name: 'frontend', 'kubernetes.io/metadata.name': 'frontend' });
    expect(src.namespacesWithoutNameLabel).toEqual(['frontend', 'backend', 'kube-system']);
    const f = findPolicyProblems(w).filter((x) => x.kind === 'not-replayed' && x.field);
    expect(f.map((x) => `${x.policy} ${x.field}`)).toEqual(['frontend/storefront-dns spec.egress[0].to[0].namespaceSelector']);
    expect(f[0]!.message).toContain('3 namespaces of this snapshot (frontend, backend, kube-system) do not have: the cluster it came from predates 1.21');
    // The dual-stack 1.30 snapshot has the label everywhere: no such finding.
    expect(findPolicyProblems(load(DUAL)).filter((x) => x.kind === 'not-replayed' && x.field)).toEqual([]);
  });

  it('finds the OR-peer rule', () => {
    expect(findPolicyProblems(w).find((f) => f.kind === 'or-peers')).toMatchObject({ policy: 'backend/orders-ingress', field: 'spec.ingress[0].from' });
  });
});

describe('a multi-document YAML of controllers and Nodes', () => {
  let w: ClusterWorkload;
  beforeAll(() => {
    w = load(MULTIDOC);
  });

  it("puts the controllers' pods on the file's Nodes, with addresses from their pod CIDR, sidecar ports declared", () => {
    expect(w.nodes).toEqual(['pool-1-abcd']);
    expect(w.inventory.pods.map((p) => `${p.name} ${p.ip}`)).toEqual(['stock-0 10.20.3.2', 'stock-1 10.20.3.3', 'stock-2 10.20.3.4', 'stock-db-0 10.20.3.5', 'log-shipper-pool-1-abcd 172.18.0.2']);
    expect(pod(w, 'inventory/stock-0')?.ports.map((p) => p.name)).toEqual(['http', 'proxy-admin']);
    expect(findPolicyProblems(w).map((f) => `${f.kind} ${f.policy}`)).toEqual(['not-replayed AdminNetworkPolicy.policy.networking.k8s.io']);
  });
});

describe('the bytes of the file, as users save it', () => {
  const same = (a: ClusterWorkload, b: ClusterWorkload) => expect({ ...b, source: { ...b.source, file: '' } }).toEqual({ ...a, source: { ...a.source, file: '' } });

  it.each([DUAL, CALICO, MULTIDOC])('reads %s with CRLF line ends and a UTF-8 byte order mark', (f) => {
    const crlfBom = `\uFEFF${text(f).replace(/\n/g, '\r\n')}`;
    same(load(f), load(f, crlfBom));
  });

  it('reads UTF-16 (Windows PowerShell 5 redirects kubectl output so)', () => {
    const t = text(CALICO);
    const le = Buffer.concat([Buffer.from([0xff, 0xfe]), Buffer.from(t, 'utf16le')]);
    const be = Buffer.concat([Buffer.from([0xfe, 0xff]), Buffer.from(t, 'utf16le').swap16()]);
    expect(decodeWorkloadText(le)).toBe(t);
    expect(decodeWorkloadText(be)).toBe(t);
    same(load(CALICO), load(CALICO, decodeWorkloadText(le)));
  });

  it('still names the line of a bad field in a CRLF file', () => {
    const bad = text(CALICO).replace('containerPort: 9153', 'containerPort: 91530').replace(/\n/g, '\r\n');
    expect(parseSnapshot('c.yaml', `\uFEFF${bad}`).problems).toEqual([{ where: expect.stringMatching(/^c\.yaml:\d+:\d+$/), message: expect.stringContaining('Pod kube-system/coredns-f9fd979d6-jz8xq: spec.containers.0.ports.2.containerPort: must be at most 65535') }]);
    const line = Number(parseSnapshot('c.yaml', bad).problems[0]!.where.split(':')[1]);
    expect(bad.split('\r\n')[line - 1]).toContain('91530');
  });
});

describe('controllers whose pods are in the file but left out', () => {
  it('are not expanded into made-up pods', () => {
    // The Deployment stock's only pod in the file is Pending (not yet scheduled): it stands for the Deployment.
    const pending = `apiVersion: v1
kind: Pod
metadata:
  name: stock-7f9c8d6b5-x2x9q
  namespace: inventory
  labels:
    app.kubernetes.io/name: stock
spec:
  containers:
  - image: registry.example.com/stock:1.4.2
    name: stock
status:
  phase: Pending
  conditions:
  - type: PodScheduled
    status: "False"
    reason: Unschedulable
`;
    const w = load('m.yaml', `${text(MULTIDOC)}---\n${pending}`);
    expect(snapshotSource(w).expanded.map((e) => e.name)).toEqual(['inventory/stock-db', 'inventory/log-shipper']);
    expect(snapshotSource(w).representedByPods).toEqual(['Deployment inventory/stock']);
    expect(w.inventory.pods.some((p) => p.name.startsWith('stock-') && p.name !== 'stock-db-0')).toBe(false);
  });
});

it('says an empty file (a kubectl get > file that failed) holds no objects, instead of asking for a shape', () => {
  expect(() => load('empty.json', '\n')).toThrow(/empty\.json: holds no objects; expected the output of kubectl get namespaces,nodes,pods,networkpolicies -A -o json/);
});

it('reads JSON that starts with a UTF-8 byte order mark', () => {
  const shop = join(import.meta.dirname, 'fixtures', 'shop-cluster.json');
  expect(load(shop, `\uFEFF${text(shop)}`).inventory.pods).toEqual(load(shop).inventory.pods);
});

/**
 * A 30 MB snapshot, made at run time from the dual-stack fixture (not committed): its application namespaces
 * copied under new names with their pods (fresh addresses), policies and other engines' policies.
 */
function largeSnapshot(bytes: number): { text: string; copies: number } {
  const doc = JSON.parse(text(DUAL)) as { items: Array<Record<string, unknown> & { kind: string; metadata: { name: string; namespace?: string; labels?: Record<string, string> } }> };
  const apps = new Set(['shop', 'payments', 'monitoring', 'batch']);
  const base = doc.items.filter((i) => i.kind !== 'Node');
  const copyable = doc.items.filter((i) => (i.metadata.namespace && apps.has(i.metadata.namespace)) || (i.kind === 'Namespace' && apps.has(i.metadata.name)));
  const template = JSON.stringify(copyable);
  const out = [...base];
  let size = JSON.stringify(doc, null, 4).length;
  let copies = 0;
  while (size < bytes) {
    copies++;
    const k = copies;
    const renamed = template
      .replace(/"(shop|payments|monitoring|batch)"/g, `"$1-${k}"`)
      .replace(/10\.244\.(\d)\.(\d+)/g, (_m, a: string, b: string) => `10.${1 + (k >> 6)}.${(k & 63) * 4 + Number(a)}.${b}`)
      .replace(/fd00:10:244:(\d)::/g, `fd00:${k.toString(16)}:244:$1::`);
    const items = JSON.parse(renamed) as typeof out;
    for (const i of items) if (i.kind === 'Namespace') i.metadata.labels = { ...i.metadata.labels, 'kubernetes.io/metadata.name': i.metadata.name };
    out.push(...items);
    size += JSON.stringify(items, null, 4).length;
  }
  return { text: JSON.stringify({ ...doc, items: out }, null, 4), copies };
}

describe('a 30 MB snapshot', () => {
  it('loads, findings included, within 30 s and 1 GiB of heap on the shared 2-vCPU machine', () => {
    const { text: big, copies } = largeSnapshot(30 * 1024 * 1024);
    expect(big.length).toBeGreaterThanOrEqual(30 * 1024 * 1024);
    const heapBefore = process.memoryUsage().heapUsed;
    const t0 = performance.now();
    const w = load('big.json', big);
    const loadMs = performance.now() - t0;
    const findings = findPolicyProblems(w);
    const totalMs = performance.now() - t0;
    const heapMiB = (process.memoryUsage().heapUsed - heapBefore) / 1048576;
    // The figures, for the README (machine shared: see its command).
    console.log(`30 MB snapshot: ${copies} copies, ${w.inventory.pods.length} pods, ${w.policies.length} policies; load ${Math.round(loadMs)} ms, with findings ${Math.round(totalMs)} ms, heap +${Math.round(heapMiB)} MiB`);
    expect(w.inventory.pods.length).toBe(17 + 7 * copies);
    expect(w.policies.length).toBe(9 * (copies + 1));
    expect(findings.find((f) => f.policy === 'CiliumNetworkPolicy.cilium.io')?.message).toContain(`${2 * (copies + 1)} CiliumNetworkPolicies`);
    expect(totalMs).toBeLessThan(30_000);
    expect(heapMiB).toBeLessThan(1024);
  }, 120_000);
});

describe('anonymized (bench snapshot --anonymize)', () => {
  it.each([DUAL, CALICO, MULTIDOC])('%s keeps its pods, their served ports and the count of policies not replayed', async (f) => {
    const { anonymizeList } = await import('./anonymize.js');
    const { loadAll } = await import('js-yaml');
    const docs = f.endsWith('.json') ? [JSON.parse(text(f)) as unknown] : loadAll(text(f)).filter((d) => d);
    const items = docs.flatMap((d) => ((d as { items?: unknown[] }).items ?? [d]) as unknown[]);
    const a = load('a.json', JSON.stringify(anonymizeList({ items }, 'salt')));
    const w = load(f);
    expect(a.inventory.pods.map((p) => p.ports.map((x) => x.containerPort))).toEqual(w.inventory.pods.map((p) => p.ports.map((x) => x.containerPort)));
    const counts = (x: ClusterWorkload) => (snapshotSource(x).unreplayedPolicies ?? []).map((u) => `${u.kind}.${u.group} ${u.names.length}`);
    expect(counts(a)).toEqual(counts(w));
  });
});

it('refuses a NetworkPolicy of an apiVersion it does not read, rather than leaving it out unsaid', () => {
  const bad = text(CALICO).replace('- apiVersion: networking.k8s.io/v1\n  kind: NetworkPolicy\n  metadata:\n    creationTimestamp: "2021-03-04T09:15:00Z"\n    generation: 2', '- apiVersion: extensions/v1beta1\n  kind: NetworkPolicy\n  metadata:\n    creationTimestamp: "2021-03-04T09:15:00Z"\n    generation: 2');
  expect(bad).not.toBe(text(CALICO));
  expect(parseSnapshot('c.yaml', bad).problems.map((p) => p.message)).toEqual(['NetworkPolicy backend/deny-all: apiVersion: must be "networking.k8s.io/v1", got "extensions/v1beta1"']);
});

it("derives the routes from the pods when they lie outside their Nodes' spec.podCIDR (Calico IPAM, Cilium cluster-pool)", async () => {
  // kubeadm gave worker-a 10.244.1.0/24 and worker-b 10.244.2.0/24; Calico numbered the pods from its own pool.
  const kubeadm = text(CALICO).replace(/podCIDR: 192\.168\.41\.0\/24\n    podCIDRs:\n    - 192\.168\.41\.0\/24/, 'podCIDR: 10.244.1.0/24\n    podCIDRs:\n    - 10.244.1.0/24').replace('podCIDR: 192.168.77.0/24', 'podCIDR: 10.244.2.0/24');
  expect(kubeadm.match(/10\.244\.\d\.0\/24/g)).toHaveLength(3);
  const w = load('c.yaml', kubeadm);
  expect(w.nodePodCidrs).toBeUndefined();
  expect(snapshotSource(w).nodeCidrsNotUsed).toBe("pod kube-system/coredns-f9fd979d6-jz8xq (192.168.41.140) is outside its node worker-a's spec.podCIDR 10.244.1.0/24: the CNI numbers pods from its own pools, so the routes are derived from the pods' addresses");
  const { replayWorkload } = await import('./replay.js');
  const flow = { from: 'frontend/storefront-5c7d9f8b6-2xkpl', to: 'backend/orders-0', protocol: 'TCP' as const, port: 8080 };
  expect(replayWorkload(w, [flow]).podCidrs).toEqual([['192.168.41.0/24'], ['192.168.77.0/24']]);
  // The Nodes' CIDRs as the file has them would not route: the old import kept them, and the replay refused the file.
  expect(() => replayWorkload({ ...w, nodePodCidrs: { 'worker-a': ['10.244.1.0/24'], 'worker-b': ['10.244.2.0/24'] } }, [flow])).toThrow(/outside its node worker-a's pod CIDRs 10\.244\.1\.0\/24/);
});
