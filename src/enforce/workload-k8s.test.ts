// bench enforce --workload on an existing cluster, against a scripted cluster: the fake runner records when each
// change to a policy reached the API server, and each `kubectl exec -i … cb-probe watch` is a simulated stream that
// probes its flow under the policies in force DELAY_MS after that (the reference evaluator decides the verdict).
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';
import { daemonSet, daemonSetList, fakeCluster } from '../backends/k8s/test-support/cluster.js';
import { createBackend } from '../backends/factory.js';
import type { StreamChild, Streamer } from '../backends/k8s/watch.js';
import { validateManifests } from '../backends/k8s/validate.js';
import { gridNames } from '../backends/k8s/grid-names.js';
import { layoutOnCluster } from '../backends/k8s/workload-layout.js';
import { renderWorkloadPods } from '../backends/k8s/workload-manifests.js';
import { probeContainer, probeVolume } from '../backends/k8s/manifests.js';
import { loadVersions } from '../backends/k8s/versions.js';
import { runConfigSchema, type CniName } from '../config/schema.js';
import type { CommandSpec } from '../exec/runner.js';
import { PolicyEvaluator } from '../policy/evaluate.js';
import { loadWorkload } from '../workload/load.js';
import { parseWorkloadChanges, planWorkloadChanges, policyKey, watchedFlowsOf } from './workload-changes.js';
import { executeWorkloadEnforce, type WorkloadEnforceSettings } from './workload-run.js';
import { enforceWorkloadResultSchema } from './workload-result.js';
import { formatWorkloadEnforce } from './workload-format.js';
import { enforceWorkloadMarkdown } from '../report/enforce-workload.js';

const W = loadWorkload(fileURLToPath(new URL('../workload/fixtures/replay-cluster.json', import.meta.url)));
const RUN = 'abcde';
/** Diagnostics of the failing runs go here (a failed step collects them). */
const OUT = mkdtempSync(join(tmpdir(), 'cb-wlk8s-'));
afterAll(() => rmSync(OUT, { recursive: true, force: true }));
const DELAY_MS = 40;
const ms = (x: number) => BigInt(Math.round(x * 1e6));
const SETTINGS: WorkloadEnforceSettings = { repetitions: 2, intervalUs: 1000, probeTimeoutMs: 10, deadlineMs: 4000, settle: 5, seed: 1 };

/** The cluster's policy state over time: which of the workload's policies (ns/name) exist from when. */
interface Sim {
  events: Array<{ at: bigint; present: Set<string> }>;
  ips: Map<string, string>;
}

const strip = (ns: string) => ns.replace(`cb-${RUN}-`, '');

function cluster(sim: Sim, o: { cni?: 'cilium' | 'flannel'; fail?: (spec: CommandSpec) => { exitCode: number; stderr: string } | undefined } = {}) {
  let n = 10;
  let present = new Set<string>();
  const record = (next: Set<string>) => {
    present = next;
    sim.events.push({ at: process.hrtime.bigint(), present: new Set(next) });
  };
  return fakeCluster((argv, spec) => {
    const a = argv.join(' ');
    const f = o.fail?.(spec);
    if (f) return f;
    if (o.cni === 'flannel' && a.includes('get daemonsets -A -o json')) return { stdout: daemonSetList(daemonSet('kube-flannel/kube-flannel-ds', ['kube-flannel'], { app: 'flannel' })) };
    const m = /-n cb-abcde-(\S+) get pods -o json/.exec(a);
    if (m) {
      const items = W.inventory.pods
        .filter((p) => p.namespace === m[1] && !p.hostNetwork)
        .map((p) => {
          const ip = `10.244.1.${n++}`;
          sim.ips.set(ip, `${p.namespace}/${p.name}`);
          return { metadata: { name: p.name, namespace: `cb-abcde-${p.namespace}` }, spec: { nodeName: 'w1', containers: [] }, status: { phase: 'Running', podIP: ip, conditions: [{ type: 'Ready', status: 'True' }] } };
        });
      return { stdout: JSON.stringify({ items }) };
    }
    // The barrier (a flow every policy set denies): blocked.
    if (a.includes('/agnhost connect')) return { exitCode: 1, stderr: 'TIMEOUT\n' };
    if (a.includes('apply --server-side')) {
      const items = (JSON.parse(spec.input!) as { items: Array<{ metadata: { namespace: string; name: string } }> }).items;
      record(new Set([...present, ...items.map((i) => `${strip(i.metadata.namespace)}/${i.metadata.name}`)]));
    }
    const d = /delete networkpolicy -n (\S+) (.*) --wait=false/.exec(a);
    if (d) record(new Set([...present].filter((k) => !d[2]!.split(' ').map((x) => `${strip(d[1]!)}/${x}`).includes(k))));
    return undefined;
  });
}

