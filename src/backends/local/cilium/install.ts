// Installs the Cilium-style model on a node namespace through the Runner: load the BPF object once per node
// (maps and programs pinned under /sys/fs/bpf/cb-<runid>/<node>/), attach both programs to each pod's host-side
// veth, write the compiled state, read counters, unload. Planners return CommandSpecs; the few async functions
// below only run them and interpret the loader's output.
import { CommandError, type CommandSpec, type Runner } from '../../../exec/runner.js';
import { bpfPinDir, nativeArtefact } from '../bpf/native.js';
import { PolicyMapCapacityError, type CiliumState } from './compile.js';
import { renderFillInput } from './loader-input.js';
import { BenchError } from '../../../errors.js';

/** cb-bpf's exit code for a full policy map. */
const EXIT_OVERFLOW = 3;

export interface CiliumBinaries {
  /** dist/native/cb-bpf */
  loader: string;
  /** dist/native/cilium_model.bpf.o */
  object: string;
}

/** The built native artefacts, found from this module's location (src/ under vitest, dist/ when built). */
export function defaultCiliumBinaries(): CiliumBinaries {
  return { loader: nativeArtefact('cb-bpf'), object: nativeArtefact('cilium_model.bpf.o') };
}

/** Pin directory of one node's model: each node has its own maps, as each Cilium agent does. */
export function ciliumPinDir(runId: string, node: string): string {
  return bpfPinDir(runId, node);
}

export interface CiliumAttachment {
  /** namespace/name of the pod. */
  pod: string;
  /** The node's network namespace, where the host-side veth lives. */
  netns: string;
  /** Host-side veth name (lxc…). */
  ifname: string;
}

export function planCiliumLoad(bin: CiliumBinaries, pinDir: string, capacity: number): CommandSpec {
  if (!Number.isInteger(capacity) || capacity < 1) throw new RangeError(`policy-map capacity must be a positive integer, got ${capacity}`);
  return {
    argv: [bin.loader, 'load', '--obj', bin.object, '--pin', pinDir, '--capacity', String(capacity)],
    timeoutMs: 30_000,
    purpose: `load the Cilium model's BPF programs and maps into ${pinDir}`,
  };
}

/** Runs in the host namespace: cb-bpf enters the node namespace itself, after opening the pinned programs. */
/** With `endpointId` the endpoint is registered before the programs attach (closed until its map is written). */
export function planCiliumAttach(bin: CiliumBinaries, pinDir: string, a: CiliumAttachment, endpointId?: number): CommandSpec {
  return {
    argv: [bin.loader, 'attach', '--pin', pinDir, '--netns', a.netns, '--ifname', a.ifname, ...(endpointId === undefined ? [] : ['--endpoint', String(endpointId)])],
    timeoutMs: 10_000,
    purpose: `attach tc programs to ${a.ifname} (pod ${a.pod}) in ${a.netns}`,
  };
}

export function planCiliumDetach(bin: CiliumBinaries, a: CiliumAttachment): CommandSpec {
  return {
    argv: [bin.loader, 'detach', '--netns', a.netns, '--ifname', a.ifname],
    timeoutMs: 10_000,
    purpose: `detach tc programs from ${a.ifname} (pod ${a.pod})`,
  };
}

export function planCiliumFill(bin: CiliumBinaries, pinDir: string, state: CiliumState): CommandSpec {
  return {
    argv: [bin.loader, 'fill', '--pin', pinDir, '--capacity', String(state.capacity)],
    input: renderFillInput(state),
    timeoutMs: 60_000,
    allowFailure: true, // exit 3 (policy map full) becomes a PolicyMapCapacityError in applyCiliumState
    purpose: `write ipcache, endpoints and policy maps into ${pinDir}`,
  };
}

export function planCiliumDelta(bin: CiliumBinaries, pinDir: string, lines: string[]): CommandSpec {
  return {
    argv: [bin.loader, 'delta', '--pin', pinDir],
    input: lines.join('\n') + '\n',
    timeoutMs: 60_000,
    allowFailure: true, // exit 3 (policy map full) becomes a PolicyMapCapacityError in applyCiliumDelta
    purpose: `apply ${lines.length} ipcache/endpoint/policy-map changes in ${pinDir}`,
  };
}

export interface DeltaSummary {
  policyAdded: number;
  policyDeleted: number;
  ipcacheAdded: number;
  ipcacheDeleted: number;
  endpointsAdded: number;
  endpointsDeleted: number;
  policyMapsCreated: number;
  ms: number;
}

/** Writes an incremental change (diffCiliumState's lines); only the named entries are touched. */
export async function applyCiliumDelta(runner: Runner, bin: CiliumBinaries, pinDir: string, lines: string[]): Promise<DeltaSummary | undefined> {
  const spec = planCiliumDelta(bin, pinDir, lines);
  const r = await runner.run(spec);
  if (r.exitCode === EXIT_OVERFLOW) {
    const line = r.stderr.trim().split('\n').find((l) => l.includes('"policy-map-full"'));
    if (line) {
      const o = JSON.parse(line) as { endpoint: number; needed: number; capacity: number };
      throw new PolicyMapCapacityError([{ pod: `endpoint ${o.endpoint}`, endpointId: o.endpoint, needed: o.needed, capacity: o.capacity, ingress: 0, egress: 0 }]);
    }
  }
  if (r.exitCode !== 0 || r.timedOut) throw new CommandError(r, spec.purpose);
  if (runner.dryRun) return undefined;
  return JSON.parse(r.stdout) as DeltaSummary;
}

