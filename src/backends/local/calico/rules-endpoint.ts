// Felix's endpoint chains in the Calico model's iptables layout (felix/rules/endpoints.go, endpoint_mgr.go):
// cali-tw-/cali-fw-<iface> (conntrack first, then a jump per policy group, end-of-tier drop, profiles), the
// cali-gi-/cali-go- group chains with their "Return on verdict" every 5 jumps, and the profile chains.
import type { ResolvedPolicy } from '../../../policy/types.js';
import { TIER, calicoPolicyName, policyGroupUid } from './felix.js';
import { MAX_CHAIN_NAME, action, all, match, type IptChain, type IptRule } from './iptables-syntax.js';
import { MARK_ACCEPT, MARK_PASS } from './rules-static.js';
import { profileChainName, type PolicyChains } from './rules-policy.js';

/** felix/config/config_params.go VXLANPort default: the egress endpoint chain drops workload VXLAN on it. */
const FELIX_VXLAN_PORT = 4789;

export interface PolicyGroup {
  direction: 'ingress' | 'egress';
  /** Stands in for the selector text Felix groups on (see groupPolicies below). */
  selectorKey: string;
  /** Policy chain names, in order. */
  chains: string[];
  policyNames: string[];
}

/** PolicyGroup.ChainName / UniqueID: sha3-224 over tier, selector, direction, count and policy names. */
export function groupChainName(g: PolicyGroup): string {
  const prefix = g.direction === 'ingress' ? 'cali-gi-' : 'cali-go-';
  return prefix + policyGroupUid(g.direction, g.selectorKey, g.policyNames, 'sha3-224').slice(0, MAX_CHAIN_NAME - prefix.length);
}

/** PolicyGroupToIptablesChains: a jump per policy, a "Return on verdict" every returnStride = 5. */
export function policyGroupChain(g: PolicyGroup): IptChain {
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
export function endpointChain(name: string, direction: 'ingress' | 'egress', groups: Array<{ chain: string; inlined: boolean }>, profiles: string[]): IptChain {
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

export function profileChain(direction: 'ingress' | 'egress', id: string, allow: boolean): IptChain {
  const comment = `Profile ${id} ${direction}`;
  // ProtoRulesToIptablesRules: the allow rule's trailing RETURN is stripped; no rules leaves one comment-only rule.
  const rules: IptRule[] = allow ? [{ action: action.setMark(MARK_ACCEPT), comment: [comment] }] : [{ comment: [comment] }];
  return { name: profileChainName(direction, id), rules };
}

/**
 * endpoint_mgr.go groupPolicies: consecutive policies with the same selector form one group. The resolved form
 * has no selector text, so "same selector" is read as "selects the same endpoints of this node" — identical for
 * the benchmark's policies (one selector), and a difference only in chain names where two selectors coincide.
 */
export function groupPolicies(direction: 'ingress' | 'egress', policies: ResolvedPolicy[], chains: PolicyChains, selectorKeyOf: (p: ResolvedPolicy) => string): PolicyGroup[] {
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

