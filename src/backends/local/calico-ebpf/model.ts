// The Calico-eBPF-style model as a LocalModel: routed cali… veths, Felix-like fixed tc programs on each of them,
// and per node the generated policy programs (a rule walk per endpoint-direction, chained by tail calls when the
// verifier's limits require it), an IP set LPM trie and a BPF conntrack. install() writes the whole desired state
// as a difference from what is there; update() does the same for an incremental change and attaches new pods.
// A chain longer than Felix keeps is installed as Felix leaves it (its first 24 programs) and recorded as a
// capacity overflow; the run goes on.
import type { LocalModel, ModelContext, ModelSettings, ModelState, ModelUpdateReport } from '../types.js';
import { BenchError } from '../../../errors.js';
import { overflowState } from '../../../results/capacity-overflow.js';
import { podKey } from '../../../policy/types.js';
import type { Runner } from '../../../exec/runner.js';
import type { PodAttachStep } from '../pod-attach.js';
import type { PodSpec, Topology } from '../topology.js';
import { compileCalicoEbpfNode, type CalicoEbpfCounts, type ChainOverflow } from './compile.js';
import { MAX_PROGRAMS_PER_CHAIN } from './layout.js';
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

/** What the model reads of a run's settings: Felix's BPFPolicyDebugEnabled. */
export type CalicoEbpfSettings = Pick<ModelSettings, 'bpfPolicyDebug'>;
type Context = ModelContext<CalicoEbpfSettings>;

/** A bug in the model's own bookkeeping (an install step out of order), not something a user can change. */
class CalicoEbpfModelError extends BenchError {
  constructor(message: string) {
    super('internal', `calico-ebpf model: ${message}`);
  }
}

interface NodeAgent {
  pinDir: string;
  netns: string;
  /** podKey → host-side ifindex of attached workloads. */
  ifindexes: Map<string, number>;
  installed: NodeInstalled;
}

/** What each run's "Felix" remembers per node: keyed by topology, so concurrent runs never share state. */
const agents = new WeakMap<Topology, Map<string, NodeAgent>>();

