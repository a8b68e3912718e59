import { describe, expect, it } from 'vitest';
import { PROBE_BIN, NativeProbeError, parseWatchOutput, planWatch } from '../probe/native.js';
import { parseEnforceFlags } from '../cli/commands/enforce-flags.js';

describe('planWatch', () => {
  it('builds the watch argv in the source pod', () => {
    const spec = planWatch({ netns: 'cb-abcde-p0', target: '10.244.1.2', port: 8080, intervalUs: 500, timeoutMs: 12, maxMs: 3000, until: 'closed', settle: 4, realtime: true });
    expect(spec.netns).toBe('cb-abcde-p0');
    expect(spec.argv).toEqual([PROBE_BIN, 'watch', '--target', '10.244.1.2', '--port', '8080', '--interval-us', '500', '--timeout-ms', '12', '--max-ms', '3000', '--until', 'closed', '--settle', '4', '--realtime']);
    expect(spec.timeoutMs).toBeGreaterThan(3000);
  });
  it('rejects settings outside the probe’s range', () => {
    expect(() => planWatch({ netns: 'n', target: '10.0.0.1', port: 1, intervalUs: 10, timeoutMs: 10, maxMs: 10 })).toThrow(NativeProbeError);
    expect(() => planWatch({ netns: 'n', target: 'nope', port: 1, intervalUs: 1000, timeoutMs: 10, maxMs: 10 })).toThrow(/target/);
  });
});

describe('parseWatchOutput', () => {
  const json = { mode: 'watch', base_ns: '9007199254740993123', interval_ns: 1000000, timeout_ns: 10000000, settled_index: 3, realtime: true, start_ns: [1, 1000001], end_ns: [50, 1000070], result: ['ETIMEDOUT', 'open'] };
  it('keeps the base as a BigInt (CLOCK_MONOTONIC ns exceed 2^53 on long uptimes)', () => {
    const o = parseWatchOutput(`watching 9007199254740993123\n${JSON.stringify(json)}\n`);
    expect(o.baseNs).toBe(9007199254740993123n);
    expect(o.result).toEqual(['ETIMEDOUT', 'open']);
    expect(o.settledIndex).toBe(3);
  });
  it('says what is wrong with bad output', () => {
    expect(() => parseWatchOutput('watching 1\n')).toThrow(/no JSON/);
    expect(() => parseWatchOutput(JSON.stringify({ ...json, end_ns: [1] }))).toThrow(/2 starts, 1 ends/);
    expect(() => parseWatchOutput(JSON.stringify({ ...json, result: ['maybe', 'open'] }))).toThrow(NativeProbeError);
  });
});

describe('parseEnforceFlags', () => {
  it('defaults: all four changes, 1 ms cadence, auto timeout, local', () => {
    const r = parseEnforceFlags({ cni: 'cilium' });
    expect(r.ok && r.value).toMatchObject({ policies: 0, repetitions: 5, intervalUs: 1000, probeTimeoutMs: 'auto', backend: 'local', changes: ['allow-added', 'allow-removed', 'new-pod', 'peer-joins'] });
  });
  it('reports every problem at once, in flag words', () => {
    const r = parseEnforceFlags({ cni: 'x', policies: '-1', intervalUs: '2000', changes: 'allow-added,bogus', probeTimeoutMs: 'soon' });
    expect(r.ok).toBe(false);
    if (r.ok) return;
    expect(r.problems.map((p) => p.where).sort()).toEqual(['--changes', '--cni', '--interval-us', '--policies', '--probe-timeout-ms']);
  });
  it("--bpf-policy-debug: Felix's rule-id records on calico-ebpf's policy programs, as bench run takes it; refused for another CNI", () => {
    const off = parseEnforceFlags({ cni: 'calico-ebpf', bpfPolicyDebug: 'off' });
    expect(off.ok && off.value.bpfPolicyDebug).toBe('off');
    const dflt = parseEnforceFlags({ cni: 'calico-ebpf' });
    expect(dflt.ok && dflt.value.bpfPolicyDebug).toBe('on');
    const bad = parseEnforceFlags({ cni: 'calico-ebpf', bpfPolicyDebug: 'maybe' });
    expect(!bad.ok && bad.problems.map((p) => p.where)).toEqual(['--bpf-policy-debug']);
    const other = parseEnforceFlags({ cni: 'cilium', bpfPolicyDebug: 'off' });
    expect(!other.ok && other.problems[0]).toMatchObject({ where: '--bpf-policy-debug', message: expect.stringMatching(/applies to calico-ebpf only/) });
  });
  it('kind is accepted; cluster needs an explicit target; none and --pin-cpu are local only', () => {
    expect(parseEnforceFlags({ cni: 'calico', backend: 'kind' }).ok).toBe(true);
    expect(parseEnforceFlags({ cni: 'calico', backend: 'cluster', context: 'ctx' }).ok).toBe(true);
    const noTarget = parseEnforceFlags({ cni: 'calico', backend: 'cluster' });
    expect(!noTarget.ok && noTarget.problems[0]).toMatchObject({ where: '--context', message: expect.stringMatching(/explicit --context/) });
    const none = parseEnforceFlags({ cni: 'none', backend: 'kind' });
    expect(!none.ok && none.problems[0]!.where).toBe('--cni');
    const pin = parseEnforceFlags({ cni: 'cilium', backend: 'kind', pinCpu: '1' });
    expect(!pin.ok && pin.problems[0]!.where).toBe('--pin-cpu');
  });
});
