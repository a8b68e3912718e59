// The Calico-style model as a LocalModel: routed veths named cali…, per-node iptables/ipset state compiled from
// the resolved policy set and installed in one iptables-restore transaction per node.
import type { LocalModel, ModelContext, ModelState } from '../models.js';
import { podKey, type PodInfo } from '../../../policy/types.js';
import { compileCalicoNode } from './compile.js';
import { installCalicoRules, DEFAULT_IPTABLES_BACKEND } from './install.js';

function ifaceLookup(ctx: ModelContext): (pod: PodInfo) => string {
  const byPod = new Map(ctx.topology.pods.map((p) => [podKey(p), p.hostIf]));
  return (pod) => {
    const iface = byPod.get(podKey(pod));
    if (!iface) throw new Error(`no interface for pod ${podKey(pod)} in the topology`);
    return iface;
  };
}

export const calicoModel: LocalModel = {
  cni: 'calico',
  name: 'Calico-style iptables model',
  description:
    "Calico-style iptables model on the local kernel: routed cali* veths with proxy ARP, Felix's chain layout (cali-FORWARD → dispatch → cali-tw-/cali-fw-<iface> → cali-pi-/cali-po-<policy>), selectors as ipsets, one iptables-restore transaction per node (iptables-legacy)",
  enforcesPolicy: true,
  attachment: 'routed',
  hostIfPrefix: 'cali',
  async install(ctx: ModelContext): Promise<ModelState> {
    const ifaceOf = ifaceLookup(ctx);
    let rules = 0;
    let chains = 0;
    let ipsets = 0;
    let ipsetMembers = 0;
    let compileMs = 0;
    let restoreMs = 0;
    let maxRulesPerNode = 0;
    for (const node of ctx.topology.nodes) {
      const t = performance.now();
      const compiled = compileCalicoNode(node.name, ctx.endpoints, ifaceOf);
      compileMs += performance.now() - t;
      const r = await installCalicoRules(ctx.runner, node.netns, compiled);
      restoreMs += r.iptablesRestoreMs;
      rules += compiled.counts.rules;
      chains += compiled.counts.chains;
      ipsets += compiled.counts.ipsets;
      ipsetMembers += compiled.counts.ipsetMembers;
      maxRulesPerNode = Math.max(maxRulesPerNode, compiled.counts.rules);
    }
    return {
      iptablesBackend: DEFAULT_IPTABLES_BACKEND,
      iptablesRules: rules,
      iptablesRulesMaxPerNode: maxRulesPerNode,
      chains,
      ipsets,
      ipsetMembers,
      compileMs: Math.round(compileMs),
      iptablesRestoreMs: Math.round(restoreMs),
    };
  },
};
