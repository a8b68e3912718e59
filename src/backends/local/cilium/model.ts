// The Cilium-style model as a LocalModel: routed lxc… veths, tc BPF programs on each of them, and per node an
// ipcache, an endpoints map and per-endpoint policy maps compiled from the resolved policy set.
//
// Like the Cilium agent, the model keeps what it realized per node (identities, endpoint ids, every endpoint's
// map) so that update() writes only the difference: changed policy-map entries of the affected endpoints and
// changed ipcache entries, through `cb-bpf delta` (pkg/endpoint/bpf.go applyPolicyMapChanges / syncPolicyMap
// do the same with per-key map updates). A policy map that would overflow is handled as Cilium 1.18 does it
// (realizeOverflow in compile.ts): the run goes on and the overflow is recorded in the model state.
import type { LocalModel, ModelContext, ModelSettings, ModelState, ModelUpdateReport } from '../types.js';
import { podKey, type PodInfo } from '../../../policy/types.js';
import type { Runner } from '../../../exec/runner.js';
import type { PodAttachStep } from '../pod-attach.js';
import type { PodSpec, Topology } from '../topology.js';
import { compileCiliumState, endpointIdOf, newIdentityAllocation, type CiliumState, type IdentityAllocation, type PolicyMapEntry } from './compile.js';
import { diffCiliumState } from './loader-input.js';
import { overflowSummary, realizeOverflow, type RealizedOverflow } from './overflow.js';
import { overflowState } from '../../../results/capacity-overflow.js';
import { applyCiliumDelta, applyCiliumState, ciliumPinDir, defaultCiliumBinaries, installCilium, planCiliumAttach, parseAttachOutput, planCiliumUnload } from './install.js';
import { BenchError } from '../../../errors.js';

/** What the Cilium model reads of a run's settings: the policy map's size and what an overflow does. */
export type CiliumSettings = Pick<ModelSettings, 'policyMapCapacity' | 'endpointLockdownOnPolicyOverflow'>;
type Context = ModelContext<CiliumSettings>;

interface Installed {
  /** Host-side ifindex per attached pod (programs are loaded and attached once per pod). */
  ifindexes: Map<string, number>;
  allocation: IdentityAllocation;
  /** Realized state per node name. */
  nodes: Map<string, CiliumState>;
}

const installed = new WeakMap<Topology, Installed>();

/**
 * Keys every install/update report carries about the policy-map capacity: the overflow any model can report
 * (results/capacity-overflow.ts), with what Cilium then does and the fix, and Cilium's own details.
 */
function ciliumOverflowState(overflows: RealizedOverflow[], lockdown: boolean): ModelState {
  const worst = overflows.reduce<RealizedOverflow | undefined>((a, b) => (!a || b.needed > a.needed ? b : a), undefined);
  const what = lockdown
    ? 'With endpoint lockdown the pod keeps running but all its traffic is denied.'
    : 'By default Cilium keeps the pod running and skips the map sync, so the endpoint enforces a stale policy (whatever its map held before) and the policies you applied are not in force; nothing fails loudly.';
  return {
    endpointLockdownOnPolicyOverflow: lockdown,
    ...overflowState({
      endpoints: overflows.length,
      summary: overflows.slice(0, 3).map(overflowSummary).join('; ') + (overflows.length > 3 ? `; and ${overflows.length - 3} more` : ''),
      advice: `${what} Raise \`bpf.policyMapMax\` (up to 65536) above the ${worst?.needed ?? 'needed'} entries needed, or write fewer, broader policies (one rule with many ports or peers costs entries too).`,
    }),
    ...(worst ? { policyMapOverflowNeeded: worst.needed, policyMapOverflowOutcome: worst.outcome } : {}),
  };
}

async function attachNew(ctx: Context, inst: Installed, capacity: number, fresh: boolean): Promise<number> {
  const bin = defaultCiliumBinaries();
  let attachedNow = 0;
  for (const node of ctx.topology.nodes) {
    const pinDir = ciliumPinDir(ctx.topology.runId, node.name);
    const pods = ctx.topology.pods.filter((p) => p.node.index === node.index && !inst.ifindexes.has(podKey(p)));
    if (fresh) {
      const got = await installCilium(ctx.runner, { binaries: bin, pinDir, capacity, attachments: pods.map((p) => ({ pod: podKey(p), netns: node.netns, ifname: p.hostIf })) });
      for (const [k, v] of got) inst.ifindexes.set(k, v);
      attachedNow += pods.length;
      continue;
    }
    for (const p of pods) {
      await attachEndpoint(ctx.runner, pinDir, inst, p);
      attachedNow++;
    }
  }
  return attachedNow;
}

