// Calico-style iptables data plane model: renders one node's raw, mangle and filter chains and its ipsets from
// the resolved endpoint policies, in the layout Felix v3.30.3 writes (projectcalico/calico, read at that tag).
// Each piece names the Felix file and function it follows, so the next upstream change is easy to track:
//
//   raw    PREROUTING ─► cali-PREROUTING   (clear marks, mark cali+ traffic, rpfilter)    rules-static.ts
//   mangle PREROUTING ─► cali-PREROUTING   (conntrack ESTABLISHED accept first)            rules-static.ts
//   filter FORWARD    ─► cali-FORWARD ─► cali-from-wl-dispatch ─goto─► cali-fw-<iface>     rules-static.ts
//                                     ─► cali-to-wl-dispatch   ─goto─► cali-tw-<iface>     rules-endpoint.ts
//          cali-tw-<iface> ─► cali-gi-<group> ─► cali-pi-<policy>   (one group per run of same-selector
//          policies; inside it a jump per policy, mark-guarded except the first of every 5, and "Return on
//          verdict" every 5: returnStride)                                                 rules-endpoint.ts
//          cali-pi-<policy>: one rule per K8s peer × protocol, trailing RETURN stripped     rules-policy.ts
//   every rule carries Felix's `cali:<hash>` comment                                      iptables-syntax.ts
//
// Pure: returns chains as data plus their rendered lines; install.ts diffs and applies them.
import type { EndpointDirection, EndpointPolicy, PodInfo } from '../../../policy/types.js';
import { localWorkloads, podProfiles } from './felix.js';
import { MAX_CHAIN_NAME, renderChain, type IptChain, type TableName } from './iptables-syntax.js';
import { CHAIN_FROM_WL_DISPATCH, CHAIN_TO_WL_DISPATCH, dispatchChains, hooks, staticFilterChains, staticMangleChains, staticRawChains } from './rules-static.js';
import { CalicoCompileError, PolicyChains, fail, type IpsetTable } from './rules-policy.js';
import { endpointChain, groupPolicies, policyGroupChain, profileChain } from './rules-endpoint.js';

export { MAX_CHAIN_NAME, MAX_IPSET_NAME, TABLES, renderChain, ruleHashes, type IptChain, type IptRule, type TableName } from './iptables-syntax.js';
export { CHAIN_FORWARD, CHAIN_PREROUTING, CHAIN_FROM_WL_DISPATCH, CHAIN_TO_WL_DISPATCH, MARK_ACCEPT, MARK_PASS, MARK_DROP, MARK_SCRATCH0, MARK_SCRATCH1 } from './rules-static.js';
export { CalicoCompileError, ipsetName, lengthLimitedId, policyChainName, protocolPorts, splitPortList } from './rules-policy.js';

/** The Felix release whose iptables layout this file reproduces. */
export const FELIX_LAYOUT_VERSION = 'v3.30.3';
/** felix/config/config_params.go MaxIpsetSize default. */
export const IPSET_MAXELEM = 1_048_576;

// ---- the node ----

export interface CompiledTable {
  table: TableName;
  /** Felix's rules in the kernel chains (PREROUTING/FORWARD), rendered. */
  hooks: string[];
  /** Every cali-* chain of the table, in declaration order, with its rendered rules. */
  chains: Map<string, string[]>;
}

export interface CalicoNodeCounts {
  /** Rules over all tables, hooks included. */
  rules: number;
  /** cali-* chains declared over all tables. */
  chains: number;
  ipsets: number;
  ipsetMembers: number;
  /** cali-gi-/cali-go- group chains. */
  groupChains: number;
}

export interface CalicoNodeRules {
  node: string;
  tables: CompiledTable[];
  /** Selector sets: name → members (sorted CIDRs). */
  ipsets: Map<string, string[]>;
  counts: CalicoNodeCounts;
  /**
   * Rules a new connection walks per policy in the largest ingress policy list of the node (no policy
   * matching until the last): endpoint-chain jumps and returns, group-chain rules, policy-chain rules.
   */
  rulesTraversedPerPolicy: number;
  /** Input for `iptables-restore --noflush` on a clean node (install.ts diffs for anything else). */
  iptablesRestore: string;
  /** Input for `ipset restore` on a clean node. */
  ipsetRestore: string;
}

export function ipsetCreateLine(name: string): string {
  // felix/ipsets/ipsets.go writeUpdates: no hashsize, so the kernel default (1024 buckets) applies.
  return `create ${name} hash:net family inet maxelem ${IPSET_MAXELEM}`;
}

/** Full restore text for the given tables: declarations (which flush with --noflush), hooks, rules. */
export function renderTables(tables: readonly CompiledTable[], withHooks: boolean): string {
  const lines: string[] = [];
  for (const t of tables) {
    lines.push(`*${t.table}`);
    for (const name of t.chains.keys()) lines.push(`:${name} - [0:0]`);
    if (withHooks) lines.push(...t.hooks);
    for (const rules of t.chains.values()) lines.push(...rules);
    lines.push('COMMIT');
  }
  lines.push('');
  return lines.join('\n');
}

/** `ipset restore` input on a clean node, as felix/ipsets/ipsets.go writes it: each set's create, then its members; COMMIT. */
export function renderIpsets(sets: ReadonlyMap<string, readonly string[]>): string {
  const lines: string[] = [];
  for (const name of [...sets.keys()].sort()) lines.push(ipsetCreateLine(name), ...sets.get(name)!.map((m) => `add ${name} ${m}`));
  lines.push('COMMIT', '');
  return lines.join('\n');
}

