// The Calico nftables model as a LocalModel: routed cali* veths (as the calico model), and per node one `calico`
// nft table compiled from the resolved policy set with Felix v3.30's nftables layout, written as Felix writes it
// (apply.ts): IP sets in a transaction of their own, then — after re-listing every chain and rule of the table if it
// was written since it was last read — the table, then set deletions. install() starts each node from no table;
// update() keeps the installed plan and what the table holds, and writes only the difference.
import type { NftSelectorSets } from '../../../config/schema.js';
import { BenchError } from '../../../errors.js';
import type { CommandResult } from '../../../exec/runner.js';
import { runWrite, writeTimeoutMs, type WriteWork } from '../calico/agent-write.js';
import { hostInterfaceOf, type Topology } from '../topology.js';
import type { LocalModel, ModelContext, ModelSettings, ModelState, ModelUpdateReport } from '../types.js';
import { planSetDeletions, planSetWrite, planTableWrite, type NftWrite } from './apply.js';
import { FELIX_VERSION, compileNftNode, selectorKeys, type NftNodePlan, type NftRule } from './compile.js';
import { LIST_CHAINS_ARGV, LIST_TABLE_ARGV, emptyTableView, isNotFound, parseTableListing, type TableView } from './listing.js';
import { renderTableReset } from './render.js';

/** What this model reads of a run's settings. */
export type FelixNftSettings = Pick<ModelSettings, 'nftSelectorSets'>;
type Context = ModelContext<FelixNftSettings>;

/**
 * felix/nftables/table.go defaultTimeout: Felix runs every nft call (a transaction, a listing) under this context
 * timeout; a call that takes longer is killed, and Felix retries (and after repeated failures, panics).
 */
export const FELIX_NFT_TIMEOUT_MS = 30_000;

interface NodeState {
  plan: NftNodePlan;
  view: TableView;
}

/** What install() wrote, per run (keyed by run id, so a topology that grew a pod is the same run); cleanup() forgets it. */
const installed = new Map<string, { kind: NftSelectorSets; nodes: Map<string, NodeState> }>();

/** Time spent per kind of step, and the nft calls (writes and listings) a real Felix would have cut off at its 30 s timeout. */
interface Timing {
  compileMs: number;
  setWriteMs: number;
  listMs: number;
  tableWriteMs: number;
  callsOverFelixTimeout: number;
}

function compileAll(ctx: Context): { plans: Map<string, NftNodePlan>; compileMs: number } {
  const t = performance.now();
  const ifaceOf = hostInterfaceOf(ctx.topology);
  const selectorOf = selectorKeys(ctx.endpoints);
  const plans = new Map<string, NftNodePlan>();
  for (const node of ctx.topology.nodes) plans.set(node.name, compileNftNode(node.name, ctx.endpoints, ifaceOf, { selectorOf }));
  return { plans, compileMs: performance.now() - t };
}

export function nftModelState(plans: Iterable<NftNodePlan>, kind: NftSelectorSets, timing: Timing): ModelState {
  let rules = 0;
  let chains = 0;
  let sets = 0;
  let setElements = 0;
  let mapElements = 0;
  let maxRulesPerNode = 0;
  let perPolicy = 0;
  let maxPolicies = 0;
  for (const p of plans) {
    rules += p.counts.rules;
    chains += p.counts.chains;
    sets += p.counts.sets;
    setElements += p.counts.setElements;
    mapElements += p.counts.mapElements;
    maxRulesPerNode = Math.max(maxRulesPerNode, p.counts.rules);
    if (p.counts.maxPoliciesPerEndpoint > maxPolicies) {
      maxPolicies = p.counts.maxPoliciesPerEndpoint;
      perPolicy = p.counts.rulesTraversedPerPolicy;
    }
  }
  return {
    felixVersion: FELIX_VERSION,
    nftSelectorSets: kind,
    nftRules: rules,
    nftRulesMaxPerNode: maxRulesPerNode,
    chains,
    sets,
    setElements,
    mapElements,
    rulesTraversedPerPolicy: perPolicy,
    compileMs: Math.round(timing.compileMs),
    nftApplyMs: Math.round(timing.setWriteMs + timing.listMs + timing.tableWriteMs),
    nftSetWriteMs: Math.round(timing.setWriteMs),
    nftListMs: Math.round(timing.listMs),
    nftTableWriteMs: Math.round(timing.tableWriteMs),
    nftCallsOverFelixTimeout: timing.callsOverFelixTimeout,
  };
}

