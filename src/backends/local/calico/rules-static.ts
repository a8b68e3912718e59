// Felix's fixed chains and marks (felix/rules/static.go, rule_defs.go, dispatch.go; mark bits from
// felix/dataplane/driver.go) in the Calico model's iptables layout: raw and mangle cali-PREROUTING, filter
// cali-FORWARD with its host-endpoint and CIDR-block jumps, the kernel-chain hooks, and the interface dispatch
// trees that send a packet to its endpoint's chain.
import { WORKLOAD_IFACE_PREFIX } from './felix.js';
import { action, all, match, renderHook, type IptChain, type IptRule, type TableName } from './iptables-syntax.js';

// felix/dataplane/driver.go: mark bits are allocated in this order from IptablesMarkMask (default 0xffff0000).
export const MARK_ACCEPT = 0x10000;
export const MARK_PASS = 0x20000;
export const MARK_DROP = 0x40000;
export const MARK_SCRATCH0 = 0x80000;
export const MARK_SCRATCH1 = 0x100000;
// felix/rules/static.go allCalicoMarkBits()
const ALL_CALICO_MARK_BITS = MARK_ACCEPT | MARK_PASS | MARK_SCRATCH0 | MARK_SCRATCH1;

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

/** rules/dispatch.go interfaceNameDispatchChains: a shallow tree on the character after the common prefix. */
export function dispatchChains(root: string, ifaces: string[], dir: 'from' | 'to'): IptChain[] {
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

export function staticFilterChains(): IptChain[] {
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

export function staticRawChains(): IptChain[] {
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

export function staticMangleChains(): IptChain[] {
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
export function hooks(table: TableName): string[] {
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
