// Switching the CNI agents' metrics on in a kind cluster the run owns: what rolls the agents, and how often.
import { describe, expect, it } from 'vitest';
import { loadVersions } from '../backends/k8s/versions.js';
import { cniMetricSource } from '../backends/k8s/agent-metrics.js';

describe('switching the CNI metrics on (kind)', () => {
  it('Cilium: the helm upgrade that sets prometheus.enabled rolls the agents once (their pod template changes); no second rollout restart', () => {
    const cmds = cniMetricSource('cilium')!.switchOn({ kubeconfig: '/k' }, loadVersions()).map((c) => c.argv.join(' '));
    expect(cmds[0]).toMatch(/^helm upgrade cilium cilium .*--reuse-values --set prometheus\.enabled=true/);
    expect(cmds.some((c) => c.includes('rollout restart'))).toBe(false);
    // The one roll is waited for before the metrics are scraped.
    expect(cmds.slice(1)).toEqual(['kubectl --kubeconfig /k -n kube-system rollout status daemonset/cilium --timeout=300s']);
  });
});
