// A workload sweep's verify runs: once every measurement point has run, each data plane's replay of the workload
// is probed flow by flow (bench verify --workload, the same code) and what it observed is stored as
// <sweep>/verify-<cni>.json, so the report can say how many flows mean something else there than the spec says.
// Verdicts do not vary run to run the way latencies do: one verify run per data plane, not per repetition. Resume
// runs the ones not yet ok, like points.
import { setMaxListeners } from 'node:events';
import { join } from 'node:path';
import type { CniName, RunConfig } from '../config/schema.js';
import type { Progress } from '../backends/types.js';
import { errorRecord } from '../results/schema.js';
import { writeFileAtomic } from '../results/io.js';
import { MAX_LISTED_FLOWS, WORKLOAD_VERIFY_KIND, WORKLOAD_VERIFY_VERSION, verifyFileName, type WorkloadVerifyRecord } from '../results/workload-verify.js';
import type { WorkloadPlaneResult } from '../verify/workload.js';
import type { Finding } from '../workload/findings.js';
import { pointConfig, verifiesToRun, writeManifest, type SweepManifest } from './manifest.js';

export interface VerifyArgs {
  cni: CniName;
  config: RunConfig;
  runId: string;
  sweepId: string;
  signal?: AbortSignal;
  progress: Progress;
}
/** Verifies the workload on one data plane; the default replays it on the local backend. Tests pass their own. */
export type VerifyRunner = (args: VerifyArgs) => Promise<WorkloadVerifyRecord>;

/** Progress that also hears about verify runs (the sweep's printer writes a line for each). */
export interface VerifyProgress extends Progress {
  verifyStarted?(cni: CniName, runId: string): void;
  verifyFinished?(cni: CniName, outcome: string): void;
}

/** Runs the verify runs still to do, one data plane after the other; a failed one is recorded and the rest go on. */
export async function runVerifySteps(o: { dir: string; manifest: SweepManifest; runVerify: VerifyRunner; newRunId: () => string; signal?: AbortSignal; progress: VerifyProgress; retryFailed?: boolean }): Promise<void> {
  const m = o.manifest;
  for (const step of verifiesToRun(m, o.dir, { retryFailed: o.retryFailed })) {
    if (o.signal?.aborted) return;
    const runId = o.newRunId();
    Object.assign(step, { status: 'running', runId, resultPath: null, wallMs: null, error: null });
    writeManifest(o.dir, m);
    o.progress.verifyStarted?.(step.cni, runId);
    const t0 = performance.now();
    try {
      const record = await o.runVerify({ cni: step.cni, config: pointConfig(m, { cni: step.cni, policies: m.matrix.policies[0] ?? 0 }, o.dir), runId, sweepId: m.id, signal: o.signal, progress: o.progress });
      writeFileAtomic(join(o.dir, verifyFileName(step.cni)), `${JSON.stringify(record, null, 2)}\n`);
      Object.assign(step, { status: 'ok', resultPath: verifyFileName(step.cni) });
      o.progress.verifyFinished?.(step.cni, `ok      ${record.differFromSpec} of ${record.probed} flows differ from the spec; ${record.verdict.text}`);
    } catch (e) {
      Object.assign(step, { status: o.signal?.aborted ? 'interrupted' : 'failed', error: errorRecord('verify', e) });
      o.progress.verifyFinished?.(step.cni, `${step.status.toUpperCase()}  ${step.error!.message.split('\n')[0]}`);
    }
    step.wallMs = performance.now() - t0;
    writeManifest(o.dir, m);
  }
}

/** The real verify run: the workload's probe flows on the local backend, compared with the documented semantics. */
export const localVerifyRunner: VerifyRunner = async ({ cni, config, runId, sweepId, signal, progress }) => {
  const [{ loadWorkload }, { replayProbeFlows, replayWorkload }, { DEFAULT_PROBE_FLOW_LIMIT }, { createBackend, backendDescriptor }, { ExecRunner }, { verifyWorkloadOn }, { findPolicyProblems }] = await Promise.all([
    import('../workload/load.js'),
    import('../workload/replay.js'),
    import('../workload/flows.js'),
    import('../backends/factory.js'),
    import('../exec/runner.js'),
    import('../verify/workload.js'),
    import('../workload/findings.js'),
  ]);
  const file = config.workload!;
  const cluster = loadWorkload(file);
  const sample = replayProbeFlows(cluster, { max: DEFAULT_PROBE_FLOW_LIMIT, seed: config.seed });
  const flows = sample.flows.filter((f) => f.protocol !== 'SCTP');
  const flowChoice = sample.sampled
    ? `${flows.length} flows, a seeded sample (seed ${config.seed}) of ${sample.total} pod pairs × declared ports`
    : `every pod pair on every port the destination declares: ${flows.length} flows`;
  const defaults = backendDescriptor('local')!.verify;
  // Every probe in flight listens on the signal (as bench verify --workload allows for).
  if (signal) setMaxListeners(defaults.parallelism * 2 + 16, signal);
  const plane = await createBackend({ config: { ...config, cni }, backend: 'local', runId, shape: 'cluster', runner: new ExecRunner(signal), cleanupRunner: new ExecRunner(), signal, progress, outDir: join(config.out, `verify-${cni}`) });
  const r = await verifyWorkloadOn({ plane, cluster, workload: plane.fit(replayWorkload(cluster, flows)), parallelism: defaults.parallelism, retries: 2, timeoutMs: defaults.timeoutMs, signal, progress });
  return verifyRecord({ cni, runId, sweepId, file, cluster, flowChoice, result: r, findings: findPolicyProblems(cluster, { cnis: [cni] }) });
};

/**
 * The record of one verify run: counts, the differing flows (at most MAX_LISTED_FLOWS) and the policy set's
 * findings without 'not-enforced' (one per policy where nothing is enforced: the verdict says it once).
 */
export function verifyRecord(o: { cni: CniName; runId: string; sweepId: string; file: string; cluster: { name: string }; flowChoice: string; result: WorkloadPlaneResult; findings: readonly Finding[] }): WorkloadVerifyRecord {
  const r = o.result;
  // Flows not even as documented first: on a data plane without policy the spec-differing flows are thousands, and
  // the few that break its own semantics are what the cut at MAX_LISTED_FLOWS must keep.
  const listed = [...r.probes.filter((p) => p.observed !== p.expected), ...r.probes.filter((p) => p.observed === p.expected && p.observed !== p.spec)];
  return {
    kind: WORKLOAD_VERIFY_KIND,
    schemaVersion: WORKLOAD_VERIFY_VERSION,
    sweepId: o.sweepId,
    runId: o.runId,
    cni: o.cni,
    backend: r.backend,
    model: { name: r.model.name, enforcesPolicy: r.model.enforcesPolicy },
    workload: { name: o.cluster.name, file: o.file },
    flowChoice: o.flowChoice,
    verdict: r.verdict,
    probed: r.probes.length,
    differFromSpec: r.probes.filter((p) => p.observed !== p.spec).length,
    documented: r.probes.filter((p) => p.observed !== p.spec && p.observed === p.expected).length,
    mismatches: r.mismatches.length,
    flows: listed.slice(0, MAX_LISTED_FLOWS).map((p) => ({ from: p.from, to: p.to, port: p.port, protocol: p.protocol, spec: p.spec, expected: p.expected, observed: p.observed })),
    findings: o.findings.filter((f) => f.kind !== 'not-enforced'),
    finishedAt: new Date().toISOString(),
    timings: r.timings,
  };
}