/** A `cb-probe watch` in a pod: each probe's verdict is the evaluator's under the policies in force DELAY_MS before it. */
function streamer(sim: Sim, o: { frozen?: boolean } = {}): Streamer {
  return (spec: CommandSpec): StreamChild => {
    const a = spec.argv;
    const arg = (f: string) => a[a.indexOf(f) + 1]!;
    const ns = strip(a[a.indexOf('-n') + 1]!);
    const pod = a[a.indexOf('-n') + 2]!;
    const src = W.inventory.pods.find((p) => p.namespace === ns && p.name === pod)!;
    const dstId = sim.ips.get(arg('--target'))!;
    const dst = W.inventory.pods.find((p) => `${p.namespace}/${p.name}` === dstId)!;
    const port = Number(arg('--port'));
    const intervalNs = BigInt(arg('--interval-us')) * 1000n;
    const timeoutNs = BigInt(arg('--timeout-ms')) * 1_000_000n;
    const maxNs = BigInt(arg('--max-ms')) * 1_000_000n;
    const until = a.includes('--until') ? arg('--until') : null;
    const settle = Number(arg('--settle'));
    const verdictCache = new Map<number, boolean>();
    const verdict = (at: bigint): boolean => {
      // frozen: the agents never take a change (the first state stays).
      const i = o.frozen ? 0 : sim.events.findLastIndex((e) => e.at + ms(DELAY_MS) <= at);
      if (!verdictCache.has(i)) {
        const present = sim.events[Math.max(0, i)]!.present;
        const ev = new PolicyEvaluator(W.inventory, W.policies.filter((p) => present.has(policyKey(p))));
        verdictCache.set(i, ev.evaluate({ src, dst, port, protocol: 'TCP' }).allowed);
      }
      return verdictCache.get(i)!;
    };
    const host = () => process.hrtime.bigint();
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
      out(`${JSON.stringify({ mode: 'watch', base_ns: String(base), interval_ns: Number(intervalNs), timeout_ns: Number(timeoutNs), settled_index: settledIndex, realtime: false, start_ns: starts.map(rel), end_ns: starts.map((s, i) => rel(s) + (results[i] === 'open' ? 200_000 : Number(timeoutNs))), result: results, marks_ns: [] })}\n`);
      resolveExit({ exitCode: 0, signal: null, stderr: '' });
    };
    const tick = setInterval(() => {
      const now = host();
      for (let t = starts.length ? starts[starts.length - 1]! + intervalNs : base; t <= now - timeoutNs && !stopped; t += intervalNs) {
        starts.push(t);
        results.push(verdict(t) ? 'open' : 'ETIMEDOUT');
        if (until && results.length >= settle && results.slice(-settle).every((r) => (r === 'open') === (until === 'open'))) (stopped = true), (settledIndex = results.length - settle);
        if (t - base >= maxNs) stopped = true;
      }
      if (stopped && echoed > 0) finish();
    }, 2);
    return {
      onStdout: (fn) => {
        out = fn;
        setTimeout(() => fn(`watching ${base}\n`), 1);
      },
      write: (text) => {
        for (const line of text.split('\n')) {
          if (line === 'mark') {
            const i = marks++;
            const written = host();
            setTimeout(() => {
              out(`mark ${i} ${(written + host()) / 2n - base}\n`);
              echoed++;
            }, 1);
          } else if (line === 'stop') stopped = true;
        }
      },
      end: () => (stopped = true),
      kill: () => (clearInterval(tick), resolveExit({ exitCode: null, signal: 'SIGKILL', stderr: '' })),
      exited,
    };
  };
}

