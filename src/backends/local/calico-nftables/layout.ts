// The calico-nftables model's vocabulary: the `calico` table, Felix's names for its chains and sets, its mark
// bits, the nft fragments of felix/nftables match_builder.go and actions.go, and the plan a node compiles to
// (chains, sets, maps as data). compile.ts builds plans; render.ts writes them as `nft -f` text.
import { createHash } from 'node:crypto';
import { BenchError } from '../../../errors.js';
import { TIER, calicoPolicyName, lengthLimitedId, peerSetName, policyGroupUid } from '../calico/felix.js';

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
export const MARK_ALL = MARK_ACCEPT | MARK_PASS | MARK_SCRATCH0 | MARK_SCRATCH1;
/** Felix's policy-group chains drop a "return on verdict" rule every this many jumps (endpoints.go). */
export const RETURN_STRIDE = 5;
/** Felix's default VXLAN port: encapsulated packets from workloads are dropped (AllowVXLANPacketsFromWorkloads=false). */
export const VXLAN_PORT = 4789;

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
  /** Base chain: hooked into netfilter (felix/nftables/table.go baseChains; no policy given, so accept). */
  hook?: { type: 'filter'; hook: 'forward'; priority: number };
  /**
   * Base chains hold Felix's inserted rules, then its appended ones (InsertOrAppendRules / AppendRules); the
   * appended ones, from this index on, are hashed under "<chain>*appends*".
   */
  appendsFrom?: number;
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

export const b64 = (text: string): string => createHash('sha256').update(text).digest('base64url');
export const fail = (message: string): Error => new NftCompileError(message);

/** The table layer prefix Felix puts on every chain and map of the filter "table". */
export const layered = (name: string): string => `${LAYER}-${name}`;

/** Felix v3.30's human-readable policy chain name for a Kubernetes NetworkPolicy: tier/namespace/knp.default.<name>. */
export function policyChainName(direction: 'ingress' | 'egress', policyId: string): string {
  return layered(lengthLimitedId(direction === 'ingress' ? 'cali-pi-' : 'cali-po-', `${TIER}/${calicoPolicyName(policyId)}`, MAX_NAME));
}

export function endpointChainName(direction: 'ingress' | 'egress', iface: string): string {
  return layered(lengthLimitedId(direction === 'ingress' ? 'cali-tw-' : 'cali-fw-', iface, MAX_NAME));
}

export function profileChainName(direction: 'ingress' | 'egress', profile: string): string {
  return layered(lengthLimitedId(direction === 'ingress' ? 'cali-pri-' : 'cali-pro-', profile, MAX_NAME));
}

/** PolicyGroup.UniqueID, 20 characters; the model hashes with sha224 over its chain names (Felix: sha3-224 over policy names). */
export function groupChainName(direction: 'ingress' | 'egress', selector: string, chains: string[]): string {
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

export const hex = (n: number): string => `0x${(n >>> 0).toString(16)}`;
const inv = (n: number): string => hex(~n >>> 0);
export const markClear = (m: number): string => `meta mark & ${hex(m)} == 0`;
export const markNotClear = (m: number): string => `meta mark & ${hex(m)} != 0`;
export const markSet = (m: number): string => `meta mark & ${hex(m)} == ${hex(m)}`;
export const setMark = (m: number): string => `meta mark set mark or ${hex(m)}`;
export const clearMark = (m: number): string => `meta mark set mark & ${inv(m)}`;
export const setMaskedMark = (m: number, mask: number): string => `meta mark set mark & ${inv(mask)} ^ ${hex(m)}`;

export function rule(match: string, action: string | undefined, comments: string[] = [], jump?: string): NftRule {
  // renderer.go: every rule with an action counts; an empty rule becomes "continue".
  const body = [match, action === undefined ? '' : `counter ${action}`].filter(Boolean).join(' ');
  return { body: body || 'continue', comments, jump };
}

