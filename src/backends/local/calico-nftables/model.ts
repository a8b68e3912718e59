// The Calico nftables model as a LocalModel: routed cali* veths (as the calico model), and per node one `calico`
// nft table compiled from the resolved policy set with Felix v3.30's nftables layout, written in one `nft -f`
// transaction. update() keeps the installed plan per topology and writes only the difference, as Felix does.
import type { Runner } from '../../../exec/runner.js';
import { hostInterfaceOf } from '../topology.js';
import type { LocalModel, ModelContext, ModelState, ModelUpdateReport } from '../types.js';
import { FELIX_VERSION, compileNftNode, renderNodeInstall, selectorKeys, type NftNodePlan } from './compile.js';
import { diffNodePlans, type NftDiffCounts } from './diff.js';

const NFT_TIMEOUT_MS = 120_000;

/**
 * What install() wrote, per run (keyed by run id, so a caller may hand update() a new Topology object with
 * pods added), so update() can write only the difference; cleanup() forgets it.
 */
const installed = new Map<string, Map<string, NftNodePlan>>();

interface Compiled {
  plans: Map<string, NftNodePlan>;
  compileMs: number;
}

function compileAll(ctx: ModelContext): Compiled {
  const t = performance.now();
  const ifaceOf = hostInterfaceOf(ctx.topology);
  const selectorOf = selectorKeys(ctx.endpoints);
  const plans = new Map<string, NftNodePlan>();
  for (const node of ctx.topology.nodes) plans.set(node.name, compileNftNode(node.name, ctx.endpoints, ifaceOf, { selectorOf }));
  return { plans, compileMs: performance.now() - t };
}

export function nftModelState(plans: Map<string, NftNodePlan>, compileMs: number, nftApplyMs: number): ModelState {
  let rules = 0;
  let chains = 0;
  let sets = 0;
  let setElements = 0;
  let mapElements = 0;
  let maxRulesPerNode = 0;
  let perPolicy = 0;
  let maxPolicies = 0;
  for (const p of plans.values()) {
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
    nftRules: rules,
    nftRulesMaxPerNode: maxRulesPerNode,
    chains,
    sets,
    setElements,
    mapElements,
    rulesTraversedPerPolicy: perPolicy,
    compileMs: Math.round(compileMs),
    nftApplyMs: Math.round(nftApplyMs),
  };
}

async function applyNft(runner: Runner, netns: string, text: string, purpose: string): Promise<number> {
  const r = await runner.run({ argv: ['nft', '-f', '-'], netns, input: text, timeoutMs: NFT_TIMEOUT_MS, purpose });
  return r.durationMs;
}

export const calicoNftablesModel: LocalModel = {
  cni: 'calico-nftables',
  name: 'Calico-style nftables model',
  description:
    `Calico nftables model on the local kernel (Felix ${FELIX_VERSION} nftables mode layout; the mode is tech preview in v3.30, GA in v3.31): ` +
    'routed cali* veths with proxy ARP; one "ip calico" table per node written in one nft -f transaction; ' +
    'filter-FORWARD → filter-cali-FORWARD → ifname:verdict dispatch maps → filter-cali-tw-/fw-<iface> → policy-group chains (filter-cali-gi-) → filter-cali-pi-/po-<tier/policy>, ' +
    'selectors as named nft sets (ipv4_addr hash sets; Felix adds the interval flag), accept mark 0x10000, counter and cali:<hash> comment on every rule, namespace profiles; ' +
    'incremental updates rewrite only changed chains and set/map elements. Left out: raw/mangle/nat chains, host endpoints, failsafes, kube-proxy/Services, IPv6, flow logs',
  enforcesPolicy: true,
  attachment: 'routed',
  hostIfPrefix: 'cali',

  async install(ctx: ModelContext): Promise<ModelState> {
    const { plans, compileMs } = compileAll(ctx);
    let applyMs = 0;
    for (const node of ctx.topology.nodes) {
      const plan = plans.get(node.name)!;
      applyMs += await applyNft(ctx.runner, node.netns, renderNodeInstall(plan, ctx.topology.runId), `install Calico nftables model table on ${node.name} (${plan.counts.rules} rules, ${plan.counts.sets} sets)`);
    }
    installed.set(ctx.topology.runId, plans);
    return nftModelState(plans, compileMs, applyMs);
  },

  async update(ctx: ModelContext): Promise<ModelUpdateReport> {
    const current = installed.get(ctx.topology.runId);
    if (!current) throw new Error('calico-nftables update: nothing installed for this topology yet; call install() first');
    const started = performance.now();
    const { plans, compileMs } = compileAll(ctx);
    let applyMs = 0;
    const changed: Record<string, number> = {};
    const next = new Map(current);
    for (const node of ctx.topology.nodes) {
      const plan = plans.get(node.name)!;
      const before = current.get(node.name);
      let text: string;
      if (before) {
        const d = diffNodePlans(before, plan);
        text = d.transaction;
        for (const [k, v] of Object.entries(d.counts) as Array<[keyof NftDiffCounts, number]>) changed[k] = (changed[k] ?? 0) + v;
      } else {
        // A node that joined after install gets its whole table.
        text = renderNodeInstall(plan, ctx.topology.runId);
        changed.nodesInstalled = (changed.nodesInstalled ?? 0) + 1;
      }
      if (text) applyMs += await applyNft(ctx.runner, node.netns, text, `update Calico nftables model table on ${node.name}`);
      next.set(node.name, plan);
    }
    installed.set(ctx.topology.runId, next);
    const state = nftModelState(plans, compileMs, applyMs);
    return { agentMs: performance.now() - started, compileMs, applyMs, changed, state };
  },

  // The tables go with the node namespaces; only the remembered plan is left to drop.
  async cleanup(ctx: Pick<ModelContext, 'cleanupRunner' | 'topology'>): Promise<void> {
    installed.delete(ctx.topology.runId);
  },
};
