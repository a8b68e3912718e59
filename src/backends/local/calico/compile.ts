// Calico-style iptables data plane model: renders one node's raw, mangle and filter chains and its ipsets from
// the resolved endpoint policies, in the layout Felix v3.30.3 writes (projectcalico/calico, read at that tag).
// Each piece names the Felix file and function it follows, so the next upstream change is easy to track:
//
//   raw    PREROUTING ─► cali-PREROUTING   (clear marks, mark cali+ traffic, rpfilter)    rules/static.go
//   mangle PREROUTING ─► cali-PREROUTING   (conntrack ESTABLISHED accept first)            rules/static.go
//   filter FORWARD    ─► cali-FORWARD ─► cali-from-wl-dispatch ─goto─► cali-fw-<iface>     rules/dispatch.go
//                                     ─► cali-to-wl-dispatch   ─goto─► cali-tw-<iface>     rules/endpoints.go
//          cali-tw-<iface> ─► cali-gi-<group> ─► cali-pi-<policy>   (one group per run of same-selector
//          policies; inside it a jump per policy, mark-guarded except the first of every 5, and "Return on
//          verdict" every 5: returnStride)                                                 rules/endpoints.go
//          cali-pi-<policy>: one rule per K8s peer × protocol, trailing RETURN stripped     rules/policy.go
//   every rule carries Felix's `cali:<hash>` comment                                      iptables/renderer.go
//
// Pure: returns chains as data plus their rendered lines; install.ts diffs and applies them.
import { createHash } from 'node:crypto';
import type { EndpointDirection, EndpointPolicy, PodInfo, PortMatch, ResolvedPolicy } from '../../../policy/types.js';
import { TIER, WORKLOAD_IFACE_PREFIX, calicoPolicyName, chainedRuleHashes, felixRules, protocolPorts as felixProtocolPorts, lengthLimitedId as felixLengthLimitedId, localWorkloads, peerSetName, podProfiles, policyGroupUid, splitPortRanges, type FelixRule, type ProtocolPorts, type PortRange } from './felix.js';
import { BenchError } from '../../../errors.js';

/** The Felix release whose iptables layout this file reproduces. */
export const FELIX_LAYOUT_VERSION = 'v3.30.3';

// felix/dataplane/driver.go: mark bits are allocated in this order from IptablesMarkMask (default 0xffff0000).
export const MARK_ACCEPT = 0x10000;
export const MARK_PASS = 0x20000;
export const MARK_DROP = 0x40000;
export const MARK_SCRATCH0 = 0x80000;
export const MARK_SCRATCH1 = 0x100000;
// felix/rules/static.go allCalicoMarkBits()
const ALL_CALICO_MARK_BITS = MARK_ACCEPT | MARK_PASS | MARK_SCRATCH0 | MARK_SCRATCH1;

/** felix/iptables MaxChainNameLength; ipset names (felix/ipsets) and interface names (IFNAMSIZ). */
export const MAX_CHAIN_NAME = 28;
export const MAX_IPSET_NAME = 31;
/** felix/config/config_params.go MaxIpsetSize default. */
export const IPSET_MAXELEM = 1_048_576;
/** felix/config/config_params.go VXLANPort default: the egress endpoint chain drops workload VXLAN on it. */
const FELIX_VXLAN_PORT = 4789;

// felix/rules/rule_defs.go chain names.
export const CHAIN_FORWARD = 'cali-FORWARD';
export const CHAIN_PREROUTING = 'cali-PREROUTING';
export const CHAIN_FROM_WL_DISPATCH = 'cali-from-wl-dispatch';
export const CHAIN_TO_WL_DISPATCH = 'cali-to-wl-dispatch';
const CHAIN_FROM_HEP_FORWARD = 'cali-from-hep-forward';
const CHAIN_TO_HEP_FORWARD = 'cali-to-hep-forward';
const CHAIN_CIDR_BLOCK = 'cali-cidr-block';
const CHAIN_FROM_HOST_ENDPOINT = 'cali-from-host-endpoint';
const CHAIN_RPF_SKIP = 'cali-rpf-skip';
const IPSET_PREFIX = 'cali40s:';

export type TableName = 'raw' | 'mangle' | 'filter';
export const TABLES: readonly TableName[] = ['raw', 'mangle', 'filter'];

/** felix/generictables Rule: a match and an action, already rendered to iptables fragments. */
export interface IptRule {
  match?: string;
  action?: string;
  comment?: string[];
}

