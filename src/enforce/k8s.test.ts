// bench enforce on kind/cluster at its boundary: the clock fix, the metric parser, the streamed watch fed recorded
// cb-probe output, and the whole run against a scripted cluster whose `kubectl exec -i … cb-probe watch` is a fake
// stream simulating a data plane that enforces each change a known time after kubectl was run.
import { readFileSync } from 'node:fs';
import { ClusterRole } from 'kubernetes-models/rbac.authorization.k8s.io/v1/ClusterRole';
import { parseAllDocuments } from 'yaml';
import { describe, expect, it } from 'vitest';
import { fakeCluster } from '../backends/k8s/test-support/cluster.js';
import { restrictedProblems } from '../backends/k8s/manifests.js';
import { validateManifests } from '../backends/k8s/validate.js';
import { runConfigSchema } from '../config/schema.js';
import type { CommandSpec } from '../exec/runner.js';
import { ClockError, fixClock } from '../backends/k8s/clock.js';
import { metricDelta, parseSumCount } from '../backends/k8s/agent-metrics.js';
import { startK8sWatch, type StreamChild, type Streamer } from '../backends/k8s/watch.js';
import { renderNewServerPod, renderProbePod } from '../backends/k8s/changes.js';
import { createBackend } from '../backends/factory.js';
import { enforceResultSchema } from './result.js';
import { formatEnforceSummary } from './format.js';
import { executeEnforce, type EnforceConfig } from './run.js';
import { enforcePolicies } from './plan.js';
import { runNames } from '../backends/k8s/manifests.js';
import { loadVersions } from '../backends/k8s/versions.js';
import { tempDir } from '../test-support/temp.js';

const ms = (x: number) => BigInt(Math.round(x * 1e6));

describe('fixClock', () => {
  it('kind: marks stamped inside their write..echo windows mean one clock, bound 0', () => {
    const f = fixClock([{ writeNs: 100n, markNs: 150n, echoNs: 300n }, { writeNs: 1000n, markNs: 1010n, echoNs: 1040n }], true);
    expect(f).toMatchObject({ method: 'shared', offsetNs: 0, boundNs: 0, rttNs: 40, samples: 2 });
  });
  it('kind with a mark outside its window: the clocks are not shared, the offset is estimated', () => {
    const f = fixClock([{ writeNs: 100n, markNs: 5_000n, echoNs: 300n }], true);
    expect(f.method).toBe('offset');
    expect(f.offsetNs).toBe(4_800);
    expect(f.note).toMatch(/not shared/);
  });
  it('cluster: offset from the shortest round trip, within ±half of it', () => {
    const D = 7_000_000_000n;
    const f = fixClock(
      [
        { writeNs: 0n, markNs: D + 9_000_000n, echoNs: 10_000_000n }, // 10 ms round trip
        { writeNs: 50_000_000n, markNs: D + 51_000_000n, echoNs: 52_000_000n }, // 2 ms: the one used
      ],
      false,
    );
    expect(f.method).toBe('offset');
    expect(f.rttNs).toBe(2_000_000);
    expect(f.boundNs).toBe(1_000_000);
    expect(Math.abs(f.offsetNs - Number(D))).toBeLessThanOrEqual(f.boundNs);
  });
  it('no sample: refused, not guessed', () => {
    expect(() => fixClock([], false)).toThrow(ClockError);
  });
});

