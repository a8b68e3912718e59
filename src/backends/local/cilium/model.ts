// The Cilium-style model as a LocalModel: routed lxc… veths, tc BPF programs on each of them, and per node an
// ipcache, an endpoints map and per-endpoint policy maps compiled from the resolved policy set.
import type { LocalModel, ModelContext, ModelState } from '../models.js';
import { podKey, type PodInfo } from '../../../policy/types.js';
import type { Topology } from '../topology.js';
import { compileCiliumState } from './compile.js';
import { applyCiliumState, ciliumPinDir, defaultCiliumBinaries, installCilium, planCiliumUnload } from './install.js';

/** ifindexes of attached endpoints per run: programs are loaded and attached once, maps rewritten per install. */
const attached = new WeakMap<Topology, Map<string, number>>();

export const ciliumModel: LocalModel = {
  cni: 'cilium',
  name: 'Cilium-style eBPF model',
  description:
    'Cilium-style eBPF model on the local kernel: tc (clsact) BPF programs on routed lxc* veths, ipcache LPM trie (prefix → identity), identities per label set, per-endpoint LPM policy maps keyed by (identity, direction, protocol, port prefix), BPF conntrack; native routing between nodes',
  enforcesPolicy: true,
  attachment: 'routed',
  hostIfPrefix: 'lxc',
  async install(ctx: ModelContext): Promise<ModelState> {
    const bin = defaultCiliumBinaries();
    const capacity = ctx.config.policyMapCapacity;
    let ifindexes = attached.get(ctx.topology);
    if (!ifindexes) {
      ifindexes = new Map();
      for (const node of ctx.topology.nodes) {
        const attachments = ctx.topology.pods.filter((p) => p.node.index === node.index).map((p) => ({ pod: podKey(p), netns: node.netns, ifname: p.hostIf }));
        const got = await installCilium(ctx.runner, { binaries: bin, pinDir: ciliumPinDir(ctx.topology.runId, node.name), capacity, attachments });
        for (const [k, v] of got) ifindexes.set(k, v);
      }
      attached.set(ctx.topology, ifindexes);
    }
    const ifindexOf = (pod: PodInfo): number => {
      const i = ifindexes.get(podKey(pod));
      if (i === undefined) {
        if (ctx.runner.dryRun) return 0;
        throw new Error(`no attached endpoint for pod ${podKey(pod)}`);
      }
      return i;
    };
    let identities = 0;
    let ipcacheEntries = 0;
    let maxPolicyEntries = 0;
    let compileMs = 0;
    let fillMs = 0;
    for (const node of ctx.topology.nodes) {
      const endpoints = ctx.endpoints.filter((e) => e.pod.node === node.name);
      const t = performance.now();
      // Throws PolicyMapCapacityError naming the endpoint, as Cilium's regeneration fails on a full map.
      const state = compileCiliumState(endpoints, ctx.inventory, { capacity, ifindexOf });
      compileMs += performance.now() - t;
      const f = performance.now();
      await applyCiliumState(ctx.runner, bin, ciliumPinDir(ctx.topology.runId, node.name), state);
      fillMs += performance.now() - f;
      identities = Math.max(identities, state.counts.identities);
      ipcacheEntries = Math.max(ipcacheEntries, state.counts.ipcacheEntries);
      for (const n of Object.values(state.counts.policyEntriesPerEndpoint)) maxPolicyEntries = Math.max(maxPolicyEntries, n);
    }
    return {
      identities,
      ipcacheEntries,
      policyMapEntriesMaxPerEndpoint: maxPolicyEntries,
      policyMapCapacity: capacity,
      compileMs: Math.round(compileMs),
      mapFillMs: Math.round(fillMs),
    };
  },
  async cleanup(ctx) {
    const bin = defaultCiliumBinaries();
    for (const node of ctx.topology.nodes) {
      await ctx.cleanupRunner.run({ ...planCiliumUnload(bin, ciliumPinDir(ctx.topology.runId, node.name)), allowFailure: true });
    }
    attached.delete(ctx.topology);
  },
};