export interface IptChain {
  name: string;
  rules: IptRule[];
}

// ---- felix/iptables/match_builder.go and actions.go, the fragments this layout uses ----

/** Go's %#x: 0 renders as 0x0. */
const hex = (n: number): string => `0x${n.toString(16)}`;
const match = {
  markClear: (mark: number) => `-m mark --mark 0/${hex(mark)}`,
  markNotClear: (mark: number) => `-m mark ! --mark 0/${hex(mark)}`,
  markSingleBitSet: (mark: number) => `-m mark --mark ${hex(mark)}/${hex(mark)}`,
  inInterface: (iface: string) => `--in-interface ${iface}`,
  outInterface: (iface: string) => `--out-interface ${iface}`,
  conntrackState: (states: string) => `-m conntrack --ctstate ${states}`,
  protocol: (name: string) => `-p ${name}`,
  protocolNum: (n: number) => `-p ${n}`,
  sourceNet: (cidr: string) => `--source ${cidr}`,
  destNet: (cidr: string) => `--destination ${cidr}`,
  notSourceNet: (cidr: string) => `! --source ${cidr}`,
  notDestNet: (cidr: string) => `! --destination ${cidr}`,
  sourceIPSet: (name: string) => `-m set --match-set ${name} src`,
  destIPSet: (name: string) => `-m set --match-set ${name} dst`,
  destPortRanges: (ports: string) => `-m multiport --destination-ports ${ports}`,
  rpfCheckFailed: () => '-m rpfilter --invert --validmark',
};
const action = {
  jump: (chain: string) => `--jump ${chain}`,
  goto: (chain: string) => `--goto ${chain}`,
  return: '--jump RETURN',
  drop: '--jump DROP',
  accept: '--jump ACCEPT',
  setMark: (mark: number) => `--jump MARK --set-mark ${hex(mark)}/${hex(mark)}`,
  clearMark: (mark: number) => `--jump MARK --set-mark 0/${hex(mark)}`,
  setMaskedMark: (mark: number, mask: number) => `--jump MARK --set-mark ${hex(mark)}/${hex(mask)}`,
};
const all = (...parts: Array<string | undefined | false>): string => parts.filter(Boolean).join(' ');

// ---- felix/iptables/renderer.go and felix/generictables/rules.go: rendering and rule hashes ----

const HASH_COMMENT_PREFIX = 'cali:';
const MAX_COMMENT = 256;
const SHELL_UNSAFE = /[^\w @%+=:,./-]/g;

function renderInner(head: string, hashFragment: string, rule: IptRule): string {
  const parts = [head];
  if (hashFragment) parts.push(hashFragment);
  for (const c of rule.comment ?? []) parts.push(`-m comment --comment "${c.replace(SHELL_UNSAFE, '_').slice(0, MAX_COMMENT)}"`);
  if (rule.match) parts.push(rule.match);
  if (rule.action) parts.push(rule.action);
  return parts.join(' ');
}

/** generictables.RuleHashes: each hash chains the previous one, so position and predecessors count. */
export function ruleHashes(chainName: string, rules: readonly IptRule[]): string[] {
  return chainedRuleHashes(chainName, rules.map((rule) => renderInner(`-A ${chainName}`, 'HASH', rule)));
}

/** `-A <chain> -m comment --comment "cali:<hash>" …` lines, as Felix's RenderAppend writes them. */
export function renderChain(chain: IptChain): string[] {
  const hashes = ruleHashes(chain.name, chain.rules);
  return chain.rules.map((r, i) => renderInner(`-A ${chain.name}`, `-m comment --comment "${HASH_COMMENT_PREFIX}${hashes[i]}"`, r));
}

/** Rules Felix inserts at the top of / appends to a kernel chain (Table.InsertOrAppendRules / AppendRules). */
function renderHook(kernelChain: string, rules: IptRule[], mode: 'insert' | 'append'): string[] {
  // felix/iptables/table.go: appended rules are hashed under "<chain>*appends*".
  const hashes = ruleHashes(mode === 'insert' ? kernelChain : `${kernelChain}*appends*`, rules);
  return rules.map((r, i) => renderInner(`${mode === 'insert' ? '-I' : '-A'} ${kernelChain}`, `-m comment --comment "${HASH_COMMENT_PREFIX}${hashes[i]}"`, r));
}

// ---- names ----

export class CalicoCompileError extends BenchError {
  constructor(message: string) {
    super('internal', message);
  }
}

const fail = (message: string): Error => new CalicoCompileError(message);

