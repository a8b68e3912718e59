// The orchestrator, verdicts and outputs against fake grids that answer from the reference (a perfect data
// plane), connect everything (no policy engine), drop except clauses, flake, or fail.
import { XMLParser, XMLValidator } from 'fast-xml-parser';
import { describe, expect, it } from 'vitest';
import { ipBlockContains } from '../policy/cidr.js';
import { PolicyEvaluator } from '../policy/evaluate.js';
import type { Inventory, NetworkPolicy } from '../policy/types.js';
import { BUILTIN_CASES_DIR, loadCases, type VerifyCase } from './cases.js';
import type { Attempt } from './expect.js';
import { gridInventory, gridLayout, gridLayoutOf, gridWorkload, type GridAddresses, type ProbeSpec } from './grid.js';
import { plannedAddresses } from '../backends/factory.js';
import { verifyJson, verifyJunit } from './output.js';
import { renderCase, renderMatrix, renderSummary } from './render.js';
import { runVerify, type VerifyPlane } from './run.js';
import { peerPodInfo, type PolicySet } from '../policy/generate.js';
import type { Workload } from '../workload/workload.js';
import { InterruptedError } from '../errors.js';

const layout = gridLayout();
const addresses = await plannedAddresses(gridWorkload(layout));
const library = loadCases([BUILTIN_CASES_DIR], { layout, ips: addresses.ips }).cases;
const only = (...names: string[]) => library.filter((c) => names.includes(c.name));

type Decide = (p: ProbeSpec, ctx: { evaluator: PolicyEvaluator; inventory: Inventory; policies: NetworkPolicy[]; call: number }) => Attempt | Promise<Attempt>;

class FakeGrid implements VerifyPlane {
  readonly name = 'local' as const;
  readonly cni = 'calico' as const;
  readonly settleMs = 300;
  private workload?: Workload;
  upCalls = 0;
  downCalls = 0;
  applied: NetworkPolicy[][] = [];
  private evaluator?: PolicyEvaluator;
  private inventory?: Inventory;
  private calls = new Map<string, number>();
  constructor(
    private readonly decide: Decide,
    readonly model = { name: 'fake', description: 'a fake data plane', enforcesPolicy: true },
    private readonly failApply?: string,
  ) {}
  async up(workload: Workload): Promise<GridAddresses> {
    this.upCalls++;
    this.workload = workload;
    return addresses;
  }
  /** The data plane's view: the grid where it put it, and the set's address-only peers. */
  async install(set: PolicySet) {
    const inventory = gridInventory(gridLayoutOf(this.workload!), addresses);
    inventory.pods.push(...set.peers.map((p) => peerPodInfo(p, p.ip!, 'virtual-peers')));
    return { modelState: await this.applyPolicies(set.policies, inventory), installMs: 0 };
  }
  async applyPolicies(policies: NetworkPolicy[], inventory: Inventory) {
    if (this.failApply) throw new Error(this.failApply);
    this.applied.push(policies);
    this.evaluator = new PolicyEvaluator(inventory, policies);
    this.inventory = inventory;
    this.calls.clear();
    return { policies: policies.length };
  }
  async probe(p: ProbeSpec): Promise<Attempt> {
    const key = `${p.from}|${p.to}|${p.protocol}|${p.port}`;
    const call = (this.calls.get(key) ?? 0) + 1;
    this.calls.set(key, call);
    return this.decide(p, { evaluator: this.evaluator!, inventory: this.inventory!, policies: this.applied[this.applied.length - 1]!, call });
  }
  async down() {
    this.downCalls++;
  }
}

const endpointOf = (inv: Inventory, id: string) => inv.pods.find((p) => `${p.namespace}/${p.name}` === id) ?? { ip: addresses.ips[id]! };
const asSpec: Decide = (p, { evaluator, inventory }) => {
  const v = evaluator.evaluate({ src: endpointOf(inventory, p.from), dst: endpointOf(inventory, p.to), protocol: p.protocol, port: p.port });
  return v.allowed ? { outcome: 'connected', reason: 'open' } : { outcome: 'blocked', reason: 'timeout ETIMEDOUT' };
};
const everythingConnects: Decide = () => ({ outcome: 'connected', reason: 'open' });

