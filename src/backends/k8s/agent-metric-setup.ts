// How a cluster serves a CNI agent's own metric of policy changes, and how a cluster this run owns (kind) switches
// it on: the k8s half of the catalogue's agentMetric (what the metric is called, its port, what it means), used by
// the CNI profiles in cni.ts; agent-metrics.ts reads the metric.
import type { CommandSpec } from '../../exec/runner.js';
import { helm, kubectl, waitSpec, type KubeTarget } from './kubectl.js';
import type { Versions } from './versions.js';

export interface AgentMetricsOnCluster {
  /** Pod label selector of the agent that serves it (looked up in every namespace, on the server's node). */
  selector: string;
  /** How it is switched on, for the "not available" note. */
  enable: string;
  /** The commands that switch it on in a cluster this run owns (kind). */
  switchOn(t: KubeTarget, v: Versions): CommandSpec[];
}

/** Felix serves its metrics once FelixConfiguration `default` says prometheusMetricsEnabled (docs.tigera.io reference/felix/prometheus). */
export const felixMetrics = (selector: string): AgentMetricsOnCluster => ({
  selector,
  enable: 'FelixConfiguration default: prometheusMetricsEnabled: true',
  switchOn: (t) => [
    waitSpec(t, ['wait', '--for=create', 'felixconfigurations.crd.projectcalico.org/default'], 120, "wait for Felix's default FelixConfiguration"),
    kubectl(t, ['patch', 'felixconfigurations.crd.projectcalico.org', 'default', '--type', 'merge', '-p', JSON.stringify({ spec: { prometheusMetricsEnabled: true } })], "switch on Felix's Prometheus metrics (:9091) for its apply time"),
  ],
});

/** The Cilium agent serves its metrics with the chart's prometheus.enabled (docs.cilium.io observability/metrics). */
export const CILIUM_METRICS: AgentMetricsOnCluster = {
  selector: 'k8s-app=cilium',
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
};
