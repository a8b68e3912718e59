// Calico nftables data plane model: compiles one node's `calico` nft table from the resolved endpoint policies,
// laid out as Felix v3.30's nftables mode lays it out (felix/nftables + felix/rules with NFTables: true):
//
//   filter-FORWARD (hook forward) ─► filter-cali-FORWARD ─► filter-cali-from-hep-forward (empty: no host endpoints)
//                                                       ─► filter-cali-from-wl-dispatch ─vmap goto─► filter-cali-fw-<iface>
//                                                       ─► filter-cali-to-wl-dispatch   ─vmap goto─► filter-cali-tw-<iface>
//                                                       ─► filter-cali-to-hep-forward, filter-cali-cidr-block (empty)
//   filter-cali-tw-<iface> ─► filter-cali-gi-<group> (policies sharing a selector) ─► filter-cali-pi-<tier>/<policy> …
//   filter-FORWARD: accept if the accept mark (0x10000) is set, else set it
//
// One table per node (`ip calico`); every chain carries its Felix layer prefix `filter-`; selectors become nft sets
// (`cali40s-<id>`, ipv4_addr, with Felix's interval flag unless the run asks for hash sets); dispatch is one
// `ifname : verdict` map per direction; every rule with an action carries `counter` and a `cali:<hash>;` comment.
// Pure: returns the plan as data (layout.ts); render.ts writes it as `nft -f` text, apply.ts as Felix's writes.
import type { EndpointDirection, EndpointPolicy, PodInfo } from '../../../policy/types.js';
import { WORKLOAD_IFACE_PREFIX, localWorkloads, podProfiles } from '../calico/felix.js';
import {
  MARK_ACCEPT,
  MARK_ALL,
  MARK_PASS,
  MAX_NAME,
  VXLAN_PORT,
  NftCompileError,
  RETURN_STRIDE,
  b64,
  clearMark,
  endpointChainName,
  fail,
  groupChainName,
  layered,
  markClear,
  markNotClear,
  markSet,
  profileChainName,
  rule,
  setMark,
  type NftChain,
  type NftMap,
  type NftNodePlan,
  type NftRule,
} from './layout.js';
import { PolicyChains, SetTable } from './policy-rules.js';

export * from './layout.js';

export interface CompileOptions {
  /**
   * Felix groups consecutive policies with the same selector into one cali-gi-/cali-go- chain. The resolved input
   * has no selector text; by default the model uses the labels of the endpoints a policy selects (selectorKeys).
   */
  selectorOf?: (policyId: string, direction: 'ingress' | 'egress') => string;
}

/**
 * The stand-in for a policy's selector when grouping: the distinct (namespace, labels) of the endpoints it selects
 * in that direction. Like a selector, it does not change when another pod with the same labels appears.
 */
export function selectorKeys(endpoints: readonly EndpointPolicy[]): (policyId: string, direction: 'ingress' | 'egress') => string {
  const selected = { ingress: new Map<string, Set<string>>(), egress: new Map<string, Set<string>>() };
  for (const e of endpoints) {
    const labels = Object.keys(e.pod.labels).sort().map((k) => `${k}=${e.pod.labels[k]}`).join(',');
    const identity = `${e.pod.namespace}|${labels}`;
    for (const d of ['ingress', 'egress'] as const) {
      for (const p of e[d].policies) {
        const set = selected[d].get(p.policy) ?? new Set<string>();
        set.add(identity);
        selected[d].set(p.policy, set);
      }
    }
  }
  const keys = { ingress: new Map<string, string>(), egress: new Map<string, string>() };
  return (policyId, direction) => {
    let k = keys[direction].get(policyId);
    if (k === undefined) {
      k = b64([...(selected[direction].get(policyId) ?? [])].sort().join('\n'));
      keys[direction].set(policyId, k);
    }
    return k;
  };
}

interface PolicyEntry {
  /** The chain the endpoint chain jumps to: a group chain, or the policy chain when inlined. */
  target: string;
  policies: string[];
}

function groupPolicies(
  direction: 'ingress' | 'egress',
  d: EndpointDirection,
  chains: PolicyChains,
  selectorOf: (id: string, dir: 'ingress' | 'egress') => string,
  groups: Map<string, NftChain>,
): PolicyEntry[] {
  const runs: Array<{ selector: string; chains: string[] }> = [];
  for (const p of d.policies) {
    const selector = selectorOf(p.policy, direction);
    const chain = chains.chainFor(p);
    const last = runs[runs.length - 1];
    if (last && last.selector === selector) last.chains.push(chain);
    else runs.push({ selector, chains: [chain] });
  }
  return runs.map((run) => {
    if (run.chains.length === 1) return { target: run.chains[0]!, policies: run.chains };
    const name = groupChainName(direction, run.selector, run.chains);
    if (!groups.has(name)) {
      const rules: NftRule[] = [];
      run.chains.forEach((c, i) => {
        if (i !== 0 && i % RETURN_STRIDE === 0) rules.push(rule(markNotClear(MARK_PASS | MARK_ACCEPT), 'return', ['Return on verdict']));
        rules.push(rule(i % RETURN_STRIDE === 0 ? '' : markClear(MARK_PASS | MARK_ACCEPT), `jump ${c}`, [], c));
      });
      groups.set(name, { name, rules });
    }
    return { target: name, policies: run.chains };
  });
}

