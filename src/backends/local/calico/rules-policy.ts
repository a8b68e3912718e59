// Felix's policy chains in the Calico model's iptables layout (felix/rules/policy.go, on the Calico rules of
// felix.ts): one cali-pi-/cali-po- chain per policy and direction, one rule per peer × protocol setting the
// accept mark, match blocks on the scratch marks where one rule cannot hold the match, selectors as ipsets.
import { createHash } from 'node:crypto';
import type { PortMatch, ResolvedPolicy } from '../../../policy/types.js';
import { BenchError } from '../../../errors.js';
import { TIER, calicoPolicyName, felixRules, protocolPorts as felixProtocolPorts, lengthLimitedId as felixLengthLimitedId, peerSetName, splitPortRanges, type FelixRule, type ProtocolPorts, type PortRange } from './felix.js';
import { MAX_CHAIN_NAME, MAX_IPSET_NAME, action, all, match, type IptChain, type IptRule } from './iptables-syntax.js';
import { MARK_ACCEPT, MARK_SCRATCH0, MARK_SCRATCH1 } from './rules-static.js';

const IPSET_PREFIX = 'cali40s:';

export class CalicoCompileError extends BenchError {
  constructor(message: string) {
    super('internal', message);
  }
}

export const fail = (message: string): Error => new CalicoCompileError(message);

/** felix/hashutils GetLengthLimitedID, at iptables' chain-name limit unless told otherwise. */
export function lengthLimitedId(prefix: string, suffix: string, maxLength = MAX_CHAIN_NAME): string {
  return felixLengthLimitedId(prefix, suffix, maxLength);
}

/** felix/rules/policy.go PolicyChainName: prefix + limited "<tier>/<policy name>". */
export function policyChainName(direction: 'ingress' | 'egress', policyId: string): string {
  return lengthLimitedId(direction === 'ingress' ? 'cali-pi-' : 'cali-po-', `${TIER}/${calicoPolicyName(policyId)}`);
}

export function profileChainName(direction: 'ingress' | 'egress', profile: string): string {
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

export interface IpsetTable {
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

/** Shares one chain per policy and direction; a policy that resolved differently for two endpoints gets two. */
export class PolicyChains {
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

