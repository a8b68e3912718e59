// The writes Felix's nftables data plane makes to bring a node from one plan to the next, in its order
// (felix/dataplane/linux/int_dataplane.go apply): IP sets first, in a transaction of their own (ipsets.go
// tryUpdates: new sets declared, member deletions before additions); then the table (table.go applyUpdates,
// after re-listing it if it was written since its last read: listing.ts), changing rules in place by handle; last,
// sets nobody references any more, at most 500 per transaction (ipsets.go ApplyDeletions).
// Pure: plans and the listed table in, `nft -f` texts with their cost out; model.ts runs them.
import type { NftSelectorSets } from '../../../config/schema.js';
import type { WriteWork } from '../calico/agent-write.js';
import type { NftChain, NftNodePlan } from './layout.js';
import type { ListedChain } from './listing.js';
import {
  T,
  renderAddRule,
  renderChainDecl,
  renderDeleteRule,
  renderElement,
  renderMapDecl,
  renderMapElement,
  renderMapElementDelete,
  renderReplaceRule,
  renderSetDecl,
  ruleHashes,
} from './render.js';

/** One `nft -f` transaction and what it costs the kernel (for its timeout). */
export interface NftWrite {
  text: string;
  work: WriteWork;
}

export interface SetWriteCounts {
  setsAdded: number;
  setElementsAdded: number;
  setElementsDeleted: number;
}

export interface TableWriteCounts {
  chainsAdded: number;
  chainsRewritten: number;
  chainsDeleted: number;
  /** Rules appended or replaced. */
  rulesWritten: number;
  mapElementsChanged: number;
}

/** ipsets.go ApplyDeletions: "Deleting IP sets is slow … Avoid holding up the main loop for too long." */
export const MAX_SET_DELETIONS_PER_WRITE = 500;

const toWrite = (lines: string[], work: Omit<WriteWork, 'lines'>): NftWrite | undefined =>
  lines.length === 0 ? undefined : { text: `${lines.join('\n')}\n`, work: { lines: lines.length, ...work } };

/**
 * ipsets.go tryUpdates: one transaction holding every set whose members changed — the table first when no set is
 * programmed yet (`head` replaces that line at install), a new set's declaration, then each set's deletions and
 * additions, one element per line. Each line makes the kernel find its set by name among all the table's sets.
 */
export function planSetWrite(before: NftNodePlan | undefined, next: NftNodePlan, kind: NftSelectorSets, head?: string[]): { write?: NftWrite; counts: SetWriteCounts } {
  const counts: SetWriteCounts = { setsAdded: 0, setElementsAdded: 0, setElementsDeleted: 0 };
  const old = new Map((before?.sets ?? []).map((s) => [s.name, s.elements]));
  const body: string[] = [];
  for (const s of next.sets) {
    const had = old.get(s.name);
    if (had === undefined) {
      body.push(renderSetDecl(s, kind));
      counts.setsAdded++;
    }
    const now = new Set(s.elements);
    const was = new Set(had ?? []);
    for (const e of had ?? []) if (!now.has(e)) body.push(renderElement(s.name, e, 'delete'));
    for (const e of s.elements) if (!was.has(e)) body.push(renderElement(s.name, e));
    counts.setElementsDeleted += (had ?? []).filter((e) => !now.has(e)).length;
    counts.setElementsAdded += s.elements.filter((e) => !was.has(e)).length;
  }
  const lines = head ? [...head, ...body] : body.length && old.size === 0 ? [`add table ${T}`, ...body] : body;
  const elementOps = counts.setElementsAdded + counts.setElementsDeleted;
  const write = toWrite(lines, {
    nameComparisons: lines.length * next.sets.length + (kind === 'interval' && elementOps > 0 ? nftCacheFill(old.size) : 0),
    intervalElements: kind === 'interval' ? elementOps : 0,
  });
  return { write, counts };
}

/**
 * What `nft -f` itself reads before it applies a transaction to a table holding `sets` sets: for a `replace rule`,
 * and for any element added to or deleted from a table with interval sets, nft (1.0.6 here) fills its cache with
 * every set's elements, one dump per set, each finding its set by name among all of them (measured at 10000 sets:
 * one replaced rule 12 s, one map element added beside interval sets 15 s, at a load average of about 7).
 */
const nftCacheFill = (sets: number): number => sets * sets;

const sameHashes = (a: readonly string[] | undefined, b: readonly string[]): boolean => !!a && a.length === b.length && a.every((h, i) => h === b[i]);
const SET_REF = /@(cali40s-[A-Za-z0-9_-]+)/g;

/** The IP sets a chain's rules match on (generictables Chain.IPSetNames). */
function setsOf(c: NftChain): string[] {
  const names = new Set<string>();
  for (const r of c.rules) for (const m of r.body.matchAll(SET_REF)) names.add(m[1]!);
  return [...names];
}

/**
 * table.go applyUpdates, from the table as listed to `next`: new maps, stale map elements removed, missing base
 * chains declared; every chain whose rules differ from the listing is dirty — a new one declared, a gone one
 * flushed (and deleted last); a dirty chain's sets re-declared (the transaction must not name an unknown set),
 * then its rules compared index by index with the listed hashes: a differing rule replaced by handle, extra
 * listed rules deleted by handle, extra new ones appended. A base chain that differs is flushed and refilled.
 * Where the listing has no handles (a dry run lists nothing), a differing chain is flushed and refilled instead.
 */
