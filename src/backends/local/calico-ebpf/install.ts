// Installs the Calico-eBPF-style model on a node namespace through the Runner: load the fixed programs and maps
// once per node (pinned under /sys/fs/bpf/cb-<runid>/ce-<node>/), attach them at tc on each workload's host-side
// veth, then write changes: IP set members, policy programs into the policy jump map, endpoint entries.
// planNodeChanges is pure: from what is installed and what is wanted it renders only the difference, in an order
// that never leaves a packet facing a half-written chain.
import type { CommandSpec, Runner } from '../../../exec/runner.js';
import { bpfPinDir, nativeArtefact } from '../bpf/native.js';
import { encodeInsns } from './asm.js';
import { defaultDenyChain, type CalicoEbpfNode, type PolicyChain } from './compile.js';
import { MAX_PROGRAMS_PER_CHAIN } from './layout.js';
import { BenchError } from '../../../errors.js';

/** Policy jump map layout (calico_ebpf.bpf.c): head of endpoint-direction slot s at index s (1..255). */
export const POL_STRIDE = 256;
export const MAX_HEAD_SLOTS = POL_STRIDE - 1;
const SUBS_PER_BUFFER = MAX_PROGRAMS_PER_CHAIN - 1;
/** Entries of the policy jump map (POL_SLOTS in the C): an index at or past it is outside the map. */
export const POL_SLOTS = POL_STRIDE * (1 + 2 * SUBS_PER_BUFFER);

/**
 * Index of sub-program k ≥ 1 of the chain headed at `slot`, in buffer 0 or 1. Past Felix's 24 programs there is
 * no place: the index is outside the map, as Felix's jump-map index of a 25th program is, so the tail call fails.
 */
export function subProgramSlot(slot: number, buf: 0 | 1, k: number): number {
  if (k >= MAX_PROGRAMS_PER_CHAIN) return POL_SLOTS;
  if (k < 1) throw new RangeError(`sub-program ${k} outside 1..${SUBS_PER_BUFFER}`);
  return slot + (1 + buf * SUBS_PER_BUFFER + (k - 1)) * POL_STRIDE;
}

/** The loader printed what the model cannot read: a dist/native/cb-cebpf from another build. */
export class LoaderOutputError extends BenchError {
  constructor(what: string, stdout: string) {
    super('command', `cb-cebpf ${what}: unexpected output ${JSON.stringify(stdout.slice(0, 200))}; rebuild the native helpers (npm run build)`);
  }
}

export interface CalicoEbpfBinaries {
  loader: string;
  object: string;
}

export function defaultCalicoEbpfBinaries(): CalicoEbpfBinaries {
  return { loader: nativeArtefact('cb-cebpf'), object: nativeArtefact('calico_ebpf.bpf.o') };
}

export function calicoEbpfPinDir(runId: string, node: string): string {
  return bpfPinDir(runId, node, 'ce-');
}

export function planLoad(bin: CalicoEbpfBinaries, pinDir: string): CommandSpec {
  return { argv: [bin.loader, 'load', '--obj', bin.object, '--pin', pinDir], timeoutMs: 30_000, purpose: `load the Calico-eBPF model's fixed programs and maps into ${pinDir}` };
}

/** With `slots` the interface is registered as a workload endpoint with those policy slots before the programs attach. */
export function planAttach(bin: CalicoEbpfBinaries, pinDir: string, netns: string, ifname: string, pod: string, slots?: [number, number]): CommandSpec {
  return {
    argv: [bin.loader, 'attach', '--pin', pinDir, '--netns', netns, '--ifname', ifname, ...(slots ? ['--ingress-slot', String(slots[0]), '--egress-slot', String(slots[1])] : [])],
    timeoutMs: 10_000,
    purpose: `attach tc programs to ${ifname} (pod ${pod}) in ${netns}`,
  };
}

export function planApply(bin: CalicoEbpfBinaries, pinDir: string, input: string, what: string): CommandSpec {
  return { argv: [bin.loader, 'apply', '--pin', pinDir], input, timeoutMs: 120_000, purpose: `write ${what} into ${pinDir}` };
}

export function planStats(bin: CalicoEbpfBinaries, pinDir: string): CommandSpec {
  return { argv: [bin.loader, 'stats', '--pin', pinDir], timeoutMs: 30_000, purpose: `read Calico-eBPF model counters from ${pinDir}` };
}

export function planUnload(bin: CalicoEbpfBinaries, pinDir: string): CommandSpec {
  return { argv: [bin.loader, 'unload', '--pin', pinDir], timeoutMs: 10_000, purpose: `remove the Calico-eBPF model's pins in ${pinDir}` };
}

export function parseAttachOutput(stdout: string): number | undefined {
  if (!stdout.trim()) return undefined;
  const parsed = JSON.parse(stdout) as { ifindex?: unknown };
  if (typeof parsed.ifindex !== 'number') throw new LoaderOutputError('attach', stdout);
  return parsed.ifindex;
}