async function ensureAgents(ctx: Context): Promise<Map<string, NodeAgent>> {
  const bin = defaultCalicoEbpfBinaries();
  let perNode = agents.get(ctx.topology);
  if (!perNode) {
    perNode = new Map();
    for (const node of ctx.topology.nodes) {
      const pinDir = calicoEbpfPinDir(ctx.topology.runId, node.name);
      await ctx.runner.run(planLoad(bin, pinDir));
      // Felix writes the host's own addresses into its route map: the source of host-to-workload traffic.
      await ctx.runner.run(planApply(bin, pinDir, `host ${node.ip}\n`, `the address of ${node.name} (host-to-workload traffic skips policy)`));
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
  overflows: ChainOverflow[];
  policyDebug: boolean;
  changes: NodeChanges[];
  compileMs: number;
  applyMs: number;
  verifyMs: number;
}

async function reconcile(ctx: Context, what: string): Promise<Applied> {
  const bin = defaultCalicoEbpfBinaries();
  const perNode = await ensureAgents(ctx);
  const policyDebug = ctx.settings.bpfPolicyDebug !== 'off';
  const out: Applied = { counts: [], overflows: [], policyDebug, changes: [], compileMs: 0, applyMs: 0, verifyMs: 0 };
  for (const node of ctx.topology.nodes) {
    const agent = perNode.get(node.name)!;
    const t = performance.now();
    const compiled = compileCalicoEbpfNode(node.name, ctx.endpoints, { policyDebug });
    const changes = planNodeChanges(agent.installed, compiled, (pod) => {
      const i = agent.ifindexes.get(pod);
      if (i === undefined) throw new CalicoEbpfModelError(`pod ${pod} on ${node.name} has no attached interface`);
      return i;
    });
    out.compileMs += performance.now() - t;
    const a = performance.now();
    const summary = await applyNodeChanges(ctx.runner, bin, agent.pinDir, changes, `${what} on ${node.name}`);
    out.applyMs += performance.now() - a;
    out.verifyMs += summary?.verifyMs ?? 0;
    agent.installed = changes.next;
    out.counts.push(compiled.counts);
    out.overflows.push(...compiled.overflows);
    out.changes.push(changes);
  }
  return out;
}

const overflowText = (o: ChainOverflow): string =>
  `the ${o.direction} policy of ${o.pod} needs ${o.rules} rules in ${o.programsNeeded} chained programs; Felix keeps ${MAX_PROGRAMS_PER_CHAIN}, so rules 1–${o.rulesLive} are live and the rest are never reached`;

/**
 * Felix on a chain longer than MaxSubPrograms: it logs the failed jump-map update and runs with the programs
 * already in place (bpf_ep_mgr.go doUpdatePolicyProgram), so a packet no live rule allows hits the last program's
 * failed tail call and is dropped; the pod keeps running and its policies stay accepted.
 */
function chainOverflowState(overflows: ChainOverflow[], policyDebug: boolean): ModelState {
  const worst = overflows.reduce<ChainOverflow | undefined>((w, o) => (!w || o.rules > w.rules ? o : w), undefined);
  const fix = policyDebug ? ' Turning policy debug off (BPFPolicyDebugEnabled=false, --bpf-policy-debug off) makes each rule cheaper, so a chain holds more of them.' : '';
  return {
    ...overflowState({
      endpoints: overflows.length,
      summary: overflows.slice(0, 3).map(overflowText).join('; ') + (overflows.length > 3 ? `; and ${overflows.length - 3} more` : ''),
      advice: `Felix logs the failed program update and leaves the first ${MAX_PROGRAMS_PER_CHAIN} programs of the chain in place: a connection that no rule in them allows is dropped at the last program's failed tail call, silently, while the pod runs and its policies are accepted. Write fewer, broader policies selecting the pod (one rule with many peers or ports is one rule), or keep it on Calico's iptables or nftables data plane.${fix}`,
    }),
    ...(worst ? { capacityOverflowRulesNeeded: worst.rules, capacityOverflowRulesLive: worst.rulesLive } : {}),
  };
}

function stateOf(a: Applied): ModelState {
  const sum = (k: keyof CalicoEbpfCounts): number => a.counts.reduce((s, c) => s + c[k], 0);
  const max = (k: keyof CalicoEbpfCounts): number => a.counts.reduce((m, c) => Math.max(m, c[k]), 0);
  return {
    bpfPolicyDebugEnabled: a.policyDebug,
    chainProgramLimit: MAX_PROGRAMS_PER_CHAIN,
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
    ...chainOverflowState(a.overflows, a.policyDebug),
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

export const calicoEbpfModel: LocalModel<CalicoEbpfSettings> & PodAttachStep = {
  cni: 'calico-ebpf',
  name: 'Calico-eBPF-style model',
  description:
    "Calico-eBPF-style model on the local kernel: routed cali* veths with Felix-like tc programs (clsact) that parse and consult a BPF conntrack with TCP state (established flows skip policy; a SYN walks it even on a tracked tuple, as Felix forces policy on SYN; closed or idle flows end with Felix's timeouts); a new flow tail-calls the endpoint's generated policy program, which walks the default tier's policies and rules in order (one rule per peer × protocol, IP sets as a Felix-keyed LPM trie: set id + prefix, a rule-id record per rule with BPFPolicyDebugEnabled, Felix's default), split into tail-called programs where Felix splits (7992 jump-class instructions, calls and exits included) with Felix's trampolines, at most 24 per chain (MaxSubPrograms; beyond that the first 24 stay live and the rest is dropped at a failed tail call, recorded as an overflow); changes swap a chain with one jump-map update. Left out: tiers other than default, host endpoints, NAT/kube-proxy replacement, IPv6, flow logs",
  enforcesPolicy: true,
  attachment: 'routed',
  hostIfPrefix: 'cali',
  serviceDataPlane: 'calico-ctlb',
  bpfPrograms: true,
  async install(ctx: Context): Promise<ModelState> {
    return stateOf(await reconcile(ctx, 'policy programs, IP sets and endpoints'));
  },
  async attachPod(ctx, pod) {
    const agent = agents.get(ctx.topology)?.get(pod.node.name);
    if (!agent) throw new CalicoEbpfModelError('attachPod() before install() on this topology; install the policy set first');
    if (agent.ifindexes.has(podKey(pod))) return;
    await attachWorkload(ctx.runner, agent, pod);
  },
  async update(ctx: Context): Promise<ModelUpdateReport> {
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
