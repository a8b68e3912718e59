// A socket-level service load balancer on the local backend — Cilium's kube-proxy replacement (cilium/sock-lb.ts)
// and Calico eBPF's connect-time load balancer (calico-ebpf/ctlb.ts) are two flavours of it. Per node, as each
// node's agent: the BPF object loaded once and pinned under /sys/fs/bpf/cb-<runid>/<prefix><node>/, its programs
// attached to that node's cgroup of the run (<cgroup2>/cb-<runid>/<node>) — nothing on the host's cgroups — and
// its maps written from the Service set in one batch per map. A client takes part only if it runs in its node's
// cgroup: wrapClient starts it there. Updates write only the entries that changed, in the agent's order; how
// the agent finds them (the changed Services alone, or a re-render of the whole set) is the flavour's `reconcile`.
import { BenchError } from '../../errors.js';
import type { CommandResult, CommandSpec } from '../../exec/runner.js';
import { serviceSetSize, type ServiceDelta, type ServiceSet } from '../../services/types.js';
import { bpfPinDir, nativeArtefact } from './bpf/native.js';
import { cgroup2Root, inCgroupReferenceOutside, nodeCgroupDir, planCgroupCreate, planCgroupRemove, referenceCgroupDir, runCgroupDir } from './cgroup.js';
import type { ServiceDataPlane, ServiceDataPlaneName, ServiceInstallReport, ServicePlaneContext, ServiceState, ServiceUpdateReport } from './service-types.js';
import { encodeServiceSet, IdAllocator, perServiceMaps, wholeSetMaps, type EncodeService, type HeldMaps, type MapEntry } from './socket-lb-store.js';
import type { PodSpec } from './topology.js';

export { diffEntries, encodeServiceSet, IdAllocator, type MapEntry } from './socket-lb-store.js';

/**
 * How the agent turns a change into map writes. `per-service`: it is handed the changed Services and rewrites
 * their entries only (Cilium: pkg/loadbalancer's reconciler updates the frontends whose object changed).
 * `whole-set`: it re-renders every Service into its desired maps and writes the difference (Felix:
 * felix/bpf/proxy/syncer.go apply() starts from an empty desired state at every sync and lets its caching maps
 * compute the deltas), so its cost grows with the set whatever changed.
 */
export type SocketLbReconcile = 'per-service' | 'whole-set';

export interface SocketLbFlavour {
  name: ServiceDataPlaneName;
  description: string;
  /** dist/native artefact of the BPF object. */
  object: string;
  /** Maps to pin (the first is the "already loaded" sentinel) with their sizes, and the counters map. */
  maps: Record<string, number>;
  counters: { map: string; names: string[] };
  /** [program, hook] pairs attached to the node's cgroup. */
  programs: [string, 'connect4' | 'sendmsg4' | 'recvmsg4' | 'getpeername4'][];
  pinPrefix: string;
  /** What the agent writes for one Service; `ids` persists across updates, as the agent's own ID allocation does. */
  encodeService: EncodeService;
  /** `whole-set` requires Services that share no entry (each entry's key names its Service). */
  reconcile: SocketLbReconcile;
  /** The agent's name for a full map, for the capacity error. */
  capacityHint: (map: string, size: number) => string;
}

const EXIT_FULL = 3;

/** `cb-sock write` input: adds (rank ascending), then deletes (rank descending). */
export function renderWrites(adds: MapEntry[], deletes: MapEntry[]): string {
  const a = [...adds].sort((x, y) => x.rank - y.rank).map((e) => `${e.map} + ${e.key.toString('hex')} ${e.value.toString('hex')}`);
  const d = [...deletes].sort((x, y) => y.rank - x.rank).map((e) => `${e.map} - ${e.key.toString('hex')}`);
  const lines = [...a, ...d];
  return lines.length ? lines.join('\n') + '\n' : '';
}

