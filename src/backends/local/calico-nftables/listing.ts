// What Felix reads back before it writes to a table it wrote since its last read (felix/nftables/table.go
// loadDataplaneState → attemptToGetHashesAndRulesFromDataplane, through knftables List("chain") and
// ListRules("")): `nft --json list chains ip` for the chain names and `nft --json list table ip calico` for every
// rule, of which it keeps each rule's handle and the hash in its comment. The listing is the cost a write pays
// for the one before it; the handles are what lets the next write replace a rule in place.
import { BenchError } from '../../../errors.js';
import { hashOfComment, T } from './render.js';
import { TABLE_FAMILY, TABLE_NAME } from './layout.js';

/** A chain as Felix believes it is in the kernel: its rules' hashes, and their handles once listed. */
export interface ListedChain {
  hashes: string[];
  /** Absent when the chain was written since the last listing (or in a dry run): handles are the kernel's to assign. */
  handles?: number[];
}

/** What Felix believes one node's `calico` table holds. */
export interface TableView {
  chains: Map<string, ListedChain>;
  /** Written since the last listing: the next write re-lists first (post-write cache invalidation). */
  stale: boolean;
}

export const emptyTableView = (): TableView => ({ chains: new Map(), stale: true });

/** The two listing commands, as knftables runs them. */
export const LIST_CHAINS_ARGV = ['nft', '--json', 'list', 'chains', TABLE_FAMILY];
export const LIST_TABLE_ARGV = ['nft', '--json', 'list', 'table', ...T.split(' ')];

/** nft's "the table does not exist": knftables.IsNotFound, an empty table for Felix. */
export const isNotFound = (stderr: string): boolean => /No such file or directory/.test(stderr);

type NftJsonObject = Record<string, Record<string, unknown> | undefined>;

function objectsOf(json: string, what: string): NftJsonObject[] {
  if (json.trim() === '') return [];
  let parsed: unknown;
  try {
    parsed = JSON.parse(json);
  } catch (e) {
    throw new BenchError('command', `${what}: nft --json printed what is not JSON (${(e as Error).message})`);
  }
  const list = (parsed as { nftables?: unknown }).nftables;
  if (!Array.isArray(list)) throw new BenchError('command', `${what}: nft --json output has no "nftables" array`);
  return list as NftJsonObject[];
}

/**
 * The table as listed: every chain of `calico` (from the chain listing, so an empty chain counts), each with its
 * rules' hashes and handles in order (from the table listing).
 */
export function parseTableListing(chainsJson: string, tableJson: string): Map<string, ListedChain> {
  const chains = new Map<string, ListedChain>();
  for (const o of objectsOf(chainsJson, 'nft list chains')) {
    const c = o.chain;
    if (c && c.table === TABLE_NAME && typeof c.name === 'string') chains.set(c.name, { hashes: [], handles: [] });
  }
  for (const o of objectsOf(tableJson, `nft list table ${T}`)) {
    const r = o.rule;
    if (!r || r.table !== TABLE_NAME || typeof r.chain !== 'string') continue;
    const chain = chains.get(r.chain) ?? { hashes: [], handles: [] };
    chain.hashes.push(hashOfComment(typeof r.comment === 'string' ? r.comment : undefined));
    chain.handles!.push(Number(r.handle));
    chains.set(r.chain, chain);
  }
  return chains;
}
