// bench verify --services on the real kernel: every probe from a pod to a pod goes to the destination's own
// Service (ClusterIP, the pod's port + 10000) through the CNI's service data plane, as upstream's netpol suite
// probes (test/e2e/network/netpol/probe.go: `job.PodTo.ServiceIP`). The policy applies to the backend pod after
// the translation: every enforcing model passes, with port rules written for the pod's port; flannel and none
// come out NOT ENFORCED.
import { describe, expect, it } from 'vitest';
import { LocalBackend } from '../backends/local/backend.js';
import { itKernel, namespacesOfRun } from '../backends/local/test-support/kernel.js';
import { plannedAddresses } from '../backends/factory.js';
import { runConfigSchema, type CniName } from '../config/schema.js';
import { ExecRunner } from '../exec/runner.js';
import { newRunId } from '../identity/run-id.js';
import { BUILTIN_CASES_DIR, loadCases } from './cases.js';
import { gridLayout, gridWorkload } from './grid.js';
import { runVerify } from './run.js';

const layout = gridLayout();
const addresses = await plannedAddresses(gridWorkload(layout));
// Ingress and egress isolation, and the two port forms (a range, a named port) that a data plane judging the
// Service's port instead of the pod's would get wrong.
const CASES = ['default-deny-ingress', 'default-deny-egress', 'port-range', 'named-ports'];
const cases = loadCases([BUILTIN_CASES_DIR], { layout, ips: addresses.ips }).cases.filter((c) => CASES.includes(c.name));

const MODELS: Array<{ cni: CniName; dataPlane: string; verdict: 'enforced' | 'not-enforced' }> = [
  { cni: 'calico', dataPlane: 'kube-proxy-iptables', verdict: 'enforced' },
  { cni: 'canal', dataPlane: 'kube-proxy-iptables', verdict: 'enforced' },
  { cni: 'calico-nftables', dataPlane: 'kube-proxy-nftables', verdict: 'enforced' },
  { cni: 'calico-ebpf', dataPlane: 'calico-ctlb', verdict: 'enforced' },
  { cni: 'cilium', dataPlane: 'cilium-socket-lb', verdict: 'enforced' },
  { cni: 'flannel', dataPlane: 'kube-proxy-iptables', verdict: 'not-enforced' },
  { cni: 'none', dataPlane: 'kube-proxy-iptables', verdict: 'not-enforced' },
];

describe('bench verify --services on the local kernel', () => {
  it('runs the chosen cases', () => expect(cases.map((c) => c.name).sort()).toEqual([...CASES].sort()));

  for (const m of MODELS) {
    itKernel(`${m.cni}: probes through each pod's Service on ${m.dataPlane}; ${m.verdict === 'enforced' ? 'the policy applies at the backend pod, every case passes' : 'NOT ENFORCED'}`, async () => {
      const runId = newRunId();
      const runner = new ExecRunner();
      const plane = new LocalBackend({ config: runConfigSchema.parse({ cni: m.cni, backend: 'local', services: 20 }), runId, shape: 'verify-grid', runner });
      const report = await runVerify({ plane, workload: plane.fit(gridWorkload(layout)), cases });
      expect(namespacesOfRun(runId), 'namespaces left behind').toEqual([]);
      expect(report.services?.dataPlane).toBe(m.dataPlane);
      // The failing cases with their first mismatches first, so a failure says what differed.
      if (m.verdict === 'enforced') {
        expect(report.cases.filter((c) => c.status !== 'pass').map((c) => ({ name: c.name, error: c.error, flaky: c.flaky.length, mismatches: c.mismatches.slice(0, 5) }))).toEqual([]);
      }
      expect(report.verdict.kind).toBe(m.verdict);
      // The probes really went to ClusterIPs (10.96.0.0/12) on the Services' ports, not to the pods.
      const checks = runner.log.map((r) => r.argv.join(' ')).filter((a) => / check /.test(a) && /--target /.test(a));
      const toClusterIp = checks.filter((a) => /--target 10\.(9[6-9]|10\d|11[01])\.\d+\.\d+ --port 100(80|81|53)\b/.test(a));
      expect(toClusterIp.length).toBeGreaterThan(checks.length / 2);
    }, 600_000);
  }
});
