// What a run with Services can read of the service data plane on a cluster: kube-proxy's mode on an existing cluster
// (its ConfigMap; bench cannot change it), and on kind, through the node container of the client, kube-proxy's own
// metrics and rules. Metric names from kubernetes/kubernetes pkg/proxy/metrics/metrics.go: the iptables mode
// registers `kubeproxy_sync_proxy_rules_iptables_total{table}` (rules it owns per table); the nftables mode
// registers no rule count at all (only sync and cleanup failures), so there the `service-ips` map is counted with
// `nft` instead; every mode has `kubeproxy_sync_proxy_rules_duration_seconds` (a histogram of sync time).
import { parse } from 'yaml';
import type { KubeProxyMode } from '../../config/cnis.js';
import type { CommandSpec, Runner } from '../../exec/runner.js';
import { kubectl, type KubeTarget } from './kubectl.js';

/** kube-proxy's mode as found, and where it was found. */
export interface ProxySeen {
  /** 'none': the CNI replaces kube-proxy; 'unknown': nothing readable said. */
  mode: KubeProxyMode | 'none' | 'unknown' | (string & {});
  source: string;
}

/**
 * kube-proxy's metrics address: its default metricsBindAddress, 127.0.0.1:10249, in the node's network namespace (kind's
 * KubeProxyConfiguration, pkg/cluster/internal/kubeadm/config.go v0.30.0, sets none; kindest/node has curl).
 */
export const KUBE_PROXY_METRICS_URL = 'http://127.0.0.1:10249/metrics';
export const KUBE_PROXY_CONFIGMAP = 'kube-system/kube-proxy';

export function planKubeProxyModeRead(t: KubeTarget): CommandSpec {
  return kubectl(t, ['-n', 'kube-system', 'get', 'configmap', 'kube-proxy', '-o', 'jsonpath={.data.config\\.conf}'], `read kube-proxy's mode (ConfigMap ${KUBE_PROXY_CONFIGMAP}, config.conf)`, { allowFailure: true });
}

/**
 * The mode in a KubeProxyConfiguration document (kubeadm writes it to the ConfigMap's config.conf). An empty or
 * absent `mode` is kube-proxy's default on Linux, iptables (cmd/kube-proxy/app/server_linux.go).
 */
export function kubeProxyModeFromConfig(conf: string): ProxySeen {
  let doc: unknown;
  try {
    doc = parse(conf);
  } catch (e) {
    return { mode: 'unknown', source: `ConfigMap ${KUBE_PROXY_CONFIGMAP} config.conf is not YAML (${(e as Error).message.split('\n')[0]})` };
  }
  if (!doc || typeof doc !== 'object') return { mode: 'unknown', source: `ConfigMap ${KUBE_PROXY_CONFIGMAP} has no config.conf` };
  const mode = (doc as { mode?: unknown }).mode;
  if (mode === undefined || mode === null || mode === '') return { mode: 'iptables', source: `ConfigMap ${KUBE_PROXY_CONFIGMAP} config.conf sets no mode: kube-proxy's Linux default, iptables` };
  return { mode: String(mode), source: `ConfigMap ${KUBE_PROXY_CONFIGMAP} config.conf mode: ${String(mode)}` };
}

/**
 * kube-proxy's mode on an existing cluster: only where its DaemonSet runs (a ConfigMap can outlive a kube-proxy a
 * replacing CNI took over), from its ConfigMap. `running: false` when no DaemonSet kube-system/kube-proxy exists:
 * replaced, or built into the distribution's binary (k3s), whose mode bench cannot read.
 */
export async function readClusterKubeProxyMode(runner: Runner, t: KubeTarget): Promise<ProxySeen & { running: boolean }> {
  const ds = await runner.run(kubectl(t, ['-n', 'kube-system', 'get', 'daemonset', 'kube-proxy', '-o', 'name'], 'is kube-proxy running (DaemonSet kube-system/kube-proxy)', { allowFailure: true }));
  const r = await runner.run(planKubeProxyModeRead(t));
  if (runner.dryRun) return { mode: 'unknown', source: `read at run time from ConfigMap ${KUBE_PROXY_CONFIGMAP}`, running: true };
  const why = (x: { stderr: string; exitCode: number }) => x.stderr.trim().split('\n')[0] || `exit ${x.exitCode}`;
  if (ds.exitCode !== 0) return { mode: 'unknown', source: `no DaemonSet kube-system/kube-proxy (${why(ds)})`, running: false };
  if (r.exitCode !== 0) return { mode: 'unknown', source: `no readable ConfigMap ${KUBE_PROXY_CONFIGMAP} (${why(r)})`, running: true };
  return { ...kubeProxyModeFromConfig(r.stdout), running: true };
}

