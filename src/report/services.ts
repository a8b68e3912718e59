// The Services dimension of a report: per CNI and the service data plane it ran (kube-proxy's iptables or nftables
// mode, Cilium's socket LB, Calico eBPF's connect-time LB), connect p50 against the Service count, fitted and
// judged by the same verdict rule as the policy curves, the state the data plane held at the largest count, and
// the advice that follows. Pure: results in, plain data and markdown out.
import { CNIS_IN_REPORT_ORDER, cniEntry } from '../config/cnis.js';
import type { CniName } from '../config/schema.js';
import type { RunResult } from '../results/schema.js';
import { fitScaling, type ScalingFit } from '../stats/fit.js';
import { hierarchicalCi, type CiLevel } from '../stats/hierarchical.js';
import { repeatedFitOf } from '../stats/sequential.js';
import { referenceOf } from '../results/machine.js';
import { sortedCopy } from '../stats/summary.js';
import { complexityVerdict, inServiceWords, type Verdict } from '../stats/verdict.js';
import { adjustmentText, levelText } from '../sweep/adaptive.js';

/** One Service count of one data plane: its runs at run level (connect p50). */
export interface ServiceCountEstimate {
  services: number;
  runs: number;
  /** ns */
  value: number;
  ci95: [number, number];
  level: CiLevel;
}

export interface ServicePlaneAnalysis {
  cni: CniName;
  /** The service data plane that ran (kube-proxy-iptables, …) and what it is. */
  dataPlane: string;
  description: string;
  lookup: string;
  /** Where the server's Service sat in a rule-walking proxier's order. */
  position: 'first' | 'last';
  /** The policy count these runs share (the smallest the sweep measured beside Services). */
  policies: number;
  counts: ServiceCountEstimate[];
  /** Runs per Service count: the fewest and the most (an adaptive sweep gives every count of a data plane the same). */
  repetitions: [number, number];
  /** An adaptive sweep's data plane: the α its last look spent, the level of the fit's CIs (absent: 95%). */
  alpha?: number;
  /** connect p50 against the Service count (the fit's "per policy" reads "per Service" here). */
  fit: ScalingFit | null;
  verdict: Verdict;
  /** At the largest count: the first sync's time on every node, and what the data plane held. */
  installMsAtMax: number | null;
  stateAtMax: Record<string, number | string>;
}

const Z95 = 1.959963984540054;

export interface ServicesAnalysisOptions {
  seed?: number;
  resamples?: number;
  /**
   * Data planes an adaptive Services sweep stopped on a decided verdict, and the α of their last look: their fit
   * is judged as the look judged it (stats/sequential.ts repeatedFit), leaving out the `slowed` runs.
   */
  spent?: ReadonlyMap<CniName, number>;
  /** Run ids of the runs during which the machine slowed (results/machine.ts). */
  slowed?: ReadonlySet<string>;
}

