// Synthetic result files built with the real result schema, for report and compare tests: known distributions
// at known policy counts, written where a sweep would write them.
import { join } from 'node:path';
import type { CniName } from '../../config/schema.js';
import { writeResult } from '../../results/io.js';
import { RESULT_KIND, RESULT_SCHEMA_VERSION, errorRecord, runResultSchema, type ErrorRecord, type MetricResult, type RunResult } from '../../results/schema.js';
import { PolicyMapCapacityError } from '../../backends/local/cilium/compile.js';
import { seededRandom, summarize } from '../../stats/summary.js';
import { pointKey } from '../../sweep/plan.js';

/** Log-normal latencies with the given median (ns). */
export function latencySamples(seed: number, n: number, medianNs: number, sigma = 0.15): number[] {
  const rand = seededRandom(seed);
  return Array.from({ length: n }, () => medianNs * Math.exp(sigma * Math.sqrt(-2 * Math.log(1 - rand())) * Math.cos(2 * Math.PI * rand())));
}

/** What the synthetic results say ran; a CNI not listed gets a plain synthetic model that enforces policy. */
const MODELS: Partial<Record<CniName, RunResult['meta']['model']>> = {
  none: { name: 'no-CNI routing floor', description: 'synthetic: no policy engine', enforcesPolicy: false },
  flannel: { name: 'Flannel-style VXLAN model', description: 'synthetic: VXLAN, policies ignored', enforcesPolicy: false },
  calico: { name: 'Calico-style iptables model', description: 'synthetic: iptables chains per endpoint', enforcesPolicy: true },
  cilium: { name: 'Cilium-style eBPF model', description: 'synthetic: tc BPF with a policy hash map', enforcesPolicy: true },
  canal: { name: 'Canal-style model', description: 'synthetic: Felix iptables on Flannel VXLAN', enforcesPolicy: true },
  'calico-nftables': { name: 'Calico-style nftables model', description: 'synthetic: nft chains per endpoint', enforcesPolicy: true },
  'calico-ebpf': { name: 'Calico-eBPF-style model', description: 'synthetic: a BPF program walking the rules', enforcesPolicy: true },
};
const modelOf = (cni: CniName): RunResult['meta']['model'] => MODELS[cni] ?? { name: `${cni}-style model`, description: 'synthetic', enforcesPolicy: true };

export interface SyntheticRun {
  cni: CniName;
  policies: number;
  repetition?: number;
  sweepId?: string;
  seed: number;
  samples?: number;
  /** Median latency per metric, ns. */
  connectNs: number;
  crrNs?: number;
  rrNs?: number;
  cpuUs?: number;
  status?: 'ok' | 'failed';
  error?: ErrorRecord;
  machine?: Partial<RunResult['meta']['machine']>;
  backend?: RunResult['meta']['backend'];
  modelName?: string;
  /** The cpu block as files before issue 20 wrote it (machine-wide /proc/stat, no resolution recorded). */
  legacyCpu?: boolean;
  /** The machine's reference: its speed factor (1: as usual), the CPU share, or false for none (older files). */
  reference?: { scale?: number; share?: number } | false;
}

/** Loopback reference medians of a synthetic machine, ns. */
const REFERENCE_NS = { connect: 14_000, crr: 60_000, rr: 17_000 } as const;

function metric(samples: number[], cpuUs: number, o: SyntheticRun, name: keyof typeof REFERENCE_NS, seed: number): MetricResult {
  const s = summarize(samples, { resamples: 100, seed: 1 });
  const total = cpuUs * 3;
  const cpu = o.legacyCpu
    ? { totalUsPerOp: total, probeClientUsPerOp: cpuUs, probeServerUsPerOp: cpuUs / 2, dataPlaneUsPerOp: cpuUs, softirqUsPerOp: cpuUs / 2 }
    : {
        totalUsPerOp: total,
        probeClientUsPerOp: cpuUs * 2,
        probeServerUsPerOp: cpuUs * 0.9,
        dataPlaneUsPerOp: null,
        softirqUsPerOp: cpuUs * 0.1,
        source: 'task-clock' as const,
        resolutionUsPerOp: total / 100,
        wallUsPerOp: total / (o.reference ? (o.reference.share ?? 0.97) : 0.97),
        bpfUsPerOp: null,
        includes: 'CPU time of the probe client, the echo server, ksoftirqd of the pinned CPU (synthetic)',
        dataPlane: 'not separable (synthetic)',
      };
  const ref = o.reference === false ? {} : { reference: { target: 'loopback', samplesNs: latencySamples(seed + 500, 100, REFERENCE_NS[name] * ((o.reference ?? {}).scale ?? 1)), errors: {}, wallNs: 1 } };
  return { samplesNs: samples, errors: {}, summary: s, wallNs: samples.reduce((a, b) => a + b, 0), cpu, ...ref };
}

