import { describe, expect, it, onTestFinished } from 'vitest';
import { FakeRunner, type Runner } from '../exec/runner.js';
import type { LocalModel } from '../backends/local/types.js';
import { LocalBackend } from '../backends/local/backend.js';
import type { AppliedChange, PlaneChanges, ServiceChanges } from '../backends/types.js';
import type { ServiceSet } from '../services/types.js';
import { runConfigSchema, type CniName } from '../config/schema.js';
import type { PolicySet } from '../policy/generate.js';
import type { RunningWatch, WatchOutput, WatchSettings } from '../probe/native.js';
import { DEFAULT_TARGET, type Workload } from '../workload/workload.js';
import { enforceWorkload, newServerPod } from './plan.js';
import { EnforceUnsupportedError, executeEnforce, requireChanges, timeoutFromCalibration, type EnforceConfig, type EnforcePlane } from './run.js';
import { enforceResultSchema } from './result.js';

const SERVER_IP = '10.244.1.2';
const NEW_POD_IP = '10.244.1.3';

/**
 * A data plane on a simulated timeline: each change takes effect `delayMs` after it is handed over; the fake
 * watch answers each probe by the state at its start. `leakyNewPod`: the intruder reaches a new pod until the
 * agent has run.
 */
class FakePlane implements EnforcePlane, PlaneChanges {
  readonly target = DEFAULT_TARGET;
  readonly clockDescription = 'CLOCK_MONOTONIC (probe starts and the change start on one clock)';
  readonly watchNote = 'one per change';
  readonly model: { name: string; description: string; enforcesPolicy: boolean };
  readonly updates: string[] = [];
  private timeline: Array<{ at: bigint; open: boolean; joiner: boolean; newPod: 'absent' | 'attached' | 'enforced' }> = [];
  private cur = { open: false, joiner: false, newPod: 'absent' as 'absent' | 'attached' | 'enforced' };
  constructor(
    private readonly delayMs: number,
    enforces = true,
    private readonly opts: { leakyNewPod?: boolean; neverEnforce?: boolean } = {},
  ) {
    this.model = { name: 'fake model', description: 'test', enforcesPolicy: enforces };
  }
  private push(at: bigint) {
    this.timeline.push({ at, ...this.cur });
  }
  get changes() {
    return this;
  }
  fit(w: Workload) {
    return w;
  }
  async up(_w: Workload) {
    this.push(0n);
    return { ips: { 'bench-server/server-0': SERVER_IP }, nodeOf: {} };
  }
  async install(set: PolicySet) {
    this.cur.open = set.policies.some((p) => p.metadata.name !== 'np-isolate' && p.metadata.labels?.['cni-bench/role'] === 'allow-client');
    this.push(process.hrtime.bigint());
    return { modelState: { installed: set.policies.length }, installMs: 0 };
  }
  private change(mut: () => void, label: string): AppliedChange {
    const startNs = process.hrtime.bigint();
    this.updates.push(label);
    if (!this.opts.neverEnforce) {
      mut();
      this.push(startNs + BigInt(this.delayMs * 1e6));
    }
    return { startNs, resolveMs: 0.1, report: { agentMs: this.delayMs / 2, compileMs: 0.1, applyMs: this.delayMs / 2 - 0.1, changed: { chainsRewritten: 1 }, state: {} } };
  }
  async setPolicies(set: PolicySet) {
    const open = set.policies.some((p) => p.metadata.labels?.['cni-bench/role'] === 'allow-client');
    return this.change(() => (this.cur.open = open), open ? 'open' : 'closed');
  }
  async setLabels(_pod: string, labels: Record<string, string>) {
    return this.change(() => (this.cur.joiner = labels.app === 'bench-client'), `joiner=${labels.app}`);
  }
  async preparePod() {
    return {
      ip: NEW_POD_IP,
      attach: async () => {
        const at = process.hrtime.bigint();
        this.cur.newPod = 'attached';
        this.push(at);
        const c = this.change(() => (this.cur.newPod = 'enforced'), 'new-pod');
        return { ...c, startNs: at, attachMs: 1 };
      },
      remove: async () => {
        this.cur.newPod = 'absent';
        this.push(process.hrtime.bigint());
      },
    };
  }
  watchCommand() {
    return '';
  }
  protected verdict(fromPod: string, target: string, t: bigint): boolean {
    const from = fromPod.split('/')[1]!;
    const s = [...this.timeline].reverse().find((e) => e.at <= t) ?? this.timeline[0]!;
    if (target === NEW_POD_IP) {
      if (s.newPod === 'absent') return false;
      if (from === 'intruder') return s.newPod === 'attached' && Boolean(this.opts.leakyNewPod);
      return s.open && (s.newPod === 'enforced' || Boolean(this.opts.leakyNewPod));
    }
    if (from === 'joiner') return s.open && s.joiner;
    if (from === 'intruder') return false;
    return s.open || !this.model.enforcesPolicy;
  }
  async watch(from: string, target: string, _port: number, s: WatchSettings): Promise<RunningWatch> {
    const base = process.hrtime.bigint();
    const step = BigInt(s.intervalUs * 1000);
    let stopped = false;
    const build = (): WatchOutput => {
      const now = process.hrtime.bigint();
      const startNs: number[] = [];
      const result: string[] = [];
      for (let t = base; t <= now; t += step) {
        startNs.push(Number(t - base));
        result.push(this.verdict(from, target, t) ? 'open' : 'ETIMEDOUT');
      }
      return { baseNs: base, intervalNs: Number(step), timeoutNs: s.timeoutMs * 1e6, settledIndex: -1, realtime: false, startNs, endNs: startNs.map((x) => x + 100_000), result };
    };
    const done = (async () => {
      for (;;) {
        await new Promise((r) => setTimeout(r, 2));
        const now = process.hrtime.bigint();
        if (stopped || now - base > BigInt(s.maxMs * 1e6)) return build();
        if (s.until) {
          const settleNs = BigInt((s.settle ?? 5) + 1) * step;
          const ok = (t: bigint) => this.verdict(from, target, t) === (s.until === 'open');
          if (ok(now) && ok(now - settleNs) && now - settleNs > base) return build();
        }
      }
    })();
    return { baseNs: base, done, stop: async () => ((stopped = true), done) };
  }
  async down() {}
}