/**
 * A pod that appears after install is registered as an endpoint before its programs attach: with no policy map
 * yet it denies both directions until update() writes its map (cilium-cni ADD waits for the endpoint's first
 * regeneration; until then the endpoint's fresh policy map is empty).
 */
async function attachEndpoint(runner: Runner, pinDir: string, inst: Installed, p: PodSpec): Promise<void> {
  const r = await runner.run(planCiliumAttach(defaultCiliumBinaries(), pinDir, { pod: podKey(p), netns: p.node.netns, ifname: p.hostIf }, endpointIdOf(inst.allocation, podKey(p))));
  const ifindex = parseAttachOutput(r.stdout);
  if (ifindex !== undefined) inst.ifindexes.set(podKey(p), ifindex);
}

function compileNode(ctx: Context, inst: Installed, nodeName: string, previous: CiliumState | undefined): { state: CiliumState; overflows: RealizedOverflow[] } {
  const ifindexOf = (pod: PodInfo): number => {
    const i = inst.ifindexes.get(podKey(pod));
    if (i === undefined) {
      if (ctx.runner.dryRun) return 0;
      throw new BenchError('internal', `no attached endpoint for pod ${podKey(pod)}`);
    }
    return i;
  };
  const endpoints = ctx.endpoints.filter((e) => e.pod.node === nodeName);
  const nodeAddresses = {
    local: ctx.topology.nodes.filter((n) => n.name === nodeName).map((n) => n.ip),
    remote: ctx.topology.nodes.filter((n) => n.name !== nodeName).map((n) => n.ip),
  };
  const desired = compileCiliumState(endpoints, ctx.inventory, { capacity: ctx.settings.policyMapCapacity, ifindexOf, onOverflow: 'report', allocation: inst.allocation, nodeAddresses });
  const prevMaps = previous ? new Map<string, PolicyMapEntry[]>(previous.policyMaps.map((m) => [m.pod, m.entries])) : undefined;
  return realizeOverflow(desired, { lockdown: ctx.settings.endpointLockdownOnPolicyOverflow, previous: prevMaps });
}

function summarizeNodes(states: CiliumState[]): ModelState {
  let identities = 0;
  let ipcacheEntries = 0;
  let maxPolicyEntries = 0;
  for (const s of states) {
    identities = Math.max(identities, s.counts.identities);
    ipcacheEntries = Math.max(ipcacheEntries, s.counts.ipcacheEntries);
    for (const n of Object.values(s.counts.policyEntriesPerEndpoint)) maxPolicyEntries = Math.max(maxPolicyEntries, n);
  }
  return { identities, ipcacheEntries, policyMapEntriesMaxPerEndpoint: maxPolicyEntries };
}

