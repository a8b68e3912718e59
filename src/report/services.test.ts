import { describe, expect, it } from 'vitest';
import type { RunResult } from '../results/schema.js';
import { analyze } from './analyze.js';
import { renderMarkdown } from './markdown.js';
import { syntheticResult } from './test-support/fixtures.js';
import { summarize } from '../stats/summary.js';

const COUNTS = [0, 1000, 5000, 10000, 30000];

/** A run with Services: connect p50 = base + perService × count. */
function run(cni: RunResult['meta']['cni'], dataPlane: string, lookup: string, services: number, rep: number, base: number, perService: number, policies = 0): { result: RunResult; path: string } {
  const r = syntheticResult({ cni, policies, repetition: rep, seed: services * 7 + rep * 13 + cni.length * 101 + policies, samples: 400, connectNs: base + perService * services });
  r.services = { count: services, endpointsPerService: 1, position: 'last', dataPlane, description: `${dataPlane} model`, lookup, clusterIP: '10.96.0.20', port: 80, installMs: 100 + services / 10, state: { serviceDataPlane: dataPlane, kubeServicesRules: services + 2 } };
  return { result: r, path: `/x/${cni}-${services}-${rep}` };
}

function sweep(): { result: RunResult; path: string }[] {
  const out: { result: RunResult; path: string }[] = [];
  for (const n of COUNTS) {
    for (const rep of [1, 2, 3]) {
      out.push(run('calico', 'kube-proxy-iptables', 'rule-walk', n, rep, 40_000, 16));
      out.push(run('calico-nftables', 'kube-proxy-nftables', 'verdict-map', n, rep, 42_000, 0));
      out.push(run('cilium', 'cilium-socket-lb', 'bpf-map', n, rep, 30_000, 0));
    }
  }
  return out;
}

describe('the Services dimension of a report', () => {
  const loaded = sweep();
  const a = analyze(loaded, { seed: 1, resamples: 200 });

  it('fits connect p50 against the Service count per service data plane: iptables O(n), the map lookups O(1)', () => {
    const by = Object.fromEntries(a.services.map((p) => [p.dataPlane, p]));
    expect(a.services.map((p) => p.dataPlane)).toEqual(['kube-proxy-iptables', 'kube-proxy-nftables', 'cilium-socket-lb']);
    expect(by['kube-proxy-iptables']!.verdict.complexity).toBe('O(n)');
    const [lo, hi] = by['kube-proxy-iptables']!.fit!.slopeCi95;
    expect(lo).toBeLessThan(16);
    expect(hi).toBeGreaterThan(16);
    expect(by['kube-proxy-nftables']!.verdict.complexity).toBe('O(1)');
    expect(by['cilium-socket-lb']!.verdict.complexity).toBe('O(1)');
    expect(by['kube-proxy-iptables']!.counts.map((c) => c.services)).toEqual(COUNTS);
    expect(by['kube-proxy-iptables']!.stateAtMax).toMatchObject({ kubeServicesRules: 30002 });
  });

  it('keeps the policy curves at one Service count (runs at other counts do not pollute them)', () => {
    const calico = a.cnis.find((c) => c.cni === 'calico')!;
    expect(calico.metrics.connect_p50.points.map((p) => p.policies)).toEqual([0, 0, 0]);
    expect(calico.metrics.connect_p50.counts[0]!.value).toBeLessThan(45_000);
  });

  it('renders a Services section with the verdicts and the advice', () => {
    const md = renderMarkdown(a);
    expect(md).toContain('## Services');
    expect(md).toMatch(/\| Calico \(iptables\) \| kube-proxy-iptables \| 3 \| \*\*O\(n\)\*\* \| [\d.]+ ns\/Service/);
    expect(md).toMatch(/At 30000 Services kube-proxy-iptables \(beside Calico \(iptables\)\) adds 4\d\d\.\d µs to every new connection/);
    expect(md).toContain('kube-proxy-nftables, cilium-socket-lb do not grow');
  });

  it('prints a wide run-level CI as the value with its CI: the spread of runs is not the measurement\'s resolution', () => {
    // Calico CTLB with runs 25% apart at every count: the CI is far wider than 10% of the value, each p50 resolved to ns.
    const noisy = COUNTS.flatMap((n) => [1, 2, 3].map((rep) => run('calico-ebpf', 'calico-ctlb', 'bpf-map', n, rep, [24_000, 30_000, 36_000][rep - 1]!, 0)));
    const b = analyze(noisy, { seed: 1, resamples: 200 });
    const c = b.services[0]!.counts[0]!;
    expect(c.ci95[1] - c.ci95[0]).toBeGreaterThan(0.2 * c.value);
    const md = renderMarkdown(b);
    const row = md.split('\n').find((l) => l.startsWith('| Calico (eBPF) | calico-ctlb | bpf-map |'))!;
    expect(row).not.toContain('below resolution');
    expect(row.split(' | ').slice(4, 9).every((cell) => /^\d+\.\d \(\d+\.\d–\d+\.\d\)/.test(cell))).toBe(true);
    expect(md).toContain('ns resolution');
  });

  it('has no Services section without Services', () => {
    const plain = analyze([run('calico', 'x', 'y', 0, 1, 40_000, 0)].map((l) => ({ ...l, result: { ...l.result, services: undefined } })));
    expect(plain.services).toEqual([]);
    expect(renderMarkdown(plain)).not.toContain('## Services');
  });
});

