// The service data planes on the kernel: namespaces really built, connections really made to a ClusterIP.
import { afterEach, describe, expect } from 'vitest';
import { existsSync } from 'node:fs';
import { probedService } from '../../services/types.js';
import { bpfPinDir } from './bpf/native.js';
import { cgroup2Root, runCgroupDir } from './cgroup.js';
import { itKernel } from './test-support/kernel.js';
import { nameServers, openPlane, serviceWorld, tally, worldServiceSet, type ServiceWorld } from './test-support/services.js';
import { socketLbPlane } from './socket-lb.js';
import { ciliumSocketLbFlavour } from './cilium/sock-lb.js';
import { ExecRunner } from '../../exec/runner.js';
import { execa } from 'execa';
import { startServer } from '../../probe/native.js';
import { DEFAULT_CLUSTER_CIDR } from './service-types.js';
import { serviceDataPlane } from './service-planes.js';
import { SERVICE_DATA_PLANES, type ServiceDataPlane } from './service-types.js';

const open: { plane: ServiceDataPlane; world: ServiceWorld }[] = [];

afterEach(async () => {
  for (const { plane, world } of open.splice(0)) {
    await plane.teardown();
    await world.down();
  }
});

describe('service data planes on the kernel', () => {
  for (const name of SERVICE_DATA_PLANES) {
    itKernel(`${name}: connections to a ClusterIP reach the backends, spread over both, and teardown leaves nothing`, async () => {
      const world = await serviceWorld(2);
      const plane = openPlane(serviceDataPlane(name), world);
      open.push({ plane, world });
      const set = worldServiceSet(world, 20, 'last');
      const report = await plane.install(set);
      expect(report.state.services).toBe(21);
      const servers = await nameServers(world);
      try {
        const svc = probedService(set);
        const { answers, failures } = await tally(plane, world, svc.clusterIP, 80, 60);
        expect(failures).toBe(0);
        // Both backends answer (each with probability 1/2: missing one in 60 tries is 2^-59).
        expect(Object.keys(answers).sort()).toEqual(['server-0', 'server-1']);
        expect(answers['server-0']! + answers['server-1']!).toBe(60);
      } finally {
        await servers.stop();
      }
      await plane.teardown();
      open.splice(0);
      expect(existsSync(runCgroupDir(cgroup2Root(), world.topology.runId))).toBe(false);
      for (const n of world.topology.nodes) expect(existsSync(bpfPinDir(world.topology.runId, n.name, name === 'cilium-socket-lb' ? 'sock-' : 'ctlb-'))).toBe(false);
      await world.down();
    });
  }

  itKernel('without a service data plane, or from outside the run cgroup under a socket LB, a ClusterIP reaches nothing', async () => {
    const world = await serviceWorld(1);
    const runner = new ExecRunner();
    const plane = socketLbPlane(ciliumSocketLbFlavour, { runner, cleanupRunner: runner, topology: world.topology, settings: { iptablesBackend: 'nft', clusterCidr: DEFAULT_CLUSTER_CIDR } });
    open.push({ plane, world });
    const set = worldServiceSet(world, 5, 'last');
    const svc = probedService(set);
    const servers = await nameServers(world);
    try {
      const unwrapped: ServiceDataPlane = { ...plane, wrapClient: (spec) => spec } as ServiceDataPlane;
      // Nothing installed: the ClusterIP exists nowhere.
      expect((await tally(unwrapped, world, svc.clusterIP, 80, 3)).failures).toBe(3);
      await plane.install(set);
      // The socket hook sees only the run cgroup's processes: a client outside it is not translated (the tc path
      // Cilium has for such traffic is not modelled).
      expect((await tally(unwrapped, world, svc.clusterIP, 80, 3)).failures).toBe(3);
      const inside = await tally(plane, world, svc.clusterIP, 80, 5);
      expect(inside).toEqual({ answers: { 'server-0': 5 }, failures: 0 });
      const counters = await plane.counters(world.client.node.name);
      expect(counters.translated).toBe(5);
      expect(counters.lookups).toBeGreaterThanOrEqual(5);
    } finally {
      await servers.stop();
    }
  });

  for (const name of ['cilium-socket-lb', 'calico-ctlb'] as const) {
    itKernel(`${name}: unconnected UDP to a ClusterIP is translated at sendmsg, and the reply shows the ClusterIP (recvmsg)`, async () => {
      const world = await serviceWorld(1);
      const plane = openPlane(serviceDataPlane(name), world);
      open.push({ plane, world });
      const base = worldServiceSet(world, 3, 'last');
      const probed = probedService(base);
      const udp = { ...probed, ports: [{ name: 'dns', protocol: 'UDP' as const, port: 53, targetPort: 5353 }] };
      const set = { ...base, services: base.services.map((s, i) => (i === base.probed ? udp : s)) };
      await plane.install(set);
      const backend = world.backends[0]!;
      const server = await startServer({
        argv: [process.execPath, '-e', `const s=require('dgram').createSocket('udp4');s.on('message',(m,r)=>s.send('server-0',r.port,r.address));s.bind(5353,()=>console.log('ready'))`],
        netns: backend.netns,
        purpose: 'udp name server',
      });
      try {
        const script = `const s=require('dgram').createSocket('udp4');s.on('message',(m,r)=>{console.log(JSON.stringify({from:r.address+':'+r.port,msg:String(m)}));s.close()});s.send('hi',53,'${probed.clusterIP}');setTimeout(()=>{console.log('{}');process.exit(0)},2000)`;
        const spec = plane.wrapClient({ argv: [process.execPath, '-e', script], netns: world.client.netns }, world.client);
        const r = await execa(spec.argv[0]!, spec.argv.slice(1), { reject: false, timeout: 20_000 });
        expect(JSON.parse(String(r.stdout).trim().split('\n')[0]!)).toEqual({ from: `${probed.clusterIP}:53`, msg: 'server-0' });
      } finally {
        await server.stop();
      }
    });
  }
});
