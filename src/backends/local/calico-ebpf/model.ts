// The Calico-eBPF-style model as a LocalModel: routed cali… veths, Felix-like fixed tc programs on each of them,
// and per node the generated policy programs (a rule walk per endpoint-direction, chained by tail calls when the
// verifier's limits require it), an IP set LPM trie and a BPF conntrack. install() writes the whole desired state
// as a difference from what is there; update() does the same for an incremental change and attaches new pods.
import type { LocalModel, ModelContext, ModelState, ModelUpdateReport } from '../types.js';
import { podKey } from '../../../policy/types.js';
import type { Runner } from '../../../exec/runner.js';
import type { PodAttachStep } from '../pod-attach.js';
import type { PodSpec, Topology } from '../topology.js';
import { compileCalicoEbpfNode, type CalicoEbpfCounts } from './compile.js';
import {
  applyNodeChanges,
  calicoEbpfPinDir,
  defaultCalicoEbpfBinaries,
  emptyNodeInstalled,
  parseAttachOutput,
  planApply,
  planAttach,
  planDefaultDeny,
  planLoad,
  planNodeChanges,
  planUnload,
  type NodeChanges,
  type NodeInstalled,
} from './install.js';

interface NodeAgent {
  pinDir: string;
  netns: string;
  /** podKey → host-side ifindex of attached workloads. */
  ifindexes: Map<string, number>;
  installed: NodeInstalled;
}

/** What each run's "Felix" remembers per node: keyed by topology, so concurrent runs never share state. */
const agents = new WeakMap<Topology, Map<string, NodeAgent>>();

async function ensureAgents(ctx: ModelContext): Promise<Map<string, NodeAgent>> {
  const bin = defaultCalicoEbpfBinaries();
  let perNode = agents.get(ctx.topology);
  if (!perNode) {
    perNode = new Map();
    for (const node of ctx.topology.nodes) {
      const pinDir = calicoEbpfPinDir(ctx.topology.runId, node.name);
      await ctx.runner.run(planLoad(bin, pinDir));
      perNode.set(node.name, { pinDir, netns: node.netns, ifindexes: new Map(), installed: emptyNodeInstalled() });
    }
    agents.set(ctx.topology, perNode);
  }
  // Attach to every workload interface not attached yet (pods added after install included).
  for (const pod of ctx.topology.pods) {
    const agent = perNode.get(pod.node.name);
    const key = podKey(pod);
    if (!agent || agent.ifindexes.has(key)) continue;
    const r = await ctx.runner.run(planAttach(bin, agent.pinDir, agent.netns, pod.hostIf, key));
    agent.ifindexes.set(key, parseAttachOutput(r.stdout) ?? 0);
  }
  return perNode;
}

interface Applied {
  counts: CalicoEbpfCounts[];
  changes: NodeChanges[];
  compileMs: number;
  applyMs: number;
  verifyMs: number;
}

async function reconcile(ctx: ModelContext, what: string): Promise<Applied> {
  const bin = defaultCalicoEbpfBinaries();
  const perNode = await ensureAgents(ctx);
  const out: Applied = { counts: [], changes: [], compileMs: 0, applyMs: 0, verifyMs: 0 };
  for (const node of ctx.topology.nodes) {
    const agent = perNode.get(node.name)!;
    const t = performance.now();
    const compiled = compileCalicoEbpfNode(node.name, ctx.endpoints);
    const changes = planNodeChanges(agent.installed, compiled, (pod) => {
      const i = agent.ifindexes.get(pod);
      if (i === undefined) throw new Error(`calico-ebpf model: pod ${pod} on ${node.name} has no attached interface`);
      return i;
    });
    out.compileMs += performance.now() - t;
    const a = performance.now();
    const summary = await applyNodeChanges(ctx.runner, bin, agent.pinDir, changes, `${what} on ${node.name}`);
    out.applyMs += performance.now() - a;
    out.verifyMs += summary?.verifyMs ?? 0;
    agent.installed = changes.next;
    out.counts.push(compiled.counts);
    out.changes.push(changes);
  }
  return out;
}