/** felix/hashutils GetLengthLimitedID, at iptables' chain-name limit unless told otherwise. */
export function lengthLimitedId(prefix: string, suffix: string, maxLength = MAX_CHAIN_NAME): string {
  return felixLengthLimitedId(prefix, suffix, maxLength);
}

/** felix/rules/policy.go PolicyChainName: prefix + limited "<tier>/<policy name>". */
export function policyChainName(direction: 'ingress' | 'egress', policyId: string): string {
  return lengthLimitedId(direction === 'ingress' ? 'cali-pi-' : 'cali-po-', `${TIER}/${calicoPolicyName(policyId)}`);
}

function profileChainName(direction: 'ingress' | 'egress', profile: string): string {
  return lengthLimitedId(direction === 'ingress' ? 'cali-pri-' : 'cali-pro-', profile);
}

/** A peer's set (see felix.ts peerSetName), keyed "<direction>|<policy>|<rule>|<peer>". */
export function ipsetName(identity: string): string {
  return peerSetName(IPSET_PREFIX, identity, MAX_IPSET_NAME - IPSET_PREFIX.length);
}

// ---- felix/rules/policy.go ProtoRuleToIptablesRules, on the Calico rules of felix.ts ----

/** k8sRuleToCalico's per-protocol ports (felix.ts), SimplifyPorts merging as libcalico-go does. */
export function protocolPorts(ports: PortMatch[] | 'all', what: string): ProtocolPorts[] {
  return felixProtocolPorts(ports, what, fail, 'merge');
}

/** SplitPortList as multiport arguments: groups of at most 15 slots, a range taking two. */
export function splitPortList(ranges: readonly PortRange[]): string[] {
  return splitPortRanges(ranges).map((s) => s.map(([a, b]) => (a === b ? String(a) : `${a}:${b}`)).join(','));
}

interface IpsetTable {
  sets: Map<string, string[]>;
}

function selectorSet(ipsets: IpsetTable, identity: string, nets: readonly string[]): string {
  const name = ipsetName(identity);
  const members = new Set<string>([...(ipsets.sets.get(name) ?? []), ...nets]);
  ipsets.sets.set(name, [...members].sort());
  return name;
}

/**
 * One Calico rule (one peer × one protocol) as iptables rules: optional match blocks for port lists over 15
 * slots and for ipBlock excepts (matchBlockBuilder, scratch mark bits), then "match → set accept mark" and
 * "accept mark → RETURN" (CombineMatchAndActionsForProtoRule).
 */
function calicoRuleToIptables(rule: FelixRule, direction: 'ingress' | 'egress', policyId: string, ipsets: IpsetTable): IptRule[] {
  const src = direction === 'ingress';
  const peer = rule.peer;
  const peerNet = peer.kind === 'net' ? peer.net : undefined;
  const notNets = peer.kind === 'net' ? peer.except : [];
  let setMatch: string | undefined;
  if (peer.kind === 'set') {
    const name = selectorSet(ipsets, `${direction}|${policyId}|${peer.rule}|${peer.peer}`, peer.nets);
    setMatch = src ? match.sourceIPSet(name) : match.destIPSet(name);
  }

  const blocks: IptRule[] = [];
  let usingBlocks = false;
  const initial = (bits: number): void => {
    if (usingBlocks) return;
    blocks.push({ action: action.setMaskedMark(bits, MARK_SCRATCH0 | MARK_SCRATCH1) });
    usingBlocks = true;
  };
  const proto = rule.protocol ? match.protocol(rule.protocol) : undefined;
  const splits = rule.ranges ? splitPortList(rule.ranges) : [];
  let portMatch: string | undefined;
  if (splits.length > 1) {
    // AppendPortMatchBlock, the first positive block: writes the AllBlocks bit (scratch 0) directly.
    initial(0);
    for (const s of splits) blocks.push({ match: all(proto, match.destPortRanges(s)), action: action.setMark(MARK_SCRATCH0) });
  } else if (splits.length === 1) {
    portMatch = match.destPortRanges(splits[0]!);
  }
  let inlineNotNet: string | undefined;
  if ((peerNet ? 1 : 0) + notNets.length > 1) {
    // AppendNegatedCIDRMatchBlock: AllBlocks set by default, cleared by any excepted address.
    initial(MARK_SCRATCH0);
    for (const n of notNets) blocks.push({ match: src ? match.sourceNet(n) : match.destNet(n), action: action.clearMark(MARK_SCRATCH0) });
  } else if (notNets.length === 1) {
    inlineNotNet = src ? match.notSourceNet(notNets[0]!) : match.notDestNet(notNets[0]!);
  }
  // CalculateRuleMatch order: protocol, src net, src sets, dst net, dst sets, dst ports, then negations.
  const netMatch = peerNet ? (src ? match.sourceNet(peerNet) : match.destNet(peerNet)) : undefined;
  const main = all(proto, netMatch, setMatch, portMatch, inlineNotNet, usingBlocks && match.markSingleBitSet(MARK_SCRATCH0));
  return [
    ...blocks,
    { match: main || undefined, action: action.setMark(MARK_ACCEPT) },
    { match: match.markSingleBitSet(MARK_ACCEPT), action: action.return },
  ];
}

