// The service data planes on the kernel: namespaces really built, connections really made to a ClusterIP.
import { afterEach, describe, expect } from 'vitest';
import { existsSync } from 'node:fs';
import { probedService } from '../../services/types.js';
import { bpfPinDir } from './bpf/native.js';
import { cgroup2Root, runCgroupDir } from './cgroup.js';
import { itKernel } from './test-support/kernel.js';
import { nameServers, openPlane, serviceWorld, tally, worldServiceSet, type ServiceWorld } from './test-support/services.js';
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
});
