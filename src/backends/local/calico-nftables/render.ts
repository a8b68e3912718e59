// The calico-nftables plan as `nft -f` text, line for line as Felix writes it through knftables (v0.0.18, the
// version Felix v3.30 vendors: objects.go writeOperation) and felix/nftables/render.go: every rule carries a
// `cali:<hash>;` comment whose hash chains along its chain (generictables.RuleHashes), so a re-listed rule is
// recognised by its comment.
import type { NftSelectorSets } from '../../../config/schema.js';
import { chainedRuleHashes } from '../calico/felix.js';
import { FELIX_VERSION, MAX_COMMENT, TABLE_FAMILY, TABLE_NAME, type NftChain, type NftMap, type NftRule, type NftSet } from './layout.js';

const RULE_HASH_PREFIX = 'cali:';
export const T = `${TABLE_FAMILY} ${TABLE_NAME}`;

/** renderer.go comment(): "cali:<hash>;" then the rule's comments, at most 128 characters. */
function ruleComment(hash: string, comments: string[]): string {
  const head = `${RULE_HASH_PREFIX}${hash};`;
  if (comments.length === 0) return head;
  const per = Math.floor((MAX_COMMENT - head.length) / comments.length);
  const text = [head, ...comments.map((c) => c.replace(/["\\]/g, '').slice(0, per))].join(' ');
  return text.slice(0, MAX_COMMENT);
}

/** The rule hash a listed rule's comment carries (table.go: the comment up to ';', prefix trimmed). */
export function hashOfComment(comment: string | undefined): string {
  if (comment === undefined) return '';
  const head = comment.split(';')[0]!;
  return head.startsWith(RULE_HASH_PREFIX) ? head.slice(RULE_HASH_PREFIX.length) : head;
}

/**
 * generictables.RuleHashes: each hash chains in the previous one, seeded with the chain name; 16 characters. A base
 * chain's appended rules are hashed as their own run under "<chain>*appends*" (expectedHashesForInsertAppendChain).
 */
export function ruleHashes(chain: NftChain): string[] {
  const bodies = chain.rules.map((r) => r.body);
  if (chain.appendsFrom === undefined) return chainedRuleHashes(chain.name, bodies);
  return [...chainedRuleHashes(chain.name, bodies.slice(0, chain.appendsFrom)), ...chainedRuleHashes(`${chain.name}*appends*`, bodies.slice(chain.appendsFrom))];
}

export function renderChainDecl(c: NftChain): string {
  if (!c.hook) return `add chain ${T} ${c.name}`;
  return `add chain ${T} ${c.name} { type ${c.hook.type} hook ${c.hook.hook} priority ${c.hook.priority} ; }`;
}

const ruleText = (r: NftRule, hash: string): string => `${r.body} comment "${ruleComment(hash, r.comments)}"`;

export const renderAddRule = (chain: string, r: NftRule, hash: string): string => `add rule ${T} ${chain} ${ruleText(r, hash)}`;
export const renderReplaceRule = (chain: string, handle: number, r: NftRule, hash: string): string => `replace rule ${T} ${chain} handle ${handle} ${ruleText(r, hash)}`;
export const renderDeleteRule = (chain: string, handle: number): string => `delete rule ${T} ${chain} handle ${handle}`;

/** Every rule of a chain appended, in order. */
export function renderChainRules(c: NftChain): string[] {
  const hashes = ruleHashes(c);
  return c.rules.map((r, i) => renderAddRule(c.name, r, hashes[i]!));
}

/**
 * felix/nftables/ipsets.go NFTablesSet: a hash:net IP set is `type ipv4_addr` with the interval flag (so a member
 * may be a CIDR); 'hash' declares the same /32 members without it, to show what the flag costs.
 */
export function renderSetDecl(s: Pick<NftSet, 'name'>, kind: NftSelectorSets): string {
  return `add set ${T} ${s.name} { type ipv4_addr ;${kind === 'interval' ? ' flags interval ;' : ''} }`;
}
export const renderMapDecl = (m: Pick<NftMap, 'name'>): string => `add map ${T} ${m.name} { type ifname : verdict ; }`;

/** One element per line, as knftables writes each Element operation. */
export const renderElement = (set: string, key: string, verb: 'add' | 'delete' = 'add'): string => `${verb} element ${T} ${set} { ${key} }`;
export const renderMapElement = (map: string, [iface, verdict]: readonly [string, string]): string => `add element ${T} ${map} { "${iface}" : ${verdict} }`;
export const renderMapElementDelete = (map: string, iface: string): string => `delete element ${T} ${map} { "${iface}" }`;

/**
 * The head of an install's first transaction: the node starts without Calico's table, as a fresh Felix finds it
 * (add-then-delete makes the delete safe on a clean node), and the table says which run wrote it.
 */
export function renderTableReset(runId: string): string[] {
  return [`add table ${T}`, `delete table ${T}`, `add table ${T} { comment "cni-bench run ${runId}: Calico nftables model (Felix ${FELIX_VERSION} layout)" ; }`];
}