async function run(changeTexts: string[], o: { cni?: 'cilium' | 'flannel'; frozen?: boolean; fail?: (spec: CommandSpec) => { exitCode: number; stderr: string } | undefined; settings?: Partial<WorkloadEnforceSettings> } = {}) {
  const sim: Sim = { events: [], ips: new Map() };
  const runner = cluster(sim, o);
  const cni: CniName = o.cni ?? 'cilium';
  const parsed = parseWorkloadChanges(changeTexts, W);
  expect(parsed.problems).toEqual([]);
  const plan = planWorkloadChanges(W, [cni], { changes: parsed.changes, seed: 1 });
  const changes = plan.byCni.get(cni)!;
  const layout = layoutOnCluster(W, watchedFlowsOf(changes), { seed: 1, barrier: true });
  const plane = await createBackend({ config: runConfigSchema.parse({ cni, backend: 'cluster', context: 'ctx' }), backend: 'cluster', runId: RUN, shape: 'cluster', workloadChanges: true, outDir: OUT, runner, cleanupRunner: runner, probeIntervalMs: 0, enforce: { streamer: streamer(sim, o), calibrationMarks: 3 } });
  const { result } = await executeWorkloadEnforce({ runId: RUN, backend: 'cluster', cni, workload: W, file: 'replay-cluster.json', changes, replay: layout.workload, plane, settings: { ...SETTINGS, ...o.settings }, otherLiveRuns: () => [] });
  const cmds = runner.log.map((c) => c.argv.join(' '));
  return { result, cmds, changes };
}

const tornDown = (cmds: string[]) => cmds.some((c) => c.includes(`delete namespace -l cni-bench/run=${RUN}`));

describe('the watched sources carry the probe container', () => {
  it('beside their own containers, with its emptyDir; every manifest validates', () => {
    const { workload } = layoutOnCluster(W, [{ from: 'web/frontend-6c9f8b7d4-abcde', to: 'api/orders-0', port: 9000, protocol: 'TCP' }], { seed: 1 });
    const v = loadVersions();
    const pods = renderWorkloadPods(workload.pods, gridNames(RUN, workload, []), ['w1'], v.verify.agnhostImage, undefined, { sources: new Set(['web/frontend-6c9f8b7d4-abcde']), container: probeContainer(v), volume: probeVolume }) as Array<{ metadata: { name: string }; spec: { containers: Array<{ name: string }>; volumes?: unknown[] } }>;
    expect(() => validateManifests(pods as never)).not.toThrow();
    const src = pods.find((p) => p.metadata.name === 'frontend-6c9f8b7d4-abcde')!;
    expect(src.spec.containers.map((c) => c.name)).toEqual(['cont-8080-tcp', 'probe']);
    expect(src.spec.volumes).toEqual([{ name: 'probe', emptyDir: { sizeLimit: '16Mi' } }]);
    // The synthetic enforce's probe container, as is (busybox: kubectl cp needs its tar).
    expect(src.spec.containers[1]).toEqual(probeContainer(v));
    expect(pods.filter((p) => p !== src).every((p) => !p.spec.containers.some((c) => c.name === 'probe'))).toBe(true);
  });
});

