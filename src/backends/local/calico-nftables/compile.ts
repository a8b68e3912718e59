// Calico nftables data plane model: renders one node's `calico` nft table from the resolved endpoint policies,
// laid out as Felix v3.30's nftables mode lays it out (felix/nftables + felix/rules with NFTables: true):
//
//   filter-FORWARD (hook forward) ─► filter-cali-FORWARD ─► filter-cali-from-wl-dispatch ─vmap goto─► filter-cali-fw-<iface>
//                                                       ─► filter-cali-to-wl-dispatch   ─vmap goto─► filter-cali-tw-<iface>
//   filter-cali-tw-<iface> ─► filter-cali-gi-<group> (policies sharing a selector) ─► filter-cali-pi-<tier>/<policy> …
//   filter-FORWARD: accept if the accept mark (0x10000) is set
//
// One table per node (`ip calico`); every chain carries its Felix layer prefix `filter-`; selectors become nft sets
// (`cali40s-<id>`, type ipv4_addr; Felix adds the interval flag, see renderSetDecl); dispatch is one
// `ifname : verdict` map per direction; every rule with an action carries `counter` and a `cali:<hash>;` comment.
// Pure: returns the plan as data; nft.ts renders it as `nft -f` text.
import { createHash } from 'node:crypto';
import type { EndpointDirection, EndpointPolicy, PodInfo, ResolvedPolicy } from '../../../policy/types.js';
import { TIER, WORKLOAD_IFACE_PREFIX, calicoPolicyName, chainedRuleHashes, felixRules, lengthLimitedId, localWorkloads, peerSetName, podProfiles, policyGroupUid, splitPortRanges, type FelixRule, type PortRange } from '../calico/felix.js';
import { BenchError } from '../../../errors.js';

export const FELIX_VERSION = 'v3.30.7';
export const TABLE_FAMILY = 'ip';
/** Felix's one root table (int_dataplane.go: nftables.NewTable("calico", 4, …)). */
export const TABLE_NAME = 'calico';
export const LAYER = 'filter';
/** knftables.NameLengthMax, Felix's nftables.MaxChainNameLength in v3.30. */
export const MAX_NAME = 256;
/** iptables' limit, which Felix still uses to size policy-group ids. */
const IPTABLES_MAX_CHAIN = 28;
export const MAX_COMMENT = 128;

/** Felix's default mark allocation from IptablesMarkMask 0xffff0000. */
export const MARK_ACCEPT = 0x10000;
export const MARK_PASS = 0x20000;
export const MARK_SCRATCH0 = 0x40000;
export const MARK_SCRATCH1 = 0x80000;
const MARK_ALL = MARK_ACCEPT | MARK_PASS | MARK_SCRATCH0 | MARK_SCRATCH1;
/** Felix's policy-group chains drop a "return on verdict" rule every this many jumps (endpoints.go). */
export const RETURN_STRIDE = 5;
/** Felix's default VXLAN port: encapsulated packets from workloads are dropped (AllowVXLANPacketsFromWorkloads=false). */
const VXLAN_PORT = 4789;
const RULE_HASH_PREFIX = 'cali:';

export class NftCompileError extends BenchError {
  constructor(message: string) {
    super('internal', message);
  }
}

// ---- plan as data ----

export interface NftRule {
  /** Match and action as nft syntax (no comment). */
  body: string;
  /** Felix's comments for the rule (joined after the `cali:<hash>;` id). */
  comments: string[];
  /** Chain this rule jumps to (not goto): what a packet that does not match anything walks into. */
  jump?: string;
}

export interface NftChain {
  name: string;
  rules: NftRule[];
  /** Base chain: hooked into netfilter. */
  hook?: { type: 'filter'; hook: 'forward'; priority: number; policy: 'accept' };
}

export interface NftSet {
  name: string;
  /** Members, sorted: IPv4 addresses (hash:net sets hold /32s as plain addresses). */
  elements: string[];
}

export interface NftMap {
  name: string;
  /** interface name → verdict ("goto <chain>"), sorted by key. */
  elements: Array<[string, string]>;
}

export interface NftNodeCounts {
  rules: number;
  chains: number;
  sets: number;
  setElements: number;
  mapElements: number;
  /** Rules walked per policy by a new connection that no policy before the allowing one matches (max over endpoints). */
  rulesTraversedPerPolicy: number;
  /** Policies on the most-loaded endpoint direction. */
  maxPoliciesPerEndpoint: number;
}

export interface NftNodePlan {
  node: string;
  /** Chains in declaration order (base chain first). */
  chains: NftChain[];
  sets: NftSet[];
  maps: NftMap[];
  counts: NftNodeCounts;
}

// ---- names ----

