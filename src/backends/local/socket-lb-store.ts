// What a socket-level service load balancer's agent holds in its maps, per Service: each Service's entries, and
// the entries themselves counted by how many Services use them (a backend address shared by two Services is one
// backend entry, deleted when the last Service that lists it lets go — Cilium's backend reference counts in
// pkg/loadbalancer/reconciler). Replacing one Service's entries yields what the maps must change, without
// touching the other Services: the per-object reconciliation the agents do. Beside it, what an agent that
// re-renders its whole state holds: one flat list, encoded anew and diffed at each change. Pure.
import { serviceKey, type Service, type ServiceDelta, type ServiceSet } from '../../services/types.js';
/** One map entry as raw bytes in the layout of the C struct; rank orders writes (adds ascending, deletes descending). */
export interface MapEntry {
  map: string;
  key: Buffer;
  value: Buffer;
  rank: number;
}

/** Stable small integers per name, starting at 1 in each space (backend ids, service ids: separate spaces, as in the agents). */
export class IdAllocator {
  private readonly ids = new Map<string, number>();
  private readonly next = new Map<string, number>();
  id(space: string, name: string): number {
    const k = `${space}\u0000${name}`;
    let v = this.ids.get(k);
    if (v === undefined) {
      v = this.next.get(space) ?? 1;
      this.next.set(space, v + 1);
      this.ids.set(k, v);
    }
    return v;
  }
}

export const entryKey = (e: MapEntry) => `${e.map} ${e.key.toString('hex')}`;

interface Held {
  entry: MapEntry;
  refs: number;
}

export class ServiceEntryStore {
  private readonly byService = new Map<string, { entries: MapEntry[]; keys: string[] }>();
  private readonly held = new Map<string, Held>();
  private readonly perMap = new Map<string, number>();

  /**
   * Sets each named Service's entries (an empty list: the Service is gone) and returns the map writes: entries new
   * or with a new value (adds), entries no Service holds any more (deletes). Only these Services' entries are read.
   * A Service's new entries are taken before its old ones are let go, so an entry it keeps is never dropped.
   */
  replace(services: Iterable<[service: string, entries: MapEntry[]]>): { adds: MapEntry[]; deletes: MapEntry[] } {
    // The keys whose entry may change, with the entry each held before (none: it was not in the maps).
    const was = new Map<string, MapEntry | undefined>();
    for (const [service, entries] of services) {
      const keys = entries.map(entryKey);
      entries.forEach((e, i) => {
        const k = keys[i]!;
        const h = this.held.get(k);
        if (!h) {
          if (!was.has(k)) was.set(k, undefined);
          this.held.set(k, { entry: e, refs: 1 });
          this.perMap.set(e.map, (this.perMap.get(e.map) ?? 0) + 1);
          return;
        }
        h.refs++;
        if (!h.entry.value.equals(e.value)) {
          if (!was.has(k)) was.set(k, h.entry);
          h.entry = e;
        }
      });
      for (const k of this.byService.get(service)?.keys ?? []) {
        const h = this.held.get(k)!;
        if (--h.refs > 0) continue;
        if (!was.has(k)) was.set(k, h.entry);
        this.held.delete(k);
        this.perMap.set(h.entry.map, this.perMap.get(h.entry.map)! - 1);
      }
      if (entries.length) this.byService.set(service, { entries, keys });
      else this.byService.delete(service);
    }
    const adds: MapEntry[] = [];
    const deletes: MapEntry[] = [];
    for (const [k, before] of was) {
      const now = this.held.get(k)?.entry;
      if (now && !(before && before.value.equals(now.value))) adds.push(now);
      else if (!now && before) deletes.push(before);
    }
    return { adds, deletes };
  }

  /** Every entry held, each once, in the order first written. */
  entries(): MapEntry[] {
    return [...this.held.values()].map((h) => h.entry);
  }