/**
 * Compiles one node's Calico state from the endpoint policies of its pods. Endpoints on other nodes and
 * hostNetwork pods (no workload interface) are ignored.
 */
export function compileCalicoNode(node: string, endpoints: EndpointPolicy[], ifaceOf: (pod: PodInfo) => string): CalicoNodeRules {
  const local = localWorkloads(node, endpoints, ifaceOf, fail, 'the cali+ dispatch only sees those');

  // Which local endpoints each policy selects, per direction: the stand-in for its selector.
  const selection = { ingress: new Map<string, string[]>(), egress: new Map<string, string[]>() };
  for (const { endpoint, iface } of local) {
    for (const dir of ['ingress', 'egress'] as const) {
      for (const p of endpoint[dir].policies) selection[dir].set(p.policy, [...(selection[dir].get(p.policy) ?? []), iface]);
    }
  }

  const ipsets: IpsetTable = { sets: new Map() };
  const policyChains = { ingress: new PolicyChains('ingress', ipsets), egress: new PolicyChains('egress', ipsets) };
  const groupChains = new Map<string, IptChain>();
  const endpointChains: IptChain[] = [];
  const profileChains = new Map<string, IptChain>();
  let worstWalk = { rules: 0, policies: 0 };

  for (const { endpoint, iface } of local) {
    const profiles = podProfiles(endpoint.pod.namespace);
    for (const dir of ['ingress', 'egress'] as const) {
      const d: EndpointDirection = endpoint[dir];
      const groups = d.isolated ? groupPolicies(dir, d.policies, policyChains[dir], (p) => selection[dir].get(p.policy)!.join(',')) : [];
      const targets = groups.map((g) => {
        // ShouldBeInlined: a group of one is jumped to directly.
        if (g.chains.length === 1) return { chain: g.chains[0]!, inlined: true };
        const chain = policyGroupChain(g);
        groupChains.set(chain.name, chain);
        return { chain: chain.name, inlined: false };
      });
      const profileNames = profiles.map((p) => {
        const chain = profileChain(dir, p.id, p.allow);
        profileChains.set(chain.name, chain);
        return chain.name;
      });
      endpointChains.push(endpointChain(`${dir === 'ingress' ? 'cali-tw-' : 'cali-fw-'}${iface}`, dir, targets, profileNames));
      if (dir === 'ingress' && d.policies.length > worstWalk.policies) {
        let rules = 2 * targets.length; // jump + "Return if policy accepted" in the endpoint chain
        for (const t of targets) {
          if (!t.inlined) rules += groupChains.get(t.chain)!.rules.length;
        }
        for (const p of d.policies) rules += policyChains.ingress.chains.get(policyChains.ingress.chainFor(p))!.rules.length;
        worstWalk = { rules, policies: d.policies.length };
      }
    }
  }
  // Felix orders iptables chain writes by name; endpoint chains sorted by interface, tw before fw.
  endpointChains.sort((a, b) => {
    const ia = a.name.slice(8);
    const ib = b.name.slice(8);
    return ia < ib ? -1 : ia > ib ? 1 : a.name.startsWith('cali-tw-') ? -1 : 1;
  });

  const ifaces = local.map((l) => l.iface);
  const filterChains: IptChain[] = [
    ...staticFilterChains(),
    ...dispatchChains(CHAIN_FROM_WL_DISPATCH, ifaces, 'from'),
    ...dispatchChains(CHAIN_TO_WL_DISPATCH, ifaces, 'to'),
    ...endpointChains,
    ...[...groupChains.values()],
    ...[...profileChains.values()],
    ...policyChains.ingress.chains.values(),
    ...policyChains.egress.chains.values(),
  ];
  for (const c of filterChains) {
    if (c.name.length > MAX_CHAIN_NAME) throw new CalicoCompileError(`chain name "${c.name}" is longer than ${MAX_CHAIN_NAME} characters`);
  }
  const toTable = (table: TableName, chains: IptChain[]): CompiledTable => ({
    table,
    hooks: hooks(table),
    chains: new Map(chains.map((c) => [c.name, renderChain(c)])),
  });
  const tables = [toTable('raw', staticRawChains()), toTable('mangle', staticMangleChains()), toTable('filter', filterChains)];
  const sortedSets = new Map([...ipsets.sets.entries()].sort((a, b) => (a[0] < b[0] ? -1 : 1)));
  let rules = 0;
  let chains = 0;
  for (const t of tables) {
    rules += t.hooks.length;
    chains += t.chains.size;
    for (const r of t.chains.values()) rules += r.length;
  }
  return {
    node,
    tables,
    ipsets: sortedSets,
    counts: {
      rules,
      chains,
      ipsets: sortedSets.size,
      ipsetMembers: [...sortedSets.values()].reduce((a, m) => a + m.length, 0),
      groupChains: groupChains.size,
    },
    rulesTraversedPerPolicy: worstWalk.policies ? Math.round((worstWalk.rules / worstWalk.policies) * 1000) / 1000 : 0,
    iptablesRestore: renderTables(tables, true),
    ipsetRestore: renderIpsets(sortedSets),
  };
}