const b64 = (text: string): string => createHash('sha256').update(text).digest('base64url');
const fail = (message: string): Error => new NftCompileError(message);

/** The table layer prefix Felix puts on every chain and map of the filter "table". */
export const layered = (name: string): string => `${LAYER}-${name}`;

/** Felix v3.30's human-readable policy chain name for a Kubernetes NetworkPolicy: tier/namespace/knp.default.<name>. */
export function policyChainName(direction: 'ingress' | 'egress', policyId: string): string {
  return layered(lengthLimitedId(direction === 'ingress' ? 'cali-pi-' : 'cali-po-', `${TIER}/${calicoPolicyName(policyId)}`, MAX_NAME));
}

export function endpointChainName(direction: 'ingress' | 'egress', iface: string): string {
  return layered(lengthLimitedId(direction === 'ingress' ? 'cali-tw-' : 'cali-fw-', iface, MAX_NAME));
}

function profileChainName(direction: 'ingress' | 'egress', profile: string): string {
  return layered(lengthLimitedId(direction === 'ingress' ? 'cali-pri-' : 'cali-pro-', profile, MAX_NAME));
}

/** PolicyGroup.UniqueID, 20 characters; the model hashes with sha224 over its chain names (Felix: sha3-224 over policy names). */
function groupChainName(direction: 'ingress' | 'egress', selector: string, chains: string[]): string {
  const prefix = direction === 'ingress' ? 'cali-gi-' : 'cali-go-';
  return layered(prefix + policyGroupUid(direction, selector, chains, 'sha224').slice(0, IPTABLES_MAX_CHAIN - prefix.length));
}

/**
 * Felix names a selector's IP set `cali40s:<hash of the selector>` (":" legalized to "-" for nft). The resolved
 * input carries no selector text, so the model keys each set by the policy peer it came from: stable while its
 * members change, so a pod joining a selector is an element add, as in Felix.
 */
export function selectorSetName(policyId: string, direction: string, rule: number, peer: number): string {
  return peerSetName('cali40s-', `${policyId}|${direction}|${rule}|${peer}`, 22);
}

// ---- nft fragments (felix/nftables match_builder.go and actions.go) ----

const hex = (n: number): string => `0x${(n >>> 0).toString(16)}`;
const inv = (n: number): string => hex(~n >>> 0);
const markClear = (m: number): string => `meta mark & ${hex(m)} == 0`;
const markNotClear = (m: number): string => `meta mark & ${hex(m)} != 0`;
const markSet = (m: number): string => `meta mark & ${hex(m)} == ${hex(m)}`;
const setMark = (m: number): string => `meta mark set mark or ${hex(m)}`;
const clearMark = (m: number): string => `meta mark set mark & ${inv(m)}`;
const setMaskedMark = (m: number, mask: number): string => `meta mark set mark & ${inv(mask)} ^ ${hex(m)}`;

function rule(match: string, action: string | undefined, comments: string[] = [], jump?: string): NftRule {
  // renderer.go: every rule with an action counts; an empty rule becomes "continue".
  const body = [match, action === undefined ? '' : `counter ${action}`].filter(Boolean).join(' ');
  return { body: body || 'continue', comments, jump };
}

type Range = PortRange;

/** nft writes a /32 as the bare address. */
const bare = (net: string): string => (net.endsWith('/32') ? net.slice(0, -3) : net);

const portSet = (rs: Range[]): string => `{ ${rs.map((r) => (r[0] === r[1] ? String(r[0]) : `${r[0]}-${r[1]}`)).join(', ')} }`;

/** Collects the selector sets of one node. */
class SetTable {
  readonly byName = new Map<string, string[]>();
  add(name: string, nets: readonly string[]): string {
    if (!this.byName.has(name)) this.byName.set(name, [...new Set(nets.map(bare))].sort());
    return name;
  }
}

/**
 * One Calico rule (one peer, one protocol) as Felix's ProtoRuleToIptablesRules renders it: match blocks on the
 * scratch marks where one rule cannot hold the match (more than 15 port slots, an ipBlock with excepts), then the
 * main rule setting the accept mark, then "return if accepted".
 */
