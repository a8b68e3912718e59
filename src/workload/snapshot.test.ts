import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { InputError } from '../errors.js';
import { loadSnapshot, parseSnapshot, jsonPointer } from './snapshot.js';

const FIXTURES = join(import.meta.dirname, 'fixtures');
const shopJson = join(FIXTURES, 'shop-cluster.json');
const shopYaml = join(FIXTURES, 'shop-cluster.yaml');

const problemsOf = (file: string, text: string) => parseSnapshot(file, text).problems;

describe('importing kubectl get namespaces,pods,networkpolicies -A -o json', () => {
  it('reads the JSON and the YAML form of the same List to the same workload', () => {
    const a = loadSnapshot(shopJson);
    const b = loadSnapshot(shopYaml);
    expect(a.source.format).toBe('json');
    expect(b.source.format).toBe('yaml');
    expect({ ...b, source: { ...b.source, file: '', format: '' } }).toEqual({ ...a, source: { ...a.source, file: '', format: '' } });
  });

  it('keeps pod addresses, nodes, hostNetwork, container ports and namespace labels', () => {
    const w = loadSnapshot(shopJson);
    expect(w.name).toBe('shop-cluster');
    expect(w.nodes).toEqual(['shop-control-plane', 'shop-worker', 'shop-worker2']);
    const pod = (k: string) => w.inventory.pods.find((p) => `${p.namespace}/${p.name}` === k);
    expect(pod('kube-system/coredns-6f6b679f8f-k2xqp')).toEqual({
      name: 'coredns-6f6b679f8f-k2xqp',
      namespace: 'kube-system',
      labels: { 'k8s-app': 'kube-dns', 'pod-template-hash': '6f6b679f8f' },
      ip: '10.244.1.2',
      node: 'shop-worker',
      ports: [
        { name: 'dns', containerPort: 53, protocol: 'UDP' },
        { name: 'dns-tcp', containerPort: 53, protocol: 'TCP' },
        { name: 'metrics', containerPort: 9153, protocol: 'TCP' },
      ],
    });
    expect(pod('monitoring/node-exporter-z5c1f')).toMatchObject({ hostNetwork: true, ip: '172.18.0.3', node: 'shop-worker' });
    expect(w.inventory.namespaces.find((n) => n.name === 'payments')?.labels).toEqual({ team: 'pay', env: 'prod', pci: 'true', 'kubernetes.io/metadata.name': 'payments' });
    expect(w.assignedAddresses).toEqual([]);
  });

  it('leaves out pods no data plane holds, and says why', () => {
    const w = loadSnapshot(shopJson);
    const s = w.source.kind === 'snapshot' ? w.source : undefined;
    expect(s?.skippedPods.map((p) => p.pod)).toEqual(['shop/catalog-6b9f8d7c4-w9d2f', 'shop/db-migrate-28391460-8xkcl']);
    expect(s?.skippedPods[1]?.reason).toMatch(/finished \(phase Succeeded\)/);
    expect(s?.items).toEqual({ Namespace: 5, Pod: 19, NetworkPolicy: 13 });
    expect(w.inventory.pods).toHaveLength(17);
  });

  it('keeps policies as written and drops the API server bookkeeping', () => {
    const w = loadSnapshot(shopJson);
    const cart = w.policies.find((p) => p.metadata.name === 'cart');
    expect(cart?.metadata).toEqual({ name: 'cart', namespace: 'shop' });
    expect(cart?.spec.egress?.[1]).toEqual({ to: [{ ipBlock: { cidr: '0.0.0.0/0', except: ['169.254.169.254/32'] } }], ports: [{ port: 443, protocol: 'TCP' }, { port: 8443, protocol: 'TCP' }] });
    expect(w.policies).toHaveLength(13);
  });

  it('counts kinds it does not read, and derives namespaces when the file lists none', () => {
    const text = JSON.stringify({
      apiVersion: 'v1',
      kind: 'List',
      items: [
        { apiVersion: 'v1', kind: 'Service', metadata: { name: 'web', namespace: 'a' }, spec: {} },
        { apiVersion: 'v1', kind: 'Pod', metadata: { name: 'p', namespace: 'a', labels: { app: 'p' } }, spec: { nodeName: 'n1', containers: [{ name: 'c' }] }, status: { phase: 'Running', podIP: '10.1.0.5' } },
      ],
    });
    const { workload } = parseSnapshot('x.json', text);
    expect(workload?.source).toMatchObject({ ignoredKinds: { Service: 1 }, derivedNamespaces: ['a'] });
    expect(workload?.inventory.namespaces).toEqual([{ name: 'a', labels: { 'kubernetes.io/metadata.name': 'a' } }]);
  });
});

