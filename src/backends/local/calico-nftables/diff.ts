// The incremental update Felix makes (felix/nftables/table.go Apply, ipsets.go, maps.go): from the installed plan
// to the new one, only what differs goes into one `nft -f` transaction — new sets and chains declared, set and
// map elements added or deleted, changed chains rewritten, chains and sets nobody uses any more deleted.
// Pure: plans in, transaction text and counts out.
import {
  TABLE_FAMILY,
  TABLE_NAME,
  mapElement,
  renderChainDecl,
  renderChainRules,
  renderElements,
  renderMapDecl,
  renderSetDecl,
  type NftChain,
  type NftNodePlan,
} from './compile.js';

export interface NftDiffCounts {
  chainsAdded: number;
  chainsRewritten: number;
  chainsDeleted: number;
  rulesWritten: number;
  setsAdded: number;
  setsDeleted: number;
  setElementsAdded: number;
  setElementsDeleted: number;
  mapElementsChanged: number;
}

export interface NftDiff {
  /** `nft -f` input; empty when nothing changed. */
  transaction: string;
  counts: NftDiffCounts;
}

const T = `${TABLE_FAMILY} ${TABLE_NAME}`;

function sameChain(a: NftChain, b: NftChain): boolean {
  if (a.rules.length !== b.rules.length || JSON.stringify(a.hook) !== JSON.stringify(b.hook)) return false;
  // Comments are part of what is written (and of Felix's rule hashes), so they count as a change too.
  return a.rules.every((r, i) => r.body === b.rules[i]!.body && r.comments.join('\n') === b.rules[i]!.comments.join('\n'));
}

export function diffNodePlans(current: NftNodePlan, next: NftNodePlan): NftDiff {
  const counts: NftDiffCounts = {
    chainsAdded: 0,
    chainsRewritten: 0,
    chainsDeleted: 0,
    rulesWritten: 0,
    setsAdded: 0,
    setsDeleted: 0,
    setElementsAdded: 0,
    setElementsDeleted: 0,
    mapElementsChanged: 0,
  };
  const head: string[] = [];
  const flushes: string[] = [];
  const rules: string[] = [];
  const elements: string[] = [];
  const tail: string[] = [];

  const oldSets = new Map(current.sets.map((s) => [s.name, s]));
  const newSets = new Map(next.sets.map((s) => [s.name, s]));
  for (const s of next.sets) {
    const old = oldSets.get(s.name);
    if (!old) {
      head.push(renderSetDecl(s));
      counts.setsAdded++;
      elements.push(...renderElements(s.name, s.elements));
      counts.setElementsAdded += s.elements.length;
      continue;
    }
    const before = new Set(old.elements);
    const after = new Set(s.elements);
    const removed = old.elements.filter((e) => !after.has(e));
    const added = s.elements.filter((e) => !before.has(e));
    // Deletions first, in case an added element overlaps a removed one in the interval set.
    if (removed.length) head.push(...renderElements(s.name, removed, 'delete'));
    if (added.length) elements.push(...renderElements(s.name, added));
    counts.setElementsDeleted += removed.length;
    counts.setElementsAdded += added.length;
  }

  const oldMaps = new Map(current.maps.map((m) => [m.name, new Map(m.elements)]));
  const mapAdds: string[] = [];
  for (const m of next.maps) {
    const old = oldMaps.get(m.name) ?? new Map<string, string>();
    if (!oldMaps.has(m.name)) head.push(renderMapDecl(m));
    const want = new Map(m.elements);
    const del = [...old.entries()].filter(([k, v]) => want.get(k) !== v);
    const add = m.elements.filter(([k, v]) => old.get(k) !== v);
    // Map elements that point at a chain go before the chain can be deleted, and come back after it exists.
    if (del.length) head.push(...renderElements(m.name, del.map(([k]) => `"${k}"`), 'delete'));
    if (add.length) mapAdds.push(...renderElements(m.name, add.map(mapElement)));
    counts.mapElementsChanged += new Set([...del.map(([k]) => k), ...add.map(([k]) => k)]).size;
  }

  const oldChains = new Map(current.chains.map((c) => [c.name, c]));
  const newChains = new Set(next.chains.map((c) => c.name));
  for (const c of next.chains) {
    const old = oldChains.get(c.name);
    if (!old) {
      head.push(renderChainDecl(c));
      rules.push(...renderChainRules(c));
      counts.chainsAdded++;
      counts.rulesWritten += c.rules.length;
    } else if (!sameChain(old, c)) {
      // Felix replaces rules by handle; flushing and refilling the chain in the same commit is equally atomic.
      flushes.push(`flush chain ${T} ${c.name}`);
      rules.push(...renderChainRules(c));
      counts.chainsRewritten++;
      counts.rulesWritten += c.rules.length;
    }
  }
  for (const c of current.chains) {
    if (newChains.has(c.name)) continue;
    // Flushed first to sever its jumps, deleted last once nothing refers to it.
    flushes.push(`flush chain ${T} ${c.name}`);
    tail.push(`delete chain ${T} ${c.name}`);
    counts.chainsDeleted++;
  }
  for (const s of current.sets) {
    if (newSets.has(s.name)) continue;
    tail.push(`delete set ${T} ${s.name}`);
    counts.setsDeleted++;
  }
  const all = [...head, ...flushes, ...rules, ...elements, ...mapAdds, ...tail];
  return { transaction: all.length ? `${all.join('\n')}\n` : '', counts };
}