function profileChains(namespace: string, direction: 'ingress' | 'egress'): NftChain[] {
  // Calico's namespace profile allows everything; the service-account profile has no rules.
  return podProfiles(namespace).map(({ id, allow }) => ({
    name: profileChainName(direction, id),
    rules: [rule('', allow ? setMark(MARK_ACCEPT) : undefined, [`Profile ${id} ${direction}`])],
  }));
}

function endpointChain(name: string, direction: 'ingress' | 'egress', d: EndpointDirection, entries: PolicyEntry[], profiles: NftChain[]): NftChain {
  const rules: NftRule[] = [
    // Established and related packets never see policy: only a connection's first packet pays.
    rule('ct state related,established', 'accept'),
    rule('ct state invalid', 'drop'),
    rule('', clearMark(MARK_ACCEPT | MARK_PASS)),
  ];
  if (direction === 'egress') {
    rules.push(rule(`meta l4proto udp udp dport { ${VXLAN_PORT} }`, 'drop', ['drop VXLAN encapped packets originating in workloads']));
    rules.push(rule('meta l4proto 4', 'drop', ['drop IPinIP encapped packets originating in workloads']));
  }
  if (d.isolated && entries.length > 0) {
    rules.push(rule('', clearMark(MARK_PASS), ['Start of tier default']));
    for (const e of entries) {
      rules.push(rule(markClear(MARK_PASS), `jump ${e.target}`, [], e.target));
      rules.push(rule(markSet(MARK_ACCEPT), 'return', ['Return if policy accepted']));
    }
    rules.push(rule(markClear(MARK_PASS), 'drop', ['End of tier default. drop if no policies passed packet']));
  }
  for (const p of profiles) {
    rules.push(rule('', `jump ${p.name}`, [], p.name));
    rules.push(rule(markSet(MARK_ACCEPT), 'return', ['Return if profile accepted']));
  }
  rules.push(rule('', 'drop', ['drop if no profiles matched']));
  return { name, rules };
}

export const CHAIN_BASE_FORWARD = layered('FORWARD');
export const CHAIN_FORWARD = layered('cali-FORWARD');
export const CHAIN_FROM_WL_DISPATCH = layered('cali-from-wl-dispatch');
export const CHAIN_TO_WL_DISPATCH = layered('cali-to-wl-dispatch');
export const MAP_FROM_WL_DISPATCH = layered('cali-from-wl-dispatch');
export const MAP_TO_WL_DISPATCH = layered('cali-to-wl-dispatch');
// felix/rules/rule_defs.go: host-endpoint forward dispatch and the service-CIDR loop block, empty without host
// endpoints or service CIDRs to block, but jumped to from cali-FORWARD all the same.
export const CHAIN_FROM_HEP_FORWARD = layered('cali-from-hep-forward');
export const CHAIN_TO_HEP_FORWARD = layered('cali-to-hep-forward');
export const CHAIN_CIDR_BLOCK = layered('cali-cidr-block');

/**
 * felix/rules/static.go StaticFilterForwardChains and StaticFilterForwardAppendRules in nftables mode: the hooked
 * filter-FORWARD jumps to filter-cali-FORWARD (inserted) and accepts on the accept mark or sets it (appended);
 * filter-cali-FORWARD clears the other mark bits, runs host-endpoint forward policy for packets not already
 * accepted, dispatches workload traffic both ways, then to-host-endpoint policy and the CIDR block.
 */
function staticForwardChains(): NftChain[] {
  const wildcard = `"${WORKLOAD_IFACE_PREFIX}*"`;
  return [
    {
      name: CHAIN_BASE_FORWARD,
      hook: { type: 'filter', hook: 'forward', priority: 0 },
      rules: [rule('', `jump ${CHAIN_FORWARD}`, [], CHAIN_FORWARD), rule(markSet(MARK_ACCEPT), 'accept', ['Policy explicitly accepted packet.']), rule('', setMark(MARK_ACCEPT))],
      appendsFrom: 1,
    },
    {
      name: CHAIN_FORWARD,
      rules: [
        // Clear Calico's mark bits except accept (the raw/mangle chains would use it to talk to this one).
        rule('', clearMark(MARK_ALL & ~MARK_ACCEPT)),
        rule(markClear(MARK_ACCEPT), `jump ${CHAIN_FROM_HEP_FORWARD}`, [], CHAIN_FROM_HEP_FORWARD),
        rule(`iifname ${wildcard}`, `jump ${CHAIN_FROM_WL_DISPATCH}`, [], CHAIN_FROM_WL_DISPATCH),
        rule(`oifname ${wildcard}`, `jump ${CHAIN_TO_WL_DISPATCH}`, [], CHAIN_TO_WL_DISPATCH),
        rule('', `jump ${CHAIN_TO_HEP_FORWARD}`, [], CHAIN_TO_HEP_FORWARD),
        rule('', `jump ${CHAIN_CIDR_BLOCK}`, [], CHAIN_CIDR_BLOCK),
      ],
    },
    { name: CHAIN_FROM_HEP_FORWARD, rules: [] },
    { name: CHAIN_TO_HEP_FORWARD, rules: [] },
    { name: CHAIN_CIDR_BLOCK, rules: [] },
  ];
}