const CONTROLLERS = `apiVersion: v1
kind: List
items:
- apiVersion: v1
  kind: Namespace
  metadata: { name: web, labels: { team: web } }
- apiVersion: apps/v1
  kind: Deployment
  metadata: { name: api, namespace: web }
  spec:
    replicas: 3
    selector: { matchLabels: { app: api } }
    template:
      metadata: { labels: { app: api, tier: backend } }
      spec:
        containers:
        - name: api
          ports: [ { name: http, containerPort: 8080 }, { containerPort: 5353, protocol: UDP } ]
- apiVersion: apps/v1
  kind: StatefulSet
  metadata: { name: db, namespace: web }
  spec:
    selector: { matchLabels: { app: db } }
    template:
      metadata: { labels: { app: db } }
      spec: { containers: [ { name: db, ports: [ { name: postgres, containerPort: 5432 } ] } ] }
- apiVersion: apps/v1
  kind: DaemonSet
  metadata: { name: agent, namespace: web }
  spec:
    selector: { matchLabels: { app: agent } }
    template:
      metadata: { labels: { app: agent } }
      spec: { hostNetwork: true, containers: [ { name: agent, ports: [ { containerPort: 9100 } ] } ] }
- apiVersion: apps/v1
  kind: Deployment
  metadata: { name: cache, namespace: web }
  spec:
    replicas: 2
    selector: { matchLabels: { app: cache } }
    template:
      metadata: { labels: { app: cache } }
      spec: { containers: [ { name: cache } ] }
- apiVersion: v1
  kind: Pod
  metadata: { name: cache-xyz, namespace: web, labels: { app: cache } }
  spec: { nodeName: worker-1, containers: [ { name: cache } ] }
  status: { phase: Running, podIP: 10.244.0.2 }
- apiVersion: v1
  kind: Pod
  metadata: { name: other, namespace: web, labels: { app: other } }
  spec: { nodeName: worker-2, containers: [ { name: other } ] }
  status: { phase: Running, podIP: 10.244.1.2 }
`;

describe('controllers standing in for their pods', () => {
  const { workload: w, problems } = parseSnapshot('controllers.yaml', CONTROLLERS);
  const pods = new Map(w?.inventory.pods.map((p) => [`${p.namespace}/${p.name}`, p]));

  it('makes replicas pods with the template labels and ports, spread over the nodes in turn', () => {
    expect(problems).toEqual([]);
    expect(['web/api-0', 'web/api-1', 'web/api-2'].map((k) => pods.get(k)?.node)).toEqual(['worker-1', 'worker-2', 'worker-1']);
    expect(pods.get('web/api-1')).toMatchObject({
      labels: { app: 'api', tier: 'backend' },
      ports: [
        { name: 'http', containerPort: 8080, protocol: 'TCP' },
        { containerPort: 5353, protocol: 'UDP' },
      ],
    });
    expect(pods.get('web/db-0')?.ports).toEqual([{ name: 'postgres', containerPort: 5432, protocol: 'TCP' }]);
  });

  it('puts a DaemonSet pod on every node, hostNetwork pods on the node address', () => {
    expect(pods.get('web/agent-worker-1')).toMatchObject({ hostNetwork: true, node: 'worker-1', ip: '172.18.0.2' });
    expect(pods.get('web/agent-worker-2')).toMatchObject({ hostNetwork: true, node: 'worker-2', ip: '172.18.0.3' });
  });

  it("gives address-less pods addresses from their node's pod CIDR, skipping the file's own", () => {
    // worker-1 is node index 0: 10.244.0.2 belongs to cache-xyz, so api-0 gets .3.
    expect(pods.get('web/api-0')?.ip).toBe('10.244.0.3');
    expect(pods.get('web/api-1')?.ip).toBe('10.244.1.3');
    expect(w?.assignedAddresses).toContain('web/api-0');
    expect(w?.assignedAddresses).not.toContain('web/cache-xyz');
  });

  it('does not expand a controller whose pods are in the file', () => {
    expect(pods.has('web/cache-0')).toBe(false);
    expect(w?.source).toMatchObject({ representedByPods: ['Deployment web/cache'], expanded: [{ kind: 'Deployment', name: 'web/api', pods: 3 }, { kind: 'StatefulSet', name: 'web/db', pods: 1 }, { kind: 'DaemonSet', name: 'web/agent', pods: 2 }] });
  });

  it('spreads over node-0 and node-1 when no pod names a node', () => {
    const only = CONTROLLERS.split('- apiVersion: v1\n  kind: Pod')[0]!;
    const r = parseSnapshot('c.yaml', only);
    expect(r.workload?.nodes).toEqual(['node-0', 'node-1']);
    expect(parseSnapshot('c.yaml', only, { defaultNodes: 3 }).workload?.nodes).toEqual(['node-0', 'node-1', 'node-2']);
  });
});

