// kube-proxy's two packet-level modes as service data planes of the local backend: the rules render once per
// sync (they are the same on every node of a ClusterIP-only set) and go to each node's namespace in ONE
// transaction — iptables-nft-restore --noflush (or iptables-legacy-restore) as kube-proxy's RestoreAll does, or one
// `nft -f -` as knftables runs it — every node in parallel, as each node's kube-proxy would. An update is a
// partial sync (only the changed Services' chains; elements one by one).
import type { CommandResult, CommandSpec } from '../../../exec/runner.js';
import { serviceSetSize, type ServiceSet } from '../../../services/types.js';
import type { ServiceDataPlane, ServiceDataPlaneKind, ServiceInstallReport, ServicePlaneContext, ServiceUpdateReport } from '../service-types.js';
import { renderKubeProxyIptables, renderKubeProxyIptablesPartial, type KubeProxyOptions } from './iptables.js';
import { renderKubeProxyNftables, renderKubeProxyNftablesPartial, renderNftDeleteChains, type NftLayoutOptions } from './nftables.js';
import { BenchError } from '../../../errors.js';

const restoreBinary = (backend: 'nft' | 'legacy') => (backend === 'nft' ? 'iptables-nft-restore' : 'iptables-legacy-restore');

/** The upstream release whose proxier.go the rules follow. */
export const KUBE_PROXY_LAYOUT = 'v1.33';

/**
 * Generous, per rule written: iptables-nft-restore (1.8.9) slows with the number of chains in one transaction —
 * 10000 Services (20000 chains, 50000 rules) take minutes on a loaded 2-CPU machine, where iptables-legacy-restore
 * and nft take seconds for 30000.
 */
function restoreTimeoutMs(lines: number, msPerLine = 5): number {
  return 60_000 + lines * msPerLine;
}

async function onEveryNode(ctx: ServicePlaneContext, plan: (node: string, netns: string) => CommandSpec[]): Promise<{ wallMs: number; nodeMs: Record<string, number>; results: CommandResult[] }> {
  const started = performance.now();
  const nodeMs: Record<string, number> = {};
  const results: CommandResult[] = [];
  await Promise.all(
    ctx.topology.nodes.map(async (n) => {
      let ms = 0;
      for (const spec of plan(n.name, n.netns)) {
        const r = await ctx.runner.run(spec);
        ms += r.durationMs;
        results.push(r);
      }
      nodeMs[n.name] = Math.round(ms);
    }),
  );
  return { wallMs: performance.now() - started, nodeMs, results };
}

const maxOf = (m: Record<string, number>) => Math.max(0, ...Object.values(m));

class KubeProxyIptablesPlane implements ServiceDataPlane {
  readonly name = 'kube-proxy-iptables' as const;
  readonly lookup = 'rule-walk' as const;
  readonly description: string;
  private installed?: ServiceSet;
  private readonly opts: KubeProxyOptions;

  constructor(private readonly ctx: ServicePlaneContext) {
    this.opts = { clusterCidr: ctx.settings.clusterCidr, randomFully: true };
    this.description = `kube-proxy iptables mode (${KUBE_PROXY_LAYOUT} rules of pkg/proxy/iptables/proxier.go) written with iptables-${ctx.settings.iptablesBackend}`;
  }

  private restore(node: string, netns: string, text: string, lines: number, what: string): CommandSpec {
    const msPerLine = this.ctx.settings.iptablesBackend === 'nft' ? 30 : 5;
    return { argv: [restoreBinary(this.ctx.settings.iptablesBackend), '--noflush'], netns, input: text, timeoutMs: restoreTimeoutMs(lines, msPerLine), purpose: `kube-proxy iptables ${what} on ${node}` };
  }

  plan(set: ServiceSet): CommandSpec[] {
    const r = renderKubeProxyIptables(set, this.opts);
    return this.ctx.topology.nodes.map((n) => this.restore(n.name, n.netns, r.text, r.natRules, 'full sync'));
  }

  private state(set: ServiceSet, r: { natRules: number; natChains: number; filterRules: number; kubeServicesRules: number }) {
    const probedAt = set.probed + 1;
    return {
      serviceDataPlane: this.name,
      kubeProxyLayout: KUBE_PROXY_LAYOUT,
      iptablesBackend: this.ctx.settings.iptablesBackend,
      ...serviceSetSize(set),
      natRules: r.natRules,
      natChains: r.natChains,
      filterRules: r.filterRules,
      kubeServicesRules: r.kubeServicesRules,
      // The probed Service's rule is this many rules into KUBE-SERVICES: what its first packet walks.
      kubeServicesRulesWalked: probedAt,
    };
  }

  async install(set: ServiceSet): Promise<ServiceInstallReport> {
    const r = renderKubeProxyIptables(set, this.opts);
    const run = await onEveryNode(this.ctx, (node, netns) => [this.restore(node, netns, r.text, r.natRules, 'full sync')]);
    this.installed = set;
    return { installMs: Math.round(run.wallMs), nodeMs: run.nodeMs, state: { ...this.state(set, r), restoreMsMaxPerNode: maxOf(run.nodeMs) } };
  }

