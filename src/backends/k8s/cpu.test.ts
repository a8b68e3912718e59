// CPU figures on kind and clusters carry their resolution (issue 20).
import { describe, expect, it } from 'vitest';
import { cpuWindow, parseCadvisorCpu, parseNodeCgroupRead, parseProcStat } from './cpu.js';
import { cadvisorText } from './test-support/cluster.js';

const who = {
  client: { namespace: 'cb-abcde-client', pod: 'bench-client', container: 'fortio' },
  server: { namespace: 'cb-abcde-server', pod: 'bench-server-7d9f-x2x', container: 'fortio' },
  agents: [{ namespace: 'kube-system', container: 'cilium-agent' }],
};
const targets = [
  { namespace: 'cb-abcde-client', pod: 'bench-client', container: 'fortio', id: 'aaa111' },
  { namespace: 'cb-abcde-server', pod: 'bench-server-7d9f-x2x', container: 'fortio', id: 'bbb222' },
];
const stat = (busyTicks: number) => parseProcStat(`cpu  ${busyTicks} 0 0 100 0 0 0 0 0 0\ncpu0 1 0 0 0 0 0 0 0 0 0\ncpu1 1 0 0 0 0 0 0 0 0 0\n`);

describe('cpuWindow resolution', () => {
  it('kind (cgroup v2, µs counters): the nodes\' cgroups are the total, resolved to microseconds', () => {
    const snap = (us: number, ticks: number) => ({ cadvisor: new Map([['n1', parseNodeCgroupRead(`aaa111 ${us}\nbbb222 ${us / 2}\nnode ${us * 4}\n`, targets)]]), kernels: [stat(ticks)] });
    const w = cpuWindow(snap(1_000_000, 0), snap(3_000_000, 10), who, 1000);
    expect(w.source).toBe('cgroup');
    expect(w.totalUsPerOp).toBeCloseTo(8000);
    expect(w.probeClientUsPerOp).toBeCloseTo(2000);
    expect(w.resolutionUsPerOp).toBeLessThan(0.1);
  });

  it('cluster (cAdvisor): the total from /proc/stat is a tick per CPU at each edge, the split as stale as the kubelet', () => {
    const snap = (sec: number, ticks: number) => ({ cadvisor: new Map([['w1', parseCadvisorCpu(cadvisorText(sec))]]), kernels: [stat(ticks)] });
    const w = cpuWindow(snap(1, 0), snap(2, 400), who, 1000);
    expect(w.source).toBe('cadvisor');
    expect(w.totalUsPerOp).toBeCloseTo(4000);
    // 2 edges × 10 ms × 2 CPUs / 1000 operations.
    expect(w.resolutionUsPerOp).toBeCloseTo(40);
    expect(w.partsResolutionUsPerOp).toBeCloseTo(60_000);
  });
});