describe('a bad file: every problem at once, each naming the item and the field', () => {
  const shop = JSON.parse(readFileSync(shopJson, 'utf8')) as { items: Array<Record<string, any>> };
  const broken = structuredClone(shop);
  const idx = (kind: string, name: string) => broken.items.findIndex((i) => i.kind === kind && i.metadata.name === name);
  const cartPod = idx('Pod', 'cart-7c4d9b8f5-lx2pw');
  broken.items[cartPod]!.spec.containers[0].ports[0].containerPort = 0;
  const frontend = idx('Pod', 'frontend-5d8f7c9b6-2kq7x');
  broken.items[frontend]!.metadata.labels.tier = 'web tier';
  const cartPolicy = idx('NetworkPolicy', 'cart');
  broken.items[cartPolicy]!.spec.egress[1].to[0].ipBlock.cidr = '0.0.0.0/33';
  const catalogPolicy = idx('NetworkPolicy', 'catalog');
  broken.items[catalogPolicy]!.spec.ingres = [];
  const ledger = idx('Pod', 'ledger-0');
  broken.items[ledger]!.status.podIP = '10.244.1.6';
  broken.items[ledger]!.status.podIPs = [{ ip: '10.244.1.6' }];
  const dup = structuredClone(broken.items[idx('NetworkPolicy', 'ledger')]!);
  broken.items.push(dup);
  broken.items.splice(idx('Namespace', 'monitoring'), 1);
  const text = JSON.stringify(broken, null, 2);

  it('names every problem with a JSON pointer', () => {
    const problems = problemsOf('cluster.json', text);
    const at = (s: string) => problems.find((p) => p.where.includes(s));
    const shift = (i: number) => i - 1; // the monitoring Namespace item was removed before these
    expect(at(`#/items/${shift(cartPod)}/spec/containers/0/ports/0/containerPort`)?.message).toBe('Pod shop/cart-7c4d9b8f5-lx2pw: spec.containers.0.ports.0.containerPort: must be at least 1, got 0');
    expect(at(`#/items/${shift(frontend)}/metadata/labels/tier`)?.message).toMatch(/^Pod shop\/frontend-5d8f7c9b6-2kq7x: metadata.labels.tier: a label value must be/);
    expect(at(`#/items/${shift(cartPolicy)}/spec/egress/1/to/0/ipBlock/cidr`)?.message).toMatch(/^NetworkPolicy shop\/cart: spec.egress\[1\].to\[0\].ipBlock.cidr: invalid IPv4 CIDR/);
    expect(at(`#/items/${shift(catalogPolicy)}/spec`)?.message).toMatch(/unknown field 'ingres' in spec/);
    expect(at(`#/items/${shift(ledger)}/status/podIP`)?.message).toBe('Pod payments/ledger-0 has address 10.244.1.6, as does running pod payments/payments-api-84c6b5d7f9-6hs2d: two running pods cannot share an address');
    expect(at(`#/items/${broken.items.length - 1}/metadata/name`)?.message).toMatch(/^NetworkPolicy payments\/ledger is in the file twice \(also at cluster.json#\/items\/\d+\/metadata\/name\)$/);
    expect(problems.find((p) => p.message.startsWith('namespace monitoring has pods or policies but no Namespace item'))?.where).toMatch(/#\/items\/\d+\/metadata\/namespace$/);
    expect(problems).toHaveLength(7);
  });

  it('names the YAML line and column', async () => {
    const { stringify } = await import('yaml');
    const problems = problemsOf('cluster.yaml', stringify(broken, { indentSeq: false }));
    expect(problems).toHaveLength(7);
    for (const p of problems) expect(p.where).toMatch(/^cluster\.yaml:\d+:\d+$/);
    const port = problems.find((p) => p.message.includes('containerPort'))!;
    const line = stringify(broken, { indentSeq: false }).split('\n')[Number(port.where.split(':')[1]) - 1];
    expect(line).toMatch(/containerPort: 0/);
  });

  it('throws one InputError holding them all', () => {
    expect(() => loadSnapshot(join(FIXTURES, 'does-not-exist.json'))).toThrow(/workload file not found/);
    try {
      const { workload } = parseSnapshot('cluster.json', text);
      expect(workload).toBeUndefined();
    } catch (e) {
      expect(e).toBeInstanceOf(InputError);
    }
  });

  it('reports syntax errors with line and column', () => {
    expect(problemsOf('c.json', '{\n  "kind": "List",\n  "items": [,]\n}')).toEqual([{ where: 'c.json:3:13', message: expect.stringMatching(/^JSON syntax: /) }]);
    expect(problemsOf('c.yaml', 'kind: List\nitems:\n  - a: [\n')[0]?.where).toMatch(/^c\.yaml:\d+:\d+$/);
  });

  it('refuses an empty file, and one without a pod any data plane holds', () => {
    expect(problemsOf('c.yaml', '')).toEqual([{ where: 'c.yaml', message: 'holds no objects; expected the output of kubectl get namespaces,nodes,pods,networkpolicies -A -o json' }]);
    expect(problemsOf('c.json', '{"apiVersion":"v1","kind":"List","items":[]}')[0]?.message).toMatch(/^holds no pod a data plane would hold; a workload needs pods/);
    const finished = '{"kind":"List","items":[{"apiVersion":"v1","kind":"Pod","metadata":{"name":"j","namespace":"a"},"spec":{"nodeName":"n","containers":[{}]},"status":{"phase":"Succeeded","podIP":"10.0.0.1"}}]}';
    expect(problemsOf('c.json', finished)[0]?.message).toMatch(/^holds no pod a data plane would hold \(all 1 pods are left out: finished/);
  });

  it('refuses alias bombs', () => {
    const refs = Array.from({ length: 150 }, () => '*a').join(', ');
    expect(problemsOf('c.yaml', `a: &a [1]\nb: [${refs}]\n`)).toEqual([{ where: 'c.yaml:2:406', message: 'YAML: aliases exceeded maxAliases (100)' }]);
  });

  it('refuses what is not a List or an object, and items without a kind', () => {
    expect(problemsOf('c.json', '[1, 2]')[0]?.message).toMatch(/expected a Kubernetes List/);
    expect(problemsOf('c.json', '{"kind":"List","items":[{"metadata":{"name":"x"}}]}')).toEqual([{ where: 'c.json#/items/0/kind', message: 'items[0]: has no kind (Namespace, Pod, NetworkPolicy, Deployment, StatefulSet, DaemonSet, Node are read)' }]);
  });

  it('escapes JSON pointer segments', () => {
    expect(jsonPointer(['items', 0, 'metadata', 'labels', 'kubernetes.io/metadata.name'])).toBe('/items/0/metadata/labels/kubernetes.io~1metadata.name');
  });
});