class SocketLbPlane implements ServiceDataPlane {
  readonly lookup = 'bpf-map' as const;
  readonly name: ServiceDataPlaneName;
  readonly description: string;
  private readonly loader = nativeArtefact('cb-sock');
  private readonly cgroupRoot: string;
  private readonly ids = new IdAllocator();
  private installed?: HeldMaps;
  private set?: ServiceSet;
  private loaded = false;

  constructor(private readonly f: SocketLbFlavour, private readonly ctx: ServicePlaneContext, cgroupRoot = cgroup2Root()) {
    this.name = f.name;
    this.description = f.description;
    this.cgroupRoot = cgroupRoot;
  }

  private pin(node: string): string {
    return bpfPinDir(this.ctx.topology.runId, node, this.f.pinPrefix);
  }

  private cgroup(node: string): string {
    return nodeCgroupDir(this.cgroupRoot, this.ctx.topology.runId, node);
  }

  private attachArg(): string {
    return this.f.programs.map(([p, h]) => `${p}:${h}`).join(',');
  }

  private planLoad(node: string): CommandSpec[] {
    const sizes = Object.entries(this.f.maps).map(([m, n]) => `${m}=${n}`).join(',');
    return [
      planCgroupCreate(this.cgroup(node)),
      {
        argv: [this.loader, 'load', '--obj', nativeArtefact(this.f.object), '--pin', this.pin(node), '--maps', [...Object.keys(this.f.maps), this.f.counters.map].join(','), '--progs', this.f.programs.map(([p]) => p).join(','), '--sizes', sizes],
        timeoutMs: 30_000,
        purpose: `load ${this.f.name} on ${node}`,
      },
      { argv: [this.loader, 'attach', '--pin', this.pin(node), '--cgroup', this.cgroup(node), '--attach', this.attachArg()], timeoutMs: 10_000, purpose: `attach ${this.f.name} to the run's cgroup of ${node}` },
    ];
  }

  private planWrite(node: string, input: string): CommandSpec {
    return { argv: [this.loader, 'write', '--pin', this.pin(node)], input, timeoutMs: 120_000, allowFailure: true, purpose: `write ${this.f.name} maps on ${node}` };
  }

  plan(set: ServiceSet): CommandSpec[] {
    const input = renderWrites(encodeServiceSet(set, this.f.encodeService, new IdAllocator()), []);
    return [planCgroupCreate(this.referenceCgroup()), ...this.ctx.topology.nodes.flatMap((n) => [...this.planLoad(n.name), this.planWrite(n.name, input)])];
  }

