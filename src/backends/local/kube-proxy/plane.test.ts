import { describe, expect, it } from 'vitest';
import { FakeRunner } from '../../../exec/runner.js';
import { generateServiceSet, withProbedEndpoints } from '../../../services/generate.js';
import { DEFAULT_CLUSTER_CIDR } from '../service-types.js';
import { planTopology } from '../topology.js';
import { kubeProxyIptables, kubeProxyNftables } from './plane.js';

const topology = planTopology({ runId: 'abcde', attachment: 'routed', placement: 'cross-node', hostIfPrefix: 'veth' });
const set = generateServiceSet({ services: 10, endpointsPerService: 1, position: 'last', seed: 1, probed: { namespace: 'a', name: 'b', port: { name: '', protocol: 'TCP', port: 80, targetPort: 8080 }, backends: [{ ip: '10.244.1.2' }] } });

describe('kube-proxy service data planes', () => {
  it('iptables: one restore per node in its namespace, with the backend the settings name; a partial sync on update', async () => {
    const runner = new FakeRunner();
    const plane = kubeProxyIptables.create({ runner, cleanupRunner: runner, topology, settings: { iptablesBackend: 'legacy', clusterCidr: DEFAULT_CLUSTER_CIDR } });
    expect(plane.plan(set).map((c) => [c.netns, ...c.argv])).toEqual([
      ['cb-abcde-n0', 'iptables-legacy-restore', '--noflush'],
      ['cb-abcde-n1', 'iptables-legacy-restore', '--noflush'],
    ]);
    const r = await plane.install(set);
    expect(r.state).toMatchObject({ serviceDataPlane: 'kube-proxy-iptables', iptablesBackend: 'legacy', services: 11, kubeServicesRules: 12, kubeServicesRulesWalked: 11 });
    expect(Object.keys(r.nodeMs)).toEqual(expect.arrayContaining(['node-0', 'node-1']));
    const u = await plane.update(withProbedEndpoints(set, [{ ip: '10.244.1.3' }]));
    // filter (4) + KUBE-POSTROUTING/KUBE-MARK-MASQ (4) + KUBE-SERVICES whole (12) + the changed Service's SVC and SEP (4)
    expect(u.changed).toEqual({ rulesWritten: 4 + 4 + 12 + 4, chainsWritten: 2, chainsDeleted: 1 });
    const partial = runner.log.at(-1)!.input!;
    expect(partial).not.toContain('-I PREROUTING');
    expect(partial).toContain('-X KUBE-SEP-');
    await expect(kubeProxyIptables.create({ runner, cleanupRunner: runner, topology, settings: { iptablesBackend: 'nft', clusterCidr: DEFAULT_CLUSTER_CIDR } }).update(set)).rejects.toThrow(/before install/);
  });

  it('nftables: one nft -f per node; an update writes the change, then deletes stale chains in a later transaction', async () => {
    const runner = new FakeRunner();
    const plane = kubeProxyNftables.create({ runner, cleanupRunner: runner, topology, settings: { iptablesBackend: 'nft', clusterCidr: DEFAULT_CLUSTER_CIDR } });
    const r = await plane.install(set);
    expect(runner.log.map((c) => c.argv.join(' '))).toEqual(['ip netns exec cb-abcde-n0 nft -f -', 'ip netns exec cb-abcde-n1 nft -f -'].sort());
    expect(r.state).toMatchObject({ serviceDataPlane: 'kube-proxy-nftables', nftChains: 22, mapElements: 11, setElements: 11 });
    const u = await plane.update(withProbedEndpoints(set, [{ ip: '10.244.1.3' }]));
    expect(u.changed).toEqual({ chainsWritten: 2, elementsAdded: 0, elementsDeleted: 0, chainsDeleted: 1 });
    expect(runner.log.slice(-2).map((c) => c.input!.trim())).toEqual([expect.stringMatching(/^delete chain ip kube-proxy endpoint-/), expect.stringMatching(/^delete chain ip kube-proxy endpoint-/)]);
  });
});