  async update(next: ServiceSet): Promise<ServiceUpdateReport> {
    if (!this.installed) throw new BenchError('internal', 'kube-proxy iptables: update before install');
    const r = renderKubeProxyIptablesPartial(this.installed, next, this.opts);
    const run = await onEveryNode(this.ctx, (node, netns) => [this.restore(node, netns, r.text, r.natRules, 'partial sync')]);
    this.installed = next;
    const written = r.text.split('\n').filter((l) => l.startsWith('-A ')).length;
    return {
      agentMs: maxOf(run.nodeMs),
      nodeMs: run.nodeMs,
      changed: { rulesWritten: written, chainsWritten: r.chainsWritten, chainsDeleted: r.chainsDeleted },
      state: this.state(next, r),
    };
  }

  wrapClient(spec: CommandSpec): CommandSpec {
    return spec;
  }

  async teardown(): Promise<void> {
    this.installed = undefined; // the rules go with the node namespaces
  }
}

class KubeProxyNftablesPlane implements ServiceDataPlane {
  readonly name = 'kube-proxy-nftables' as const;
  readonly lookup = 'verdict-map' as const;
  readonly description: string;
  private installed?: ServiceSet;
  private readonly opts: KubeProxyOptions & NftLayoutOptions;

  constructor(private readonly ctx: ServicePlaneContext, layout: NftLayoutOptions = {}) {
    this.opts = { clusterCidr: ctx.settings.clusterCidr, ...layout };
    const shortcut = this.opts.singleEndpointWithoutMap !== false ? ', one-endpoint Services without a numgen map (PR #140723)' : '';
    this.description = `kube-proxy nftables mode (${KUBE_PROXY_LAYOUT} rules of pkg/proxy/nftables/proxier.go${shortcut}), one nft -f transaction per node`;
  }

  private nft(node: string, netns: string, text: string, lines: number, what: string): CommandSpec {
    return { argv: ['nft', '-f', '-'], netns, input: text, timeoutMs: restoreTimeoutMs(lines), purpose: `kube-proxy nftables ${what} on ${node}` };
  }

  plan(set: ServiceSet): CommandSpec[] {
    const s = renderKubeProxyNftables(set, this.opts);
    return this.ctx.topology.nodes.map((n) => this.nft(n.name, n.netns, s.text, s.rules, 'full sync'));
  }

  private state(set: ServiceSet, s: { chains: number; rules: number; mapElements: number; setElements: number }) {
    return { serviceDataPlane: this.name, kubeProxyLayout: KUBE_PROXY_LAYOUT, ...serviceSetSize(set), nftChains: s.chains, nftRules: s.rules, mapElements: s.mapElements, setElements: s.setElements };
  }

  async install(set: ServiceSet): Promise<ServiceInstallReport> {
    const s = renderKubeProxyNftables(set, this.opts);
    const run = await onEveryNode(this.ctx, (node, netns) => [this.nft(node, netns, s.text, s.rules, 'full sync')]);
    this.installed = set;
    return { installMs: Math.round(run.wallMs), nodeMs: run.nodeMs, state: { ...this.state(set, s), nftMsMaxPerNode: maxOf(run.nodeMs) } };
  }

  async update(next: ServiceSet): Promise<ServiceUpdateReport> {
    if (!this.installed) throw new BenchError('internal', 'kube-proxy nftables: update before install');
    const s = renderKubeProxyNftablesPartial(this.installed, next, this.opts);
    const run = await onEveryNode(this.ctx, (node, netns) => (s.text ? [this.nft(node, netns, s.text, s.rules, 'partial sync')] : []));
    this.installed = next;
    // Stale chains go in a later transaction (upstream deletes them once they are a second old): not agent time
    // of this change, so not counted in agentMs.
    if (s.staleChains.length) {
      const del = renderNftDeleteChains(s.staleChains);
      await onEveryNode(this.ctx, (node, netns) => [this.nft(node, netns, del, s.staleChains.length, 'stale chain cleanup')]);
    }
    return {
      agentMs: maxOf(run.nodeMs),
      nodeMs: run.nodeMs,
      changed: { chainsWritten: s.chainsWritten, elementsAdded: s.elementsAdded, elementsDeleted: s.elementsDeleted, chainsDeleted: s.staleChains.length },
      state: this.state(next, s),
    };
  }

  wrapClient(spec: CommandSpec): CommandSpec {
    return spec;
  }

  async teardown(): Promise<void> {
    this.installed = undefined; // the table goes with the node namespaces
  }
}

export const kubeProxyIptables: ServiceDataPlaneKind = {
  name: 'kube-proxy-iptables',
  description: 'kube-proxy iptables mode: one KUBE-SERVICES rule per Service port, walked in order by every new connection',
  lookup: 'rule-walk',
  create: (ctx) => new KubeProxyIptablesPlane(ctx),
};

export const kubeProxyNftables: ServiceDataPlaneKind = {
  name: 'kube-proxy-nftables',
  description: 'kube-proxy nftables mode: the service-ips verdict map, one lookup per new connection',
  lookup: 'verdict-map',
  create: (ctx) => new KubeProxyNftablesPlane(ctx),
};

/** The nftables mode with the exact v1.33 ruleset (a numgen map for every Service), for cold-start comparisons. */
export function kubeProxyNftablesWith(layout: NftLayoutOptions): ServiceDataPlaneKind {
  return { ...kubeProxyNftables, create: (ctx) => new KubeProxyNftablesPlane(ctx, layout) };
}
