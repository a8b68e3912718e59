import { afterEach, describe, expect } from 'vitest';
import { execFileSync } from 'node:child_process';
import { ExecRunner } from '../../exec/runner.js';
import { planTopology, planTopologyDown, planTopologyUp, type Attachment, type Topology } from './topology.js';
import { newRunId } from '../../identity/run-id.js';
import { SERVER_PORT } from '../../workload/workload.js';
import { itKernel, namespacesOfRun, startEchoServer, tryConnect } from './test-support/kernel.js';

const built: Topology[] = [];

async function up(attachment: Attachment, placement: 'cross-node' | 'same-node' = 'cross-node'): Promise<Topology> {
  const t = planTopology({ runId: newRunId(), attachment, placement, hostIfPrefix: attachment === 'routed' ? 'cali' : 'veth' });
  built.push(t);
  const runner = new ExecRunner();
  for (const c of planTopologyUp(t)) await runner.run(c);
  return t;
}

function vxlanPackets(netns: string): number {
  const j = JSON.parse(execFileSync('ip', ['-n', netns, '-s', '-j', 'link', 'show', 'flannel.1'], { encoding: 'utf8' })) as Array<{
    stats64: { tx: { packets: number } };
  }>;
  return j[0]!.stats64.tx.packets;
}

afterEach(async () => {
  const runner = new ExecRunner();
  for (const t of built.splice(0)) for (const c of planTopologyDown(t)) await runner.run(c);
});

describe('local topology on the kernel', () => {
  itKernel('routed pods connect across nodes and the namespaces are gone after teardown', async () => {
    const t = await up('routed');
    const [client, server] = t.pods as [Topology['pods'][0], Topology['pods'][0]];
    expect(client.node.index).not.toBe(server.node.index);
    const srv = await startEchoServer(server.netns, SERVER_PORT);
    try {
      expect(await tryConnect(client.netns, server.ip, SERVER_PORT)).toBe('connected');
      expect(await tryConnect(client.netns, server.ip, SERVER_PORT + 1)).toBe('refused');
    } finally {
      await srv.stop();
    }
    const runner = new ExecRunner();
    for (const c of planTopologyDown(t)) await runner.run(c);
    built.splice(built.indexOf(t), 1);
    expect(namespacesOfRun(t.runId)).toEqual([]);
  });

  itKernel('flannel cross-node traffic crosses the VXLAN device', async () => {
    const t = await up('bridge-vxlan');
    const [client, server] = t.pods as [Topology['pods'][0], Topology['pods'][0]];
    const srv = await startEchoServer(server.netns, SERVER_PORT);
    try {
      const before = vxlanPackets(client.node.netns);
      for (let i = 0; i < 5; i++) expect(await tryConnect(client.netns, server.ip, SERVER_PORT)).toBe('connected');
      // Each connection sends at least SYN, ACK and FIN through flannel.1 on the client's node.
      expect(vxlanPackets(client.node.netns) - before).toBeGreaterThanOrEqual(15);
    } finally {
      await srv.stop();
    }
  });

  itKernel('same-node flannel traffic stays on the bridge', async () => {
    const t = await up('bridge-vxlan', 'same-node');
    const [client, server] = t.pods as [Topology['pods'][0], Topology['pods'][0]];
    expect(client.node.index).toBe(server.node.index);
    const srv = await startEchoServer(server.netns, SERVER_PORT);
    try {
      const before = vxlanPackets(client.node.netns);
      expect(await tryConnect(client.netns, server.ip, SERVER_PORT)).toBe('connected');
      expect(vxlanPackets(client.node.netns) - before).toBe(0);
    } finally {
      await srv.stop();
    }
  });
});