export const ciliumModel: LocalModel<CiliumSettings> & PodAttachStep = {
  cni: 'cilium',
  name: 'Cilium-style eBPF model',
  description:
    'Cilium-style eBPF model on the local kernel (lookup sequence of Cilium 1.18 bpf_lxc.c): tc (clsact) BPF programs on routed lxc* veths, ipcache LPM trie (prefix → identity) looked up for every packet, identities per label set, per-endpoint LPM policy maps keyed by (identity, direction, protocol, port prefix) with L3 then L4-only lookup and Cilium precedence, policy on every forward packet (only replies skip), BPF conntrack; native routing between nodes',
  enforcesPolicy: true,
  attachment: 'routed',
  hostIfPrefix: 'lxc',
  serviceDataPlane: 'cilium-socket-lb',
  bpfPrograms: true,
  async install(ctx: Context): Promise<ModelState> {
    const bin = defaultCiliumBinaries();
    const capacity = ctx.settings.policyMapCapacity;
    let inst = installed.get(ctx.topology);
    if (!inst) {
      inst = { ifindexes: new Map(), allocation: newIdentityAllocation(), nodes: new Map() };
      await attachNew(ctx, inst, capacity, true);
      installed.set(ctx.topology, inst);
    }
    let compileMs = 0;
    let fillMs = 0;
    const overflows: RealizedOverflow[] = [];
    for (const node of ctx.topology.nodes) {
      const t = performance.now();
      // A full reinstall: the maps are written from scratch, overflowing endpoints as if they held the no-policy
      // state before (pods exist before their policies in a bench run).
      const { state, overflows: o } = compileNode(ctx, inst, node.name, undefined);
      compileMs += performance.now() - t;
      const f = performance.now();
      await applyCiliumState(ctx.runner, bin, ciliumPinDir(ctx.topology.runId, node.name), state);
      fillMs += performance.now() - f;
      inst.nodes.set(node.name, state);
      overflows.push(...o);
    }
    const agentEntriesMax = Math.max(0, ...[...inst.nodes.values()].flatMap((s) => s.endpoints.map((e) => (e.ingressEnforced ? 0 : 1) + (e.egressEnforced ? 0 : 1) + 1)));
    return {
      ...summarizeNodes([...inst.nodes.values()]),
      agentEntriesPerEndpointMax: agentEntriesMax,
      policyMapCapacity: capacity,
      ...ciliumOverflowState(overflows, ctx.settings.endpointLockdownOnPolicyOverflow),
      compileMs: Math.round(compileMs),
      mapFillMs: Math.round(fillMs),
    };
  },
  async attachPod(ctx, pod) {
    const inst = installed.get(ctx.topology);
    if (!inst) throw new BenchError('internal', 'Cilium model: attachPod() before install() on this topology; install the policy set first');
    if (inst.ifindexes.has(podKey(pod))) return;
    await attachEndpoint(ctx.runner, ciliumPinDir(ctx.topology.runId, pod.node.name), inst, pod);
  },
  async update(ctx: Context): Promise<ModelUpdateReport> {
    const inst = installed.get(ctx.topology);
    if (!inst) throw new BenchError('internal', 'Cilium model: update() before install() on this topology; install the policy set first');
    const bin = defaultCiliumBinaries();
    const started = performance.now();
    const attached = await attachNew(ctx, inst, ctx.settings.policyMapCapacity, false);
    let compileMs = 0;
    let applyMs = 0;
    const overflows: RealizedOverflow[] = [];
    const changed: Record<string, number> = { podsAttached: attached, policyMapsCreated: 0, policyAdded: 0, policyDeleted: 0, ipcacheAdded: 0, ipcacheDeleted: 0, endpointsAdded: 0, endpointsDeleted: 0, endpointsTouched: 0 };
    for (const node of ctx.topology.nodes) {
      const t = performance.now();
      const prev = inst.nodes.get(node.name);
      const { state, overflows: o } = compileNode(ctx, inst, node.name, prev);
      const delta = diffCiliumState(prev ?? { ...state, ipcache: [], endpoints: [], policyMaps: [] }, state);
      compileMs += performance.now() - t;
      overflows.push(...o);
      for (const [k, v] of Object.entries(delta.counts)) changed[k] = (changed[k] ?? 0) + v;
      if (delta.lines.length) {
        const a = performance.now();
        const written = await applyCiliumDelta(ctx.runner, bin, ciliumPinDir(ctx.topology.runId, node.name), delta.lines);
        if (written) changed.policyMapsCreated = (changed.policyMapsCreated ?? 0) + written.policyMapsCreated;
        applyMs += performance.now() - a;
      }
      inst.nodes.set(node.name, state);
    }
    const agentMs = performance.now() - started;
    return {
      agentMs,
      compileMs,
      applyMs: agentMs - compileMs,
      changed,
      state: {
        ...summarizeNodes([...inst.nodes.values()]),
        policyMapCapacity: ctx.settings.policyMapCapacity,
        ...ciliumOverflowState(overflows, ctx.settings.endpointLockdownOnPolicyOverflow),
        compileMs: Math.round(compileMs),
        mapWriteMs: Math.round(applyMs),
      },
    };
  },
  async cleanup(ctx) {
    const bin = defaultCiliumBinaries();
    for (const node of ctx.topology.nodes) {
      await ctx.cleanupRunner.run({ ...planCiliumUnload(bin, ciliumPinDir(ctx.topology.runId, node.name)), allowFailure: true });
    }
    installed.delete(ctx.topology);
  },
};