interface InstalledChain {
  hash: string;
  buf: 0 | 1;
  programs: number;
}

/** What a node's maps hold, as the model's "agent" remembers it. */
export interface NodeInstalled {
  /** `${pod}|ingress` → head slot. */
  slots: Map<string, number>;
  /** By head slot. */
  chains: Map<number, InstalledChain>;
  /** Set id → members. */
  sets: Map<string, Set<string>>;
  /** ifindex → [ingress head slot, egress head slot] (0: not isolated). */
  eps: Map<number, [number, number]>;
}

export function emptyNodeInstalled(): NodeInstalled {
  return { slots: new Map(), chains: new Map(), sets: new Map(), eps: new Map() };
}

export interface NodeChanges {
  /** Input for `cb-cebpf apply`; empty when nothing changed. */
  input: string;
  next: NodeInstalled;
  changed: {
    programsLoaded: number;
    instructionsLoaded: number;
    chainsReplaced: number;
    chainsRemoved: number;
    setMembersAdded: number;
    setMembersRemoved: number;
    endpointsWritten: number;
    slotsEmptied: number;
  };
}

export class SlotExhaustedError extends BenchError {
  constructor(node: string) {
    super('capacity', `calico-ebpf model: node ${node} has more than ${MAX_HEAD_SLOTS} policy chains (endpoint-directions); the model's jump map is sized for ${MAX_HEAD_SLOTS}`);
  }
}

/**
 * The changes that take a node from `installed` to `desired`, in a safe order: set members first (programs may
 * look them up), then each changed chain's sub-programs into the buffer not in use and its head last (one jump
 * map update swaps the whole chain), then endpoint entries, then old sub-programs, slots and members no longer used.
 */
export function planNodeChanges(installed: NodeInstalled, desired: CalicoEbpfNode, ifindexOf: (pod: string) => number): NodeChanges {
  const lines: string[] = [];
  const changed = { programsLoaded: 0, instructionsLoaded: 0, chainsReplaced: 0, chainsRemoved: 0, setMembersAdded: 0, setMembersRemoved: 0, endpointsWritten: 0, slotsEmptied: 0 };
  const next: NodeInstalled = { slots: new Map(), chains: new Map(), sets: new Map(), eps: new Map() };

  for (const set of desired.sets.values()) {
    const have = installed.sets.get(set.id);
    for (const m of set.members) {
      if (!have?.has(m)) {
        lines.push(`set-add ${set.id} ${m}`);
        changed.setMembersAdded++;
      }
    }
    next.sets.set(set.id, new Set(set.members));
  }

  const wanted: Array<{ key: string; chain: PolicyChain }> = [];
  for (const e of desired.endpoints) {
    for (const chain of [e.ingress, e.egress]) if (chain) wanted.push({ key: `${e.pod}|${chain.direction}`, chain });
  }
  const used = new Set(installed.slots.values());
  let free = 1;
  const allocate = (): number => {
    while (used.has(free)) free++;
    if (free > MAX_HEAD_SLOTS) throw new SlotExhaustedError(desired.node);
    used.add(free);
    return free;
  };
  const stale: number[] = [];
  for (const { key, chain } of wanted) {
    const slot = installed.slots.get(key) ?? allocate();
    next.slots.set(key, slot);
    const old = installed.chains.get(slot);
    if (old && old.hash === chain.hash) {
      next.chains.set(slot, old);
      continue;
    }
    const buf: 0 | 1 = old ? (old.buf === 0 ? 1 : 0) : 0;
    const index = (k: number): number => subProgramSlot(slot, buf, k);
    for (let k = chain.programs.length - 1; k >= 0; k--) {
      const prog = chain.programs[k]!;
      lines.push(`prog ${k === 0 ? slot : index(k)} ${prog.length} ${encodeInsns(prog, index)}`);
      changed.programsLoaded++;
      changed.instructionsLoaded += prog.length;
    }
    if (old) {
      changed.chainsReplaced++;
      for (let k = 1; k < old.programs; k++) stale.push(subProgramSlot(slot, old.buf, k));
    }
    next.chains.set(slot, { hash: chain.hash, buf, programs: chain.programs.length });
  }

  for (const e of desired.endpoints) {
    const ifindex = ifindexOf(e.pod);
    const value: [number, number] = [e.ingress ? next.slots.get(`${e.pod}|ingress`)! : 0, e.egress ? next.slots.get(`${e.pod}|egress`)! : 0];
    next.eps.set(ifindex, value);
    const have = installed.eps.get(ifindex);
    if (!have || have[0] !== value[0] || have[1] !== value[1]) {
      lines.push(`ep ${ifindex} ${value[0]} ${value[1]}`);
      changed.endpointsWritten++;
    }
  }
  for (const ifindex of installed.eps.keys()) {
    if (!next.eps.has(ifindex)) {
      lines.push(`ep-del ${ifindex}`);
      changed.endpointsWritten++;
    }
  }

  for (const [key, slot] of installed.slots) {
    if (next.slots.has(key)) continue;
    const old = installed.chains.get(slot);
    stale.push(slot);
    if (old) for (let k = 1; k < old.programs; k++) stale.push(subProgramSlot(slot, old.buf, k));
    changed.chainsRemoved++;
  }
  for (const s of stale) lines.push(`slot-del ${s}`);
  changed.slotsEmptied = stale.length;

  for (const [id, members] of installed.sets) {
    const keep = next.sets.get(id);
    for (const m of members) {
      if (!keep?.has(m)) {
        lines.push(`set-del ${id} ${m}`);
        changed.setMembersRemoved++;
      }
    }
  }
  return { input: lines.length ? `${lines.join('\n')}\n` : '', next, changed };
}