/** Runs with Services, grouped by CNI and service data plane, at the smallest policy count measured with Services. */
export function analyzeServices(ok: readonly { result: RunResult }[], o: ServicesAnalysisOptions = {}): ServicePlaneAnalysis[] {
  const groups = new Map<string, RunResult[]>();
  for (const { result: r } of ok) {
    if (!r.services) continue;
    const k = `${r.meta.cni}|${r.services.dataPlane}`;
    groups.set(k, [...(groups.get(k) ?? []), r]);
  }
  const out: ServicePlaneAnalysis[] = [];
  for (const [, all] of groups) {
    const policies = Math.min(...all.map((r) => r.meta.policy.count));
    const runs = all.filter((r) => r.meta.policy.count === policies && r.metrics.connect);
    if (runs.length === 0) continue;
    const points = runs.map((r) => {
      const s = r.metrics.connect!.summary;
      const ci = s.ci95.p50;
      const reference = referenceOf(r, 'connect', 0.5);
      return { x: r.services!.count, y: s.p50 ?? Number.NaN, se: ci[0] !== null && ci[1] !== null ? (ci[1] - ci[0]) / (2 * Z95) : 0, slowed: o.slowed?.has(r.runId) ?? false, ...(reference === null ? {} : { reference }) };
    }).filter((p) => Number.isFinite(p.y));
    const alpha = o.spent?.get(all[0]!.meta.cni);
    const fitOpts = { seed: o.seed ?? 1, resamples: o.resamples };
    const judged = alpha === undefined ? null : repeatedFitOf(points, alpha, fitOpts);
    const fit = judged ? judged.fit : fitScaling(points.map(({ x, y, se }) => ({ x, y, se })), fitOpts);
    const byCount = new Map<number, RunResult[]>();
    for (const r of runs) byCount.set(r.services!.count, [...(byCount.get(r.services!.count) ?? []), r]);
    const counts = [...byCount.entries()]
      .sort((a, b) => a[0] - b[0])
      .map(([services, rs]) => {
        const h = hierarchicalCi(rs.map((r) => sortedCopy(r.metrics.connect!.samplesNs)), 0.5, { seed: (o.seed ?? 1) + services, resamples: o.resamples });
        return { services, runs: h.runs, value: h.value, ci95: h.ci95, level: h.level };
      });
    const atMax = runs.reduce((a, b) => (b.services!.count > a.services!.count ? b : a));
    const first = runs[0]!;
    out.push({
      cni: first.meta.cni,
      dataPlane: first.services!.dataPlane,
      description: first.services!.description,
      lookup: first.services!.lookup,
      position: first.services!.position,
      policies,
      counts,
      repetitions: [Math.min(...counts.map((c) => c.runs)), Math.max(...counts.map((c) => c.runs))],
      ...(alpha === undefined ? {} : { alpha }),
      fit,
      verdict: ((v) => (judged ? { ...v, reason: `${v.reason}; ${adjustmentText(judged.adjustment, judged.leftOut)}` } : v))(complexityVerdict(fit)),
      installMsAtMax: atMax.services!.installMs,
      stateAtMax: atMax.services!.state,
    });
  }
  const order = (c: CniName) => CNIS_IN_REPORT_ORDER.indexOf(c);
  return out.sort((a, b) => order(a.cni) - order(b.cni) || a.dataPlane.localeCompare(b.dataPlane));
}

const us = (ns: number) => (Number.isFinite(ns) ? (ns / 1000).toFixed(1) : '–');
const esc = (s: string) => s.replace(/\|/g, '\\|').replace(/\n/g, ' ');

/**
 * A run-level value with its CI, however wide: a wide CI is the runs' spread, not the measurement's resolution
 * (every connect is timed on CLOCK_MONOTONIC, ns resolution, so every p50 here is resolved far below 10%).
 * One run: its within-run CI, marked.
 */
export function valueText(e: ServiceCountEstimate): string {
  if (!Number.isFinite(e.ci95[0]) || !Number.isFinite(e.ci95[1])) return `${us(e.value)} (no CI)`;
  return `${us(e.value)} (${us(e.ci95[0])}–${us(e.ci95[1])})${e.level === 'within-run' ? '¹' : ''}`;
}

/** "3", or "3–6" where counts got different numbers of runs; with the level an adaptive sweep's look spent. */
function runsText(p: ServicePlaneAnalysis): string {
  const [lo, hi] = p.repetitions;
  return `${lo === hi ? lo : `${lo}–${hi}`}${p.alpha === undefined ? '' : ` (adaptive; CIs at ${levelText(p.alpha)})`}`;
}

/** The fitted cost per Service where growth is established, in ns with its CI. */
function perService(p: ServicePlaneAnalysis): string {
  const f = p.fit;
  if (!f) return '–';
  if (p.verdict.headline === 'no trend') return `no trend (slope CI ${f.slopeCi95[0].toFixed(2)} … ${f.slopeCi95[1].toFixed(2)} ns/Service)`;
  if (p.verdict.headline === 'slope') return `${f.slope.toFixed(2)} ns/Service (${f.slopeCi95[0].toFixed(2)} … ${f.slopeCi95[1].toFixed(2)})`;
  const segs = f.segments.map((s) => `${s.from}–${s.to}: ${s.nsPerPolicy.toFixed(1)} ns/Service`);
  return segs.join('; ');
}