export function planCiliumStats(bin: CiliumBinaries, pinDir: string): CommandSpec {
  return { argv: [bin.loader, 'stats', '--pin', pinDir], timeoutMs: 30_000, purpose: `read Cilium model counters from ${pinDir}` };
}

export function planCiliumUnload(bin: CiliumBinaries, pinDir: string): CommandSpec {
  return { argv: [bin.loader, 'unload', '--pin', pinDir], timeoutMs: 10_000, purpose: `remove the Cilium model's pins in ${pinDir}` };
}

export interface CiliumInstallPlan {
  load: CommandSpec;
  attach: CommandSpec[];
}

/** Load once, then attach to every endpoint veth. The state is written afterwards (it needs the ifindexes). */
export function planCiliumInstall(opts: { binaries: CiliumBinaries; pinDir: string; capacity: number; attachments: CiliumAttachment[] }): CiliumInstallPlan {
  return {
    load: planCiliumLoad(opts.binaries, opts.pinDir, opts.capacity),
    attach: opts.attachments.map((a) => planCiliumAttach(opts.binaries, opts.pinDir, a)),
  };
}

/** `cb-bpf attach` prints {"ifindex":N}; undefined under a dry-run runner (nothing ran). */
export function parseAttachOutput(stdout: string): number | undefined {
  if (!stdout.trim()) return undefined;
  const parsed = JSON.parse(stdout) as { ifindex?: unknown };
  if (typeof parsed.ifindex !== 'number') throw new BenchError('command', `cb-bpf attach: no ifindex in output ${JSON.stringify(stdout)}`);
  return parsed.ifindex;
}

/**
 * Runs the install plan. Returns each attached pod's host-side ifindex (the key of the endpoints map) for
 * compileCiliumState's ifindexOf; under a dry-run runner the map stays empty.
 */
export async function installCilium(runner: Runner, opts: Parameters<typeof planCiliumInstall>[0]): Promise<Map<string, number>> {
  const plan = planCiliumInstall(opts);
  await runner.run(plan.load);
  const ifindexes = new Map<string, number>();
  for (const [i, spec] of plan.attach.entries()) {
    const r = await runner.run(spec);
    const ifindex = parseAttachOutput(r.stdout);
    if (ifindex !== undefined) ifindexes.set(opts.attachments[i]!.pod, ifindex);
  }
  return ifindexes;
}

export interface FillSummary {
  ipcache: number;
  endpoints: number;
  /** Entries written per endpoint id. */
  policy: Record<string, number>;
  removed: number;
  capacity: number;
  /** Time cb-bpf spent writing the maps. */
  ms: number;
}

/**
 * Writes the complete state (stale entries are removed). A full policy map, caught by the loader, becomes the
 * same PolicyMapCapacityError the compiler raises.
 */
export async function applyCiliumState(runner: Runner, bin: CiliumBinaries, pinDir: string, state: CiliumState): Promise<FillSummary | undefined> {
  const spec = planCiliumFill(bin, pinDir, state);
  const r = await runner.run(spec);
  if (r.exitCode === EXIT_OVERFLOW) {
    const line = r.stderr.trim().split('\n').find((l) => l.includes('"policy-map-full"'));
    if (line) {
      const o = JSON.parse(line) as { endpoint: number; needed: number; capacity: number };
      const m = state.policyMaps.find((p) => p.endpointId === o.endpoint);
      const count = (d: string): number => m?.entries.filter((e) => e.direction === d).length ?? 0;
      throw new PolicyMapCapacityError([
        { pod: m?.pod ?? `endpoint ${o.endpoint}`, endpointId: o.endpoint, needed: o.needed, capacity: o.capacity, ingress: count('ingress'), egress: count('egress') },
      ]);
    }
  }
  if (r.exitCode !== 0 || r.timedOut) throw new CommandError(r, spec.purpose);
  if (runner.dryRun) return undefined;
  return JSON.parse(r.stdout) as FillSummary;
}

export interface CiliumCounters {
  packets: number;
  policyLookups: number;
  ctHits: number;
  ctNew: number;
  allowed: number;
  drops: number;
  /** Reply packets: conntrack said CT_REPLY, policy skipped. */
  ctReplies: number;
  notIpv4: number;
}

export interface CiliumMapStats {
  entries: number;
  memlockBytes: number;
}

export interface CiliumStats {
  counters: CiliumCounters;
  maps: {
    ipcache: CiliumMapStats;
    endpoints: CiliumMapStats;
    ct: CiliumMapStats;
    policy: { memlockBytes: number; endpoints: Record<string, CiliumMapStats & { maxEntries: number }> };
  };
}

/** Counters (summed over CPUs) and map sizes; undefined under a dry-run runner. */
export async function readCiliumCounters(runner: Runner, bin: CiliumBinaries, pinDir: string): Promise<CiliumStats | undefined> {
  const r = await runner.run(planCiliumStats(bin, pinDir));
  if (runner.dryRun) return undefined;
  return JSON.parse(r.stdout) as CiliumStats;
}

export async function uninstallCilium(runner: Runner, bin: CiliumBinaries, pinDir: string): Promise<void> {
  await runner.run(planCiliumUnload(bin, pinDir));
}