export interface DefaultDenyPlan {
  /** Input for `cb-cebpf apply`: the default-deny program in both of the pod's head slots. */
  input: string;
  /** [ingress, egress] head slots, for `cb-cebpf attach --ingress-slot --egress-slot`. */
  slots: [number, number];
  /** What the node holds once the pod is attached at `ifindex`. */
  next(ifindex: number): NodeInstalled;
}

/**
 * A new workload as Felix attaches it (bpf_ep_mgr.go ensureProgramLoaded: "Load default policy before the real
 * policy is created and loaded", hook.AttachType.DefaultPolicy() is deny for workload endpoints): a head slot
 * per direction holding the default-deny program, recorded like any chain, so the next planNodeChanges swaps
 * in the real chain (or frees the slot of a direction no policy isolates) without a window.
 */
export function planDefaultDeny(installed: NodeInstalled, pod: string, node: string): DefaultDenyPlan {
  const used = new Set(installed.slots.values());
  const lines: string[] = [];
  const slots: number[] = [];
  const chains = new Map(installed.chains);
  const podSlots = new Map(installed.slots);
  for (const direction of ['ingress', 'egress'] as const) {
    let slot = installed.slots.get(`${pod}|${direction}`);
    if (slot === undefined) {
      slot = 1;
      while (used.has(slot)) slot++;
      if (slot > MAX_HEAD_SLOTS) throw new SlotExhaustedError(node);
      used.add(slot);
    }
    const chain = defaultDenyChain(pod, direction);
    const old = installed.chains.get(slot);
    lines.push(`prog ${slot} ${chain.programs[0]!.length} ${encodeInsns(chain.programs[0]!, (k) => subProgramSlot(slot, 0, k))}`);
    for (let k = 1; k < (old?.programs ?? 0); k++) lines.push(`slot-del ${subProgramSlot(slot, old!.buf, k)}`);
    podSlots.set(`${pod}|${direction}`, slot);
    chains.set(slot, { hash: chain.hash, buf: 0, programs: 1 });
    slots.push(slot);
  }
  const [ingress, egress] = slots as [number, number];
  return {
    input: `${lines.join('\n')}\n`,
    slots: [ingress, egress],
    next: (ifindex) => ({ slots: podSlots, chains, sets: installed.sets, eps: new Map([...installed.eps, [ifindex, [ingress, egress]]]) }),
  };
}

export interface ApplySummary {
  progs: number;
  insns: number;
  verifyMs: number;
  setAdds: number;
  setDels: number;
  slotDels: number;
  eps: number;
}

/** Runs one apply; undefined under a dry-run runner or when there is nothing to write. */
export async function applyNodeChanges(runner: Runner, bin: CalicoEbpfBinaries, pinDir: string, changes: NodeChanges, what: string): Promise<ApplySummary | undefined> {
  if (!changes.input) return undefined;
  const r = await runner.run(planApply(bin, pinDir, changes.input, what));
  if (runner.dryRun) return undefined;
  return JSON.parse(r.stdout) as ApplySummary;
}

/** The fixed programs' counters (calico_ebpf.bpf.c), by the names `cb-cebpf stats` prints. */
export const COUNTERS = ['packets', 'ctHits', 'ctNew', 'policyWalks', 'allowed', 'drops', 'unenforced', 'notIpv4', 'tailCallFailed', 'syns', 'synWalks', 'synForced', 'ctRecycled', 'ctExpired', 'hostSkips'] as const;

export interface CalicoEbpfStats {
  counters: Record<(typeof COUNTERS)[number], number>;
  ipSetEntries: number;
  endpoints: number;
  ctEntries: number;
  policyPrograms: number;
}

export async function readCalicoEbpfStats(runner: Runner, bin: CalicoEbpfBinaries, pinDir: string): Promise<CalicoEbpfStats | undefined> {
  const r = await runner.run(planStats(bin, pinDir));
  if (runner.dryRun) return undefined;
  return JSON.parse(r.stdout) as CalicoEbpfStats;
}
