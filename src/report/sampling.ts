// Points whose metrics a sample budget stopped early (issue 25): the report says where the sample count differs
// from the probe's planned samples, per data plane, policy count and metric, so a reader can weigh their tails.
import type { LoadedResult } from './collect.js';
import { METRICS } from '../results/schema.js';
import { MIN_BUDGET_SAMPLES } from '../config/schema.js';

export interface BudgetedPoint {
  cni: string;
  policies: number;
  metric: string;
  planned: number;
  /** Fewest and most samples over the point's runs. */
  samples: [number, number];
  runs: number;
}

/** Every (data plane, policy count, metric) where a budget took fewer samples than planned, in run order. */
export function budgetedPoints(loaded: readonly LoadedResult[]): BudgetedPoint[] {
  const by = new Map<string, BudgetedPoint>();
  for (const { result: r } of loaded) {
    for (const metric of METRICS) {
      const m = r.metrics[metric];
      if (!m?.sampling) continue;
      const key = `${r.meta.cni}\0${r.meta.policy.count}\0${metric}`;
      const n = m.summary.count;
      const e = by.get(key);
      if (e) {
        e.samples = [Math.min(e.samples[0], n), Math.max(e.samples[1], n)];
        e.runs++;
      } else by.set(key, { cni: r.meta.cni, policies: r.meta.policy.count, metric, planned: m.sampling.planned, samples: [n, n], runs: 1 });
    }
  }
  return [...by.values()].sort((a, b) => a.cni.localeCompare(b.cni) || a.policies - b.policies || a.metric.localeCompare(b.metric));
}

/** The report's sentence about them (empty: no budget stopped any metric). */
export function budgetedText(points: readonly BudgetedPoint[], budgetMs: readonly number[]): string {
  if (!points.length) return '';
  const range = (p: BudgetedPoint) => (p.samples[0] === p.samples[1] ? `${p.samples[0]}` : `${p.samples[0]}–${p.samples[1]}`);
  return `Sample budget: a metric stopped sampling after ${budgetMs.join(' or ')} ms of measuring, never below ${MIN_BUDGET_SAMPLES} samples (a p50 settles long before; a tail from a few hundred samples is coarse, and its CI says so). Fewer samples than planned: ${points.map((p) => `${p.cni} ${p.policies} ${p.metric} ${range(p)}`).join(', ')}.`;
}
