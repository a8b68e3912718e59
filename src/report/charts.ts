// Charts as data (vega-lite specs built by pure functions) and their SVG, rendered in Node by vega's headless
// view — no browser, no canvas. x is the policy count on a symlog axis (log-like, but 0 policies has a place).
import { cniEntry } from '../config/cnis.js';
import type { CniName } from '../config/schema.js';
import { resolutionText } from '../results/cpu.js';
import { TAIL_METRICS, tailCounts } from './tail-resolution.js';
import { ANALYSIS_METRICS, countBands, type Analysis, type MetricId } from './analyze.js';

export interface ChartRow {
  cni: CniName;
  policies: number;
  /** µs */
  value: number;
  low: number;
  high: number;
  repetitions: number;
  /** CPU and tail-percentile charts: the coarsest run's resolution at this point, µs (per operation for CPU). */
  resolution?: number;
}

export interface ChartSpec {
  id: MetricId;
  title: string;
  subtitle: string;
  rows: ChartRow[];
  spec: Record<string, unknown>;
}

const TITLES: Record<MetricId, [string, string]> = {
  connect_p50: ['New-connection latency, p50', 'mean of the runs’ percentiles; band: 95% CI over runs (hierarchical bootstrap)'],
  connect_p99: ['New-connection latency, p99', 'mean of the runs’ percentiles; band: 95% CI over runs (hierarchical bootstrap); a count whose runs’ own p99 CIs are wider than ±10% is below resolution, left out'],
  crr_p50: ['Connect + request + response + close (CRR), p50', 'mean of the runs’ percentiles; band: 95% CI over runs (hierarchical bootstrap)'],
  rr_p50: ['Request/response on an established connection (RR), p50', 'should stay flat: conntrack accepts established traffic before any policy'],
  cpu_per_conn: ['CPU per new connection', 'probe client, echo server and softirq on the pinned CPU (read against the none floor); runs below resolution left out; band: 95% t interval over runs'],
  enforce_allow_added_p50: ['Time to enforcement: allow added, p50', 'from the change handed to the agent to the first probe that connects (1 ms probe cadence)'],
  enforce_allow_removed_p50: ['Time to enforcement: allow removed, p50', 'from the change to the first probe that is dropped'],
  enforce_new_pod_p50: ['Time to enforcement: new pod under existing policy, p50', "from the pod's CNI ADD to its first allowed connection (fail-closed window)"],
  enforce_peer_joins_p50: ['Time to enforcement: peer joins a selector, p50', 'from the label change to the first allowed connection'],
  failopen_allow_removed_p50: ['Fail-open window: allow removed, p50', 'denied traffic still passing after the change was handed over'],
  failopen_new_pod_p50: ['Fail-open window: new pod, p50', 'a denied peer reaching the new pod (0: never)'],
};

export function chartRows(a: Analysis, id: MetricId): ChartRow[] {
  // A CPU point carries its resolution (issue 20); points below it never reach the chart (analyze.ts). So does a
  // tail percentile's, and one below it is left out here (tail-resolution.ts).
  return a.cnis.flatMap((c) => {
    const tail = new Map(tailCounts(id, c.metrics[id]).map((t) => [t.policies, t]));
    const resolution = (policies: number) => (id === 'cpu_per_conn' ? a.cpu.rows.find((r) => r.cni === c.cni && r.policies === policies)?.resolutionUs : tail.get(policies)?.resolutionNs ?? undefined);
    return countBands(c.metrics[id].counts)
      .filter((m) => !tail.get(m.x)?.coarse)
      .map((m) => {
        const res = resolution(m.x);
        return { cni: c.cni, policies: m.x, value: m.median / 1000, low: m.low / 1000, high: m.high / 1000, repetitions: m.n, ...(res === undefined ? {} : { resolution: id === 'cpu_per_conn' ? res : res / 1000 }) };
      });
  });
}

