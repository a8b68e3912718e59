// The Calico-style model as a LocalModel: routed veths named cali…, per-node raw/mangle/filter chains and ipsets
// compiled from the resolved policy set in Felix v3.30.3's layout. install() writes what the node lacks;
// update() diffs against what this model installed on the same topology and writes only the changes, as Felix
// does (changed chains in one iptables-restore --noflush, ipset member adds/dels).
import { BenchError } from '../../../errors.js';
import type { LocalModel, ModelContext, ModelSettings, ModelState, ModelUpdateReport } from '../types.js';
import { hostInterfaceOf, type Attachment, type Topology } from '../topology.js';
import { FELIX_LAYOUT_VERSION, compileCalicoNode, type CalicoNodeRules } from './compile.js';
import { installCalicoRules, viewOf, type CalicoChangeCounts, type IptablesBackend } from './install.js';

/** What the Felix-iptables models read of a run's settings. */
export type FelixIptablesSettings = Pick<ModelSettings, 'iptablesBackend'>;
type Context = ModelContext<FelixIptablesSettings>;

interface Installed {
  backend: IptablesBackend;
  nodes: Map<string, CalicoNodeRules>;
}

function stateOf(backend: IptablesBackend, nodes: Iterable<CalicoNodeRules>, timing: { compileMs: number; iptablesRestoreMs: number; ipsetRestoreMs: number }): ModelState {
  let rules = 0;
  let chains = 0;
  let ipsets = 0;
  let ipsetMembers = 0;
  let groupChains = 0;
  let maxRulesPerNode = 0;
  let rulesTraversedPerPolicy = 0;
  for (const n of nodes) {
    rules += n.counts.rules;
    chains += n.counts.chains;
    ipsets += n.counts.ipsets;
    ipsetMembers += n.counts.ipsetMembers;
    groupChains += n.counts.groupChains;
    maxRulesPerNode = Math.max(maxRulesPerNode, n.counts.rules);
    rulesTraversedPerPolicy = Math.max(rulesTraversedPerPolicy, n.rulesTraversedPerPolicy);
  }
  return {
    iptablesBackend: backend,
    felixLayout: FELIX_LAYOUT_VERSION,
    iptablesRules: rules,
    iptablesRulesMaxPerNode: maxRulesPerNode,
    chains,
    groupChains,
    ipsets,
    ipsetMembers,
    rulesTraversedPerPolicy,
    compileMs: Math.round(timing.compileMs),
    iptablesRestoreMs: Math.round(timing.iptablesRestoreMs),
    ipsetRestoreMs: Math.round(timing.ipsetRestoreMs),
  };
}

export interface CalicoModelSpec {
  cni: 'calico' | 'canal';
  name: string;
  description: string;
  attachment: Attachment;
}

