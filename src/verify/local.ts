// The verification grid on the local backend: the grid's pods as network namespaces on two node namespaces
// (planTopology with explicit pods), two external hosts on the node network, a cb-probe echo server (TCP and
// UDP) in each, and the CNI model chosen by --cni compiling each case's policy set onto every node.
import type { CniName, IptablesBackendName } from '../config/schema.js';
import { ExecRunner, type CommandSpec, type Runner } from '../exec/runner.js';
import { localModel } from '../backends/local/models.js';
import { LocalDataPlane, planModelTopology } from '../backends/local/plane.js';
import { NODE_SUBNET_PREFIX, planSwitchHost, type Topology } from '../backends/local/topology.js';
import type { LocalModel } from '../backends/local/types.js';
import { NAME_PREFIX } from '../identity/run-id.js';
import type { Progress } from '../backends/types.js';
import type { Inventory, NetworkPolicy } from '../policy/types.js';
import { parseCheckResult, planCheck, planServer } from '../probe/native.js';
import type { Attempt } from './expect.js';
import type { GridAddresses, GridLayout, ProbeSpec } from './grid.js';
import type { VerifyGrid } from './run.js';

/** External hosts sit high on the node network, above every node address (nodes use .2 up to .201). */
const EXTERNAL_HOST_BASE = 240;

export interface ExternalHostSpec {
  id: string;
  netns: string;
  ip: string;
  /** Its port on the switch namespace's bridge. */
  switchPort: string;
}

export interface LocalGridPlan {
  topology: Topology;
  externals: ExternalHostSpec[];
  addresses: GridAddresses;
}

/** Where the local backend puts every grid endpoint (pure: the CLI also uses it to check case templates). */
export function planLocalGrid(layout: GridLayout, opts: { runId: string; model: Pick<LocalModel, 'attachment' | 'hostIfPrefix'> }): LocalGridPlan {
  const topology = planModelTopology(opts.model, {
    runId: opts.runId,
    placement: 'cross-node',
    nodes: layout.nodes,
    pods: layout.pods.map((p) => ({ name: p.name, namespace: p.namespace, labels: p.labels, role: 'grid' as const, node: p.node })),
  });
  const externals = layout.externals.map((e, i) => ({
    id: e.id,
    netns: `${NAME_PREFIX}${opts.runId}-${e.id}`,
    ip: `${NODE_SUBNET_PREFIX}${EXTERNAL_HOST_BASE + i}`,
    switchPort: `p${opts.runId}x${i}`,
  }));
  const ips: Record<string, string> = {};
  const nodeOf: Record<string, string> = {};
  for (const p of topology.pods) {
    ips[`${p.namespace}/${p.name}`] = p.ip;
    nodeOf[`${p.namespace}/${p.name}`] = p.node.name;
  }
  for (const e of externals) ips[e.id] = e.ip;
  return { topology, externals, addresses: { ips, nodeOf } };
}

const ipn = (netns: string, ...args: string[]): CommandSpec => ({ argv: ['ip', '-n', netns, ...args] });

/** A host outside the cluster on the node network, routing pod CIDRs via their nodes as a real network would. */
export function planExternalHosts(t: Topology, hosts: readonly ExternalHostSpec[]): CommandSpec[] {
  return hosts.flatMap((h) => [
    ...planSwitchHost(t, h, `create external host ${h.id}`),
    ...t.nodes.map((n) => ipn(h.netns, 'route', 'add', n.podCidr, 'via', n.ip, 'dev', 'eth0')),
    // As for client pods: many short connections from one source.
    { argv: ['sysctl', '-q', '-w', 'net.ipv4.tcp_tw_reuse=1'], netns: h.netns },
    { argv: ['sysctl', '-q', '-w', 'net.ipv4.ip_local_port_range=1024 65535'], netns: h.netns },
  ]);
}

export interface LocalVerifyGridOptions {
  cni: CniName;
  runId: string;
  runner?: Runner;
  cleanupRunner?: Runner;
  signal?: AbortSignal;
  progress?: Progress;
  /** Replaces the registered model (tests inject a deliberately broken compiler this way). */
  model?: LocalModel;
  /** Calico-style models: the iptables flavour (default: the run config's default, nft). */
  iptablesBackend?: IptablesBackendName;
}

export class LocalVerifyGrid implements VerifyGrid {
  readonly backend = 'local' as const;
  readonly cni: CniName;
  readonly model: { name: string; description: string; enforcesPolicy: boolean };
  /** The local install is synchronous; the readiness probes should agree on their first round. */
  readonly readinessTimeoutMs = 2_000;
  private readonly impl: LocalModel;
  private readonly runner: Runner;
  private plane?: LocalDataPlane;
  private plan?: LocalGridPlan;
  private readonly netnsOf = new Map<string, string>();

  constructor(private readonly opts: LocalVerifyGridOptions) {
    this.cni = opts.cni;
    this.impl = opts.model ?? localModel(opts.cni);
    this.model = { name: this.impl.name, description: this.impl.description, enforcesPolicy: this.impl.enforcesPolicy };
    this.runner = opts.runner ?? new ExecRunner(opts.signal);
  }

  get topology(): Topology | undefined {
    return this.plan?.topology;
  }

  async up(layout: GridLayout): Promise<GridAddresses> {
    const plan = planLocalGrid(layout, { runId: this.opts.runId, model: this.impl });
    this.plan = plan;
    const plane = new LocalDataPlane({
      model: this.impl,
      topology: plan.topology,
      settings: { iptablesBackend: this.opts.iptablesBackend },
      runner: this.runner,
      cleanupRunner: this.opts.cleanupRunner ?? new ExecRunner(),
    });
    this.plane = plane;
    await plane.up({ commands: planExternalHosts(plan.topology, plan.externals), namespaces: plan.externals.map((e) => e.netns) });
    for (const p of plan.topology.pods) this.netnsOf.set(`${p.namespace}/${p.name}`, p.netns);
    for (const e of plan.externals) this.netnsOf.set(e.id, e.netns);
    const portsOf = new Map<string, number[]>([
      ...layout.pods.map((p) => [p.id, p.ports.map((cp) => cp.containerPort)] as [string, number[]]),
      ...layout.externals.map((e) => [e.id, e.ports.map((cp) => cp.containerPort)] as [string, number[]]),
    ]);
    for (const [id, ports] of portsOf) {
      const spec = planServer({ netns: this.netnsOf.get(id)!, ports: [...new Set(ports)].sort((a, b) => a - b), udp: true });
      await plane.serve({ ...spec, purpose: `echo server of ${id}` });
    }
    return plan.addresses;
  }

  async applyPolicies(policies: NetworkPolicy[], inventory: Inventory): Promise<Record<string, number | string | boolean>> {
    return this.requirePlane().install(policies, inventory);
  }

  async probe(p: ProbeSpec, timeoutMs: number): Promise<Attempt> {
    if (!this.plan) throw new Error('the grid is not up');
    const netns = this.netnsOf.get(p.from);
    const target = this.plan.addresses.ips[p.to];
    if (!netns || !target) throw new Error(`probe ${p.from} -> ${p.to}: not a grid endpoint`);
    const result = await this.runner.run(planCheck({ netns, target, port: p.port, udp: p.protocol === 'UDP', timeoutMs }));
    const c = parseCheckResult(result);
    return { outcome: c.open ? 'connected' : 'blocked', reason: c.reason };
  }

  async down(): Promise<void> {
    await this.plane?.down();
  }

  private requirePlane(): LocalDataPlane {
    if (!this.plane) throw new Error('the grid is not up');
    return this.plane;
  }
}
