// The iptables side of Felix's rule rendering, as the Calico model uses it: iptables-restore fragments for the
// matches and actions of felix/iptables/match_builder.go and actions.go, and felix/iptables/renderer.go's way of
// writing a rule with its `cali:<hash>` comment (hashes chained along the chain, generictables.RuleHashes).
// Pure strings; the rules themselves are built in rules-*.ts.
import { chainedRuleHashes } from './felix.js';

/** felix/iptables MaxChainNameLength; ipset names (felix/ipsets) and interface names (IFNAMSIZ). */
export const MAX_CHAIN_NAME = 28;
export const MAX_IPSET_NAME = 31;

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
export const hex = (n: number): string => `0x${n.toString(16)}`;
export const match = {
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
export const action = {
  jump: (chain: string) => `--jump ${chain}`,
  goto: (chain: string) => `--goto ${chain}`,
  return: '--jump RETURN',
  drop: '--jump DROP',
  accept: '--jump ACCEPT',
  setMark: (mark: number) => `--jump MARK --set-mark ${hex(mark)}/${hex(mark)}`,
  clearMark: (mark: number) => `--jump MARK --set-mark 0/${hex(mark)}`,
  setMaskedMark: (mark: number, mask: number) => `--jump MARK --set-mark ${hex(mark)}/${hex(mask)}`,
};
export const all = (...parts: Array<string | undefined | false>): string => parts.filter(Boolean).join(' ');

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
export function renderHook(kernelChain: string, rules: IptRule[], mode: 'insert' | 'append'): string[] {
  // felix/iptables/table.go: appended rules are hashed under "<chain>*appends*".
  const hashes = ruleHashes(mode === 'insert' ? kernelChain : `${kernelChain}*appends*`, rules);
  return rules.map((r, i) => renderInner(`${mode === 'insert' ? '-I' : '-A'} ${kernelChain}`, `-m comment --comment "${HASH_COMMENT_PREFIX}${hashes[i]}"`, r));
}