const config = (over: Partial<EnforceConfig> = {}): EnforceConfig => ({
  cni: 'calico',
  policies: 3,
  repetitions: 2,
  changes: ['allow-added', 'allow-removed', 'new-pod', 'peer-joins'],
  matchPosition: 'last',
  seed: 1,
  intervalUs: 1000,
  probeTimeoutMs: 10,
  deadlineMs: 400,
  settle: 3,
  endpointsPerService: 1,
  servicePosition: 'last',
  ...over,
});

/**
 * The fake plane with a service data plane: a Service change takes effect `delayMs` after it is handed over; a
 * ClusterIP connects while its Service lists an endpoint (the probed one) or exists (the added one).
 */
class FakeServicePlane extends FakePlane {
  readonly handed: ServiceSet[] = [];
  private svcTimeline: Array<{ at: bigint; set: ServiceSet | null }> = [{ at: 0n, set: null }];
  private setAt(t: bigint): ServiceSet | null {
    return ([...this.svcTimeline].reverse().find((e) => e.at <= t) ?? this.svcTimeline[0]!).set;
  }
  private serviceChange(set: ServiceSet, delayMs: number): AppliedChange {
    const startNs = process.hrtime.bigint();
    this.handed.push(set);
    this.svcTimeline.push({ at: startNs + BigInt(delayMs * 1e6), set });
    return { startNs, resolveMs: 0, report: { agentMs: delayMs, compileMs: 0, applyMs: delayMs, changed: { rulesWritten: 3 }, state: {} } };
  }
  readonly serviceChanges: ServiceChanges = {
    install: async (set) => {
      this.serviceChange(set, 0);
      return { dataPlane: 'fake-proxy', description: 'a fake service data plane', lookup: 'rule-walk', installMs: 1, state: { services: set.services.length } };
    },
    setServices: async (set) => this.serviceChange(set, this.serviceDelayMs),
    watch: (from, target, port, s) => this.watch(from, target, port, s),
    watchCommand: () => '',
  };
  constructor(
    delayMs: number,
    enforces: boolean,
    private readonly serviceDelayMs: number,
  ) {
    super(delayMs, enforces);
  }
  protected override verdict(fromPod: string, target: string, t: bigint): boolean {
    const set = this.setAt(t);
    const svc = set?.services.find((x) => x.clusterIP === target);
    if (set && svc) return svc.endpoints.length > 0;
    if (target.startsWith('10.9') || target.startsWith('10.1')) return false; // a ClusterIP no Service holds (yet)
    return super.verdict(fromPod, target, t);
  }
}