/** PolicyToIptablesChains / ProtoRulesToIptablesRules for one direction of a resolved policy. */
function policyChainRules(policy: ResolvedPolicy, direction: 'ingress' | 'egress', ipsets: IpsetTable): IptRule[] {
  let rules = felixRules(policy, direction, fail).flatMap((r) => calicoRuleToIptables(r, direction, policy.policy, ipsets));
  // Strip off any return rules at the end of the chain: no-ops whatever they match.
  while (rules.length && rules.at(-1)!.action === action.return) rules = rules.slice(0, -1);
  const comment = `Policy ${calicoPolicyName(policy.policy)} ${direction}`;
  if (rules.length === 0) rules = [{}];
  rules[0] = { ...rules[0], comment: [...(rules[0]!.comment ?? []), comment] };
  return rules;
}

// ---- felix/rules/endpoints.go ----

interface PolicyGroup {
  direction: 'ingress' | 'egress';
  /** Stands in for the selector text Felix groups on (see groupPolicies below). */
  selectorKey: string;
  /** Policy chain names, in order. */
  chains: string[];
  policyNames: string[];
}

/** PolicyGroup.ChainName / UniqueID: sha3-224 over tier, selector, direction, count and policy names. */
function groupChainName(g: PolicyGroup): string {
  const prefix = g.direction === 'ingress' ? 'cali-gi-' : 'cali-go-';
  return prefix + policyGroupUid(g.direction, g.selectorKey, g.policyNames, 'sha3-224').slice(0, MAX_CHAIN_NAME - prefix.length);
}

/** PolicyGroupToIptablesChains: a jump per policy, a "Return on verdict" every returnStride = 5. */
function policyGroupChain(g: PolicyGroup): IptChain {
  const returnStride = 5;
  const rules: IptRule[] = [];
  g.chains.forEach((chain, count) => {
    if (count !== 0 && count % returnStride === 0) {
      rules.push({ match: match.markNotClear(MARK_PASS | MARK_ACCEPT), action: action.return, comment: ['Return on verdict'] });
    }
    rules.push({ match: count % returnStride === 0 ? undefined : match.markClear(MARK_PASS | MARK_ACCEPT), action: action.jump(chain) });
  });
  return { name: groupChainName(g), rules };
}

/** appendConntrackRules with the default filter allow action (ACCEPT) and DisableConntrackInvalid false. */
function conntrackRules(): IptRule[] {
  return [
    { match: match.conntrackState('RELATED,ESTABLISHED'), action: action.accept },
    { match: match.conntrackState('INVALID'), action: action.drop },
  ];
}

/** endpointIptablesChain for a workload (chainTypeNormal, admin up, no QoS, flow logs off). */
function endpointChain(name: string, direction: 'ingress' | 'egress', groups: Array<{ chain: string; inlined: boolean }>, profiles: string[]): IptChain {
  const rules: IptRule[] = [...conntrackRules(), { action: action.clearMark(MARK_ACCEPT | MARK_PASS) }];
  if (direction === 'egress') {
    // AllowVXLANPacketsFromWorkloads / AllowIPIPPacketsFromWorkloads default false.
    rules.push(
      { match: all(match.protocolNum(17), match.destPortRanges(String(FELIX_VXLAN_PORT))), action: action.drop, comment: ['DROP VXLAN encapped packets originating in workloads'] },
      { match: match.protocolNum(4), action: action.drop, comment: ['DROP IPinIP encapped packets originating in workloads'] },
    );
  }
  if (groups.length > 0) {
    rules.push({ action: action.clearMark(MARK_PASS), comment: [`Start of tier ${TIER}`] });
    for (const g of groups) {
      rules.push({ match: match.markClear(MARK_PASS), action: action.jump(g.chain) });
      rules.push({ match: match.markSingleBitSet(MARK_ACCEPT), action: action.return, comment: ['Return if policy accepted'] });
    }
    rules.push({ match: match.markClear(MARK_PASS), action: action.drop, comment: [`End of tier ${TIER}. DROP if no policies passed packet`] });
  }
  for (const p of profiles) {
    rules.push({ action: action.jump(p) });
    rules.push({ match: match.markSingleBitSet(MARK_ACCEPT), action: action.return, comment: ['Return if profile accepted'] });
  }
  rules.push({ action: action.drop, comment: ['DROP if no profiles matched'] });
  return { name, rules };
}

