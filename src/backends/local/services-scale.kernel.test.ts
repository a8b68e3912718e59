// The robust large effect of Services on new-connection latency (the Kubernetes blog "NFTables mode for
// kube-proxy", 2025): kube-proxy's iptables mode walks one KUBE-SERVICES rule per Service port for the first packet
// of every connection, so the unluckiest Service's connect slows with the Service count; the nftables verdict map
// and the socket-level BPF load balancers look the destination up in one step. Only large ratios are asserted (a
// shared, loaded machine): the measured figures come from scripts/services-bench.mjs. kube-proxy's iptables mode
// writes with iptables-nft as on a current node; its walk costs ~16 ns per rule here and a connection walks
// KUBE-SERVICES on both nodes, so 5000 Services add ~150 µs to a ~50 µs connect (×3 and more; at 1000 only ×1.7).
//
// Each plane: the first sync installs SERVICES fillers + the probed Service (timed: installing is the cold start),
// connect p50 is measured, then a partial sync removes the fillers and connect p50 is measured again.
import { afterEach, describe, expect } from 'vitest';
import { probedService } from '../../services/types.js';
import { itKernel } from './test-support/kernel.js';
import { connectP50, echoServers, openPlane, serviceWorld, SERVICE_PORT, worldServiceSet, type ServiceWorld } from './test-support/services.js';
import { serviceDataPlane } from './service-planes.js';
import { SERVICE_DATA_PLANES, type ServiceDataPlane, type ServiceDataPlaneName } from './service-types.js';

const SERVICES = 5000;
const SAMPLES = 1000;
/** Blocks per state, interleaved: many, 0, many, 0, … (see p50s). */
const ROUNDS = 3;
/** The cold start the issue sets (30000 Services under 30 s on a quiet machine). */
const BIG = 30_000;
/** Robust bound on that first sync (see the test). */
const FIRST_SYNC_BOUND_MS = 150_000;
const open: { plane: ServiceDataPlane; world: ServiceWorld }[] = [];

afterEach(async () => {
  for (const { plane, world } of open.splice(0)) {
    await plane.teardown();
    await world.down();
  }
});

async function planeWorld(name: ServiceDataPlaneName): Promise<{ plane: ServiceDataPlane; world: ServiceWorld }> {
  const world = await serviceWorld(1);
  const plane = openPlane(serviceDataPlane(name), world);
  open.push({ plane, world });
  return { plane, world };
}

/**
 * Connect p50 to the probed ClusterIP with SERVICES other Services (first sync), then with none (partial sync), then
 * with them again and none again (partial syncs both ways): each state is measured in ROUNDS blocks interleaved in
 * time, and its lowest block p50 is kept. Load from other processes only ever slows a block, and a burst that hits
 * one block does not hit the other state's block beside it: a single pair once read 44.7 µs at 0 against 25.4 µs at
 * 5000 on calico-ctlb (×0.57, CI 2026-12-07), a swing that the other way would nearly cross the ×2 bound.
 */
async function p50s(name: ServiceDataPlaneName): Promise<{ zero: number; many: number; installMs: number; updateMs: number; blocks: { zero: number[]; many: number[] } }> {
  const { plane, world } = await planeWorld(name);
  const many = worldServiceSet(world, SERVICES, 'last');
  const install = await plane.install(many);
  expect(install.state.services).toBe(SERVICES + 1);
  const servers = await echoServers(world);
  try {
    const ip = probedService(many).clusterIP;
    const few = worldServiceSet(world, 0, 'last');
    expect(probedService(few).clusterIP).toBe(ip);
    const blocks = { zero: [] as number[], many: [] as number[] };
    let updateMs = 0;
    for (let round = 0; round < ROUNDS; round++) {
      if (round > 0) expect((await plane.update(many)).state.services).toBe(SERVICES + 1);
      blocks.many.push(await connectP50(plane, world, ip, SERVICE_PORT, SAMPLES));
      const update = await plane.update(few);
      expect(update.state.services).toBe(1);
      if (round === 0) updateMs = update.agentMs;
      blocks.zero.push(await connectP50(plane, world, ip, SERVICE_PORT, SAMPLES));
    }
    return { zero: Math.min(...blocks.zero), many: Math.min(...blocks.many), installMs: install.installMs, updateMs, blocks };
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
        console.log(`${name}: connect p50 ${r.many.toFixed(1)} µs at ${SERVICES} Services, ${r.zero.toFixed(1)} µs at 0 (×${ratio[name]!.toFixed(2)}; lowest of the blocks ${r.blocks.many.map((x) => x.toFixed(1)).join('/')} and ${r.blocks.zero.map((x) => x.toFixed(1)).join('/')}); first sync ${r.installMs} ms, partial sync ${r.updateMs} ms`);
      }
      expect(ratio['kube-proxy-iptables']).toBeGreaterThan(2.5);
      for (const flat of ['kube-proxy-nftables', 'cilium-socket-lb', 'calico-ctlb']) expect(ratio[flat]).toBeLessThan(2);
    },
    600_000,
  );

  // iptables-nft-restore --noflush took ~30 s per node for 10000 Services and grows as chains × rules (so ~270 s at
  // 30000); the first sync now writes nat as one whole table (kube-proxy/plane.ts), ~2 s per 10000 on a quiet
  // machine. The bound sits between the two with room for load: at 30000 the first sync took 6.0–6.3 s quiet (CI,
  // README), 28–39 s on the loaded machine (README) and 27.3 s (iptables) / 33.0 s (nftables) beside a whole kernel
  // test run (2026-12-07); 60 s was only 1.5× the worst of those.
  itKernel(
    `the first sync of ${BIG} Services takes under ${FIRST_SYNC_BOUND_MS / 1000} s on every service data plane (both nodes in parallel), not the minutes of a rule-by-rule restore`,
    async () => {
      for (const name of SERVICE_DATA_PLANES) {
        const { plane, world } = await planeWorld(name);
        const r = await plane.install(worldServiceSet(world, BIG, 'last'));
        console.log(`${name}: first sync of ${BIG + 1} Services ${r.installMs} ms (per node ${JSON.stringify(r.nodeMs)})`);
        expect(r.state.services).toBe(BIG + 1);
        expect(r.installMs).toBeLessThan(FIRST_SYNC_BOUND_MS);
        await plane.teardown();
        await world.down();
        open.splice(0);
      }
    },
    600_000,
  );
});