describe('executeEnforce: Service changes', () => {
  const SERVICE = ['endpoint-removed', 'endpoint-added', 'service-added'] as const;

  it('measures each Service change on the same clock, the endpoint-removed blackhole as a window, and hands the agent the next Service set', async () => {
    const plane = new FakeServicePlane(5, true, 20);
    const { result } = await executeEnforce({ runId: 'abcde', backend: 'local', config: config({ changes: [...SERVICE], services: 4 }), plane });
    expect(result.errors).toEqual([]);
    expect(result.status).toBe('ok');
    expect(() => enforceResultSchema.parse(JSON.parse(JSON.stringify(result)))).not.toThrow();
    expect(result.services).toMatchObject({ dataPlane: 'fake-proxy', state: { services: 5 } });
    expect(result.observations.map((o) => o.change)).toEqual([...SERVICE, ...SERVICE]);
    for (const o of result.observations) {
      expect(o.preconditionHeld, `${o.change} #${o.repetition}`).toBe(true);
      expect(o.enforcedMs!, o.change).toBeGreaterThanOrEqual(19);
      expect(o.enforcedMs!, o.change).toBeLessThan(20 + 5);
      expect(o.target).toMatch(/^10\.(9[6-9]|1[01][0-9])\./); // a ClusterIP of 10.96.0.0/12, not the pod
    }
    const removed = result.summary.find((s) => s.change === 'endpoint-removed')!;
    expect(removed.failOpenRepetitions).toBe(2); // connections reached the endpoint for the 20 ms the change took
    expect(removed.failOpenMs!.p50).toBeGreaterThanOrEqual(19);
    expect(result.summary.find((s) => s.change === 'endpoint-added')!.failOpenMs).toBeNull();
    // What was handed over: the initial set, then per repetition 1 → 0 endpoints, 0 → 1, the added Service, and
    // (repetition 2) the added Service taken away again before endpoint-removed starts.
    const shape = (x: ServiceSet) => `${x.services[x.probed]!.endpoints.length}/${x.services.length}`;
    expect(plane.handed.map(shape)).toEqual(['1/5', '0/5', '1/5', '1/6', '1/5', '0/5', '1/5', '1/6']);
    const { formatEnforceSummary } = await import('./format.js');
    const text = formatEnforceSummary(result, null);
    expect(text).toMatch(/blackhole +2 of 2 repetitions: connections still reached the removed endpoint for p50 \d/);
    expect(text).toMatch(/Services: a fake service data plane; first \(full\) sync 1 ms for services 5/);
    expect(text).toMatch(/written per change   rulesWritten 3/);
  });

  it('runs where nothing enforces policy (kube-proxy beside no CNI): the Service changes are measured, the policy ones are not', async () => {
    const { result } = await executeEnforce({ runId: 'abcde', backend: 'local', config: config({ cni: 'none', changes: ['allow-added', 'endpoint-removed'], services: 0, repetitions: 1 }), plane: new FakeServicePlane(5, false, 10) });
    expect(result.status).toBe('not-enforced');
    expect(result.notEnforced).not.toBeNull();
    expect(result.observations.map((o) => o.change)).toEqual(['endpoint-removed']);
    expect(result.summary.map((s) => s.change)).toEqual(['endpoint-removed']);
    const only = await executeEnforce({ runId: 'abcde', backend: 'local', config: config({ cni: 'none', changes: ['endpoint-added'], services: 0, repetitions: 1 }), plane: new FakeServicePlane(5, false, 10) });
    expect(only.result.status).toBe('ok');
    expect(only.result.observations[0]!.enforcedMs).not.toBeNull();
  });

  it('refuses Service changes without a Service set, and on a backend without Service changes, saying what to do', async () => {
    const without = await executeEnforce({ runId: 'abcde', backend: 'local', config: config({ changes: ['endpoint-added'], repetitions: 1 }), plane: new FakeServicePlane(5, true, 5) });
    expect(without.result.status).toBe('failed');
    expect(without.result.errors[0]!.message).toMatch(/need a Service set: add --services N/);
    const noPlane = await executeEnforce({ runId: 'abcde', backend: 'local', config: config({ changes: ['endpoint-added'], services: 3, repetitions: 1 }), plane: new FakePlane(5) });
    expect(noPlane.result.errors[0]!.message).toMatch(/no Service changes in bench enforce yet .*--backend local/);
  });
});

