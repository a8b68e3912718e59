// What a socket-level service load balancer's agent holds in its maps, per Service: each Service's entries, and
// the entries themselves counted by how many Services use them (a backend address shared by two Services is one
// backend entry, deleted when the last Service that lists it lets go — Cilium's backend reference counts in
// pkg/loadbalancer/reconciler). Replacing one Service's entries yields what the maps must change, without
// touching the other Services: the per-object reconciliation the agents do. Pure.
/** One map entry as raw bytes in the layout of the C struct; rank orders writes (adds ascending, deletes descending). */
export interface MapEntry {
  map: string;
  key: Buffer;
  value: Buffer;
  rank: number;
}

export const entryKey = (e: MapEntry) => `${e.map} ${e.key.toString('hex')}`;

interface Held {
  entry: MapEntry;
  refs: number;
}

export class ServiceEntryStore {
  private readonly byService = new Map<string, MapEntry[]>();
  private readonly held = new Map<string, Held>();
  private readonly perMap = new Map<string, number>();

  /**
   * Sets each named Service's entries (an empty list: the Service is gone) and returns the map writes: entries new
   * or with a new value (adds), entries no Service holds any more (deletes). Only these Services' entries are read.
   */
  replace(services: Iterable<[service: string, entries: MapEntry[]]>): { adds: MapEntry[]; deletes: MapEntry[] } {
    const before = new Map<string, MapEntry | undefined>();
    const note = (k: string) => {
      if (!before.has(k)) before.set(k, this.held.get(k)?.entry);
    };
    for (const [service, entries] of services) {
      const old = this.byService.get(service) ?? [];
      for (const e of old) {
        const k = entryKey(e);
        note(k);
        this.release(k);
      }
      for (const e of entries) {
        const k = entryKey(e);
        note(k);
        this.retain(k, e);
      }
      if (entries.length) this.byService.set(service, entries);
      else this.byService.delete(service);
    }
    const adds: MapEntry[] = [];
    const deletes: MapEntry[] = [];
    for (const [k, was] of before) {
      const now = this.held.get(k)?.entry;
      if (now && !(was && was.value.equals(now.value))) adds.push(now);
      else if (!now && was) deletes.push(was);
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

  get size(): number {
    return this.held.size;
  }

  private retain(k: string, e: MapEntry): void {
    const h = this.held.get(k);
    if (h) {
      h.refs++;
      h.entry = e;
      return;
    }
    this.held.set(k, { entry: e, refs: 1 });
    this.perMap.set(e.map, (this.perMap.get(e.map) ?? 0) + 1);
  }

  private release(k: string): void {
    const h = this.held.get(k)!;
    if (--h.refs > 0) return;
    this.held.delete(k);
    this.perMap.set(h.entry.map, this.perMap.get(h.entry.map)! - 1);
  }
}