  private checkWrite(r: CommandResult): number {
    if (r.exitCode === EXIT_FULL) {
      const map = /"map":"([^"]+)"/.exec(r.stderr)?.[1] ?? '?';
      throw new BenchError('capacity', `${this.f.name}: ${this.f.capacityHint(map, this.f.maps[map] ?? 0)}`);
    }
    if (r.exitCode !== 0 && !this.ctx.runner.dryRun) throw new BenchError('command', `${this.f.name}: cb-sock write failed (exit ${r.exitCode}): ${r.stderr.trim()}`);
    const ms = /"ms":([0-9.]+)/.exec(r.stdout)?.[1];
    return ms ? Number(ms) : r.durationMs;
  }

  private async onEveryNode(step: (node: string) => Promise<number>): Promise<{ wallMs: number; nodeMs: Record<string, number> }> {
    const started = performance.now();
    const nodeMs: Record<string, number> = {};
    await Promise.all(this.ctx.topology.nodes.map(async (n) => (nodeMs[n.name] = Math.round((await step(n.name)) * 1000) / 1000)));
    return { wallMs: performance.now() - started, nodeMs };
  }

  private state(set: ServiceSet, store: HeldMaps): ServiceState {
    return { serviceDataPlane: this.name, ...serviceSetSize(set), mapEntries: store.size, ...store.counts() };
  }

  async install(set: ServiceSet): Promise<ServiceInstallReport> {
    const store = (this.f.reconcile === 'per-service' ? perServiceMaps : wholeSetMaps)(set, this.f.encodeService, this.ids);
    const input = renderWrites(store.entries(), []);
    await this.ctx.runner.run(planCgroupCreate(this.referenceCgroup()));
    const run = await this.onEveryNode(async (node) => {
      for (const spec of this.planLoad(node)) await this.ctx.runner.run(spec);
      this.loaded = true;
      return this.checkWrite(await this.ctx.runner.run(this.planWrite(node, input)));
    });
    this.installed = store;
    this.set = set;
    return { installMs: Math.round(run.wallMs), nodeMs: run.nodeMs, state: { ...this.state(set, store), mapWriteMsMaxPerNode: Math.max(...Object.values(run.nodeMs)) } };
  }

  async update(next: ServiceSet, delta?: ServiceDelta): Promise<ServiceUpdateReport> {
    if (!this.installed || !this.set) throw new BenchError('internal', `${this.f.name}: update before install`);
    const store = this.installed;
    // A per-service agent re-encodes the Services `delta` names; a whole-set one re-renders `next`.
    const { adds, deletes } = store.change(next, delta);
    const input = renderWrites(adds, deletes);
    const run = await this.onEveryNode(async (node) => (input ? this.checkWrite(await this.ctx.runner.run(this.planWrite(node, input))) : 0));
    this.set = next;
    return { agentMs: Math.max(0, ...Object.values(run.nodeMs)), nodeMs: run.nodeMs, changed: { mapEntriesAdded: adds.length, mapEntriesDeleted: deletes.length }, state: this.state(next, store) };
  }

  /** The entries the maps hold now (for tests: equal to a full re-render of the set last handed over). */
  heldEntries(): MapEntry[] {
    return this.installed?.entries() ?? [];
  }

  /** The datapath's own counters on a node (lookups, translations, …), by the names the flavour gives them. */
  async counters(node: string): Promise<Record<string, number>> {
    const r = await this.ctx.runner.run({ argv: [this.loader, 'counters', '--pin', this.pin(node), '--maps', this.f.counters.map], timeoutMs: 10_000 });
    const values = this.ctx.runner.dryRun ? [] : (JSON.parse(r.stdout) as number[]);
    return Object.fromEntries(this.f.counters.names.map((n, i) => [n, values[i] ?? 0]));
  }

  /** The client's loopback reference runs here, outside every node's hooked cgroup (one for the run). */
  private referenceCgroup(): string {
    return referenceCgroupDir(this.cgroupRoot, this.ctx.topology.runId);
  }

  wrapClient(spec: CommandSpec, pod: PodSpec): CommandSpec {
    return inCgroupReferenceOutside(spec, this.cgroup(pod.node.name), this.referenceCgroup());
  }

  async teardown(): Promise<void> {
    const run = this.ctx.cleanupRunner;
    const nodes = this.ctx.topology.nodes.map((n) => n.name);
    if (this.loaded) {
      for (const n of nodes) {
        await run.run({ argv: [this.loader, 'detach-cgroup', '--pin', this.pin(n), '--cgroup', this.cgroup(n), '--attach', this.attachArg()], allowFailure: true, timeoutMs: 10_000, purpose: `detach ${this.f.name} from ${n}'s cgroup` });
      }
    }
    for (const spec of planCgroupRemove([...nodes.map((n) => this.cgroup(n)), this.referenceCgroup(), runCgroupDir(this.cgroupRoot, this.ctx.topology.runId)])) await run.run(spec);
    for (const n of nodes) await run.run({ argv: [this.loader, 'unload', '--pin', this.pin(n)], allowFailure: true, timeoutMs: 10_000, purpose: `unload ${this.f.name} on ${n}` });
    this.loaded = false;
    this.installed = undefined;
  }
}

export function socketLbPlane(f: SocketLbFlavour, ctx: ServicePlaneContext, cgroupRoot?: string): ServiceDataPlane & { counters(node: string): Promise<Record<string, number>>; heldEntries(): MapEntry[] } {
  return new SocketLbPlane(f, ctx, cgroupRoot);
}