describe('executeEnforce', () => {
  it('measures every change through update(), with the delay the data plane really has', async () => {
    const plane = new FakePlane(15);
    const { result } = await executeEnforce({ runId: 'abcde', backend: 'local', config: config(), plane });
    expect(result.errors).toEqual([]);
    expect(result.status).toBe('ok');
    expect(() => enforceResultSchema.parse(result)).not.toThrow();
    expect(result.observations).toHaveLength(8);
    for (const o of result.observations) {
      expect(o.preconditionHeld, `${o.change} #${o.repetition}`).toBe(true);
      // The flip happens 15 ms after the change; the first new-verdict probe starts within one interval after.
      expect(o.enforcedMs!, o.change).toBeGreaterThanOrEqual(14);
      expect(o.enforcedMs!, o.change).toBeLessThan(15 + 5);
      expect(o.probes.result.length).toBe(o.probes.startUs.length);
    }
    const removed = result.summary.find((s) => s.change === 'allow-removed')!;
    expect(removed.failOpenRepetitions).toBe(2); // traffic passed for the 15 ms the change took
    expect(removed.failOpenMs!.p50).toBeGreaterThanOrEqual(14);
    const newPod = result.summary.find((s) => s.change === 'new-pod')!;
    expect(newPod.failOpenRepetitions).toBe(0);
    expect(newPod.cniAddMs!.count).toBe(2);
    // Starts on the change's state: the joiner's label is put back, the new pods removed, every rep.
    expect(plane.updates.filter((u) => u === 'joiner=bench-client')).toHaveLength(2);
    expect(plane.updates.filter((u) => u === 'joiner=bench-joiner')).toHaveLength(2);
  });

  it('reports a new pod that a denied peer reaches before the agent has run as fail-open', async () => {
    const plane = new FakePlane(20, true, { leakyNewPod: true });
    const { result } = await executeEnforce({ runId: 'abcde', backend: 'local', config: config({ changes: ['new-pod'], repetitions: 1 }), plane });
    const s = result.summary[0]!;
    expect(s.failOpenRepetitions).toBe(1);
    expect(s.failOpenMs!.max).toBeGreaterThanOrEqual(15);
    expect(result.observations[0]!.failOpen!.leaked).toBeGreaterThan(10);
  });

  it('records the other runs live on this machine during it, as bench run does (meta.concurrentRuns)', async () => {
    let asked = 0;
    const otherLiveRuns = () => (++asked === 1 ? ['other1'] : ['other1', 'late2']);
    const { result } = await executeEnforce({ runId: 'abcde', backend: 'local', config: config({ changes: ['allow-added'], repetitions: 1 }), plane: new FakePlane(5), otherLiveRuns });
    expect(result.meta.concurrentRuns).toEqual(['late2', 'other1']);
    expect(enforceResultSchema.parse(JSON.parse(JSON.stringify(result))).meta.concurrentRuns).toEqual(['late2', 'other1']);
  });

  it('a policy that does not fit is said, at install and on the change it broke, not hidden in modelState', async () => {
    const { overflowState } = await import('../results/capacity-overflow.js');
    const { formatEnforceSummary } = await import('./format.js');
    const over = overflowState({ endpoints: 1, summary: 'bench-server/server-0 ingress needs 40002 policy map entries, 16384 fit', advice: 'the map is left stale' });
    // Over capacity from the install on (the closed state already does not fit): the client gets in before the change.
    class OverflowingPlane extends FakePlane {
      override async install(set: PolicySet) {
        const r = await super.install({ ...set, policies: set.policies.filter((p) => p.metadata.labels?.['cni-bench/role'] !== 'allow-client') });
        await super.setPolicies({ policies: [{ metadata: { name: 'stale', labels: { 'cni-bench/role': 'allow-client' } } } as never], peers: [] });
        return { ...r, modelState: { ...r.modelState, ...over } };
      }
      override async setPolicies(set: PolicySet) {
        const c = await super.setPolicies(set);
        return { ...c, report: { ...c.report, state: { ...over } } };
      }
    }
    const { result } = await executeEnforce({ runId: 'abcde', backend: 'local', config: config({ changes: ['allow-added'], repetitions: 1, deadlineMs: 200 }), plane: new OverflowingPlane(5) });
    expect(result.observations[0]!.capacityOverflow).toBe('bench-server/server-0 ingress needs 40002 policy map entries, 16384 fit');
    expect(enforceResultSchema.parse(JSON.parse(JSON.stringify(result))).observations[0]!.capacityOverflow).toMatch(/40002/);
    const text = formatEnforceSummary(result, null);
    expect(text).toMatch(/CAPACITY OVERFLOW at install: bench-server\/server-0 ingress needs 40002 policy map entries, 16384 fit/);
    expect(text).toMatch(/the old verdict was not in place before the change \(the data plane was over its capacity: see CAPACITY OVERFLOW above\)/);
  });

  it('a change never seen ends at the deadline as not enforced, without hanging', async () => {
    const plane = new FakePlane(5, true, { neverEnforce: true });
    const t = performance.now();
    const { result } = await executeEnforce({ runId: 'abcde', backend: 'local', config: config({ changes: ['allow-added'], repetitions: 1, deadlineMs: 150 }), plane });
    expect(performance.now() - t).toBeLessThan(3000);
    expect(result.summary[0]!.notEnforced).toBe(1);
    expect(result.observations[0]!.enforcedMs).toBeNull();
  });

  it('a data plane without a policy engine is reported not enforced, with the evidence, and nothing measured', async () => {
    const { result } = await executeEnforce({ runId: 'abcde', backend: 'local', config: config({ cni: 'flannel' }), plane: new FakePlane(5, false) });
    expect(result.status).toBe('not-enforced');
    expect(result.notEnforced!.probesOpen).toBe(result.notEnforced!.probes);
    expect(result.observations).toEqual([]);
  });
});