describe('CNI metrics', () => {
  const cilium = (count: number, sum: number) =>
    [
      '# HELP cilium_policy_implementation_delay Time between a policy change and it being fully deployed into the datapath',
      '# TYPE cilium_policy_implementation_delay histogram',
      `cilium_policy_implementation_delay_bucket{source="k8s",le="0.005"} ${count}`,
      `cilium_policy_implementation_delay_bucket{source="k8s",le="+Inf"} ${count}`,
      `cilium_policy_implementation_delay_sum{source="k8s"} ${sum}`,
      `cilium_policy_implementation_delay_count{source="k8s"} ${count}`,
      'cilium_policy_implementation_delay_sum{source="api"} 0',
      'cilium_policy_implementation_delay_count{source="api"} 0',
      'cilium_policy_change_total{outcome="success"} 9',
    ].join('\n');
  it('adds _sum and _count over label sets and ignores the buckets and other families', () => {
    expect(parseSumCount(cilium(3, 0.0125), 'cilium_policy_implementation_delay')).toEqual({ sum: 0.0125, count: 3 });
  });
  it("reads Felix's summary the same way; absent family is null", () => {
    const felix = 'felix_int_dataplane_apply_time_seconds{quantile="0.5"} 0.004\nfelix_int_dataplane_apply_time_seconds_sum 1.5\nfelix_int_dataplane_apply_time_seconds_count 120\n';
    expect(parseSumCount(felix, 'felix_int_dataplane_apply_time_seconds')).toEqual({ sum: 1.5, count: 120 });
    expect(parseSumCount('up 1\n', 'felix_int_dataplane_apply_time_seconds')).toBeNull();
  });
  it('the delta over a change: count, total and mean in ms', () => {
    expect(metricDelta('m', 'kube-system/cilium-x', { sum: 1, count: 10 }, { sum: 1.024, count: 12 }, 180)).toEqual({ metric: 'm', pod: 'kube-system/cilium-x', countDelta: 2, sumDeltaMs: 24, meanMs: 12, scrapedAfterMs: 180 });
  });
});

describe('RBAC for enforce on a cluster', () => {
  const roles = (f: string) => parseAllDocuments(readFileSync(new URL(`../../clusters/${f}`, import.meta.url), 'utf8')).map((d) => d.toJSON() as { metadata: { name: string }; rules: Array<{ resources: string[]; verbs: string[] }> });
  it('the base role may label pods (peer-joins); the optional metrics role is pods/proxy get and nothing else', () => {
    const base = roles('rbac-cluster-backend.yaml')[0]!;
    expect(base.rules.find((r) => r.resources.includes('pods'))!.verbs).toContain('patch');
    const metrics = roles('rbac-enforce-cni-metrics.yaml');
    for (const d of metrics) expect(() => new ClusterRole(d as never).validate()).not.toThrow();
    expect(metrics.map((d) => d.metadata.name)).toEqual(['cni-bench-cni-metrics']);
    expect(metrics[0]!.rules).toEqual([{ apiGroups: [''], resources: ['pods/proxy'], verbs: ['get'] }]);
  });
});

describe('manifests', () => {
  it('probe pods and the new server pod pass the schemas and the restricted profile', () => {
    const n = runNames('abcde');
    const v = loadVersions();
    const pods = [renderProbePod(n, 'bench-intruder', { app: 'bench-intruder' }, 'w1', v), renderNewServerPod(n, 'bench-new-0', 'w2', v)];
    expect(() => validateManifests(pods)).not.toThrow();
    for (const p of pods) expect(restrictedProblems((p as { spec: Record<string, unknown> }).spec)).toEqual([]);
  });
  it("every policy of the plan's sets has its counterpart in the run's namespaces", () => {
    for (const policies of [0, 5]) {
      const n = runNames('abcde');
      const sets = enforcePolicies({ policies, matchPosition: 'last', seed: 1 }, { namespaces: { server: n.serverNamespace, client: n.clientNamespace }, runLabel: n.runLabel });
      for (const p of sets.open.policies) expect(p.metadata.namespace).toBe('cb-abcde-server');
    }
  });
});

// ---- a simulated cluster: the fake runner records when each change was run, the fake stream probes against it.

interface Sim {
  events: Array<{ at: bigint; what: string }>;
}

const DELAY_MS = 40;
const PROBED_IP = '10.96.0.10';
const ADDED_IP = '10.96.0.11';
const POD_CLOCK_OFFSET = 5_000_000_000n; // the node's CLOCK_MONOTONIC is 5 s ahead of this machine's

