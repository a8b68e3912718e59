// The robust large effect of Services on new-connection latency (the Kubernetes blog "NFTables mode for
// kube-proxy", 2025): kube-proxy's iptables mode walks one KUBE-SERVICES rule per Service port for the first packet
// of every connection, so the unluckiest Service's connect slows with the Service count; the nftables verdict map
// and the socket-level BPF load balancers look the destination up in one step. Only large ratios are asserted (a
// shared, loaded machine): the measured figures come from scripts/services-bench.mjs. Slow by nature: kube-proxy's
// iptables mode writes with iptables-nft as on a current node, and iptables-nft-restore (1.8.9) takes minutes to add
// 10000 Services on a loaded 2-CPU machine (iptables-legacy-restore takes seconds, but its cheaper rule walk adds
// only about ×2–3 at 10000 Services there, too close to the noise for this assertion).
import { afterEach, describe, expect } from 'vitest';
import { probedService } from '../../services/types.js';
import { itKernel } from './test-support/kernel.js';
import { connectP50, echoServers, openPlane, serviceWorld, SERVICE_PORT, worldServiceSet, type ServiceWorld } from './test-support/services.js';
import { serviceDataPlane } from './service-planes.js';
import { SERVICE_DATA_PLANES, type ServiceDataPlane, type ServiceDataPlaneName } from './service-types.js';

const SERVICES = 10_000;
const SAMPLES = 1000;
const open: { plane: ServiceDataPlane; world: ServiceWorld }[] = [];

afterEach(async () => {
  for (const { plane, world } of open.splice(0)) {
    await plane.teardown();
    await world.down();
  }
});

/** Connect p50 to the probed ClusterIP with no other Service, then with SERVICES before it (a partial sync adds them). */
async function p50s(name: ServiceDataPlaneName): Promise<{ zero: number; many: number; updateMs: number }> {
  const world = await serviceWorld(1);
  const plane = openPlane(serviceDataPlane(name), world);
  open.push({ plane, world });
  const few = worldServiceSet(world, 0, 'last');
  await plane.install(few);
  const servers = await echoServers(world);
  try {
    const ip = probedService(few).clusterIP;
    const zero = await connectP50(plane, world, ip, SERVICE_PORT, SAMPLES);
    const many = worldServiceSet(world, SERVICES, 'last');
    expect(probedService(many).clusterIP).toBe(ip);
    const update = await plane.update(many);
    expect(update.state.services).toBe(SERVICES + 1);
    return { zero, many: await connectP50(plane, world, ip, SERVICE_PORT, SAMPLES), updateMs: update.agentMs };
  } finally {
    await Promise.all(servers.map((s) => s.stop()));
  }
}

describe('Service count against new-connection latency', () => {
  itKernel(
    `at ${SERVICES} Services the iptables mode's worst-position connect is far slower than at 0; nftables and the socket LBs are not`,
    async () => {
      const ratio: Record<string, number> = {};
      for (const name of SERVICE_DATA_PLANES) {
        const r = await p50s(name);
        ratio[name] = r.many / r.zero;
        console.log(`${name}: connect p50 ${r.zero.toFixed(1)} µs at 0 Services, ${r.many.toFixed(1)} µs at ${SERVICES} (×${ratio[name]!.toFixed(2)}); partial sync ${r.updateMs} ms`);
      }
      expect(ratio['kube-proxy-iptables']).toBeGreaterThan(3);
      for (const flat of ['kube-proxy-nftables', 'cilium-socket-lb', 'calico-ctlb']) expect(ratio[flat]).toBeLessThan(2);
    },
    3_600_000,
  );
});
