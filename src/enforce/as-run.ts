// An enforce result as the report and compare read every run: a run result whose metrics are the enforcement
// times and fail-open windows (one sample per change repetition, ns) — stored like the latency metrics, so the
// report's analysis (per-run points, fits against N) and `bench compare` use them. Pure.
import type { RunConfig } from '../config/schema.js';
import { ENFORCE_CHANGES as CHANGES, type EnforceChange as ChangeKind } from '../config/schema.js';
import { summarize } from '../stats/summary.js';
import { RESULT_KIND, RESULT_SCHEMA_VERSION, type EnforceMetricName, type MetricResult, type RunResult } from '../results/schema.js';
import type { EnforceResult } from './result.js';

export const ENFORCE_METRIC_OF: Record<ChangeKind, EnforceMetricName> = {
  'allow-added': 'enforce_allow_added',
  'allow-removed': 'enforce_allow_removed',
  'new-pod': 'enforce_new_pod',
  'peer-joins': 'enforce_peer_joins',
  'endpoint-removed': 'enforce_endpoint_removed',
  'endpoint-added': 'enforce_endpoint_added',
  'service-added': 'enforce_service_added',
};

/** The window each change measures, stored beside its time (one sample per repetition, 0 when nothing passed). */
const WINDOW_METRIC_OF: Partial<Record<ChangeKind, EnforceMetricName>> = {
  'allow-removed': 'failopen_allow_removed',
  'new-pod': 'failopen_new_pod',
  'endpoint-removed': 'blackhole_endpoint_removed',
};

function metric(samplesMs: number[], notSeen: number, seed: number): MetricResult {
  const samplesNs = samplesMs.map((ms) => Math.round(ms * 1e6));
  return { samplesNs, errors: notSeen ? { NOT_ENFORCED: notSeen } : {}, summary: summarize(samplesNs, { seed }) as MetricResult['summary'], wallNs: 0, cpu: null };
}

/** The sweep's view of an enforce point: a run result with enforcement metrics and no latency metrics. */
export function enforceRunResult(e: EnforceResult, opts: { config?: Pick<RunConfig, 'seed' | 'pinCpu'>; sweep?: { id: string; repetition: number }; scenarioPath?: string } = {}): RunResult {
  const seed = opts.config?.seed ?? e.meta.policy.seed;
  const metrics: RunResult['metrics'] = { connect: null, crr: null, rr: null };
  for (const kind of CHANGES) {
    const obs = e.observations.filter((o) => o.change === kind);
    if (!obs.length) continue;
    const seen = obs.map((o) => o.enforcedMs).filter((x): x is number => x !== null);
    metrics[ENFORCE_METRIC_OF[kind]] = metric(seen, obs.length - seen.length, seed);
    const window = WINDOW_METRIC_OF[kind];
    if (window) metrics[window] = metric(obs.map((o) => o.failOpen?.windowMs ?? 0), 0, seed);
  }
  const agentMs = e.observations.map((o) => o.agent.agentMs);
  const brackets = e.observations.map((o) => o.bracketMs).filter((x): x is number => x !== null);
  return {
    schemaVersion: RESULT_SCHEMA_VERSION,
    kind: RESULT_KIND,
    runId: e.runId,
    status: e.status === 'failed' ? 'failed' : 'ok',
    meta: {
      startedAt: e.meta.startedAt,
      finishedAt: e.meta.finishedAt,
      tool: e.meta.tool,
      machine: e.meta.machine,
      backend: e.meta.backend,
      cni: e.meta.cni,
      model: e.meta.model,
      policy: { count: e.meta.policy.count, matchPosition: e.meta.policy.matchPosition, seed: e.meta.policy.seed, shape: 'enforce' },
      topology: { nodes: 2, placement: 'cross-node', serverPods: 1 },
      probe: { tool: e.meta.probe.tool, samples: e.meta.repetitions, warmup: 0, concurrency: 1, timeoutMs: e.meta.probe.timeoutMs, pinCpu: typeof opts.config?.pinCpu === 'number' ? opts.config.pinCpu : null },
      scenario: opts.scenarioPath ?? null,
      sweepId: opts.sweep?.id ?? e.meta.sweepId ?? null,
      repetition: opts.sweep?.repetition ?? null,
      ...(e.meta.concurrentRuns ? { concurrentRuns: e.meta.concurrentRuns } : {}),
    },
    policiesEnforced: e.meta.model.enforcesPolicy,
    modelState: {
      ...e.modelState,
      enforceResult: 'enforce-result.json',
      ...(agentMs.length ? { agentMsP50: Math.round(summarize(agentMs).p50 * 100) / 100 } : {}),
      // The worst bracket of any flip: the resolution every enforcement time of this run can claim.
      ...(brackets.length ? { enforceResolutionMs: Math.round(Math.max(...brackets) * 100) / 100 } : {}),
      ...(e.notEnforced ? { notEnforced: e.notEnforced.reason } : {}),
    },
    timings: { setupMs: null, policyInstallMs: e.installMs, measureMs: null, teardownMs: null, totalMs: e.totalMs },
    metrics,
    ...(e.services ? { services: e.services } : {}),
    errors: e.errors,
  };
}