/** One node's writes, in Felix's order, with the timing they add to. */
class NodeWriter {
  constructor(
    private readonly ctx: Context,
    private readonly node: { name: string; netns: string },
    private readonly timing: Timing,
  ) {}

  async write(w: NftWrite | undefined, what: string, into: 'setWriteMs' | 'tableWriteMs'): Promise<void> {
    if (!w) return;
    const purpose = `${what} on ${this.node.name}`;
    const spec = { argv: ['nft', '-f', '-'], netns: this.node.netns, input: w.text, timeoutMs: writeTimeoutMs(w.work), purpose };
    const r = await runWrite(this.ctx.runner, spec, this.ctx.progress, purpose);
    this.timing[into] += r.durationMs;
    if (r.durationMs > FELIX_NFT_TIMEOUT_MS) this.timing.callsOverFelixTimeout++;
  }

  /** table.go loadDataplaneState: the chains, then every rule of the table; a dry run learns nothing from it. */
  async relist(view: TableView, plan: NftNodePlan): Promise<TableView> {
    // The kernel finds each set by name among all sets to dump its elements, and resumes a rule dump from the
    // table's first chain for every buffer it fills.
    const work: WriteWork = { lines: plan.counts.rules + plan.counts.setElements, nameComparisons: plan.counts.sets ** 2 + (plan.counts.chains * plan.counts.rules) / 20 };
    const list = async (argv: string[], what: string): Promise<CommandResult> => {
      const purpose = `re-list the Calico nftables model's ${what} on ${this.node.name} (Felix reads the table back before writing to it again)`;
      const r = await runWrite(this.ctx.runner, { argv, netns: this.node.netns, timeoutMs: writeTimeoutMs(work), allowFailure: true, purpose }, this.ctx.progress, purpose);
      this.timing.listMs += r.durationMs;
      if (r.durationMs > FELIX_NFT_TIMEOUT_MS) this.timing.callsOverFelixTimeout++;
      if (r.exitCode !== 0 && !isNotFound(r.stderr)) throw new BenchError('command', `${purpose}: ${argv.join(' ')} failed (exit code ${r.exitCode}): ${r.stderr.trim().split('\n').at(-1) ?? ''}`);
      return r;
    };
    const chains = await list(LIST_CHAINS_ARGV, 'chains');
    const table = await list(LIST_TABLE_ARGV, 'table');
    if (this.ctx.runner.dryRun) return { chains: view.chains, stale: false };
    const listed = parseTableListing(chains.exitCode === 0 ? chains.stdout : '', table.exitCode === 0 ? table.stdout : '');
    // Parsed here; the runner's log keeps how much was read rather than megabytes of JSON per update.
    for (const r of [chains, table]) r.stdout = `(${r.stdout.length} bytes of nft JSON, parsed)`;
    return { chains: listed, stale: false };
  }
}

/** Nothing of the node's table, sets or maps differs: its Felix is not woken at all. */
function unchanged(a: NftNodePlan, b: NftNodePlan): boolean {
  const rule = (r: NftRule) => `${r.body}\u0000${r.comments.join('\u0000')}`;
  return (
    a.chains.length === b.chains.length &&
    a.chains.every((c, i) => c.name === b.chains[i]!.name && c.rules.length === b.chains[i]!.rules.length && c.rules.every((r, j) => rule(r) === rule(b.chains[i]!.rules[j]!))) &&
    JSON.stringify([a.sets, a.maps]) === JSON.stringify([b.sets, b.maps])
  );
}

/** Felix's apply() for one node: sets, the table (re-listed first when stale), set deletions. */
async function applyNode(ctx: Context, node: { name: string; netns: string }, before: NodeState | undefined, plan: NftNodePlan, timing: Timing, reset?: string[]): Promise<{ state: NodeState; changed: Record<string, number> }> {
  if (before && unchanged(before.plan, plan)) return { state: { plan, view: before.view }, changed: {} };
  const kind = ctx.settings.nftSelectorSets;
  const writer = new NodeWriter(ctx, node, timing);
  const sets = planSetWrite(before?.plan, plan, kind, reset);
  await writer.write(sets.write, `Calico nftables model sets (+${sets.counts.setsAdded} sets, +${sets.counts.setElementsAdded}/-${sets.counts.setElementsDeleted} elements, ${kind})`, 'setWriteMs');
  let view = before?.view ?? emptyTableView();
  if (view.stale) view = await writer.relist(view, plan);
  const table = planTableWrite(before?.plan, plan, view.chains, kind);
  await writer.write(table.write, `Calico nftables model table (${table.counts.chainsAdded} chains added, ${table.counts.chainsRewritten} rewritten, ${table.counts.chainsDeleted} deleted, ${table.counts.rulesWritten} rules)`, 'tableWriteMs');
  if (table.write) view = { chains: table.after, stale: true };
  const deletions = planSetDeletions(before?.plan, plan);
  for (const d of deletions) await writer.write(d.write, `remove ${d.sets} unused Calico nftables model sets`, 'setWriteMs');
  const setsDeleted = deletions.reduce((a, d) => a + d.sets, 0);
  return { state: { plan, view }, changed: { ...sets.counts, ...table.counts, setsDeleted } };
}