function stateOf(a: Applied): ModelState {
  const sum = (k: keyof CalicoEbpfCounts): number => a.counts.reduce((s, c) => s + c[k], 0);
  const max = (k: keyof CalicoEbpfCounts): number => a.counts.reduce((m, c) => Math.max(m, c[k]), 0);
  return {
    policyPrograms: sum('programs'),
    instructions: sum('instructions'),
    ipSets: sum('ipSets'),
    ipSetEntries: sum('ipSetEntries'),
    maxProgramsPerChain: max('maxProgramsPerChain'),
    maxRulesPerChain: max('maxRulesPerChain'),
    rulesTraversedPerPolicy: max('rulesTraversedPerPolicy'),
    compileMs: Math.round(a.compileMs),
    applyMs: Math.round(a.applyMs),
    verifierMs: Math.round(a.verifyMs),
  };
}

/**
 * Felix's part of a new pod's CNI ADD: the default-deny program into both of the workload's policy slots, the
 * interface registered with those slots, then the tc programs attached, all before the interface is up.
 */
async function attachWorkload(runner: Runner, agent: NodeAgent, pod: PodSpec): Promise<void> {
  const bin = defaultCalicoEbpfBinaries();
  const key = podKey(pod);
  const deny = planDefaultDeny(agent.installed, key, pod.node.name);
  await runner.run(planApply(bin, agent.pinDir, deny.input, `the default-deny policy of new workload ${key}`));
  const r = await runner.run(planAttach(bin, agent.pinDir, agent.netns, pod.hostIf, key, deny.slots));
  const ifindex = parseAttachOutput(r.stdout) ?? 0;
  agent.ifindexes.set(key, ifindex);
  agent.installed = deny.next(ifindex);
}

export const calicoEbpfModel: LocalModel & PodAttachStep = {
  cni: 'calico-ebpf',
  name: 'Calico-eBPF-style model',
  description:
    "Calico-eBPF-style model on the local kernel: routed cali* veths with Felix-like tc programs (clsact) that parse, consult a BPF conntrack and tail-call each endpoint's generated policy program; the program walks the default tier's policies and rules in order (one rule per peer × protocol, IP sets as a Felix-keyed LPM trie: set id + prefix), split into tail-called chained programs at the verifier's jump limit (7992, as Felix) or 32000 instructions, at most 32 per chain; changes swap a chain with one jump-map update. Left out: tiers other than default, host endpoints, NAT/kube-proxy replacement, IPv6, Felix's trampolines (it splits on size instead), flow logs",
  enforcesPolicy: true,
  attachment: 'routed',
  hostIfPrefix: 'cali',
  async install(ctx: ModelContext): Promise<ModelState> {
    return stateOf(await reconcile(ctx, 'policy programs, IP sets and endpoints'));
  },
  async attachPod(ctx, pod) {
    const agent = agents.get(ctx.topology)?.get(pod.node.name);
    if (!agent) throw new Error('calico-ebpf model: attachPod() before install() on this topology; install the policy set first');
    if (agent.ifindexes.has(podKey(pod))) return;
    await attachWorkload(ctx.runner, agent, pod);
  },
  async update(ctx: ModelContext): Promise<ModelUpdateReport> {
    const started = performance.now();
    const a = await reconcile(ctx, 'changed policy programs, IP set members and endpoints');
    const changed: Record<string, number> = {};
    for (const c of a.changes) for (const [k, v] of Object.entries(c.changed)) changed[k] = (changed[k] ?? 0) + v;
    return { agentMs: performance.now() - started, compileMs: a.compileMs, applyMs: a.applyMs, changed, state: stateOf(a) };
  },
  async cleanup(ctx) {
    const bin = defaultCalicoEbpfBinaries();
    for (const node of ctx.topology.nodes) {
      await ctx.cleanupRunner.run({ ...planUnload(bin, calicoEbpfPinDir(ctx.topology.runId, node.name)), allowFailure: true });
    }
    agents.delete(ctx.topology);
  },
};