/** Prometheus text: the value of `name` with exactly these labels (`{}` for none), or undefined. */
export function metricValue(text: string, name: string, labels = ''): number | undefined {
  for (const line of text.split('\n')) {
    if (!line.startsWith(name)) continue;
    const rest = line.slice(name.length);
    const m = /^(\{[^}]*\})?\s+(\S+)/.exec(rest);
    if (m && (m[1] ?? '') === labels) {
      const v = Number(m[2]);
      if (Number.isFinite(v)) return v;
    }
  }
  return undefined;
}

/** KUBE-SERVICES in `iptables-save -t nat`: its rules, and the 1-based position of the rule for `clusterIP`. */
export function kubeServicesPosition(natSave: string, clusterIP: string): { rules: number; position: number | null } {
  const rules = natSave.split('\n').filter((l) => l.startsWith('-A KUBE-SERVICES '));
  const i = rules.findIndex((l) => l.includes(` -d ${clusterIP}/32 `));
  return { rules: rules.length, position: i < 0 ? null : i + 1 };
}

/** Elements of kube-proxy's `service-ips` verdict map in `nft list map` output (one `… : goto service-…` each). */
export function serviceIpsElements(nftMap: string): number {
  return (nftMap.match(/:\s+goto\s+/g) ?? []).length;
}

const NOT_READ_CLUSTER =
  "not read: kube-proxy's metrics listen on each node's 127.0.0.1:10249 and its rules are in the nodes' kernels; bench has no node access on an existing cluster";
const NOT_READ_EBPF = "not read: the CNI's own service maps (Cilium's lb maps, Calico's NAT maps) are not read on kind/cluster yet";

/** What can be read of the data plane's state; on kind, from the client's node (where the connection is translated). */
export async function kubeProxyState(runner: Runner, proxy: ProxySeen, clusterIP: string, node?: { provider: string; node: string }): Promise<Record<string, number | string>> {
  if (proxy.mode !== 'iptables' && proxy.mode !== 'nftables') return { stateRead: proxy.mode === 'none' ? NOT_READ_EBPF : `not read: kube-proxy mode ${proxy.mode}` };
  if (!node) return { stateRead: NOT_READ_CLUSTER };
  const exec = (argv: string[], purpose: string): CommandSpec => ({ argv: [node.provider, 'exec', node.node, ...argv], purpose, allowFailure: true, timeoutMs: 60_000 });
  const out: Record<string, number | string> = { stateRead: `kube-proxy on the client's node ${node.node}` };
  const m = await runner.run(exec(['curl', '-s', '--max-time', '5', KUBE_PROXY_METRICS_URL], `read kube-proxy's metrics on ${node.node}`));
  const metrics = runner.dryRun || m.exitCode !== 0 ? undefined : m.stdout;
  if (metrics === undefined && !runner.dryRun) out.kubeProxyMetrics = `not read (${KUBE_PROXY_METRICS_URL} on ${node.node}: exit ${m.exitCode})`;
  if (metrics !== undefined) {
    const syncs = metricValue(metrics, 'kubeproxy_sync_proxy_rules_duration_seconds_count');
    const sum = metricValue(metrics, 'kubeproxy_sync_proxy_rules_duration_seconds_sum');
    if (syncs !== undefined) out.kubeProxySyncs = syncs;
    if (syncs && sum !== undefined) out.kubeProxyMeanSyncMs = Math.round((sum / syncs) * 1000);
  }
  if (proxy.mode === 'iptables') {
    if (metrics !== undefined) {
      const nat = metricValue(metrics, 'kubeproxy_sync_proxy_rules_iptables_total', '{table="nat"}');
      const filter = metricValue(metrics, 'kubeproxy_sync_proxy_rules_iptables_total', '{table="filter"}');
      if (nat !== undefined) out.kubeProxyNatRules = nat;
      if (filter !== undefined) out.kubeProxyFilterRules = filter;
    }
    const r = await runner.run(exec(['iptables-save', '-t', 'nat'], `read KUBE-SERVICES on ${node.node} (the measured ClusterIP's position)`));
    if (!runner.dryRun && r.exitCode === 0) {
      const p = kubeServicesPosition(r.stdout, clusterIP);
      out.kubeServicesRules = p.rules;
      out.kubeServicesPosition = p.position ?? 'not found';
    }
  } else {
    out.kubeProxyRuleCount = 'no rule-count metric in nftables mode (pkg/proxy/metrics/metrics.go)';
    const r = await runner.run(exec(['nft', 'list', 'map', 'ip', 'kube-proxy', 'service-ips'], `count kube-proxy's service-ips map on ${node.node}`));
    if (!runner.dryRun && r.exitCode === 0) out.serviceIpsElements = serviceIpsElements(r.stdout);
  }
  return out;
}