describe('bench enforce --workload on a cluster (scripted API server, simulated watch streams)', () => {
  it('a remove: the watched flows flip a known delay after the delete, on one clock; result valid; torn down', async () => {
    const { result, cmds, changes } = await run(['remove:web/allow-api']);
    expect(result.errors).toEqual([]);
    expect(result.status).toBe('ok');
    expect(result.meta.backend).toBe('cluster');
    expect(() => enforceWorkloadResultSchema.parse(JSON.parse(JSON.stringify(result)))).not.toThrow();
    const c = result.changes[0]!;
    expect(c.observations).toHaveLength(2 * changes[0]!.probed.length);
    for (const ob of c.observations) {
      expect(ob.preconditionHeld).toBe(true);
      expect(ob.enforcedMs!).toBeGreaterThanOrEqual(DELAY_MS - 3);
      expect(ob.enforcedMs!).toBeLessThan(DELAY_MS + 1500);
      expect(ob.k8s!.command).toMatch(/delete networkpolicy -n cb-abcde-web allow-api --wait=false/);
      expect(ob.k8s!.clock).not.toBeNull();
    }
    expect(c.summary!.notEnforced).toBe(0);
    // One delete per measured repetition; the second repetition's starting state re-applies the policy first.
    expect(cmds.filter((x) => x.includes('delete networkpolicy'))).toHaveLength(2);
    expect(cmds.filter((x) => x.includes('apply --server-side') && x.includes('-f -')).length).toBeGreaterThanOrEqual(2);
    expect(cmds.some((x) => x.includes('cp') && x.includes('cb-probe-static'))).toBe(true);
    const text = formatWorkloadEnforce(result, null);
    expect(text).toMatch(/remove:web\/allow-api/);
    expect(text).toMatch(/API call \(kubectl\) +p50/);
    expect(text).not.toMatch(/agent \(update\(\)\)/);
    const md = enforceWorkloadMarkdown([{ path: 'r', result }]);
    expect(md).toMatch(/\| Cilium[^|]* \(cluster\) \| `remove:web\/allow-api` \|/);
    expect(md).toMatch(/the Agent column is the API call/);
    expect(tornDown(cmds)).toBe(true);
  }, 60_000);

  it('a remove that denies: the probes still passing after the delete are the fail-open window (≈ the simulated delay)', async () => {
    const { result } = await run(['remove:api/allow-frontend'], { settings: { repetitions: 1 } });
    expect(result.errors).toEqual([]);
    const c = result.changes[0]!;
    expect(c.observations.length).toBeGreaterThan(0);
    for (const ob of c.observations) {
      expect(ob.expect).toBe('closed');
      expect(ob.failOpen!.leaked).toBeGreaterThan(0);
      expect(ob.failOpen!.windowMs).toBeGreaterThan(DELAY_MS - 5);
    }
    expect(c.summary!.failOpenRepetitions).toBe(1);
  }, 60_000);

  it('an add: starts without the policy (deleted, waited for), the apply of the one rewritten policy flips the flows', async () => {
    const { result, cmds } = await run(['add:api/allow-frontend']);
    expect(result.errors).toEqual([]);
    const obs = result.changes[0]!.observations;
    expect(obs.length).toBeGreaterThan(0);
    for (const ob of obs) {
      expect(ob.expect).toBe('open');
      expect(ob.preconditionHeld).toBe(true);
      expect(ob.enforcedMs!).toBeGreaterThanOrEqual(DELAY_MS - 3);
      expect(ob.k8s!.command).toMatch(/apply --server-side --field-manager=cni-bench -f -/);
    }
    const applies = cmds.filter((x) => x.includes('apply --server-side'));
    expect(applies.length).toBeGreaterThanOrEqual(3);
    expect(tornDown(cmds)).toBe(true);
  }, 60_000);

  it('an apply the API server refuses: failed at that change with its reason, namespaces torn down', async () => {
    const { result, cmds } = await run(['add:api/allow-frontend'], { fail: (s) => (s.purpose?.startsWith('change: apply') ? { exitCode: 1, stderr: 'Error from server (Forbidden): networkpolicies.networking.k8s.io is forbidden' } : undefined) });
    expect(result.status).toBe('failed');
    expect(result.errors[0]!.stage).toBe('add:api/allow-frontend #1');
    expect(result.errors[0]!.message).toMatch(/step change-policy failed:[\s\S]*Forbidden/);
    expect(tornDown(cmds)).toBe(true);
  }, 60_000);

  it('a flow that never flips: not enforced within the deadline, reported as the synthetic path reports it', async () => {
    const { result } = await run(['remove:web/allow-api'], { frozen: true, settings: { repetitions: 1, deadlineMs: 300 } });
    expect(result.errors).toEqual([]);
    const c = result.changes[0]!;
    expect(c.observations.every((o) => o.enforcedMs === null)).toBe(true);
    expect(c.summary!.notEnforced).toBe(1);
    expect(formatWorkloadEnforce(result, null)).toMatch(/not enforced/i);
  }, 60_000);

  it('flannel: each change is made, its flows connect throughout: NO EFFECT, no timing', async () => {
    const { result, cmds } = await run(['remove:web/allow-api'], { cni: 'flannel' });
    expect(result.status).toBe('not-enforced');
    const c = result.changes[0]!;
    expect(c.noEffect).not.toBeNull();
    expect(c.observations).toEqual([]);
    expect(formatWorkloadEnforce(result, null)).toMatch(/NO EFFECT/);
    expect(tornDown(cmds)).toBe(true);
  }, 60_000);

  it('a failure while the workload is created: failed at setup, the namespaces created so far removed', async () => {
    const { result, cmds } = await run(['remove:web/allow-api'], { fail: (s) => (s.purpose?.startsWith("create the workload's") ? { exitCode: 1, stderr: 'Error from server (Forbidden): pods is forbidden' } : undefined) });
    expect(result.status).toBe('failed');
    expect(result.errors[0]!.stage).toBe('setup');
    expect(tornDown(cmds)).toBe(true);
  }, 60_000);
});
