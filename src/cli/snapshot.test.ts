import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { ClusterRole } from 'kubernetes-models/rbac.authorization.k8s.io/v1/ClusterRole';
import { describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { CLUSTERS_DIR } from '../backends/k8s/versions.js';
import { FakeRunner } from '../exec/runner.js';
import { InputError } from '../errors.js';
import { findPolicyProblems } from '../workload/findings.js';
import { parseSnapshot } from '../workload/snapshot.js';
import { cmdSnapshot } from './commands/snapshot.js';
import { OTHER_ENGINE_POLICY_RESOURCES } from './commands/snapshot-engines.js';
import { bufferIo, runBench, tempDir } from './test-support/cli.js';

const shopJson = readFileSync(join(import.meta.dirname, '..', 'workload', 'fixtures', 'shop-cluster.json'), 'utf8');
const GET = ['get', 'namespaces,nodes,pods,networkpolicies', '--all-namespaces', '-o', 'json'];
const GET_WITHOUT_NODES = ['get', 'namespaces,pods,networkpolicies', '--all-namespaces', '-o', 'json'];
const DISCOVER = ['api-resources', '--verbs=list', '-o', 'name'];
const getOf = (resources: string) => ['get', resources, '--all-namespaces', '-o', 'json'];
const CILIUM = 'ciliumnetworkpolicies.cilium.io';
const CILIUM_CW = 'ciliumclusterwidenetworkpolicies.cilium.io';

/** What `kubectl api-resources --verbs=list -o name` prints on a Cilium cluster (core resources without a group). */
const ciliumDiscovery = ['bindings', 'namespaces', 'nodes', 'pods', 'deployments.apps', 'networkpolicies.networking.k8s.io', 'ciliumendpoints.cilium.io', CILIUM_CW, CILIUM, 'ciliumnodes.cilium.io', ''].join('\n');
const cnp = (namespace: string, name: string) => ({ apiVersion: 'cilium.io/v2', kind: 'CiliumNetworkPolicy', metadata: { name, namespace, uid: `uid-${name}` }, spec: { endpointSelector: { matchLabels: { app: 'web' } }, egress: [{ toFQDNs: [{ matchName: 'api.example.com' }] }] } });
const ccnp = (name: string) => ({ apiVersion: 'cilium.io/v2', kind: 'CiliumClusterwideNetworkPolicy', metadata: { name, uid: `uid-${name}` }, spec: { endpointSelector: {}, ingress: [{ fromEntities: ['cluster'] }] } });
const listOf = (items: unknown[]) => JSON.stringify({ apiVersion: 'v1', kind: 'List', items, metadata: { resourceVersion: '' } });

/** A scripted Cilium cluster: the snapshot's get, the discovery, and each policy get as `policyGet` answers it. */
function ciliumCluster(o: { discovery?: { stdout?: string; exitCode?: number; stderr?: string; timedOut?: boolean; durationMs?: number }; policyGet?: (resources: string) => { stdout?: string; exitCode?: number; stderr?: string } } = {}) {
  return new FakeRunner((argv) => {
    if (argv.includes('api-resources')) return o.discovery ?? { stdout: ciliumDiscovery };
    const what = argv[argv.indexOf('get') + 1]!;
    if (what === 'namespaces,nodes,pods,networkpolicies') return { stdout: shopJson };
    return o.policyGet ? o.policyGet(what) : { stdout: listOf([...(what.includes(CILIUM) ? [cnp('shop', 'web-l7'), cnp('payments', 'cart-fqdn')] : []), ...(what.includes(CILIUM_CW) ? [ccnp('host-fw')] : [])]) };
  });
}
const notReplayed = (text: string) => findPolicyProblems(parseSnapshot('c.json', text).workload!).filter((f) => f.kind === 'not-replayed').map((f) => f.message);

/** The shop cluster as kubectl returns it with Nodes: each with the fields a real Node carries (labels, addresses, capacity) and its pod CIDR. */
function shopWithNodes(): string {
  const list = JSON.parse(shopJson) as { items: unknown[] };
  const node = (name: string, ip: string, cidr: string | null) => ({
    apiVersion: 'v1',
    kind: 'Node',
    metadata: { name, labels: { 'kubernetes.io/hostname': name, 'kubernetes.io/os': 'linux', 'topology.kubernetes.io/zone': 'eu-west-1b' }, uid: `uid-${name}` },
    spec: cidr ? { podCIDR: cidr, podCIDRs: [cidr, 'fd00:10:244::/64'], providerID: `kind://docker/shop/${name}` } : {},
    status: { addresses: [{ type: 'InternalIP', address: ip }, { type: 'Hostname', address: name }], capacity: { cpu: '8', memory: '32Gi', pods: '110' } },
  });
  list.items.unshift(node('shop-control-plane', '172.18.0.2', '10.244.0.0/24'), node('shop-worker', '172.18.0.3', '10.244.1.0/24'), node('shop-worker2', '172.18.0.4', '10.244.2.0/24'));
  return `${JSON.stringify(list, null, 2)}\n`;
}

/** kubectl that answers the snapshot's get with `stdout` (or fails as told). */
const kubectlAnswering = (answer: { stdout?: string; exitCode?: number; stderr?: string }) => new FakeRunner((argv) => (argv[0] === 'kubectl' ? answer : { exitCode: 127, stderr: 'unexpected command' }));

describe('bench snapshot', () => {
  it('writes what kubectl returned, after the importer read it', async () => {
    const dir = tempDir();
    const out = join(dir, 'cluster.json');
    const runner = kubectlAnswering({ stdout: shopJson });
    const io = bufferIo();
    expect(await cmdSnapshot({ context: 'prod', output: out }, io, { runner })).toBe(0);
    expect(runner.log.map((c) => c.argv)).toEqual([['kubectl', '--context', 'prod', ...GET], ['kubectl', '--context', 'prod', ...DISCOVER]]);
    expect(readFileSync(out, 'utf8')).toBe(shopJson);
    expect(io.err()).toBe(`bench snapshot: wrote ${out}: 5 namespaces, 17 pods (2 more left out: finished, unscheduled or without an address), 13 NetworkPolicies, 3 nodes\n`);
  });

  it('names the kubeconfig when given, and writes to stdout with -o -', async () => {
    const dir = tempDir();
    const kc = join(dir, 'kubeconfig');
    writeFileSync(kc, 'apiVersion: v1\n');
    const runner = kubectlAnswering({ stdout: shopJson });
    const io = bufferIo();
    expect(await cmdSnapshot({ kubeconfig: kc, context: 'eu', output: '-' }, io, { runner })).toBe(0);
    expect(runner.log[0]!.argv).toEqual(['kubectl', '--kubeconfig', kc, '--context', 'eu', ...GET]);
    expect(io.out()).toBe(shopJson);
  });

  it('anonymizes with a salt it does not write, keeping what the importer reads', async () => {
    const dir = tempDir();
    const run = async (file: string, salt?: string) => {
      expect(await cmdSnapshot({ context: 'prod', output: join(dir, file), anonymize: true, salt }, bufferIo(), { runner: kubectlAnswering({ stdout: shopJson }) })).toBe(0);
      return readFileSync(join(dir, file), 'utf8');
    };
    const a = await run('a.json', 'salt-of-the-earth');
    expect(await run('b.json', 'salt-of-the-earth')).toBe(a);
    expect(await run('c.json')).not.toBe(a);
    for (const name of ['payments', 'frontend', 'shop-worker', 'salt-of-the-earth', 'managedFields']) expect(a).not.toContain(name);
    const w = parseSnapshot('a.json', a).workload!;
    expect(w.inventory.pods).toHaveLength(17);
    expect(w.policies).toHaveLength(13);
  });

  it('kubectl failing: its exit code and stderr named, nothing written', async () => {
    const dir = tempDir();
    const out = join(dir, 'cluster.json');
    const io = bufferIo();
    const runner = kubectlAnswering({ exitCode: 1, stderr: 'error: You must be logged in to the server (Unauthorized)\n' });
    expect(await cmdSnapshot({ context: 'prod', output: out }, io, { runner })).toBe(1);
    expect(io.err()).toBe(
      "bench snapshot: read the cluster's namespaces, nodes, pods and NetworkPolicies (read-only): kubectl --context prod get namespaces,nodes,pods,networkpolicies --all-namespaces -o json failed (exit code 1)\n  error: You must be logged in to the server (Unauthorized)\n  nothing written\n",
    );
    expect(existsSync(out)).toBe(false);
  });

  it('what kubectl returned that the importer cannot read: named, nothing written', async () => {
    const dir = tempDir();
    const out = join(dir, 'cluster.json');
    const io = bufferIo();
    const broken = shopJson.replace('"containerPort": 8080', '"containerPort": 0');
    expect(await cmdSnapshot({ context: 'prod', output: out }, io, { runner: kubectlAnswering({ stdout: broken }) })).toBe(1);
    expect(io.err()).toMatch(/^bench snapshot: what kubectl returned cannot be read as a workload; nothing written:\n {2}kubectl get \(context prod\)#\/items\/\d+\/spec\/containers\/0\/ports\/0\/containerPort: Pod shop\/frontend-5d8f7c9b6-2kq7x: /);
    expect(existsSync(out)).toBe(false);
  });

  it('--dry-run prints the command and runs nothing', async () => {
    const io = bufferIo();
    const dir = tempDir();
    expect(await cmdSnapshot({ context: 'prod', output: join(dir, 'x.json'), dryRun: true, anonymize: true }, io)).toBe(0);
    expect(io.out()).toBe(
      `# read the cluster's namespaces, nodes, pods and NetworkPolicies (read-only)\nkubectl --context prod ${GET.join(' ')}\n` +
        `# find which policy kinds of other engines the cluster serves (read-only discovery)\nkubectl --context prod ${DISCOVER.join(' ')}\n` +
        "# then, depending on the discovery's answer (unknown in a dry run): read the policies of other engines it lists (nothing if none)\n" +
        `# kubectl --context prod ${getOf('RESOURCES').join(' ')}\n` +
        '#   RESOURCES: those of ciliumnetworkpolicies.cilium.io,ciliumclusterwidenetworkpolicies.cilium.io,networkpolicies.projectcalico.org,globalnetworkpolicies.projectcalico.org,adminnetworkpolicies.policy.networking.k8s.io,baselineadminnetworkpolicies.policy.networking.k8s.io,networkpolicies.crd.antrea.io,clusternetworkpolicies.crd.antrea.io (or the crd.projectcalico.org ones without the projectcalico.org API server) it lists\n' +
        `# then: check what came back with the workload importer, anonymize it and write ${join(dir, 'x.json')}\n`);
    expect(existsSync(join(dir, 'x.json'))).toBe(false);
  });

  it('reads the Nodes too: their pod CIDRs reach the workload, and --anonymize hashes node names consistently, keeping the CIDRs', async () => {
    const dir = tempDir();
    const withNodes = shopWithNodes();
    const plain = join(dir, 'plain.json');
    const io = bufferIo();
    expect(await cmdSnapshot({ context: 'prod', output: plain }, io, { runner: kubectlAnswering({ stdout: withNodes }) })).toBe(0);
    expect(io.err()).toContain('13 NetworkPolicies, 3 nodes\n');
    expect(parseSnapshot('plain.json', readFileSync(plain, 'utf8')).workload!.nodePodCidrs).toEqual({ 'shop-control-plane': ['10.244.0.0/24'], 'shop-worker': ['10.244.1.0/24'], 'shop-worker2': ['10.244.2.0/24'] });

    const anon = join(dir, 'anon.json');
    expect(await cmdSnapshot({ context: 'prod', output: anon, anonymize: true, salt: 'salt-of-the-earth' }, bufferIo(), { runner: kubectlAnswering({ stdout: withNodes }) })).toBe(0);
    const text = readFileSync(anon, 'utf8');
    for (const leak of ['shop-worker', 'shop-control-plane', 'eu-west-1b', 'kind://docker', 'InternalIP']) expect(text).not.toContain(leak);
    const items = (JSON.parse(text) as { items: Array<{ kind: string; metadata: { name: string }; spec: { nodeName?: string; podCIDRs?: string[] } }> }).items;
    const nodes = items.filter((i) => i.kind === 'Node');
    expect(nodes.map((n) => n.spec.podCIDRs)).toEqual([['10.244.0.0/24', 'fd00:10:244::/64'], ['10.244.1.0/24', 'fd00:10:244::/64'], ['10.244.2.0/24', 'fd00:10:244::/64']]);
    // Every pod's spec.nodeName is one of the hashed Node names, and each node keeps its pods.
    const names = new Set(nodes.map((n) => n.metadata.name));
    const pods = items.filter((i) => i.kind === 'Pod' && i.spec.nodeName);
    expect(pods.length).toBeGreaterThan(0);
    expect(pods.every((p) => names.has(p.spec.nodeName!))).toBe(true);
    const w = parseSnapshot('anon.json', text).workload!;
    const worker = nodes[1]!.metadata.name;
    expect(w.nodePodCidrs![worker]).toEqual(['10.244.1.0/24']);
    expect(w.inventory.pods.filter((p) => p.node === worker && !p.hostNetwork).every((p) => p.ip.startsWith('10.244.1.'))).toBe(true);
  });

  it('credentials that may not list Nodes: reads the rest without them, and says so', async () => {
    const dir = tempDir();
    const out = join(dir, 'cluster.json');
    const runner = new FakeRunner((argv) =>
      argv.includes('namespaces,nodes,pods,networkpolicies')
        ? { exitCode: 1, stderr: 'Error from server (Forbidden): nodes is forbidden: User "dev" cannot list resource "nodes" in API group "" at the cluster scope\n' }
        : { stdout: shopJson },
    );
    const io = bufferIo();
    expect(await cmdSnapshot({ context: 'prod', output: out }, io, { runner })).toBe(0);
    expect(runner.log.map((c) => c.argv)).toEqual([['kubectl', '--context', 'prod', ...GET], ['kubectl', '--context', 'prod', ...GET_WITHOUT_NODES], ['kubectl', '--context', 'prod', ...DISCOVER]]);
    expect(io.err()).toMatch(/^bench snapshot: these credentials may not list Nodes; reading the rest without them/);
    expect(io.err()).toContain('3 nodes (named by the pods; no Node objects)');
    expect(readFileSync(out, 'utf8')).toBe(shopJson);
  });

  it("a Cilium cluster: its policies are read by resource.group and kept in the List, and verify's findings name them", async () => {
    const dir = tempDir();
    const out = join(dir, 'cluster.json');
    const runner = ciliumCluster();
    const io = bufferIo();
    expect(await cmdSnapshot({ context: 'prod', output: out }, io, { runner })).toBe(0);
    expect(runner.log.map((c) => c.argv)).toEqual([['kubectl', '--context', 'prod', ...GET], ['kubectl', '--context', 'prod', ...DISCOVER], ['kubectl', '--context', 'prod', ...getOf(`${CILIUM},${CILIUM_CW}`)]]);
    const text = readFileSync(out, 'utf8');
    const items = (JSON.parse(text) as { items: Array<{ kind: string; metadata: { name: string } }> }).items;
    expect(items.filter((i) => i.kind.startsWith('Cilium')).map((i) => `${i.kind}/${i.metadata.name}`)).toEqual(['CiliumNetworkPolicy/web-l7', 'CiliumNetworkPolicy/cart-fqdn', 'CiliumClusterwideNetworkPolicy/host-fw']);
    expect(items).toHaveLength((JSON.parse(shopJson) as { items: unknown[] }).items.length + 3);
    expect(notReplayed(text)).toEqual([
      'this snapshot holds 1 CiliumClusterwideNetworkPolicy (Cilium: host-fw): only Kubernetes NetworkPolicy is replayed, so verdicts on your cluster may differ from these',
      'this snapshot holds 2 CiliumNetworkPolicies (Cilium: shop/web-l7, payments/cart-fqdn): only Kubernetes NetworkPolicy is replayed, so verdicts on your cluster may differ from these',
    ]);
    expect(io.err()).toContain('13 NetworkPolicies, 3 nodes, not replayed: 2 CiliumNetworkPolicy.cilium.io, 1 CiliumClusterwideNetworkPolicy.cilium.io\n');

    // --anonymize keeps them as kind and hashed name: the finding's count survives sharing.
    const anon = join(dir, 'anon.json');
    expect(await cmdSnapshot({ context: 'prod', output: anon, anonymize: true, salt: 'salt-of-the-earth' }, bufferIo(), { runner: ciliumCluster() })).toBe(0);
    const shared = readFileSync(anon, 'utf8');
    for (const leak of ['web-l7', 'cart-fqdn', 'host-fw', 'api.example.com', 'toFQDNs']) expect(shared).not.toContain(leak);
    expect(notReplayed(shared).map((m) => m.replace(/\(Cilium: .*\)/, '(…)'))).toEqual([
      'this snapshot holds 1 CiliumClusterwideNetworkPolicy (…): only Kubernetes NetworkPolicy is replayed, so verdicts on your cluster may differ from these',
      'this snapshot holds 2 CiliumNetworkPolicies (…): only Kubernetes NetworkPolicy is replayed, so verdicts on your cluster may differ from these',
    ]);
  });

  it('Calico with its API server: the projectcalico.org/v3 resources are read, not their crd.projectcalico.org storage too', async () => {
    const discovery = ['pods', 'networkpolicies.networking.k8s.io', 'networkpolicies.crd.projectcalico.org', 'globalnetworkpolicies.crd.projectcalico.org', 'networkpolicies.projectcalico.org', 'globalnetworkpolicies.projectcalico.org', 'adminnetworkpolicies.policy.networking.k8s.io'].join('\n');
    const runner = ciliumCluster({ discovery: { stdout: discovery }, policyGet: () => ({ stdout: listOf([]) }) });
    expect(await cmdSnapshot({ context: 'prod', output: join(tempDir(), 'c.json') }, bufferIo(), { runner })).toBe(0);
    expect(runner.log.at(-1)!.argv).toEqual(['kubectl', '--context', 'prod', ...getOf('networkpolicies.projectcalico.org,globalnetworkpolicies.projectcalico.org,adminnetworkpolicies.policy.networking.k8s.io')]);
  });

  it('discovery forbidden or failing: the snapshot is written without other engines\' policies, and stderr says so', async () => {
    const dir = tempDir();
    const out = join(dir, 'cluster.json');
    const runner = ciliumCluster({ discovery: { exitCode: 1, stderr: 'Error from server (Forbidden): forbidden: User "dev" cannot get path "/apis"\n' } });
    const io = bufferIo();
    expect(await cmdSnapshot({ context: 'prod', output: out }, io, { runner })).toBe(0);
    expect(runner.log).toHaveLength(2);
    expect(readFileSync(out, 'utf8')).toBe(shopJson);
    expect(io.err()).toMatch(/^bench snapshot: could not find out which policy kinds of other engines the cluster serves \(kubectl api-resources: Error from server \(Forbidden\): forbidden: User "dev" cannot get path "\/apis"\); the snapshot holds none/);
    expect(io.err()).toContain('bench snapshot: wrote');

    // An aggregated API that is down: api-resources exits 1 after listing the rest; those are still read.
    const partial = ciliumCluster({ discovery: { exitCode: 1, stdout: ciliumDiscovery, stderr: 'error: unable to retrieve the complete list of server APIs: metrics.k8s.io/v1beta1: the server is currently unable to handle the request\n' } });
    const io2 = bufferIo();
    expect(await cmdSnapshot({ context: 'prod', output: join(dir, 'partial.json') }, io2, { runner: partial })).toBe(0);
    expect(io2.err()).toContain('the discovery was incomplete (kubectl api-resources: error: unable to retrieve the complete list of server APIs: metrics.k8s.io/v1beta1');
    expect(notReplayed(readFileSync(join(dir, 'partial.json'), 'utf8'))).toHaveLength(2);

    // A discovery that times out, whatever it printed: written without them, said so.
    const slow = ciliumCluster({ discovery: { exitCode: 143, stdout: 'pods\n', timedOut: true, durationMs: 60_000 } });
    const io3 = bufferIo();
    expect(await cmdSnapshot({ context: 'prod', output: join(dir, 'slow.json') }, io3, { runner: slow })).toBe(0);
    expect(io3.err()).toContain('(kubectl api-resources: timed out after 60 s); the snapshot holds none');
  });

  it('one kind forbidden by RBAC: the others are still read, and the one it could not read is named', async () => {
    const dir = tempDir();
    const out = join(dir, 'cluster.json');
    const runner = ciliumCluster({
      policyGet: (what) =>
        what.includes(CILIUM_CW)
          ? { exitCode: 1, stderr: `Error from server (Forbidden): ${CILIUM_CW} is forbidden: User "dev" cannot list resource "ciliumclusterwidenetworkpolicies" in API group "cilium.io" at the cluster scope\n` }
          : { stdout: listOf([cnp('shop', 'web-l7')]) },
    });
    const io = bufferIo();
    expect(await cmdSnapshot({ context: 'prod', output: out }, io, { runner })).toBe(0);
    expect(runner.log.slice(2).map((c) => c.argv)).toEqual([['kubectl', '--context', 'prod', ...getOf(`${CILIUM},${CILIUM_CW}`)], ['kubectl', '--context', 'prod', ...getOf(CILIUM)]]);
    expect(notReplayed(readFileSync(out, 'utf8'))).toEqual(['this snapshot holds 1 CiliumNetworkPolicy (Cilium: shop/web-l7): only Kubernetes NetworkPolicy is replayed, so verdicts on your cluster may differ from these']);
    expect(io.err()).toContain(`bench snapshot: not in the snapshot, so verify cannot warn about them: ${CILIUM_CW} (forbidden by RBAC: grant list on it, clusters/rbac-snapshot.yaml)\n`);

    // Every one forbidden, or a failure that is not RBAC: still written, each named.
    const io2 = bufferIo();
    const down = ciliumCluster({ policyGet: () => ({ exitCode: 1, stderr: 'error: the server was unable to return a response in the time allotted\n' }) });
    expect(await cmdSnapshot({ context: 'prod', output: join(dir, 'down.json') }, io2, { runner: down })).toBe(0);
    expect(io2.err()).toContain(`not in the snapshot, so verify cannot warn about them: ${CILIUM} (error: the server was unable to return a response in the time allotted); ${CILIUM_CW} (error: the server`);
    expect(readFileSync(join(dir, 'down.json'), 'utf8')).toBe(shopJson);
  });

  it('refuses bad input before asking the cluster anything (exit 2)', async () => {
    const dir = tempDir();
    const existing = join(dir, 'old.json');
    writeFileSync(existing, '{}');
    const r = await runBench(['snapshot', '-o', existing, '--salt', 'abc']);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain('--context: bench snapshot needs an explicit --context NAME or --kubeconfig FILE');
    expect(r.stderr).toContain(`-o: ${existing} exists; not overwriting it (use --force)`);
    expect(r.stderr).toContain('--salt: only with --anonymize');
    expect(r.stderr).toContain('--salt: use at least 8 characters');
    await expect(cmdSnapshot({ context: 'x' }, bufferIo(), { runner: kubectlAnswering({}) })).rejects.toThrow(InputError);
    const missingDir = await runBench(['snapshot', '--context', 'x', '-o', join(dir, 'no', 'such', 'c.json')]);
    expect(missingDir.code).toBe(2);
    expect(missingDir.stderr).toMatch(/does not exist; create it first/);
  });
});

describe('RBAC for bench snapshot (clusters/rbac-snapshot.yaml)', () => {
  it('is a valid ClusterRole, list only, on every resource the snapshot reads', () => {
    const role = parse(readFileSync(join(CLUSTERS_DIR, 'rbac-snapshot.yaml'), 'utf8')) as { metadata: { name: string }; rules: Array<{ apiGroups: string[]; resources: string[]; verbs: string[] }> };
    expect(() => new ClusterRole(role as never).validate()).not.toThrow();
    expect(role.metadata.name).toBe('cni-bench-snapshot');
    expect(role.rules.every((r) => r.verbs.length === 1 && r.verbs[0] === 'list')).toBe(true);
    const granted = new Set(role.rules.flatMap((r) => r.apiGroups.flatMap((g) => r.resources.map((res) => (g ? `${res}.${g}` : res)))));
    for (const r of ['namespaces', 'nodes', 'pods', 'networkpolicies.networking.k8s.io', ...OTHER_ENGINE_POLICY_RESOURCES.map((e) => e.resource)]) expect(granted, r).toContain(r);
  });
});