function profileChain(direction: 'ingress' | 'egress', id: string, allow: boolean): IptChain {
  const comment = `Profile ${id} ${direction}`;
  // ProtoRulesToIptablesRules: the allow rule's trailing RETURN is stripped; no rules leaves one comment-only rule.
  const rules: IptRule[] = allow ? [{ action: action.setMark(MARK_ACCEPT), comment: [comment] }] : [{ comment: [comment] }];
  return { name: profileChainName(direction, id), rules };
}

/** rules/dispatch.go interfaceNameDispatchChains: a shallow tree on the character after the common prefix. */
function dispatchChains(root: string, ifaces: string[], dir: 'from' | 'to'): IptChain[] {
  const names = [...new Set(ifaces)].sort();
  const ifMatch = dir === 'from' ? match.inInterface : match.outInterface;
  const target = (iface: string) => action.goto(`${dir === 'from' ? 'cali-fw-' : 'cali-tw-'}${iface}`);
  const endRules: IptRule[] = [{ action: action.drop, comment: ['Unknown interface'] }];
  let common = names[0] ?? '';
  for (const n of names) while (!n.startsWith(common)) common = common.slice(0, -1);
  const byPrefix = new Map<string, string[]>();
  for (const n of names) {
    const prefix = n.length > common.length ? n.slice(0, common.length + 1) : common;
    byPrefix.set(prefix, [...(byPrefix.get(prefix) ?? []), n]);
  }
  const children: IptChain[] = [];
  const rootRules: IptRule[] = [];
  for (const [prefix, group] of byPrefix) {
    if (group.length > 1) {
      const child = `${root}-${prefix.slice(common.length)}`;
      rootRules.push({ match: ifMatch(`${prefix}+`), action: action.goto(child) });
      children.push({ name: child, rules: [...group.map((n) => ({ match: ifMatch(n), action: target(n) })), ...endRules] });
    } else {
      rootRules.push({ match: ifMatch(group[0]!), action: target(group[0]!) });
    }
  }
  return [...children, { name: root, rules: [...rootRules, ...endRules] }];
}

// ---- felix/rules/static.go ----

const wildcard = `${WORKLOAD_IFACE_PREFIX}+`;

function staticFilterChains(): IptChain[] {
  return [
    {
      // StaticFilterForwardChains
      name: CHAIN_FORWARD,
      rules: [
        { action: action.clearMark(ALL_CALICO_MARK_BITS & ~MARK_ACCEPT) },
        { match: match.markClear(MARK_ACCEPT), action: action.jump(CHAIN_FROM_HEP_FORWARD) },
        { match: match.inInterface(wildcard), action: action.jump(CHAIN_FROM_WL_DISPATCH) },
        { match: match.outInterface(wildcard), action: action.jump(CHAIN_TO_WL_DISPATCH) },
        { action: action.jump(CHAIN_TO_HEP_FORWARD) },
        { action: action.jump(CHAIN_CIDR_BLOCK) },
      ],
    },
    // No host endpoints, no service CIDRs to block: Felix keeps these chains empty.
    { name: CHAIN_FROM_HEP_FORWARD, rules: [] },
    { name: CHAIN_TO_HEP_FORWARD, rules: [] },
    { name: CHAIN_CIDR_BLOCK, rules: [] },
  ];
}

function staticRawChains(): IptChain[] {
  return [
    {
      // StaticRawPreroutingChain (BGP mode: no VXLAN NOTRACK; no WireGuard; no OpenStack special cases)
      name: CHAIN_PREROUTING,
      rules: [
        { action: action.clearMark(ALL_CALICO_MARK_BITS) },
        { match: match.inInterface(wildcard), action: action.setMark(MARK_SCRATCH0) },
        { match: match.markSingleBitSet(MARK_SCRATCH0), action: action.jump(CHAIN_RPF_SKIP) },
        { match: all(match.markSingleBitSet(MARK_SCRATCH0), match.rpfCheckFailed()), action: action.drop },
        { match: match.markClear(MARK_SCRATCH0), action: action.jump(CHAIN_FROM_HOST_ENDPOINT) },
        { match: match.markSingleBitSet(MARK_ACCEPT), action: action.accept },
      ],
    },
    { name: CHAIN_RPF_SKIP, rules: [] },
    { name: CHAIN_FROM_HOST_ENDPOINT, rules: [] },
  ];
}