/** A LocalModel enforcing with the Felix iptables layout; calico and canal differ only in how pods attach. */
export function felixIptablesModel(spec: CalicoModelSpec): LocalModel<FelixIptablesSettings> {
  // What this model last wrote per run (keyed by run id, so a topology that grew a pod is still the same run):
  // the base update() diffs against. Dropped at teardown (cleanup).
  const installed = new Map<string, Installed>();

  async function apply(ctx: Context, mode: 'install' | 'update'): Promise<{ state: ModelState; changed: CalicoChangeCounts; compileMs: number; applyMs: number }> {
    const ifaceOf = hostInterfaceOf(ctx.topology);
    const backend = ctx.settings.iptablesBackend;
    const before = installed.get(ctx.topology.runId);
    if (mode === 'update' && !before) throw new BenchError('internal', `${spec.cni} model: update() before install() on topology ${ctx.topology.runId}; install the policy set first`);
    if (mode === 'update' && before!.backend !== backend) {
      throw new BenchError('usage', `${spec.cni} model: installed with iptables-${before!.backend}, asked to update with iptables-${backend}; install again with --iptables-backend ${backend} instead`);
    }
    const changed: CalicoChangeCounts = { chainsWritten: 0, chainsDeleted: 0, rulesWritten: 0, setsCreated: 0, setsDestroyed: 0, setMembersAdded: 0, setMembersDeleted: 0 };
    const timing = { compileMs: 0, iptablesRestoreMs: 0, ipsetRestoreMs: 0 };
    let applyMs = 0;
    // Recorded node by node, so a failure halfway leaves an accurate base for the next update.
    const nodes = new Map<string, CalicoNodeRules>(mode === 'update' ? before!.nodes : []);
    if (!ctx.runner.dryRun) installed.set(ctx.topology.runId, { backend, nodes });
    for (const node of ctx.topology.nodes) {
      const t = performance.now();
      const compiled = compileCalicoNode(node.name, ctx.endpoints, ifaceOf);
      timing.compileMs += performance.now() - t;
      const previous = mode === 'update' ? before!.nodes.get(node.name) : undefined;
      const r = await installCalicoRules(ctx.runner, node.netns, compiled, {
        iptablesBackend: backend,
        progress: ctx.progress,
        // install reads what the node holds (it may be another case's rules); update trusts what it wrote.
        current: mode === 'update' ? (previous ? viewOf(previous) : undefined) : undefined,
      });
      applyMs += r.totalMs;
      timing.iptablesRestoreMs += r.iptablesRestoreMs;
      timing.ipsetRestoreMs += r.ipsetRestoreMs;
      for (const k of Object.keys(changed) as Array<keyof CalicoChangeCounts>) changed[k] += r.changed[k];
      nodes.set(node.name, compiled);
    }
    const current = ctx.topology.nodes.map((n) => nodes.get(n.name)).filter((n): n is CalicoNodeRules => n !== undefined);
    return { state: stateOf(backend, current, timing), changed, compileMs: timing.compileMs, applyMs };
  }

  return {
    cni: spec.cni,
    name: spec.name,
    description: spec.description,
    enforcesPolicy: true,
    attachment: spec.attachment,
    hostIfPrefix: 'cali',
    async install(ctx: Context): Promise<ModelState> {
      return (await apply(ctx, 'install')).state;
    },
    async update(ctx: Context): Promise<ModelUpdateReport> {
      const r = await apply(ctx, 'update');
      return { agentMs: r.compileMs + r.applyMs, compileMs: r.compileMs, applyMs: r.applyMs, changed: { ...r.changed }, state: r.state };
    },
    async cleanup(ctx: { topology: Topology }): Promise<void> {
      // The kernel state goes with the namespaces; only the remembered copy is ours to drop.
      installed.delete(ctx.topology.runId);
    },
  };
}

export const CALICO_DESCRIPTION =
  `Calico-style iptables model on the local kernel, in Felix ${FELIX_LAYOUT_VERSION}'s layout: routed cali* veths with proxy ARP; ` +
  'raw and mangle cali-PREROUTING (mark clearing, rpfilter on workload traffic, conntrack accept); filter cali-FORWARD → ' +
  'dispatch tree → cali-tw-/cali-fw-<iface> → one cali-gi-/cali-go- group chain per run of same-selector policies (returnStride 5) → ' +
  'cali-pi-/cali-po-<policy> (trailing RETURN stripped, -m multiport ports, cali:<hash> comments), kns/ksa profile chains; ' +
  'selectors as hash:net ipsets (maxelem 1048576, kernel-default hash size); changes written as Felix writes them. ' +
  'Left out: nat table and kube-proxy, filter INPUT/OUTPUT (cali-INPUT, cali-wl-to-host), host endpoints, flow logs; ' +
  'sets are named by the rule peer they serve rather than by selector text, and groups by the endpoints their policies select';

export const calicoModel = felixIptablesModel({
  cni: 'calico',
  name: 'Calico-style iptables model',
  description: CALICO_DESCRIPTION,
  attachment: 'routed',
});