function renderCalicoRule(
  proto: string,
  ranges: Range[] | null,
  peer: { kind: 'any' } | { kind: 'set'; name: string } | { kind: 'net'; net: string; except: string[] },
  dir: 'saddr' | 'daddr',
): NftRule[] {
  const blocks: NftRule[] = [];
  let usingBlocks = false;
  let firstPositiveDone = false;
  const initial = (bits: number): void => {
    if (usingBlocks) return;
    blocks.push(rule('', setMaskedMark(bits, MARK_SCRATCH0 | MARK_SCRATCH1)));
    usingBlocks = true;
  };
  const protoMatch = proto ? `meta l4proto ${proto}` : '';
  let mainPorts = ranges;
  const splits = ranges ? splitPortRanges(ranges) : [];
  if (splits.length > 1) {
    initial(0);
    const mark = firstPositiveDone ? MARK_SCRATCH1 : MARK_SCRATCH0;
    for (const s of splits) blocks.push(rule(`${protoMatch} ${proto} dport ${portSet(s)}`.trim(), setMark(mark)));
    firstPositiveDone = true;
    mainPorts = null;
  }
  let netMatch = '';
  if (peer.kind === 'set') netMatch = `ip ${dir} @${peer.name}`;
  if (peer.kind === 'net') {
    netMatch = `ip ${dir} ${peer.net}`;
    if (peer.except.length > 0) {
      // One positive and some negated CIDRs cannot share a rule: a negated block clears the "all blocks" bit.
      initial(MARK_SCRATCH0);
      for (const e of peer.except) blocks.push(rule(`ip ${dir} ${e}`, clearMark(MARK_SCRATCH0)));
    }
  }
  const parts = [protoMatch, netMatch, mainPorts ? `${proto} dport ${portSet(mainPorts)}` : '', usingBlocks ? markSet(MARK_SCRATCH0) : ''];
  return [...blocks, rule(parts.filter(Boolean).join(' '), setMark(MARK_ACCEPT)), rule(markSet(MARK_ACCEPT), 'return')];
}

function renderPolicyChain(policy: ResolvedPolicy, direction: 'ingress' | 'egress', sets: SetTable): NftRule[] {
  const dir = direction === 'ingress' ? 'saddr' : 'daddr';
  // The model keeps each distinct port range where libcalico-go's SimplifyPorts would merge adjacent ones.
  const out: NftRule[] = felixRules(policy, direction, fail, 'dedupe').flatMap((r: FelixRule) => {
    const peer = r.peer;
    const nftPeer =
      peer.kind === 'any'
        ? peer
        : peer.kind === 'set'
          ? { kind: 'set' as const, name: sets.add(selectorSetName(policy.policy, direction, peer.rule, peer.peer), peer.nets) }
          : { kind: 'net' as const, net: bare(peer.net), except: peer.except.map(bare) };
    return renderCalicoRule(r.protocol ?? '', r.ranges ?? null, nftPeer, dir);
  });
  // ProtoRulesToIptablesRules: trailing returns are no-ops and stripped; the chain's first rule names the policy.
  while (out.length && out[out.length - 1]!.body.endsWith('counter return')) out.pop();
  if (out.length === 0) out.push(rule('', undefined));
  out[0] = { ...out[0]!, comments: [...out[0]!.comments, `Policy ${calicoPolicyName(policy.policy)} ${direction}`] };
  return out;
}