describe('runVerify', () => {
  it('a data plane that does what the specification says passes every case: "enforced", exit-worthy of 0', async () => {
    const grid = new FakeGrid(asSpec);
    const report = await runVerify({ plane: grid, workload: gridWorkload(layout), cases: library });
    expect(report.cases.map((c) => c.status)).toEqual(library.map(() => 'pass'));
    expect(report.verdict).toMatchObject({ kind: 'enforced', text: 'enforced', cases: 17, failed: 0, probes: 13 * 414 + 120 + 40 + 40 + 38 });
    expect(grid.upCalls).toBe(1);
    expect(grid.downCalls).toBe(1);
    expect(grid.applied).toHaveLength(17);
  });

  it('a data plane without a policy engine is "NOT ENFORCED": every expected deny connected', async () => {
    const grid = new FakeGrid(everythingConnects, { name: 'flannel-like', description: 'no engine', enforcesPolicy: false });
    const report = await runVerify({ plane: grid, workload: gridWorkload(layout), cases: library, retries: 0 });
    expect(report.verdict.kind).toBe('not-enforced');
    expect(report.verdict.text).toBe('NOT ENFORCED — policies are accepted but have no effect');
    // The one case that expects no deny passes even here.
    expect(report.cases.filter((c) => c.status === 'pass').map((c) => c.name)).toEqual(['selects-no-pod']);
    const dd = report.cases.find((c) => c.name === 'default-deny-ingress')!;
    expect(dd.mismatches).toHaveLength(120);
    expect(new Set(dd.mismatches.map((m) => m.kind))).toEqual(new Set(['expected deny but connected']));
  });

  it('a compiler that drops ipBlock except clauses is caught as "expected deny but connected" for the excepted host', async () => {
    const dropExcept: Decide = (p, ctx) => {
      const stripped = ctx.policies.map((pol) => JSON.parse(JSON.stringify(pol).replace(/,"except":\[[^\]]*\]/g, '')) as NetworkPolicy);
      const evaluator = new PolicyEvaluator(ctx.inventory, stripped);
      return asSpec(p, { ...ctx, evaluator });
    };
    const report = await runVerify({ plane: new FakeGrid(dropExcept), workload: gridWorkload(layout), cases: library });
    expect(report.verdict).toMatchObject({ kind: 'partially-enforced', text: 'partially enforced: 1 of 17 cases differ' });
    const c = report.cases.find((r) => r.status !== 'pass')!;
    expect(c.name).toBe('ipblock-except');
    expect(c.mismatches.map((m) => `${m.kind}: ${m.from} -> ${m.to} ${m.protocol}/${m.port}`).sort()).toEqual([
      'expected deny but connected: ext2 -> x/a TCP/80',
      'expected deny but connected: ext2 -> x/a TCP/81',
      'expected deny but connected: ext2 -> x/a UDP/80',
      'expected deny but connected: ext2 -> x/a UDP/81',
      'expected deny but connected: y/a -> ext2 TCP/80',
      'expected deny but connected: y/a -> ext2 UDP/80',
    ]);
    expect(c.mismatches.every((m) => m.attempts === 3)).toBe(true);
    expect(ipBlockContains({ cidr: '172.18.0.240/28', except: ['172.18.0.241/32'] }, addresses.ips.ext2!)).toBe(false);
  });

  it('retries a probe that disagrees: a flake that clears passes and is listed as flaky; one that persists fails', async () => {
    const flaky: Decide = (p, ctx) => (p.from === 'z/a' && p.to === 'z/b' && p.port === 80 && ctx.call === 1 ? { outcome: 'blocked', reason: 'timeout ETIMEDOUT' } : asSpec(p, ctx));
    const r1 = await runVerify({ plane: new FakeGrid(flaky), workload: gridWorkload(layout), cases: only('default-deny-ingress') });
    expect(r1.cases[0]!.status).toBe('pass');
    expect(r1.cases[0]!.flaky.map((f) => `${f.from}>${f.to} ${f.protocol}/${f.port}`).sort()).toEqual(['z/a>z/b TCP/80', 'z/a>z/b UDP/80']);

    const broken: Decide = (p, ctx) => (p.from === 'z/a' && p.to === 'z/b' && p.protocol === 'TCP' && p.port === 80 ? { outcome: 'blocked', reason: 'timeout ETIMEDOUT' } : asSpec(p, ctx));
    const r2 = await runVerify({ plane: new FakeGrid(broken), workload: gridWorkload(layout), cases: only('default-deny-ingress'), retries: 1 });
    expect(r2.cases[0]!.mismatches).toEqual([{ from: 'z/a', to: 'z/b', protocol: 'TCP', port: 80, kind: 'expected allow but blocked', reason: 'timeout ETIMEDOUT', attempts: 2 }]);
    expect(r2.verdict.text).toBe('partially enforced: 1 of 1 cases differ');
  });

  it('waits for the data plane: readiness probes poll until the new policy set shows', async () => {
    let applies = 0;
    let readyAt = 0;
    const slow: Decide = (p, ctx) => (performance.now() < readyAt ? { outcome: 'connected', reason: 'open' } : asSpec(p, ctx));
    const grid = new FakeGrid(slow);
    const apply = grid.applyPolicies.bind(grid);
    grid.applyPolicies = async (pols, inv) => {
      applies++;
      readyAt = performance.now() + 150;
      return apply(pols, inv);
    };
    const report = await runVerify({ plane: grid, workload: gridWorkload(layout), cases: only('default-deny-ingress') });
    expect(applies).toBe(1);
    expect(report.cases[0]!.status).toBe('pass');
    // Polled every 100 ms from when install() returned, which is after readyAt was set: the wait reads 200 ms, or
    // 100 ms when the test process stalled 50–150 ms between the two (a busy 2-CPU machine running test files in
    // parallel); ≥ 140 failed then. Without the wait it reads ~0 ms (and the case fails).
    expect(report.cases[0]!.timings.readyMs).toBeGreaterThanOrEqual(95);
  });

  it('a data plane that ran out of policy-map room says so in the case notes, next to the differences it causes', async () => {
    const grid = new FakeGrid(everythingConnects);
    const apply = grid.applyPolicies.bind(grid);
    grid.applyPolicies = async (pols, inv) => ({ ...(await apply(pols, inv)), capacityOverflowEndpoints: 1, capacityOverflow: 'x/a needs 18052 policy-map entries, capacity 16384: map sync skipped' });
    const report = await runVerify({ plane: grid, workload: gridWorkload(layout), cases: only('port-range') });
    expect(report.cases[0]!.status).toBe('fail');
    expect(report.cases[0]!.notes).toContain('capacity overflow: x/a needs 18052 policy-map entries, capacity 16384: map sync skipped');
  });

  it('reports a case whose policies cannot be applied as an error and goes on with the next', async () => {
    const grid = new FakeGrid(asSpec, undefined, 'policy map full (capacity 16384)');
    const report = await runVerify({ plane: grid, workload: gridWorkload(layout), cases: only('port-range', 'named-ports') });
    expect(report.cases.map((c) => [c.status, c.error])).toEqual([
      ['error', 'applying the policies failed: policy map full (capacity 16384)'],
      ['error', 'applying the policies failed: policy map full (capacity 16384)'],
    ]);
    expect(report.verdict.kind).toBe('partially-enforced');
  });

  it('tears the grid down when interrupted', async () => {
    const ctl = new AbortController();
    const grid = new FakeGrid((p, ctx) => {
      ctl.abort(new Error('interrupted by SIGINT'));
      return asSpec(p, ctx);
    });
    await expect(runVerify({ plane: grid, workload: gridWorkload(layout), cases: library, signal: ctl.signal })).rejects.toBeInstanceOf(InterruptedError);
    expect(grid.downCalls).toBe(1);
  });

  it('reports a case whose probes give no verdict as an error, stops its probes, and goes on', async () => {
    let inFlight = 0;
    let maxAfterFailure = 0;
    let failed = false;
    const grid = new FakeGrid(async (p, ctx) => {
      if (ctx.policies.length === 1 && ctx.policies[0]!.metadata.name === 'tcp-81-to-90') {
        inFlight++;
        await new Promise((r) => setTimeout(r, 1));
        inFlight--;
        if (failed) maxAfterFailure++;
        if (p.from === 'x/c') {
          failed = true;
          throw new Error('cb-probe check gave no verdict');
        }
      }
      return asSpec(p, ctx);
    });
    const report = await runVerify({ plane: grid, workload: gridWorkload(layout), cases: only('port-range', 'selects-no-pod'), parallelism: 4 });
    expect(report.cases.map((c) => [c.name, c.status, c.error])).toEqual([
      ['port-range', 'error', 'probing failed: cb-probe check gave no verdict'],
      ['selects-no-pod', 'pass', undefined],
    ]);
    // Only the probes already in flight finish after the failure; none start.
    expect(maxAfterFailure).toBeLessThanOrEqual(3);
    expect(inFlight).toBe(0);
    expect(grid.downCalls).toBe(1);
  });
});