function simulatedStreamer(sim: Sim, o: { offset: bigint; echoMs?: number; dieAfterMs?: number; neverStarts?: boolean; neverOpen?: boolean; intruderLeakMs?: number }): Streamer {
  return (spec: CommandSpec): StreamChild => {
    const a = spec.argv;
    const arg = (f: string) => a[a.indexOf(f) + 1]!;
    const pod = a[a.indexOf('-n') + 2]!;
    const target = arg('--target');
    const intervalNs = BigInt(arg('--interval-us')) * 1000n;
    const timeoutNs = BigInt(arg('--timeout-ms')) * 1_000_000n;
    const maxNs = BigInt(arg('--max-ms')) * 1_000_000n;
    const until = a.includes('--until') ? arg('--until') : null;
    const settle = a.includes('--settle') ? Number(arg('--settle')) : 5;
    const host = () => process.hrtime.bigint();
    const effective = (what: RegExp, at: bigint, delayMs = DELAY_MS) => {
      let on = false;
      for (const e of sim.events) if (e.at + ms(delayMs) <= at && what.test(e.what)) on = !e.what.startsWith('-');
      return on;
    };
    const verdict = (at: bigint): boolean => {
      if (o.neverOpen) return false;
      const allowed = effective(/^[+-]allow$/, at);
      if (target === '10.244.1.77') {
        // The new pod exists from its create until its delete: a second repetition's pod starts closed again.
        const created = effective(/^[+-]newpod$/, at, 2 * DELAY_MS);
        if (pod === 'bench-intruder') return o.intruderLeakMs !== undefined && effective(/^[+-]newpod$/, at, 0) && !effective(/^[+-]newpod$/, at, o.intruderLeakMs);
        return created && allowed;
      }
      // ClusterIPs (bench enforce --services): the probed Service answers while its slice lists the server, the added one once it exists.
      if (target === PROBED_IP) return effective(/^[+-]ep$/, at);
      if (target === ADDED_IP) return effective(/^[+-]added$/, at);
      if (pod === 'bench-joiner') return allowed && effective(/^[+-]joiner$/, at);
      return allowed;
    };
    let out: (s: string) => void = () => undefined;
    let resolveExit!: (r: { exitCode: number | null; signal: string | null; stderr: string }) => void;
    const exited = new Promise<{ exitCode: number | null; signal: string | null; stderr: string }>((r) => (resolveExit = r));
    const base = host();
    const starts: bigint[] = [];
    const results: string[] = [];
    let stopped = false;
    let finished = false;
    let marks = 0;
    let echoed = 0;
    let settledIndex = -1;
    const finish = () => {
      if (finished) return;
      finished = true;
      clearInterval(tick);
      const rel = (x: bigint) => Number(x - base);
      const json = { mode: 'watch', base_ns: String(base + o.offset), interval_ns: Number(intervalNs), timeout_ns: Number(timeoutNs), settled_index: settledIndex, realtime: false, start_ns: starts.map(rel), end_ns: starts.map((s, i) => rel(s) + (results[i] === 'open' ? 200_000 : Number(timeoutNs))), result: results, marks_ns: [] };
      out(`${JSON.stringify(json)}\n`);
      resolveExit({ exitCode: 0, signal: null, stderr: '' });
    };
    const tick = setInterval(() => {
      const now = host();
      if (o.dieAfterMs !== undefined && now - base > ms(o.dieAfterMs)) {
        clearInterval(tick);
        finished = true;
        resolveExit({ exitCode: 137, signal: null, stderr: 'command terminated with exit code 137' });
        return;
      }
      for (let t = starts.length ? starts[starts.length - 1]! + intervalNs : base; t <= now - timeoutNs && !stopped; t += intervalNs) {
        starts.push(t);
        results.push(verdict(t) ? 'open' : 'ETIMEDOUT');
        if (until && results.length >= settle && results.slice(-settle).every((r) => (r === 'open') === (until === 'open'))) (stopped = true), (settledIndex = results.length - settle);
        if (t - base >= maxNs) stopped = true;
      }
      // Ends once a mark was echoed: a loaded machine's timers must not race the calibration here (a watch that
      // settles before any echo has its own test below).
      if (stopped && echoed > 0) finish();
    }, 2);
    return {
      onStdout: (fn) => {
        out = fn;
        if (!o.neverStarts) setTimeout(() => fn(`watching ${base + o.offset}\n`), 1);
      },
      write: (text) => {
        for (const line of text.split('\n')) {
          if (line === 'mark') {
            const i = marks++;
            // The pod stamps the mark halfway between the write and the echo as they happened, not as the timer
            // was asked to fire: a loaded machine's late timer lengthens the round trip but moves no mark, so the
            // offset the plane estimates stays exact (the error bound is half the round trip either way).
            const written = host();
            setTimeout(() => {
              const echoedAt = host();
              out(`mark ${i} ${(written + echoedAt) / 2n - base}\n`);
              echoed++;
            }, o.echoMs ?? 1);
          } else if (line === 'stop') stopped = true;
        }
      },
      end: () => (stopped = true),
      kill: () => (clearInterval(tick), resolveExit({ exitCode: null, signal: 'SIGKILL', stderr: '' })),
      exited,
    };
  };
}