/** Policy chains shared across endpoints; a policy that resolved differently for two endpoints gets two. */
class PolicyChains {
  readonly chains = new Map<string, NftChain>();
  private readonly rendered = new WeakMap<ResolvedPolicy, NftRule[]>();
  constructor(
    private readonly direction: 'ingress' | 'egress',
    private readonly sets: SetTable,
  ) {}
  chainFor(policy: ResolvedPolicy): string {
    let rules = this.rendered.get(policy);
    if (!rules) {
      rules = renderPolicyChain(policy, this.direction, this.sets);
      this.rendered.set(policy, rules);
    }
    let name = policyChainName(this.direction, policy.policy);
    const existing = this.chains.get(name);
    const text = (rs: NftRule[]): string => rs.map((r) => r.body).join('\n');
    if (existing && existing.rules !== rules && text(existing.rules) !== text(rules)) {
      name = layered(lengthLimitedId(this.direction === 'ingress' ? 'cali-pi-' : 'cali-po-', `_${b64(`${policy.policy}\n${text(rules)}`).slice(0, 20)}`, MAX_NAME));
    }
    if (!this.chains.has(name)) this.chains.set(name, { name, rules });
    return name;
  }
}

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

  const forward: NftChain = {
    name: CHAIN_FORWARD,
    rules: [
      // Clear Calico's mark bits except accept (the raw/mangle chains would use it to talk to this one).
      rule('', clearMark(MARK_ALL & ~MARK_ACCEPT)),
      rule(`iifname "${WORKLOAD_IFACE_PREFIX}*"`, `jump ${CHAIN_FROM_WL_DISPATCH}`, [], CHAIN_FROM_WL_DISPATCH),
      rule(`oifname "${WORKLOAD_IFACE_PREFIX}*"`, `jump ${CHAIN_TO_WL_DISPATCH}`, [], CHAIN_TO_WL_DISPATCH),
    ],
  };
  const base: NftChain = {
    name: CHAIN_BASE_FORWARD,
    hook: { type: 'filter', hook: 'forward', priority: 0, policy: 'accept' },
    rules: [rule('', `jump ${CHAIN_FORWARD}`, [], CHAIN_FORWARD), rule(markSet(MARK_ACCEPT), 'accept', ['Policy explicitly accepted packet.'])],
  };
  // Dispatch: one verdict-map lookup; an unknown cali* interface is dropped, as Felix does until it knows the pod.
  const fromDispatch: NftChain = { name: CHAIN_FROM_WL_DISPATCH, rules: [rule(`iifname vmap @${MAP_FROM_WL_DISPATCH}`, undefined), rule('', 'drop', ['Unknown interface'])] };
  const toDispatch: NftChain = { name: CHAIN_TO_WL_DISPATCH, rules: [rule(`oifname vmap @${MAP_TO_WL_DISPATCH}`, undefined), rule('', 'drop', ['Unknown interface'])] };

  const chains = [
    base,
    forward,
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

// ---- rendering as nft -f text ----

/** renderer.go comment(): "cali:<hash>;" then the rule's comments, at most 128 characters. */
function ruleComment(hash: string, comments: string[]): string {
  const head = `${RULE_HASH_PREFIX}${hash};`;
  if (comments.length === 0) return head;
  const per = Math.floor((MAX_COMMENT - head.length) / comments.length);
  const text = [head, ...comments.map((c) => c.replace(/["\\]/g, '').slice(0, per))].join(' ');
  return text.slice(0, MAX_COMMENT);
}

/** generictables.RuleHashes: each hash chains in the previous one, seeded with the chain name; 16 characters. */
export function ruleHashes(chain: NftChain): string[] {
  return chainedRuleHashes(chain.name, chain.rules.map((r) => r.body));
}

const T = `${TABLE_FAMILY} ${TABLE_NAME}`;

export function renderChainDecl(c: NftChain): string {
  if (!c.hook) return `add chain ${T} ${c.name}`;
  return `add chain ${T} ${c.name} { type ${c.hook.type} hook ${c.hook.hook} priority ${c.hook.priority}; policy ${c.hook.policy}; }`;
}

export function renderChainRules(c: NftChain): string[] {
  const hashes = ruleHashes(c);
  return c.rules.map((r, i) => `add rule ${T} ${c.name} ${r.body} comment "${ruleComment(hashes[i]!, r.comments)}"`);
}

/**
 * Felix declares selector sets `type ipv4_addr; flags interval;` (they are hash:net IP sets). The model's members
 * are always /32 pod addresses, for which a plain hash set matches exactly the same packets, and this kernel
 * commits 10000 interval (rbtree) sets in ~30 s against ~3.5 s for hash sets, so hash sets are the default;
 * `interval: true` renders Felix's exact declaration.
 */
export const renderSetDecl = (s: NftSet, opts: { interval?: boolean } = {}): string =>
  `add set ${T} ${s.name} { type ipv4_addr;${opts.interval ? ' flags interval;' : ''} }`;
export const renderMapDecl = (m: NftMap): string => `add map ${T} ${m.name} { type ifname : verdict; }`;

/** `add element` lines, chunked so no line gets unwieldy. */
export function renderElements(name: string, elements: readonly string[], verb: 'add' | 'delete' = 'add'): string[] {
  const out: string[] = [];
  for (let i = 0; i < elements.length; i += 500) out.push(`${verb} element ${T} ${name} { ${elements.slice(i, i + 500).join(', ')} }`);
  return out;
}

export const mapElement = ([iface, verdict]: [string, string]): string => `"${iface}" : ${verdict}`;

/**
 * The whole table in one transaction: create-then-delete makes the delete safe on a clean node, and the table
 * is rebuilt inside the same commit, so no packet ever sees a half-written policy.
 */
export function renderNodeInstall(plan: NftNodePlan, runId: string, opts: { interval?: boolean } = {}): string {
  const lines = [`add table ${T}`, `delete table ${T}`, `add table ${T} { comment "cni-bench run ${runId}: Calico nftables model (Felix ${FELIX_VERSION} layout)"; }`];
  for (const s of plan.sets) lines.push(renderSetDecl(s, opts));
  for (const m of plan.maps) lines.push(renderMapDecl(m));
  for (const c of plan.chains) lines.push(renderChainDecl(c));
  for (const c of plan.chains) lines.push(...renderChainRules(c));
  for (const s of plan.sets) lines.push(...renderElements(s.name, s.elements));
  for (const m of plan.maps) lines.push(...renderElements(m.name, m.elements.map(mapElement)));
  lines.push('');
  return lines.join('\n');
}