const noTiming = (compileMs: number): Timing => ({ compileMs, setWriteMs: 0, listMs: 0, tableWriteMs: 0, callsOverFelixTimeout: 0 });

export const calicoNftablesModel: LocalModel<FelixNftSettings> = {
  cni: 'calico-nftables',
  name: 'Calico-style nftables model',
  description:
    `Calico nftables model on the local kernel (Felix ${FELIX_VERSION} nftables mode layout; the mode is tech preview in v3.30, GA in v3.31): ` +
    'routed cali* veths with proxy ARP; one "ip calico" table per node; ' +
    'filter-FORWARD → filter-cali-FORWARD (host-endpoint and CIDR-block jumps, empty) → ifname:verdict dispatch maps → filter-cali-tw-/fw-<iface> → policy-group chains (filter-cali-gi-) → filter-cali-pi-/po-<tier/policy>, ' +
    "selectors as named nft sets (ipv4_addr with Felix's interval flag, or hash sets when asked), accept mark 0x10000, counter and cali:<hash> comment on every rule, namespace profiles; " +
    'written as Felix writes: sets in their own transaction, the table re-listed after every write before the next, rules replaced by handle, unused sets deleted last. ' +
    'Left out: raw/mangle/nat chains, host endpoints, failsafes, kube-proxy/Services, IPv6, flow logs',
  enforcesPolicy: true,
  attachment: 'routed',
  hostIfPrefix: 'cali',

  async install(ctx: Context): Promise<ModelState> {
    const { plans, compileMs } = compileAll(ctx);
    const timing = noTiming(compileMs);
    const nodes = new Map<string, NodeState>();
    for (const node of ctx.topology.nodes) {
      const r = await applyNode(ctx, node, undefined, plans.get(node.name)!, timing, renderTableReset(ctx.topology.runId));
      nodes.set(node.name, r.state);
    }
    installed.set(ctx.topology.runId, { kind: ctx.settings.nftSelectorSets, nodes });
    return nftModelState(plans.values(), ctx.settings.nftSelectorSets, timing);
  },

  async update(ctx: Context): Promise<ModelUpdateReport> {
    const current = installed.get(ctx.topology.runId);
    if (!current) throw new BenchError('internal', `calico-nftables update: nothing installed on topology ${ctx.topology.runId} yet; call install() first`);
    if (current.kind !== ctx.settings.nftSelectorSets) {
      throw new BenchError('usage', `calico-nftables: installed with ${current.kind} selector sets, asked to update with ${ctx.settings.nftSelectorSets}; install again with --nft-selector-sets ${ctx.settings.nftSelectorSets} instead`);
    }
    const started = performance.now();
    const { plans, compileMs } = compileAll(ctx);
    const timing = noTiming(compileMs);
    const changed: Record<string, number> = {};
    for (const node of ctx.topology.nodes) {
      const before = current.nodes.get(node.name);
      // A node that joined after install gets its whole table, from no table.
      const r = await applyNode(ctx, node, before, plans.get(node.name)!, timing, before ? undefined : renderTableReset(ctx.topology.runId));
      if (!before) changed.nodesInstalled = (changed.nodesInstalled ?? 0) + 1;
      for (const [k, v] of Object.entries(r.changed)) changed[k] = (changed[k] ?? 0) + v;
      // Recorded node by node, so a failure halfway leaves an accurate base for the next update.
      current.nodes.set(node.name, r.state);
    }
    const state = nftModelState(plans.values(), current.kind, timing);
    return { agentMs: performance.now() - started, compileMs, applyMs: Number(state.nftApplyMs), changed, state };
  },

  // The tables go with the node namespaces; only the remembered plan is left to drop.
  async cleanup(ctx: { topology: Topology }): Promise<void> {
    installed.delete(ctx.topology.runId);
  },
};
