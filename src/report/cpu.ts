// The report's CPU section (issue 20): CPU per new connection per data plane and policy count, with its resolution,
// its parts (probe client, echo server, ksoftirqd, BPF run time) and what the data plane adds over `none` — held
// against the connect latency it adds, since a rule walk that runs in softirq on the packet's path is the same time
// counted twice. Pure: results in, rows out.
import { cniEntry } from '../config/cnis.js';
import type { CniName } from '../config/schema.js';
import type { RunResult } from '../results/schema.js';
import { cpuResolutionUsPerOp, cpuResolved, cpuSourceOf } from '../results/cpu.js';
import { runLevelCi } from '../stats/hierarchical.js';
import type { LoadedResult } from './collect.js';

export interface CpuRow {
  cni: CniName;
  policies: number;
  /** Runs with a CPU figure for connect. */
  runs: number;
  source: string;
  /** µs of CPU per connect operation: mean of the runs, 95% t interval over them (null when below resolution). */
  totalUs: number | null;
  totalCi95: [number, number] | null;
  /** The coarsest run's resolution, µs per operation. */
  resolutionUs: number;
  /** Wall time per connect operation (the loop's connect + close, the server's accept + close). */
  wallUs: number | null;
  clientUs: number | null;
  serverUs: number | null;
  softirqUs: number | null;
  bpfUs: number | null;
  /** CPU and connect p50 this data plane adds over `none` at the same count (null without a resolved none). */
  cpuAddedUs: number | null;
  latencyAddedUs: number | null;
}

export interface CpuSection {
  rows: CpuRow[];
  /** What the totals include and what the data-plane split is, one sentence each, as the runs recorded them. */
  includes: string[];
  dataPlane: string[];
  /** Runs whose connect CPU was below resolution (not shown as a number). */
  belowResolution: number;
}

const mean = (xs: number[]) => (xs.length ? xs.reduce((a, b) => a + b, 0) / xs.length : null);
const num = (xs: Array<number | null | undefined>) => xs.filter((x): x is number => typeof x === 'number' && Number.isFinite(x));

function connectP50Us(r: RunResult): number | null {
  const p = r.metrics.connect?.summary.p50;
  return typeof p === 'number' ? p / 1000 : null;
}

export function cpuSection(loaded: LoadedResult[]): CpuSection {
  const ok = loaded.map((l) => l.result).filter((r) => r.status === 'ok' && r.metrics.connect?.cpu);
  const groups = new Map<string, RunResult[]>();
  for (const r of ok) groups.set(`${r.meta.cni}\u0000${r.meta.policy.count}`, [...(groups.get(`${r.meta.cni}\u0000${r.meta.policy.count}`) ?? []), r]);
  let belowResolution = 0;
  const rows: CpuRow[] = [];
  for (const runs of groups.values()) {
    const first = runs[0]!;
    const cpu = (r: RunResult) => r.metrics.connect!.cpu!;
    const res = Math.max(...runs.map((r) => cpuResolutionUsPerOp(r, r.metrics.connect!)));
    const resolved = runs.filter((r) => cpuResolved(cpu(r).totalUsPerOp, cpuResolutionUsPerOp(r, r.metrics.connect!)));
    belowResolution += runs.length - resolved.length;
    // A point is shown only when every run of it is resolved: a mean over the resolved ones would pick its runs.
    const shown = resolved.length === runs.length;
    const ci = shown ? runLevelCi(runs.map((r) => cpu(r).totalUsPerOp)) : null;
    const part = (f: (r: RunResult) => number | null | undefined) => {
      const v = mean(num(runs.map(f)));
      return shown && v !== null && cpuResolved(v, res) ? v : null;
    };
    rows.push({
      cni: first.meta.cni,
      policies: first.meta.policy.count,
      runs: runs.length,
      source: cpuSourceOf(cpu(first)),
      totalUs: ci ? ci.value : null,
      totalCi95: ci && ci.level === 'runs' ? ci.ci95 : null,
      resolutionUs: res,
      wallUs: mean(num(runs.map((r) => cpu(r).wallUsPerOp))),
      clientUs: part((r) => cpu(r).probeClientUsPerOp),
      serverUs: part((r) => cpu(r).probeServerUsPerOp),
      softirqUs: part((r) => cpu(r).softirqUsPerOp),
      bpfUs: part((r) => cpu(r).bpfUsPerOp),
      cpuAddedUs: null,
      latencyAddedUs: null,
    });
  }
  rows.sort((a, b) => cniEntry(a.cni).reportOrder - cniEntry(b.cni).reportOrder || a.policies - b.policies);
  // What each data plane adds over the floor (no CNI) at the same policy count (the floor's cost does not depend on it).
  const isFloor = (c: CniName) => Boolean(cniEntry(c).floor);
  for (const row of rows) {
    const floor = rows.find((x) => isFloor(x.cni) && x.policies === row.policies) ?? rows.find((x) => isFloor(x.cni));
    if (!floor || isFloor(row.cni) || floor.totalUs === null || row.totalUs === null) continue;
    const res = Math.max(row.resolutionUs, floor.resolutionUs);
    const added = row.totalUs - floor.totalUs;
    row.cpuAddedUs = cpuResolved(Math.abs(added), res) ? added : null;
    const lat = (cni: CniName, n: number) => mean(num(ok.filter((r) => r.meta.cni === cni && r.meta.policy.count === n).map(connectP50Us)));
    const a = lat(row.cni, row.policies);
    const b = lat(floor.cni, floor.policies);
    row.latencyAddedUs = a !== null && b !== null ? a - b : null;
  }
  const uniq = (xs: Array<string | undefined>) => [...new Set(xs.filter((x): x is string => Boolean(x)))];
  const legacy = ok.some((r) => r.metrics.connect!.cpu!.source === undefined) ? ["files written before issue 20: all CPUs' busy time from /proc/stat (10 ms ticks) over the measured windows, the rest of the machine included"] : [];
  return { rows, includes: [...uniq(ok.map((r) => r.metrics.connect!.cpu!.includes)), ...legacy], dataPlane: uniq(ok.map((r) => r.metrics.connect!.cpu!.dataPlane)), belowResolution };
}