export function syntheticResult(o: SyntheticRun): RunResult {
  const n = o.samples ?? 500;
  const failed = o.status === 'failed';
  const r: RunResult = {
    schemaVersion: RESULT_SCHEMA_VERSION,
    kind: RESULT_KIND,
    runId: `s${String(o.seed % 10000).padStart(4, '0')}`,
    status: failed ? 'failed' : 'ok',
    meta: {
      startedAt: '2025-01-01T00:00:00.000Z',
      finishedAt: '2025-01-01T00:00:01.000Z',
      tool: { name: 'cni-bench', version: '0.1.0', gitCommit: null },
      machine: { hostname: 'bench-host', kernel: '6.1.0-test', cpuModel: 'Synthetic CPU', cpus: 2, memoryBytes: 4e9, loadavg: [0.1, 0.1, 0.1], ...o.machine },
      backend: o.backend ?? 'local',
      cni: o.cni,
      model: { ...modelOf(o.cni), ...(o.modelName ? { name: o.modelName } : {}) },
      policy: { count: o.policies, matchPosition: 'last', seed: 1, shape: 'default' },
      topology: { nodes: 2, placement: 'cross-node', serverPods: 1 },
      probe: { tool: 'cb-probe', samples: n, warmup: 0, concurrency: 1, timeoutMs: 1000 },
      ...(o.legacyCpu ? {} : { cpuPlacement: { mode: 'auto' as const, cpus: [1], softirq: 'on CPU 1 (synthetic)', reason: 'synthetic' } }),
      scenario: null,
      sweepId: o.sweepId ?? null,
      repetition: o.repetition ?? null,
    },
    policiesEnforced: modelOf(o.cni).enforcesPolicy,
    modelState: { policies: o.policies },
    timings: { setupMs: 1, policyInstallMs: 1, measureMs: 1, teardownMs: 1, totalMs: 4 },
    metrics: failed
      ? { connect: null, crr: null, rr: null }
      : {
          connect: metric(latencySamples(o.seed, n, o.connectNs), o.cpuUs ?? 5, o, 'connect', o.seed),
          crr: metric(latencySamples(o.seed + 1, n, o.crrNs ?? o.connectNs * 2.5), o.cpuUs ?? 5, o, 'crr', o.seed + 1),
          rr: metric(latencySamples(o.seed + 2, n, o.rrNs ?? 30_000), 1, o, 'rr', o.seed + 2),
        },
    errors: failed ? [o.error ?? { stage: 'policy', message: 'synthetic failure' }] : [],
  };
  return runResultSchema.parse(JSON.parse(JSON.stringify(r)));
}

export interface SyntheticCurve {
  cni: CniName;
  /** connect p50 at 0 policies, ns */
  baseNs: number;
  /** ns per policy added to connect and CRR */
  slopeNs: number;
  cpuSlopeUs?: number;
  /** Points at or above this count fail with a capacity error. */
  failAt?: number;
}

/** Writes <dir>/<cni>-<policies>-r<rep>/result.json for every point; returns the paths. */
export function writeSyntheticSweep(dir: string, o: { curves: SyntheticCurve[]; policies: number[]; repetitions: number; samples?: number; sweepId?: string; seed?: number; scale?: number; reference?: SyntheticRun['reference']; legacyCpu?: boolean }): string[] {
  const paths: string[] = [];
  let seed = o.seed ?? 1;
  for (const c of o.curves) {
    for (const p of o.policies) {
      for (let rep = 1; rep <= o.repetitions; rep++) {
        seed += 7;
        const connect = (c.baseNs + c.slopeNs * p) * (o.scale ?? 1);
        const failed = c.failAt !== undefined && p >= c.failAt;
        const r = syntheticResult({
          cni: c.cni,
          policies: p,
          repetition: rep,
          sweepId: o.sweepId ?? 'sweep-20250101-000000-test',
          seed,
          samples: o.samples,
          connectNs: connect,
          crrNs: connect * 2.5,
          rrNs: 30_000 * (o.scale ?? 1),
          cpuUs: 5 + (c.cpuSlopeUs ?? 0) * p,
          reference: o.reference,
          legacyCpu: o.legacyCpu,
          // Recorded the way executeRun records the model's real error, so the kind is the one a real run writes.
          ...(failed ? { status: 'failed' as const, error: errorRecord('policy', new PolicyMapCapacityError([{ pod: 'bench-server/server-0', endpointId: 1, needed: p + 3, capacity: c.failAt!, ingress: p + 3, egress: 0 }])) } : {}),
        });
        paths.push(writeResult(join(dir, pointKey(c.cni, p, rep)), r));
      }
    }
  }
  return paths;
}