function staticMangleChains(): IptChain[] {
  return [
    {
      // StaticManglePreroutingChain with the default mangle allow action (ACCEPT)
      name: CHAIN_PREROUTING,
      rules: [
        { match: match.conntrackState('RELATED,ESTABLISHED'), action: action.accept },
        { match: match.markSingleBitSet(MARK_ACCEPT), action: action.accept },
        { action: action.jump(CHAIN_FROM_HOST_ENDPOINT) },
        { match: match.markSingleBitSet(MARK_ACCEPT), action: action.accept, comment: ['Host endpoint policy accepted packet.'] },
      ],
    },
    { name: CHAIN_FROM_HOST_ENDPOINT, rules: [] },
  ];
}

/** Kernel-chain hooks: raw/mangle PREROUTING and filter FORWARD inserts, and FORWARD's appended accept. */
function hooks(table: TableName): string[] {
  if (table === 'filter') {
    return [
      ...renderHook('FORWARD', [{ action: action.jump(CHAIN_FORWARD) }], 'insert'),
      // StaticFilterForwardAppendRules
      ...renderHook(
        'FORWARD',
        [
          { match: match.markSingleBitSet(MARK_ACCEPT), action: action.accept, comment: ['Policy explicitly accepted packet.'] },
          { action: action.setMark(MARK_ACCEPT) },
        ],
        'append',
      ),
    ];
  }
  return renderHook('PREROUTING', [{ action: action.jump(CHAIN_PREROUTING) }], 'insert');
}

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

export function renderIpsets(sets: ReadonlyMap<string, readonly string[]>): string {
  const lines: string[] = [];
  for (const name of [...sets.keys()].sort()) lines.push(ipsetCreateLine(name));
  for (const name of [...sets.keys()].sort()) for (const m of sets.get(name)!) lines.push(`add ${name} ${m}`);
  lines.push('');
  return lines.join('\n');
}

/** Shares one chain per policy and direction; a policy that resolved differently for two endpoints gets two. */
class PolicyChains {
  readonly chains = new Map<string, IptChain>();
  private readonly rendered = new WeakMap<ResolvedPolicy, IptChain>();

  constructor(
    private readonly direction: 'ingress' | 'egress',
    private readonly ipsets: IpsetTable,
  ) {}

  chainFor(policy: ResolvedPolicy): string {
    const cached = this.rendered.get(policy);
    if (cached) return cached.name;
    const rules = policyChainRules(policy, this.direction, this.ipsets);
    let name = policyChainName(this.direction, policy.policy);
    const existing = this.chains.get(name);
    if (existing && JSON.stringify(existing.rules) !== JSON.stringify(rules)) {
      name = policyChainName(this.direction, `${policy.policy}#${createHash('sha256').update(JSON.stringify(rules)).digest('hex').slice(0, 12)}`);
    }
    const chain = this.chains.get(name) ?? { name, rules };
    this.chains.set(name, chain);
    this.rendered.set(policy, chain);
    return name;
  }
}

/**
 * endpoint_mgr.go groupPolicies: consecutive policies with the same selector form one group. The resolved form
 * has no selector text, so "same selector" is read as "selects the same endpoints of this node" — identical for
 * the benchmark's policies (one selector), and a difference only in chain names where two selectors coincide.
 */
function groupPolicies(direction: 'ingress' | 'egress', policies: ResolvedPolicy[], chains: PolicyChains, selectorKeyOf: (p: ResolvedPolicy) => string): PolicyGroup[] {
  const groups: PolicyGroup[] = [];
  for (const p of policies) {
    const key = selectorKeyOf(p);
    const chain = chains.chainFor(p);
    const last = groups.at(-1);
    if (last && last.selectorKey === key) {
      last.chains.push(chain);
      last.policyNames.push(calicoPolicyName(p.policy));
    } else {
      groups.push({ direction, selectorKey: key, chains: [chain], policyNames: [calicoPolicyName(p.policy)] });
    }
  }
  return groups;
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
