// The CNI's own figure next to the end-to-end time (kind/cluster): the agent's Prometheus metrics on the server's
// node, scraped through the API server's pod proxy before and after each change, as a delta.
//
// - Cilium: cilium_policy_implementation_delay, a histogram labelled by source, "Time between a policy change and
//   it being fully deployed into the datapath" (pkg/metrics, enabled by default), served by the agent on :9962
//   when the chart's prometheus.enabled=true (docs.cilium.io observability/metrics).
// - Calico (Felix, every data plane and Canal): felix_int_dataplane_apply_time_seconds, "Time in seconds for each
//   incremental update to the dataplane" (a summary in current Felix, a histogram in older ones: both have _sum
//   and _count), served on :9091 when FelixConfiguration prometheusMetricsEnabled is true (docs.tigera.io
//   reference/felix/prometheus).
// Pure apart from the planners, which return CommandSpecs.
import type { CniName } from '../../config/schema.js';
import type { CommandSpec } from '../../exec/runner.js';
import { helm, kubectl, waitSpec, type KubeTarget } from './kubectl.js';
import type { Versions } from './versions.js';

export interface CniMetricSource {
  metric: string;
  port: number;
  /** Pod label selector of the agent (looked up in every namespace, on the server's node). */
  selector: string;
  /** What it measures, in the result's words. */
  meaning: string;
  /** How it is switched on, for the "not available" note. */
  enable: string;
  /** The commands that switch it on in a cluster this run owns (kind). */
  switchOn(t: KubeTarget, v: Versions): CommandSpec[];
}

const FELIX: CniMetricSource = {
  switchOn: (t) => [
    waitSpec(t, ['wait', '--for=create', 'felixconfigurations.crd.projectcalico.org/default'], 120, "wait for Felix's default FelixConfiguration"),
    kubectl(t, ['patch', 'felixconfigurations.crd.projectcalico.org', 'default', '--type', 'merge', '-p', JSON.stringify({ spec: { prometheusMetricsEnabled: true } })], "switch on Felix's Prometheus metrics (:9091) for its apply time"),
  ],
  metric: 'felix_int_dataplane_apply_time_seconds',
  port: 9091,
  selector: 'k8s-app=calico-node',
  meaning: "Felix's incremental data-plane applies on the server's node (sum of their times over the change)",
  enable: 'FelixConfiguration default: prometheusMetricsEnabled: true',
};

export const CNI_METRICS: Partial<Record<CniName, CniMetricSource>> = {
  cilium: {
    metric: 'cilium_policy_implementation_delay',
    port: 9962,
    selector: 'k8s-app=cilium',
    meaning: "Cilium's policy implementation delay on the server's node (policy change → deployed to the datapath)",
    enable: 'helm value prometheus.enabled=true',
    switchOn: (t, v) => [
      helm(t, ['upgrade', 'cilium', v.cilium.chart, '--repo', v.cilium.chartRepo, '--version', v.cilium.version, '--namespace', 'kube-system', '--reuse-values', '--set', 'prometheus.enabled=true'], "switch on the Cilium agent's Prometheus metrics (:9962) for its policy_implementation_delay", {
        timeoutMs: 300_000,
      }),
      // prometheus.enabled changes the agents' pod template (the prometheus.io annotations and a `prometheus` port,
      // install/kubernetes/cilium/templates/cilium-agent/daemonset.yaml), so the upgrade itself rolls the DaemonSet;
      // a `rollout restart` on top would roll every agent a second time. Wait for that one roll.
      waitSpec(t, ['-n', 'kube-system', 'rollout', 'status', 'daemonset/cilium'], 300, 'wait for the Cilium agents the upgrade rolled (they read the new setting at start)'),
    ],
  },
  calico: FELIX,
  'calico-ebpf': FELIX,
  'calico-nftables': FELIX,
  canal: { ...FELIX, selector: 'k8s-app=canal' },
};

export function planAgentPodOnNode(t: KubeTarget, src: CniMetricSource, node: string): CommandSpec {
  return kubectl(t, ['get', 'pods', '-A', '-l', src.selector, '--field-selector', `spec.nodeName=${node}`, '-o', 'json'], `find the CNI agent on ${node} (its metrics)`);
}

export function agentPodFrom(json: string): { namespace: string; name: string } | null {
  const items = (JSON.parse(json) as { items?: Array<{ metadata?: { name?: string; namespace?: string; deletionTimestamp?: string } }> }).items ?? [];
  const p = items.find((i) => i.metadata?.name && !i.metadata.deletionTimestamp);
  return p ? { namespace: p.metadata!.namespace ?? '', name: p.metadata!.name! } : null;
}

/** GET through the API server's pod proxy (RBAC: pods/proxy): no port-forward process to manage. */
export function planScrape(t: KubeTarget, pod: { namespace: string; name: string }, src: CniMetricSource, purpose: string): CommandSpec {
  return kubectl(t, ['get', '--raw', `/api/v1/namespaces/${pod.namespace}/pods/${pod.name}:${src.port}/proxy/metrics`], purpose, { allowFailure: true, timeoutMs: 20_000 });
}

export interface SumCount {
  sum: number;
  count: number;
}

/**
 * _sum and _count of one summary/histogram family in Prometheus text format, added over its label sets; null when
 * the family is absent (metrics off, or an agent that does not have it).
 */
export function parseSumCount(text: string, metric: string): SumCount | null {
  let sum = 0;
  let count = 0;
  let seen = false;
  for (const line of text.split('\n')) {
    if (!line.startsWith(metric)) continue;
    const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{[^}]*\})?\s+(\S+)/.exec(line);
    if (!m) continue;
    const v = Number(m[3]);
    if (!Number.isFinite(v)) continue;
    if (m[1] === `${metric}_sum`) (sum += v), (seen = true);
    else if (m[1] === `${metric}_count`) (count += v), (seen = true);
  }
  return seen ? { sum, count } : null;
}

export interface CniMetricDelta {
  metric: string;
  pod: string;
  /** Samples the agent recorded over the change. */
  countDelta: number;
  /** Their total, ms. */
  sumDeltaMs: number;
  /** Their mean, ms (null when none was recorded). */
  meanMs: number | null;
  /** How long after the change's API call returned the last scrape was taken, ms. */
  scrapedAfterMs: number;
}

export function metricDelta(metric: string, pod: string, before: SumCount, after: SumCount, scrapedAfterMs: number): CniMetricDelta {
  const countDelta = Math.max(0, after.count - before.count);
  const sumDeltaMs = Math.max(0, (after.sum - before.sum) * 1000);
  return { metric, pod, countDelta, sumDeltaMs: Math.round(sumDeltaMs * 1000) / 1000, meanMs: countDelta > 0 ? Math.round((sumDeltaMs / countDelta) * 1000) / 1000 : null, scrapedAfterMs: Math.round(scrapedAfterMs) };
}