function simulatedCluster(sim: Sim, fail?: (purpose: string) => { exitCode: number; stderr: string } | undefined) {
  let changes = 0;
  return fakeCluster((argv, spec) => {
    const a = argv.join(' ');
    const f = fail?.(spec.purpose ?? '');
    if (f) return f;
    const at = process.hrtime.bigint();
    if (a.includes('apply --server-side') && spec.input?.includes('"allow-client"') && !spec.purpose?.startsWith('apply ')) (sim.events.push({ at, what: '+allow' }), changes++);
    if (a.includes('delete networkpolicy') && a.includes('np-')) (sim.events.push({ at, what: '-allow' }), changes++);
    if (a.includes(' label pod ')) sim.events.push({ at, what: a.includes('app=bench-client') ? '+joiner' : '-joiner' });
    if (spec.purpose?.startsWith('change: create the new server pod')) sim.events.push({ at, what: '+newpod' });
    if (a.includes(' delete pod ') && spec.purpose?.startsWith('remove ')) sim.events.push({ at, what: '-newpod' });
    if (a.includes('get pod -n cb-') && a.includes('jsonpath={.status.podIP}')) return { stdout: '10.244.1.77' };
    if (spec.purpose?.startsWith('apply Services and EndpointSlices (starting state)') && spec.input?.includes('"10.244.1.5"')) sim.events.push({ at, what: '+ep' });
    if (spec.purpose?.startsWith('change: apply bench-server (')) sim.events.push({ at, what: spec.input?.includes('"10.244.1.5"') ? '+ep' : '-ep' });
    if (spec.purpose?.startsWith('change: apply bench-server-added')) sim.events.push({ at, what: '+added' });
    if (a.includes('delete service/bench-server-added')) sim.events.push({ at, what: '-added' });
    if (a.includes('get service bench-server -o jsonpath={.spec.clusterIP}')) return { stdout: PROBED_IP };
    if (a.includes('get service bench-server-added -o jsonpath={.spec.clusterIP}')) return { stdout: ADDED_IP };
    if (a.includes('get pods -A -l k8s-app=cilium')) return { stdout: JSON.stringify({ items: [{ metadata: { namespace: 'kube-system', name: 'cilium-w1' } }] }) };
    if (a.includes('/proxy/metrics')) return { stdout: `cilium_policy_implementation_delay_sum{source="k8s"} ${changes * 0.012}\ncilium_policy_implementation_delay_count{source="k8s"} ${changes}\n` };
    return undefined;
  });
}

// deadlineMs: long enough that a loaded machine (timers slipping by seconds) still finishes the clock calibration
// inside the simulated watch; a settled watch ends long before it.
const CONFIG: EnforceConfig = { cni: 'cilium', policies: 3, repetitions: 2, changes: ['allow-added', 'allow-removed', 'new-pod', 'peer-joins'], matchPosition: 'last', seed: 1, intervalUs: 1000, probeTimeoutMs: 10, deadlineMs: 8000, settle: 5 };

// The run's directory (a failed step writes diagnostics/ there): one of this file's own, not a fixed path in /tmp that
// every run on the machine would share and leave behind.
const OUT = tempDir('cb-enf-k8s-');

/** The cluster backend's data plane for the enforce workload, as its descriptor builds it. */
function plane(runner: ReturnType<typeof fakeCluster>, streamer: Streamer, signal?: AbortSignal, serviceWaitMs?: number) {
  const config = runConfigSchema.parse({ cni: 'cilium', backend: 'cluster', policies: 3, context: 'ctx' });
  return createBackend({ config, backend: 'cluster', runId: 'abcde', shape: 'enforce', outDir: OUT, runner, cleanupRunner: runner, signal, probeIntervalMs: 0, enforce: { streamer, metricWaitMs: 300, metricPollMs: 10, podIpPollMs: 5, calibrationMarks: 3, serviceWaitMs } });
}

const cleanedUp = (runner: ReturnType<typeof fakeCluster>) => runner.log.some((c) => c.argv.join(' ').includes('delete namespace -l cni-bench/run=abcde'));