/** The CPU chart's subtitle states the coarsest resolution of its points. */
function withResolution(subtitle: string, rows: ChartRow[]): string {
  const res = Math.max(...rows.map((r) => r.resolution ?? Number.NaN).filter(Number.isFinite));
  return Number.isFinite(res) ? `${subtitle}; resolution ${resolutionText(res)} µs or finer` : subtitle;
}

export function chartSpec(a: Analysis, id: MetricId): ChartSpec {
  const rows = chartRows(a, id);
  const [title, plainSubtitle] = TITLES[id];
  const subtitle = id === 'cpu_per_conn' ? withResolution(plainSubtitle, rows) : plainSubtitle;
  const metric = ANALYSIS_METRICS.find((m) => m.id === id)!;
  const cnis = a.cnis.map((c) => c.cni);
  const x = {
    field: 'policies',
    type: 'quantitative',
    title: 'NetworkPolicies selecting the server pod (symlog scale)',
    scale: { type: 'symlog', constant: 10 },
    axis: { values: a.policyCounts, labelAngle: a.policyCounts.length > 6 ? -30 : 0 },
  };
  const color = { field: 'cni', type: 'nominal', title: 'CNI', scale: { domain: cnis, range: cnis.map((c) => cniEntry(c).chartColor) } };
  // A curve 100× above the others would flatten them into the axis: switch to a log y axis when the range is wide.
  const positive = rows.flatMap((r) => [r.low, r.value]).filter((v) => v > 0);
  const logY = id !== 'cpu_per_conn' && positive.length > 0 && Math.max(...positive) / Math.min(...positive) > 20;
  const yTitle = id === 'cpu_per_conn' ? 'µs of CPU per connection' : logY ? 'µs (log scale)' : 'µs';
  const yScale = logY ? { scale: { type: 'log' } } : {};
  return {
    id,
    title,
    subtitle,
    rows,
    spec: {
      $schema: 'https://vega.github.io/schema/vega-lite/v6.json',
      title: { text: title, subtitle: `${subtitle} — ${metric.unit}`, anchor: 'start' },
      width: 620,
      height: 300,
      data: { values: rows },
      encoding: { x, color },
      layer: [
        { mark: { type: 'area', opacity: 0.18 }, encoding: { y: { field: 'low', type: 'quantitative', title: yTitle, ...yScale }, y2: { field: 'high' } } },
        { mark: { type: 'line', strokeWidth: 2 }, encoding: { y: { field: 'value', type: 'quantitative', title: yTitle, ...yScale } } },
        {
          mark: { type: 'point', filled: true, size: 50 },
          encoding: {
            y: { field: 'value', type: 'quantitative', title: yTitle, ...yScale },
            tooltip: [
              { field: 'cni', title: 'CNI' },
              { field: 'policies', title: 'policies' },
              { field: 'value', title: 'µs', format: '.1f' },
              { field: 'low', title: 'low', format: '.1f' },
              { field: 'high', title: 'high', format: '.1f' },
              { field: 'repetitions', title: 'repetitions' },
              ...(id === 'cpu_per_conn' || TAIL_METRICS.has(id) ? [{ field: 'resolution', title: 'resolution ± µs', format: '.2f' }] : []),
            ],
          },
        },
      ],
      config: { font: 'system-ui, sans-serif', view: { stroke: '#ddd' }, legend: { symbolOpacity: 1 } },
    },
  };
}

export function chartSpecs(a: Analysis): ChartSpec[] {
  // The charts are curves against the policy count: a workload sweep has one policy set, nothing to draw.
  if (!a.policyCurves) return [];
  return ANALYSIS_METRICS.map((m) => chartSpec(a, m.id)).filter((c) => c.rows.length > 0);
}

/** Renders a vega-lite spec to a standalone SVG string. */
export async function renderSvg(spec: Record<string, unknown>): Promise<string> {
  const [vega, vl] = await Promise.all([import('vega'), import('vega-lite')]);
  const compiled = vl.compile(spec as unknown as Parameters<typeof vl.compile>[0]).spec;
  const view = new vega.View(vega.parse(compiled), { renderer: 'none' });
  try {
    return await view.toSVG();
  } finally {
    view.finalize();
  }
}
