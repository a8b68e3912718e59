// The CNI's own figure next to the end-to-end time (kind/cluster): the agent's Prometheus metrics on the server's
// node, scraped through the API server's pod proxy before and after each change, as a delta. Which metric a CNI's
// agent has is the CNI catalogue's (agentMetric); how a cluster serves it and how it is switched on, the CNI's k8s
// profile (agentMetrics, agent-metric-setup.ts).
// Pure apart from the planners, which return CommandSpecs.
import { CNI_CATALOGUE, type AgentMetric } from '../../config/cnis.js';
import type { CniName } from '../../config/schema.js';
import type { CommandSpec } from '../../exec/runner.js';
import type { AgentMetricsOnCluster } from './agent-metric-setup.js';
import { CNI_PROFILES } from './cni.js';
import { kubectl, type KubeTarget } from './kubectl.js';

/** The agent's metric of a CNI, with how a cluster serves it. */
export type CniMetricSource = AgentMetric & AgentMetricsOnCluster;

/** Undefined for a CNI whose agent has no metric of policy changes (or no k8s profile). */
export function cniMetricSource(cni: CniName): CniMetricSource | undefined {
  const metric = CNI_CATALOGUE[cni].agentMetric;
  const onCluster = (CNI_PROFILES as Partial<Record<CniName, { agentMetrics?: AgentMetricsOnCluster }>>)[cni]?.agentMetrics;
  return metric && onCluster ? { ...metric, ...onCluster } : undefined;
}

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

/** A histogram or summary a change scrapes before and after itself (the CNI's own metric, or kube-proxy's). */
export interface MetricReader {
  metric: string;
  /** The pod or node it is read from. */
  where: string;
  /** What its delta over a change means (recorded with it). */
  meaning: string;
  note: string | null;
  scrape(when: string): Promise<{ value: SumCount | null; why: string }>;
}