describe('time to program a Service change (bench enforce --services)', () => {
  const metric = (ms: number[], notSeen = 0) => ({ samplesNs: ms.map((x) => x * 1e6), errors: notSeen ? { NOT_ENFORCED: notSeen } : {}, summary: summarize(ms.map((x) => x * 1e6), { seed: 1 }) as never, wallNs: 0, cpu: null });
  const enforceRun = (cni: RunResult['meta']['cni'], dataPlane: string, lookup: string, services: number, removedMs: number[], resolutionMs: number, notSeen = 0): { result: RunResult; path: string } => {
    const r = syntheticResult({ cni, policies: 0, repetition: 1, seed: services, samples: 10, connectNs: 1 });
    r.metrics = {
      connect: null,
      crr: null,
      rr: null,
      enforce_endpoint_removed: metric(removedMs, notSeen),
      blackhole_endpoint_removed: metric(removedMs.map((x) => x - 1)),
      enforce_endpoint_added: metric(removedMs.map((x) => x + 10)),
      enforce_service_added: metric(removedMs.map((x) => x + 20)),
    };
    r.services = { count: services, endpointsPerService: 1, position: 'last', dataPlane, description: dataPlane, lookup, clusterIP: '10.96.0.20', port: 80, installMs: 10, state: {} };
    r.modelState = { enforceResolutionMs: resolutionMs };
    return { result: r, path: `/e/${cni}-${services}` };
  };

  it('one row per data plane and Service count, p50 of each change, and a time within ten resolutions not printed as a number', () => {
    const a = analyze([enforceRun('calico', 'kube-proxy-iptables', 'rule-walk', 2000, [900, 1000, 1100], 1), enforceRun('cilium', 'cilium-socket-lb', 'bpf-map', 2000, [30, 40, 50], 5, 1)], { seed: 1, resamples: 50 });
    const rows = a.serviceChanges!;
    expect(rows.map((r) => [r.dataPlane, r.services])).toEqual([
      ['kube-proxy-iptables', 2000],
      ['cilium-socket-lb', 2000],
    ]);
    expect(rows[0]!.p50Ms).toEqual({ enforce_endpoint_removed: 1000, blackhole_endpoint_removed: 999, enforce_endpoint_added: 1010, enforce_service_added: 1020 });
    expect(rows[1]!.notSeen).toBe(1);
    const md = renderMarkdown(a);
    expect(md).toContain('## Time to program a Service change');
    expect(md).toMatch(/\| Calico \(iptables\)[^|]*\| kube-proxy-iptables \| rule-walk \| 2000 \| 0 \| 1000 \| 999 \| 1010 \| 1020 \| 1\.0 ms \| 0 \|/);
    // 40 ms at ±5 ms resolution: coarser than a tenth of the value.
    expect(md).toMatch(/\| cilium-socket-lb \| bpf-map \| 2000 \| 0 \| below resolution \(±5\.0 ms\) \|/);
    // Latency runs' Services section ignores enforce runs (no connect metric).
    expect(a.services).toEqual([]);
  });
});