/** Rules a no-match walk of `chain` evaluates, descending into jumps. */
function walk(chain: string, byName: Map<string, NftChain>, memo: Map<string, number>): number {
  const known = memo.get(chain);
  if (known !== undefined) return known;
  let n = 0;
  for (const r of byName.get(chain)?.rules ?? []) n += 1 + (r.jump ? walk(r.jump, byName, memo) : 0);
  memo.set(chain, n);
  return n;
}

/**
 * Compiles one node's `calico` table from the endpoint policies of its pods. Endpoints on other nodes and
 * hostNetwork pods (no workload interface) are ignored.
 */
export function compileNftNode(node: string, endpoints: readonly EndpointPolicy[], ifaceOf: (pod: PodInfo) => string, opts: CompileOptions = {}): NftNodePlan {
  const selectorOf = opts.selectorOf ?? selectorKeys(endpoints);
  const local = localWorkloads(node, endpoints, ifaceOf, fail, "Felix's cali* workload prefix");

  const sets = new SetTable();
  const policyChains = { ingress: new PolicyChains('ingress', sets), egress: new PolicyChains('egress', sets) };
  const groups = new Map<string, NftChain>();
  const profiles = new Map<string, NftChain>();
  const endpointChains: NftChain[] = [];
  const toMap: Array<[string, string]> = [];
  const fromMap: Array<[string, string]> = [];
  let maxPolicies = 0;
  let perPolicy = 0;
  const byName = new Map<string, NftChain>();
  const pending: Array<{ entries: PolicyEntry[]; count: number }> = [];

  for (const { endpoint, iface } of local) {
    for (const direction of ['ingress', 'egress'] as const) {
      const d = endpoint[direction];
      const entries = d.isolated ? groupPolicies(direction, d, policyChains[direction], selectorOf, groups) : [];
      const prof = profileChains(endpoint.pod.namespace, direction);
      for (const p of prof) profiles.set(p.name, p);
      const name = endpointChainName(direction, iface);
      endpointChains.push(endpointChain(name, direction, d, entries, prof));
      (direction === 'ingress' ? toMap : fromMap).push([iface, `goto ${name}`]);
      if (d.isolated) pending.push({ entries, count: d.policies.length });
    }
  }

  // Dispatch: one verdict-map lookup; an unknown cali* interface is dropped, as Felix does until it knows the pod.
  const fromDispatch: NftChain = { name: CHAIN_FROM_WL_DISPATCH, rules: [rule(`iifname vmap @${MAP_FROM_WL_DISPATCH}`, undefined), rule('', 'drop', ['Unknown interface'])] };
  const toDispatch: NftChain = { name: CHAIN_TO_WL_DISPATCH, rules: [rule(`oifname vmap @${MAP_TO_WL_DISPATCH}`, undefined), rule('', 'drop', ['Unknown interface'])] };

  const chains = [
    ...staticForwardChains(),
    fromDispatch,
    toDispatch,
    ...endpointChains,
    ...[...groups.values()],
    ...[...policyChains.ingress.chains.values()],
    ...[...policyChains.egress.chains.values()],
    ...[...profiles.values()].sort((a, b) => (a.name < b.name ? -1 : 1)),
  ];
  for (const c of chains) {
    if (c.name.length > MAX_NAME) throw new NftCompileError(`chain name "${c.name}" is longer than ${MAX_NAME} characters`);
    byName.set(c.name, c);
  }

  // What a filler policy costs a new connection: the endpoint chain's jump and return, the group chain's jump
  // (and its return every RETURN_STRIDE policies), and the policy chain's rules, none of which match.
  const memo = new Map<string, number>();
  for (const { entries, count } of pending) {
    if (count === 0) continue;
    const walked = entries.reduce((acc, e) => acc + 2 + walk(e.target, byName, memo), 0);
    if (count > maxPolicies || (count === maxPolicies && walked / count > perPolicy)) {
      maxPolicies = count;
      perPolicy = walked / count;
    }
  }

  const setList = [...sets.byName.entries()].map(([name, elements]) => ({ name, elements })).sort((a, b) => (a.name < b.name ? -1 : 1));
  const maps: NftMap[] = [
    { name: MAP_FROM_WL_DISPATCH, elements: fromMap },
    { name: MAP_TO_WL_DISPATCH, elements: toMap },
  ];
  return {
    node,
    chains,
    sets: setList,
    maps,
    counts: {
      rules: chains.reduce((a, c) => a + c.rules.length, 0),
      chains: chains.length,
      sets: setList.length,
      setElements: setList.reduce((a, s) => a + s.elements.length, 0),
      mapElements: toMap.length + fromMap.length,
      rulesTraversedPerPolicy: Math.round(perPolicy * 1000) / 1000,
      maxPoliciesPerEndpoint: maxPolicies,
    },
  };
}
