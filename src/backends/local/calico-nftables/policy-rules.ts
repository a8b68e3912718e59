// Felix's policy chains in nftables syntax (felix/rules/policy.go rendered through felix/nftables): one
// filter-cali-pi-/po- chain per policy and direction, one rule per peer × protocol setting the accept mark, match
// blocks on the scratch marks where one rule cannot hold the match, selectors as named sets.
import type { ResolvedPolicy } from '../../../policy/types.js';
import { calicoPolicyName, felixRules, lengthLimitedId, splitPortRanges, type FelixRule, type PortRange } from '../calico/felix.js';
import { MARK_ACCEPT, MARK_SCRATCH0, MARK_SCRATCH1, MAX_NAME, b64, clearMark, fail, layered, markSet, policyChainName, rule, selectorSetName, setMark, setMaskedMark, type NftChain, type NftRule } from './layout.js';

type Range = PortRange;

/** nft writes a /32 as the bare address. */
const bare = (net: string): string => (net.endsWith('/32') ? net.slice(0, -3) : net);

const portSet = (rs: Range[]): string => `{ ${rs.map((r) => (r[0] === r[1] ? String(r[0]) : `${r[0]}-${r[1]}`)).join(', ')} }`;

/** Collects the selector sets of one node. */
export class SetTable {
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
export class PolicyChains {
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