/** The local backend's data plane for the enforce workload, as the descriptor builds it. */
const localPlane = (o: { cni: CniName; model?: LocalModel; runner: Runner; cleanupRunner?: Runner; startServer?: ConstructorParameters<typeof LocalBackend>[0]['startServer'] }) =>
  new LocalBackend({ config: runConfigSchema.parse({ cni: o.cni, backend: 'local' }), runId: 'abcde', shape: 'enforce', model: o.model, runner: o.runner, cleanupRunner: o.cleanupRunner, startServer: o.startServer });

describe('LocalBackend under enforce', () => {
  const base: LocalModel = { cni: 'calico', name: 'test model', description: 't', enforcesPolicy: true, attachment: 'routed', hostIfPrefix: 'cali', install: async () => ({}) };

  it('refuses a policy-enforcing model without update(): no full reinstall stands in for a change', () => {
    expect(() => requireChanges(localPlane({ cni: 'calico', model: base, runner: new FakeRunner() }))).toThrow(EnforceUnsupportedError);
    expect(() => requireChanges(localPlane({ cni: 'calico', model: base, runner: new FakeRunner() }))).toThrow(/never a full reinstall/);
  });

  it('hands every change to update() with the new desired state, and a new pod only after its CNI ADD', async () => {
    const seen: Array<{ pods: string[]; labels: Record<string, string>; policies: number }> = [];
    const model: LocalModel = {
      ...base,
      install: async () => ({ rules: 1 }),
      update: async (ctx) => {
        seen.push({ pods: ctx.topology.pods.map((p) => p.name), labels: ctx.inventory.pods.find((p) => p.name === 'joiner')!.labels, policies: ctx.endpoints.find((e) => e.pod.name === 'server-0')!.ingress.policies.length });
        return { agentMs: 1, compileMs: 0.5, applyMs: 0.5, changed: {}, state: {} };
      },
    };
    const runner = new FakeRunner();
    const plane = localPlane({ cni: 'calico', model, runner, cleanupRunner: runner, startServer: async () => ({ pid: 1, exited: new Promise(() => undefined), stop: async () => undefined }) });
    const { enforcePolicies } = await import('./plan.js');
    const sets = enforcePolicies({ policies: 2, matchPosition: 'last', seed: 1 });
    await plane.up(enforceWorkload({ policies: 2, matchPosition: 'last', seed: 1 }));
    // up() announces the run (a real lock file under /run/cni-bench): down() must release it, pass or fail.
    onTestFinished(() => plane.down());
    await plane.install(sets.closed);
    const changes = requireChanges(plane);
    await changes.setPolicies(sets.open);
    await changes.setLabels('bench-client/joiner', { app: 'bench-client' });
    const pod = await changes.preparePod(newServerPod('new-0'));
    expect(seen.at(-1)!.pods).not.toContain('new-0');
    const before = runner.log.length;
    const applied = await pod.attach();
    const attachCmds = runner.log.slice(before).map((r) => r.argv.join(' '));
    // Pod side first: the node's route to the pod is added after the pod has its address.
    const addr = attachCmds.findIndex((c) => c.includes('addr add 10.244.1.3/32'));
    const route = attachCmds.findIndex((c) => c.includes('route add 10.244.1.3/32'));
    expect(addr).toBeGreaterThan(0);
    expect(route).toBeGreaterThan(addr);
    expect(applied.attachMs).toBeGreaterThanOrEqual(0);
    expect(seen.at(-1)!.pods).toContain('new-0');
    expect(seen.map((s) => s.policies)).toEqual([4, 4, 4]);
    expect(seen[1]!.labels).toEqual({ app: 'bench-client' });
    await pod.remove();
    expect(seen.at(-1)!.pods).not.toContain('new-0');
  });
});