  /** Entries per map, as `<map>Entries`, and their total. */
  counts(): Record<string, number> {
    return Object.fromEntries([...this.perMap].filter(([, n]) => n > 0).map(([m, n]) => [`${m}Entries`, n]));
  }

  /** The Services that hold entries. */
  services(): Iterable<string> {
    return this.byService.keys();
  }

  get size(): number {
    return this.held.size;
  }
}

/** What the agent holds in its maps, and how a change turns into map writes. */
export interface HeldMaps {
  /** The map writes that take the maps to `next`; `delta` names the Services that changed, where the agent uses it. */
  change(next: ServiceSet, delta?: ServiceDelta): { adds: MapEntry[]; deletes: MapEntry[] };
  entries(): MapEntry[];
  counts(): Record<string, number>;
  readonly size: number;
}

export type EncodeService = (svc: Service, ids: IdAllocator) => MapEntry[];

/** Every Service's entries, an entry two Services share once, in the order first written. */
export function encodeServiceSet(set: ServiceSet, encode: EncodeService, ids: IdAllocator): MapEntry[] {
  const seen = new Set<string>();
  const out: MapEntry[] = [];
  for (const svc of set.services) {
    for (const e of encode(svc, ids)) {
      const k = entryKey(e);
      if (seen.has(k)) continue;
      seen.add(k);
      out.push(e);
    }
  }
  return out;
}

/** What changed between two encodings: entries new or with a new value, and entries gone. */
export function diffEntries(before: MapEntry[], after: MapEntry[]): { adds: MapEntry[]; deletes: MapEntry[] } {
  const old = new Map(before.map((e) => [entryKey(e), e]));
  const adds: MapEntry[] = [];
  for (const e of after) {
    const o = old.get(entryKey(e));
    old.delete(entryKey(e));
    if (!o || !o.value.equals(e.value)) adds.push(e);
  }
  return { adds, deletes: [...old.values()] };
}

const countsOf = (entries: MapEntry[]): Record<string, number> => {
  const perMap: Record<string, number> = {};
  for (const e of entries) perMap[`${e.map}Entries`] = (perMap[`${e.map}Entries`] ?? 0) + 1;
  return perMap;
};

/**
 * An agent that re-renders every Service at each change and writes the difference (Felix's BPF proxy syncer). Its
 * Services share no entry (Felix's back-end keys carry the Service's id), so the render needs no de-duplication.
 */
export function wholeSetMaps(set: ServiceSet, encode: EncodeService, ids: IdAllocator): HeldMaps {
  const render = (s: ServiceSet) => s.services.flatMap((svc) => encode(svc, ids));
  let held = render(set);
  return {
    change(next) {
      const after = render(next);
      const writes = diffEntries(held, after);
      held = after;
      return writes;
    },
    entries: () => held,
    counts: () => countsOf(held),
    get size() {
      return held.length;
    },
  };
}

/** An agent that rewrites the changed Services' entries alone (Cilium's load-balancer reconciler). */
export function perServiceMaps(set: ServiceSet, encode: EncodeService, ids: IdAllocator): HeldMaps {
  const store = new ServiceEntryStore();
  const all = (s: ServiceSet) => s.services.map((svc): [string, MapEntry[]] => [serviceKey(svc), encode(svc, ids)]);
  store.replace(all(set));
  return {
    change(next, delta) {
      if (delta) return store.replace([...delta.removed.map((s): [string, MapEntry[]] => [serviceKey(s), []]), ...delta.upserted.map((s): [string, MapEntry[]] => [serviceKey(s), encode(s, ids)])]);
      // Not told what changed: every Service re-encoded, and those no longer in the set let go.
      const present = new Set(next.services.map(serviceKey));
      return store.replace([...[...store.services()].filter((k) => !present.has(k)).map((k): [string, MapEntry[]] => [k, []]), ...all(next)]);
    },
    entries: () => store.entries(),
    counts: () => store.counts(),
    get size() {
      return store.size;
    },
  };
}