describe('output', () => {
  const cases: VerifyCase[] = [
    ...only('ipblock-except', 'selects-no-pod'),
    { ...only('selects-no-pod')[0]!, name: 'escapes', description: 'a <b> & "c" \u0001 — ü' },
  ];

  it('writes JUnit XML that parses: one testcase per case, failures with the mismatches, properties with the verdict', async () => {
    const dropExcept: Decide = (p, ctx) => (p.from === 'ext2' || p.to === 'ext2' ? { outcome: 'connected', reason: 'open' } : asSpec(p, ctx));
    const report = await runVerify({ plane: new FakeGrid(dropExcept), workload: gridWorkload(layout), cases });
    const xml = verifyJunit(report, layout);
    expect(XMLValidator.validate(xml)).toBe(true);
    const doc = new XMLParser({ ignoreAttributes: false, attributeNamePrefix: '' }).parse(xml);
    const suite = doc.testsuites.testsuite;
    expect(suite).toMatchObject({ tests: '3', failures: '1', errors: '0' });
    expect(suite.properties.property).toContainEqual({ name: 'verdict', value: 'partially enforced: 1 of 3 cases differ' });
    expect(suite.testcase.map((t: { name: string }) => t.name)).toEqual(['ipblock-except', 'selects-no-pod', 'escapes']);
    expect(suite.testcase[0].failure.message).toBe('6 of 414 probes differ from the NetworkPolicy specification');
    expect(suite.testcase[0].failure['#text']).toContain('expected deny but connected: ext2 -> x/a TCP/80');
    expect(suite.testcase[1].failure).toBeUndefined();
    expect(suite.testcase[2]['system-out']).toContain('a <b> & "c" \uFFFD — ü');
  });

  it('JSON carries the verdict, every probe and the mismatches', async () => {
    const report = await runVerify({ plane: new FakeGrid(everythingConnects), workload: gridWorkload(layout), cases: only('port-range') });
    const json = JSON.parse(JSON.stringify(verifyJson(report)));
    expect(json).toMatchObject({ kind: 'cni-bench/verify', cni: 'calico', verdict: { kind: 'not-enforced' } });
    expect(json.cases[0].results).toHaveLength(414);
    expect(json.cases[0].results[0]).toEqual({ from: 'x/a', to: 'x/b', protocol: 'TCP', port: 80, expected: 'allow', observed: 'connected', attempts: 1, reason: 'open' });
    expect(json.cases[0].mismatches).toHaveLength(32);
  });

  it('renders a matrix a person can read: C where a denied connection went through', async () => {
    const report = await runVerify({ plane: new FakeGrid(everythingConnects), workload: gridWorkload(layout), cases: only('port-range'), retries: 0 });
    const m = renderMatrix(layout, report.cases[0]!.probes);
    expect(m.split('\n').slice(0, 3)).toEqual([
      '      x/a   x/b   x/c   y/a   y/b   y/c   z/a   z/b   z/c   dns  ext1  ext2',
      'x/a   ----  ....  ....  ....  ....  ....  ....  ....  ....  ..   ..    ..',
      'x/b   C.CC  ----  ....  ....  ....  ....  ....  ....  ....  ..   ..    ..',
    ]);
    expect(m.split('\n').at(-1)).toBe('ext2  CCCC  ....  ....  ....  ....  ....  ....  ....  ....  --   --    --');
    expect(renderCase(layout, report.cases[0]!)).toMatch(/^FAIL  port-range — 414 probes, 32 differ/);
    expect(renderSummary(report)).toMatch(/NOT ENFORCED — policies are accepted but have no effect/);
  });
});