describe('timeoutFromCalibration', () => {
  it('is 5 × p99 of allowed connects, at least 10 ms', () => {
    const t = (latUs: number) => ({ startUs: Array.from({ length: 100 }, (_, i) => i * 1000), endUs: Array.from({ length: 100 }, (_, i) => i * 1000 + latUs), result: Array(100).fill('open') });
    expect(timeoutFromCalibration(t(200))).toBe(10);
    expect(timeoutFromCalibration(t(6000))).toBe(30);
    expect(() => timeoutFromCalibration({ startUs: [0], endUs: [10], result: ['ETIMEDOUT'] })).toThrow(/no allowed connect/);
  });
});

describe('planEnforceDry', () => {
  it('plans the topology, the install, every change and its watch command lines without running anything', async () => {
    const { DryRunRunner } = await import('../exec/runner.js');
    const { planEnforceDry } = await import('./run.js');
    const runner = new DryRunRunner();
    const plane = localPlane({ cni: 'cilium', runner, cleanupRunner: runner });
    const lines = await planEnforceDry(plane, config({ cni: 'cilium' }));
    expect(lines.filter((l) => l.includes('cb-probe watch'))).toHaveLength(5);
    expect(lines.some((l) => l.startsWith('new-pod:') && l.includes('cb-abcde-p2'))).toBe(true); // the intruder
    const cmds = runner.log.map((r) => r.argv.join(' '));
    expect(cmds.some((c) => c.includes('ip netns add cb-abcde-rnew0'))).toBe(true);
    expect(cmds.filter((c) => c.includes('ip netns delete')).length).toBeGreaterThan(5);
  });
});