/** The advice a reader takes away: what the rule-walking data plane adds at the largest count, and which do not grow. */
export function servicesAdvice(planes: readonly ServicePlaneAnalysis[]): string[] {
  const out: string[] = [];
  const growing = planes.filter((p) => p.verdict.complexity === 'O(n)' || p.verdict.complexity === 'super-linear');
  const flat = planes.filter((p) => p.verdict.complexity === 'O(1)');
  for (const p of growing) {
    const lo = p.counts[0]!;
    const hi = p.counts[p.counts.length - 1]!;
    const added = hi.value - lo.value;
    out.push(`At ${hi.services} Services ${p.dataPlane} (beside ${cniEntry(p.cni).reportName}) adds ${us(added)} µs to every new connection against ${lo.services} (${us(lo.value)} → ${us(hi.value)} µs connect p50, the server's Service ${p.position} in its order)${flat.length ? `; ${[...new Set(flat.map((f) => f.dataPlane))].join(', ')} do not grow (O(1) within the verdict's bound)` : ''}.`);
  }
  if (!growing.length && flat.length) out.push(`No service data plane measured here grows with the Service count: ${[...new Set(flat.map((f) => f.dataPlane))].join(', ')} are O(1) within the verdict's bound.`);
  return out;
}

export function renderServicesSection(planes: readonly ServicePlaneAnalysis[]): string[] {
  if (planes.length === 0) return [];
  const L: string[] = ['## Services', ''];
  L.push("Connect p50 (µs: mean of the runs, hierarchical 95% CI; each connect timed on CLOCK_MONOTONIC, ns resolution) to the server's ClusterIP against the number of other Services, per CNI and the service data plane it ran (`--services`; the server's Service last where order matters). Runs at one policy count each.");
  L.push('');
  const counts = [...new Set(planes.flatMap((p) => p.counts.map((c) => c.services)))].sort((a, b) => a - b);
  const head = ['CNI', 'service data plane', 'lookup', 'policies', ...counts.map((c) => `${c} Services`)];
  const rows = planes.map((p) => {
    const by = new Map(p.counts.map((c) => [c.services, c]));
    return [cniEntry(p.cni).reportName, p.dataPlane, p.lookup, String(p.policies), ...counts.map((c) => (by.has(c) ? valueText(by.get(c)!) : '–'))];
  });
  L.push(['| ' + head.join(' | ') + ' |', '| ' + head.map((_, i) => (i >= 3 ? '---:' : '---')).join(' | ') + ' |', ...rows.map((r) => `| ${r.join(' | ')} |`)].join('\n'));
  L.push('');
  if (planes.some((p) => p.counts.some((c) => c.level === 'within-run'))) {
    L.push('¹ one run: the CI covers sample noise within that run only and cannot include run-to-run variation.');
    L.push('');
  }
  L.push('| CNI | service data plane | runs per count | verdict | cost per Service | why | first sync at the largest count | state at the largest count |');
  L.push('| --- | --- | ---: | --- | --- | --- | ---: | --- |');
  for (const p of planes) {
    const state = Object.entries(p.stateAtMax).filter(([, v]) => typeof v === 'number').map(([k, v]) => `${k}=${v}`).join(', ');
    // An adaptive look's CI is at its own level; verdict.ts words its reasons for 95%.
    const reason = inServiceWords(p.verdict.reason).replace(/95% CI/g, `${p.alpha === undefined ? '95%' : levelText(p.alpha)} CI`);
    L.push(`| ${cniEntry(p.cni).reportName} | ${p.dataPlane} | ${runsText(p)} | **${p.verdict.complexity}** | ${perService(p)} | ${esc(reason)} | ${p.installMsAtMax === null ? '–' : `${(p.installMsAtMax / 1000).toFixed(1)} s`} | ${esc(state)} |`);
  }
  L.push('');
  L.push('The verdict is the policy curves\' rule (see "How the verdicts are decided") with the Service count in place of the policy count, and its bound B: 10% of the data plane\'s own connect p50 at the smallest Service count (at least 1 µs) over the measured range.');
  if (planes.some((p) => p.alpha !== undefined)) L.push("An adaptive sweep gave a data plane more runs until its verdict was decided (or it reached the maximum); its fit is the look's: CIs at the level that look spent, each run's connect p50 adjusted to the machine's reference measured in the same run (θ in the verdict's reason; see the uncertainty note); the per-count values are the runs' own.");
  const advice = servicesAdvice(planes);
  if (advice.length) {
    L.push('');
    for (const a of advice) L.push(`- ${a}`);
  }
  L.push('');
  return L;
}

// ---- bench enforce --services: time to program a Service change, per data plane and Service count ----

/** The Service changes' metrics in run results (src/enforce/as-run.ts), in the order they run. */
const SERVICE_CHANGE_METRICS = [
  ['enforce_endpoint_removed', 'endpoint removed'],
  ['blackhole_endpoint_removed', 'blackhole window'],
  ['enforce_endpoint_added', 'endpoint added'],
  ['enforce_service_added', 'Service added'],
] as const;

export interface ServiceChangeRow {
  cni: CniName;
  dataPlane: string;
  lookup: string;
  services: number;
  policies: number;
  /** p50 over every repetition of the runs at this point, ms; null where not measured. */
  p50Ms: Record<(typeof SERVICE_CHANGE_METRICS)[number][0], number | null>;
  /** Repetitions, and those whose change was never seen within the deadline. */
  repetitions: number;
  notSeen: number;
  /** The worst flip bracket of these runs, ms: the resolution the times can claim. */
  resolutionMs: number | null;
}

/** Enforce runs with Service changes, one row per CNI, service data plane, Service count and policy count. */
export function analyzeServiceChanges(ok: readonly { result: RunResult }[]): ServiceChangeRow[] {
  const groups = new Map<string, RunResult[]>();
  for (const { result: r } of ok) {
    if (!r.services || !SERVICE_CHANGE_METRICS.some(([m]) => r.metrics[m])) continue;
    const k = `${r.meta.cni}|${r.services.dataPlane}|${r.services.count}|${r.meta.policy.count}`;
    groups.set(k, [...(groups.get(k) ?? []), r]);
  }
  const rows: ServiceChangeRow[] = [];
  for (const runs of groups.values()) {
    const r0 = runs[0]!;
    const p50Ms = Object.fromEntries(
      SERVICE_CHANGE_METRICS.map(([m]) => {
        const ns = runs.flatMap((r) => r.metrics[m]?.samplesNs ?? []);
        return [m, ns.length ? sortedCopy(ns)[Math.floor((ns.length - 1) / 2)]! / 1e6 : null];
      }),
    ) as ServiceChangeRow['p50Ms'];
    const res = runs.map((r) => r.modelState.enforceResolutionMs).filter((x): x is number => typeof x === 'number');
    const times = SERVICE_CHANGE_METRICS.filter(([m]) => m.startsWith('enforce_')).map(([m]) => m);
    rows.push({
      cni: r0.meta.cni,
      dataPlane: r0.services!.dataPlane,
      lookup: r0.services!.lookup,
      services: r0.services!.count,
      policies: r0.meta.policy.count,
      p50Ms,
      repetitions: runs.reduce((n, r) => n + (r.metrics.enforce_endpoint_removed?.samplesNs.length ?? 0) + (r.metrics.enforce_endpoint_removed?.errors.NOT_ENFORCED ?? 0), 0),
      notSeen: runs.reduce((n, r) => n + times.reduce((k, m) => k + (r.metrics[m]?.errors.NOT_ENFORCED ?? 0), 0), 0),
      resolutionMs: res.length ? Math.max(...res) : null,
    });
  }
  const order = (c: CniName) => CNIS_IN_REPORT_ORDER.indexOf(c);
  return rows.sort((a, b) => order(a.cni) - order(b.cni) || a.dataPlane.localeCompare(b.dataPlane) || a.services - b.services || a.policies - b.policies);
}

/** A time in ms, or "below resolution" where the resolution is coarser than a tenth of it. */
function msText(v: number | null, resolutionMs: number | null): string {
  if (v === null) return '–';
  if (resolutionMs !== null && resolutionMs > v / 10) return v === 0 ? '0' : `below resolution (±${resolutionMs.toFixed(1)} ms)`;
  return v >= 100 ? v.toFixed(0) : v.toFixed(1);
}

export function renderServiceChangesSection(rows: readonly ServiceChangeRow[]): string[] {
  if (rows.length === 0) return [];
  const L: string[] = ['## Time to program a Service change', ''];
  L.push(
    "`bench enforce --services`: from handing the change to the service data plane's agent to the first of the settled probes to the ClusterIP with the new verdict, p50 over repetitions (ms). The blackhole window is how long connections still reached an endpoint after its removal was handed over. Resolution: the worst bracket between two probe starts of these runs; a time within ten resolutions of zero is not printed as a number.",
  );
  L.push('');
  const head = ['CNI', 'service data plane', 'lookup', 'Services', 'policies', ...SERVICE_CHANGE_METRICS.map(([, l]) => `${l} (ms)`), 'resolution', 'not seen'];
  L.push(`| ${head.join(' | ')} |`, `| ${head.map((_, i) => (i >= 3 ? '---:' : '---')).join(' | ')} |`);
  for (const r of rows) {
    const cells = SERVICE_CHANGE_METRICS.map(([m]) => msText(r.p50Ms[m], r.resolutionMs));
    L.push(`| ${cniEntry(r.cni).reportName} | ${r.dataPlane} | ${r.lookup} | ${r.services} | ${r.policies} | ${cells.join(' | ')} | ${r.resolutionMs === null ? '–' : `${r.resolutionMs.toFixed(1)} ms`} | ${r.notSeen} |`);
  }
  L.push('');
  return L;
}