describe('K8sEnforcePlane through executeEnforce (scripted cluster, simulated watch streams)', () => {
  it('measures every change on one clock: enforcement ≈ the simulated delay, with the clock bound and the CNI figure', async () => {
    const sim: Sim = { events: [] };
    const runner = simulatedCluster(sim);
    const { result } = await executeEnforce({ runId: 'abcde', backend: 'cluster', config: CONFIG, plane: await plane(runner, simulatedStreamer(sim, { offset: POD_CLOCK_OFFSET, echoMs: 2 })) });
    expect(result.errors).toEqual([]);
    expect(result.status).toBe('ok');
    expect(() => enforceResultSchema.parse(JSON.parse(JSON.stringify(result)))).not.toThrow();
    expect(result.meta.probe.clock).toMatch(/stdin marks/);
    const added = result.observations.filter((o) => o.change === 'allow-added');
    expect(added).toHaveLength(2);
    for (const o of added) {
      expect(o.preconditionHeld).toBe(true);
      // The node's clock is 5 s ahead: without the fix this would be ~5000 ms or negative.
      expect(o.enforcedMs!).toBeGreaterThanOrEqual(DELAY_MS - 3);
      // Generous upper bound: timers slip on a loaded CI machine; the bug this guards against is off by 5000 ms.
      expect(o.enforcedMs!).toBeLessThan(DELAY_MS + 1500);
      expect(o.k8s!.clock!.method).toBe('offset');
      expect(o.k8s!.clock!.boundNs).toBeLessThan(1_000_000_000);
      expect(o.k8s!.command).toMatch(/apply --server-side/);
      expect(o.k8s!.cniMetric).toMatchObject({ metric: 'cilium_policy_implementation_delay', pod: 'kube-system/cilium-w1', countDelta: 1, sumDeltaMs: 12 });
    }
    const removed = result.observations.filter((o) => o.change === 'allow-removed');
    // The simulated agent keeps passing traffic for DELAY_MS after the delete: a fail-open window of about that.
    for (const o of removed) expect(o.failOpen!.windowMs).toBeGreaterThan(DELAY_MS - 5);
    const newPod = result.observations.filter((o) => o.change === 'new-pod');
    for (const o of newPod) {
      expect(o.target).toBe('10.244.1.77');
      expect(o.k8s!.watchStartedMs).not.toBeNull();
      expect(o.enforcedMs!).toBeGreaterThanOrEqual(2 * DELAY_MS - 3);
      expect(o.failOpen!.leaked).toBe(0);
    }
    expect(result.observations.filter((o) => o.change === 'peer-joins').every((o) => o.enforcedMs !== null)).toBe(true);
    const text = formatEnforceSummary(result, null);
    expect(text).toMatch(/API call \(kubectl\)/);
    expect(text).toMatch(/CNI's own figure +cilium_policy_implementation_delay: mean 12\.0 ms over 2 of 2 repetitions/);
    expect(text).toMatch(/probe times within ±\d+\.\d\d ms/);
    expect(cleanedUp(runner)).toBe(true);
  }, 60_000);

  it('a denied peer reaching the new pod before its policy is reported as fail-open', async () => {
    const sim: Sim = { events: [] };
    const runner = simulatedCluster(sim);
    const { result } = await executeEnforce({ runId: 'abcde', backend: 'cluster', config: { ...CONFIG, repetitions: 1, changes: ['new-pod'] }, plane: await plane(runner, simulatedStreamer(sim, { offset: 0n, intruderLeakMs: 10_000 })) });
    expect(result.status).toBe('ok');
    expect(result.summary[0]!.failOpenRepetitions).toBe(1);
  }, 60_000);

  it('the probe pod dies mid-watch: the run fails with the reason, everything created is removed', async () => {
    const sim: Sim = { events: [] };
    const runner = simulatedCluster(sim);
    const { result } = await executeEnforce({ runId: 'abcde', backend: 'cluster', config: { ...CONFIG, repetitions: 1, changes: ['allow-added'], deadlineMs: 5000 }, plane: await plane(runner, simulatedStreamer(sim, { offset: 0n, dieAfterMs: 15 })) });
    expect(result.status).toBe('failed');
    expect(result.errors[0]!.message).toMatch(/exited 137/);
    expect(cleanedUp(runner)).toBe(true);
  }, 60_000);

  it('the apply fails: failed at that change, cleaned up', async () => {
    const sim: Sim = { events: [] };
    const runner = simulatedCluster(sim, (purpose) => (purpose.startsWith('change: apply') ? { exitCode: 1, stderr: 'Error from server (Forbidden): networkpolicies is forbidden' } : undefined));
    const { result } = await executeEnforce({ runId: 'abcde', backend: 'cluster', config: { ...CONFIG, repetitions: 1, changes: ['allow-added'] }, plane: await plane(runner, simulatedStreamer(sim, { offset: 0n })) });
    expect(result.status).toBe('failed');
    expect(result.errors[0]).toMatchObject({ stage: 'allow-added #1' });
    expect(result.errors[0]!.message).toMatch(/Forbidden/);
    expect(cleanedUp(runner)).toBe(true);
  }, 60_000);

  it('Ctrl-C during a watch that would run to its deadline: the watch is killed, the run stops as interrupted and cleans up', async () => {
    const sim: Sim = { events: [] };
    const runner = simulatedCluster(sim);
    const ac = new AbortController();
    const p = await plane(runner, simulatedStreamer(sim, { offset: 0n, neverOpen: true }), ac.signal);
    setTimeout(() => ac.abort(), 300);
    const t = performance.now();
    const { result } = await executeEnforce({ runId: 'abcde', backend: 'cluster', config: { ...CONFIG, repetitions: 1, changes: ['allow-added'], deadlineMs: 20_000 }, plane: p, signal: ac.signal });
    expect(performance.now() - t).toBeLessThan(10_000);
    expect(result.status).toBe('failed');
    expect(result.errors[0]!.stage).toBe('interrupted');
    expect(cleanedUp(runner)).toBe(true);
  }, 60_000);

  it('a watch that never starts probing is refused after its readiness bound', async () => {
    const sim: Sim = { events: [] };
    const w = startK8sWatch(simulatedStreamer(sim, { offset: 0n, neverStarts: true }), { argv: ['kubectl', 'exec', '-i', '-n', 'x', 'bench-client', '--', '/probe/cb-probe', 'watch', '--target', '10.0.0.1', '--interval-us', '1000', '--timeout-ms', '10', '--max-ms', '100'] }, { sharedClock: true, timeoutMs: 5000, readyTimeoutMs: 50 });
    await expect(w).rejects.toThrow(/did not start probing within 50 ms/);
  }, 60_000);
});

describe('bench enforce --services on a cluster (scripted cluster, simulated watch streams)', () => {
  const SERVICE_CONFIG: EnforceConfig = { ...CONFIG, changes: ['endpoint-removed', 'endpoint-added', 'service-added'], services: 3, endpointsPerService: 1, servicePosition: 'last' };

  it("measures each Service change on the policy changes' clock: the slice emptied and refilled, a new Service watched on the ClusterIP the API server gave it", async () => {
    const sim: Sim = { events: [] };
    const runner = simulatedCluster(sim);
    const { result } = await executeEnforce({ runId: 'abcde', backend: 'cluster', config: SERVICE_CONFIG, plane: await plane(runner, simulatedStreamer(sim, { offset: POD_CLOCK_OFFSET, echoMs: 2 })) });
    expect(result.errors).toEqual([]);
    expect(result.status).toBe('ok');
    expect(() => enforceResultSchema.parse(JSON.parse(JSON.stringify(result)))).not.toThrow();
    expect(result.services).toMatchObject({ clusterIP: PROBED_IP, count: 3, state: { agentMetric: expect.stringMatching(/^not read/) } });
    expect(result.observations.map((o) => o.change)).toEqual([...SERVICE_CONFIG.changes, ...SERVICE_CONFIG.changes]);
    for (const o of result.observations) {
      expect(o.preconditionHeld, `${o.change} #${o.repetition}`).toBe(true);
      expect(o.enforcedMs!, o.change).toBeGreaterThanOrEqual(DELAY_MS - 3);
      expect(o.enforcedMs!, o.change).toBeLessThan(DELAY_MS + 1500);
      expect(o.k8s!.clock!.method).toBe('offset');
      expect(o.target).toBe(o.change === 'service-added' ? ADDED_IP : PROBED_IP);
      expect(o.k8s!.command).toMatch(o.change === 'service-added' && o.repetition === 0 ? /apply --server-side/ : /apply --server-side|delete service\/bench-server-added/);
    }
    // The added Service's watch started once the API server had given it an address.
    for (const o of result.observations.filter((x) => x.change === 'service-added')) expect(o.k8s!.watchStartedMs).not.toBeNull();
    // Connections reached the removed endpoint for as long as the simulated proxy took: the blackhole window.
    for (const o of result.observations.filter((x) => x.change === 'endpoint-removed')) expect(o.failOpen!.windowMs).toBeGreaterThan(DELAY_MS - 5);
    // Every object is the run's own: in its server namespace, labelled, selectorless with the tool's slice, valid.
    const applies = runner.log.filter((c) => c.argv.includes('apply') && c.input?.includes('"EndpointSlice"'));
    const items = applies.flatMap((c) => (JSON.parse(c.input!) as { items: Array<{ kind: string; metadata: { namespace: string; labels: Record<string, string> }; spec?: { selector?: unknown }; endpoints?: unknown[] }> }).items);
    expect(items.length).toBeGreaterThan(8);
    expect(() => validateManifests(items)).not.toThrow();
    for (const i of items) expect(i.metadata).toMatchObject({ namespace: 'cb-abcde-server', labels: { 'cni-bench/run': 'abcde' } });
    expect(items.filter((i) => i.kind === 'Service').every((i) => i.spec!.selector === undefined)).toBe(true);
    const removed = runner.log.find((c) => c.purpose?.startsWith('change: apply bench-server (') && !c.input!.includes('10.244.1.5'))!;
    expect(JSON.parse(removed.input!).items[1]).toMatchObject({ kind: 'EndpointSlice', endpoints: [] });
    expect(cleanedUp(runner)).toBe(true);
  }, 60_000);

  it('the starting apply fails: failed at install services with the API server\'s words, cleaned up', async () => {
    const sim: Sim = { events: [] };
    const runner = simulatedCluster(sim, (purpose) => (purpose.startsWith('apply Services and EndpointSlices') ? { exitCode: 1, stderr: 'Error from server (Forbidden): endpointslices.discovery.k8s.io is forbidden' } : undefined));
    const { result } = await executeEnforce({ runId: 'abcde', backend: 'cluster', config: { ...SERVICE_CONFIG, repetitions: 1 }, plane: await plane(runner, simulatedStreamer(sim, { offset: 0n })) });
    expect(result.status).toBe('failed');
    expect(result.errors[0]).toMatchObject({ stage: 'install services' });
    expect(result.errors[0]!.message).toMatch(/endpointslices.discovery.k8s.io is forbidden/);
    expect(result.observations).toEqual([]);
    expect(cleanedUp(runner)).toBe(true);
  }, 60_000);

  it('the probed ClusterIP never answers: a clear error naming the Service and what to look at, cleaned up', async () => {
    const sim: Sim = { events: [] };
    // Applied, but the simulated data plane never programs it (no +ep event is recorded).
    const runner = simulatedCluster(sim, (purpose) => (purpose.startsWith('apply Services and EndpointSlices') ? { exitCode: 0, stdout: '' } : undefined));
    const { result } = await executeEnforce({ runId: 'abcde', backend: 'cluster', config: { ...SERVICE_CONFIG, repetitions: 1 }, plane: await plane(runner, simulatedStreamer(sim, { offset: 0n }), undefined, 300) });
    expect(result.status).toBe('failed');
    expect(result.errors[0]!.stage).toBe('install services');
    expect(result.errors[0]!.message).toMatch(/step wait-services failed: cb-abcde-server\/bench-server \(ClusterIP 10\.96\.0\.10\) did not answer from the client within 300 ms .*get endpointslices/);
    expect(cleanedUp(runner)).toBe(true);
  }, 60_000);
});

describe('startK8sWatch on recorded cb-probe output', () => {
  it('parses the recorded watch --control-stdin output and puts it on this clock', async () => {
    const recorded = readFileSync(new URL('./fixtures/watch-control-stdin.txt', import.meta.url), 'utf8');
    const lines = recorded.split('\n').filter(Boolean);
    const base = BigInt(/^watching (\d+)$/.exec(lines[0]!)![1]!);
    const marks = lines.filter((l) => l.startsWith('mark '));
    const json = lines.find((l) => l.startsWith('{'))!;
    // Replay: this machine's clock is the pod's minus 1 s, each echo takes 2 ms.
    const podRead = marks.map((m) => base + BigInt(m.split(' ')[2]!));
    // Each mark is written 1 ms (host) before the pod read it, and its echo arrives 1 ms after.
    let t = podRead[0]! - 1_000_000_000n - 1_000_000n;
    const now = () => t;
    let out: (s: string) => void = () => undefined;
    let resolveExit!: (r: { exitCode: number; signal: null; stderr: string }) => void;
    let written = 0;
    const streamer: Streamer = () => ({
      onStdout: (fn) => ((out = fn), setTimeout(() => fn(`${lines[0]}\n`), 0)),
      write: (s) => {
        if (s === 'mark\n') {
          const i = written++;
          setTimeout(() => {
            t = podRead[i]! - 1_000_000_000n + 1_000_000n;
            out(`${marks[i]}\n`);
            if (podRead[i + 1] !== undefined) t = podRead[i + 1]! - 1_000_000_000n - 1_000_000n;
          }, 0);
        } else if (s === 'stop\n') setTimeout(() => (out(`${json}\n`), resolveExit({ exitCode: 0, signal: null, stderr: '' })), 0);
      },
      end: () => undefined,
      kill: () => undefined,
      exited: new Promise((r) => (resolveExit = r)),
    });
    const w = await startK8sWatch(streamer, { argv: ['kubectl', 'exec', '-i', '--', 'cb-probe', 'watch'] }, { sharedClock: false, timeoutMs: 5000, calibrationMarks: marks.length, now });
    const done = await w.stop();
    expect(done.result.length).toBeGreaterThan(5);
    expect(done.result.every((r) => r === 'open')).toBe(true);
    expect(done.marksNs).toHaveLength(marks.length);
    expect(done.clock).toMatchObject({ method: 'offset', rttNs: 2_000_000, boundNs: 1_000_000, samples: marks.length });
    expect(done.baseNs).toBe(base - 1_000_000_000n);
  });
});

describe('startK8sWatch: a watch that settles during its clock calibration', () => {
  const json = JSON.stringify({ mode: 'watch', base_ns: '1000000000', interval_ns: 1_000_000, timeout_ns: 10_000_000, settled_index: 0, realtime: false, start_ns: [0, 1_000_000, 2_000_000, 3_000_000, 4_000_000], end_ns: [200_000, 1_200_000, 2_200_000, 3_200_000, 4_200_000], result: ['open', 'open', 'open', 'open', 'open'], marks_ns: [500_000] });
  /** Prints "watching", echoes `echoes` marks, then settles and exits at the next mark (as cb-probe does when --until is met). */
  const settlingStreamer = (echoes: number): Streamer => () => {
    let out: (s: string) => void = () => undefined;
    let resolveExit!: (r: { exitCode: number; signal: null; stderr: string }) => void;
    let marks = 0;
    return {
      onStdout: (fn) => ((out = fn), setTimeout(() => fn('watching 1000000000\n'), 0)),
      write: (s) => {
        if (s !== 'mark\n') return;
        const i = marks++;
        setTimeout(() => (i < echoes ? out(`mark ${i} 500000\n`) : (out(`${json}\n`), resolveExit({ exitCode: 0, signal: null, stderr: '' }))), 0);
      },
      end: () => undefined,
      kill: () => undefined,
      exited: new Promise((r) => (resolveExit = r)),
    };
  };
  const spec = { argv: ['kubectl', 'exec', '-i', '--', 'cb-probe', 'watch'] };

  it('keeps the marks it echoed (a new pod already allowed settles faster than a few kubectl round trips)', async () => {
    const w = await startK8sWatch(settlingStreamer(1), spec, { sharedClock: false, timeoutMs: 5000, calibrationMarks: 5 });
    const done = await w.stop();
    expect(done.result).toHaveLength(5);
    expect(done.clock).toMatchObject({ method: 'offset', samples: 1 });
  });

  it('with no mark echoed and no shared clock its probes cannot be placed: an error that says so', async () => {
    await expect(startK8sWatch(settlingStreamer(0), spec, { sharedClock: false, timeoutMs: 5000, calibrationMarks: 5 })).rejects.toThrow(/ended during clock calibration, before any clock mark was echoed/);
  });
});