export function planTableWrite(
  before: NftNodePlan | undefined,
  next: NftNodePlan,
  listed: ReadonlyMap<string, ListedChain>,
  kind: NftSelectorSets,
): { write?: NftWrite; counts: TableWriteCounts; after: Map<string, ListedChain> } {
  const counts: TableWriteCounts = { chainsAdded: 0, chainsRewritten: 0, chainsDeleted: 0, rulesWritten: 0, mapElementsChanged: 0 };
  const head: string[] = listed.size === 0 ? [`add table ${T}`] : [];
  const declare: string[] = [];
  const rules: string[] = [];
  const mapAdds: string[] = [];
  const tail: string[] = [];
  const after = new Map<string, ListedChain>();
  const sets = new Map(next.sets.map((s) => [s.name, s]));
  let setRefs = 0;

  const oldMaps = new Map((before?.maps ?? []).map((m) => [m.name, new Map(m.elements)]));
  for (const m of next.maps) {
    const old = oldMaps.get(m.name);
    if (!old) head.push(renderMapDecl(m));
    const want = new Map(m.elements);
    const gone = [...(old ?? new Map<string, string>()).entries()].filter(([k, v]) => want.get(k) !== v).map(([k]) => k);
    const added = m.elements.filter(([k, v]) => old?.get(k) !== v);
    head.push(...gone.map((k) => renderMapElementDelete(m.name, k)));
    mapAdds.push(...added.map((e) => renderMapElement(m.name, e)));
    counts.mapElementsChanged += new Set([...gone, ...added.map(([k]) => k)]).size;
  }

  for (const c of next.chains) {
    const hashes = ruleHashes(c);
    const dp = listed.get(c.name);
    if (sameHashes(dp?.hashes, hashes)) {
      after.set(c.name, dp!);
      continue;
    }
    after.set(c.name, { hashes });
    if (!dp) {
      declare.push(renderChainDecl(c));
      counts.chainsAdded++;
    } else counts.chainsRewritten++;
    if (!c.hook) {
      for (const s of setsOf(c)) {
        const set = sets.get(s);
        if (set) rules.push(renderSetDecl(set, kind));
        setRefs++;
      }
    }
    if (!dp || c.hook || !dp.handles) {
      // New, a base chain (flushed and refilled, as table.go does for its insert/append chains), or no handles.
      if (dp) rules.push(`flush chain ${T} ${c.name}`);
      c.rules.forEach((r, i) => rules.push(renderAddRule(c.name, r, hashes[i]!)));
      counts.rulesWritten += c.rules.length;
      continue;
    }
    const handles = dp.handles;
    for (let i = 0; i < Math.max(hashes.length, dp.hashes.length); i++) {
      if (i < hashes.length && i < dp.hashes.length) {
        if (hashes[i] === dp.hashes[i]) continue;
        rules.push(renderReplaceRule(c.name, handles[i]!, c.rules[i]!, hashes[i]!));
        counts.rulesWritten++;
      } else if (i < dp.hashes.length) {
        rules.push(renderDeleteRule(c.name, handles[i]!));
      } else {
        rules.push(renderAddRule(c.name, c.rules[i]!, hashes[i]!));
        counts.rulesWritten++;
      }
    }
  }
  const desired = new Set(next.chains.map((c) => c.name));
  for (const name of [...listed.keys()].sort()) {
    if (desired.has(name)) continue;
    // Flushed first to sever its jumps, deleted last once nothing refers to it.
    declare.push(`flush chain ${T} ${name}`);
    tail.push(`delete chain ${T} ${name}`);
    counts.chainsDeleted++;
  }
  for (const r of rules) if (r.includes('@cali40s-')) setRefs++;
  const fillsCache = rules.some((r) => r.startsWith('replace rule')) || (kind === 'interval' && listed.size > 0 && counts.mapElementsChanged > 0);
  const sets0 = before?.sets.length ?? 0;
  const write = toWrite([...head, ...declare, ...rules, ...mapAdds, ...tail], { nameComparisons: setRefs * next.sets.length + (fillsCache ? nftCacheFill(sets0) : 0) });
  return { write, counts, after };
}

/** ipsets.go ApplyDeletions: the sets `next` no longer has, at most MAX_SET_DELETIONS_PER_WRITE per transaction. */
export function planSetDeletions(before: NftNodePlan | undefined, next: NftNodePlan): Array<{ write: NftWrite; sets: number }> {
  const keep = new Set(next.sets.map((s) => s.name));
  const gone = (before?.sets ?? []).map((s) => s.name).filter((n) => !keep.has(n));
  const out: Array<{ write: NftWrite; sets: number }> = [];
  for (let i = 0; i < gone.length; i += MAX_SET_DELETIONS_PER_WRITE) {
    const batch = gone.slice(i, i + MAX_SET_DELETIONS_PER_WRITE);
    const lines = batch.map((n) => `delete set ${T} ${n}`);
    out.push({ write: toWrite(lines, { nameComparisons: lines.length * (before?.sets.length ?? 0) })!, sets: batch.length });
  }
  return out;
}
