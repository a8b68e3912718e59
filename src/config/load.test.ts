import { describe, expect, it } from 'vitest';
import { parseScenario, resolveRunConfig } from './load.js';
import { MAX_POLICIES } from './schema.js';

const where = (ps: { where: string }[]) => ps.map((p) => p.where);

describe('resolveRunConfig from flags', () => {
  it('applies defaults', () => {
    const { config, problems } = resolveRunConfig({ cni: 'flannel', policies: '5000' });
    expect(problems).toEqual([]);
    expect(config).toMatchObject({ cni: 'flannel', policies: 5000, backend: 'auto', samples: 10000, warmup: 1000, concurrency: 1, placement: 'cross-node', matchPosition: 'last', seed: 1 });
  });

  it('reports every problem at once', () => {
    const { config, problems } = resolveRunConfig({ cni: 'weave', policies: '-3', samples: 'many', placement: 'moon' });
    expect(config).toBeUndefined();
    expect(where(problems).sort()).toEqual(['--cni', '--placement', '--policies', '--samples']);
    expect(problems.find((p) => p.where === '--cni')!.message).toMatch(/none, flannel, calico, cilium/);
    expect(problems.find((p) => p.where === '--policies')!.message).toMatch(/at least 0.*-3/);
    expect(problems.find((p) => p.where === '--samples')!.message).toMatch(/whole number.*'many'/);
  });

  it('rejects non-integer and too-large policy counts, naming the maximum', () => {
    expect(resolveRunConfig({ cni: 'none', policies: '2.5' }).problems[0]!.message).toMatch(/whole number/);
    const big = resolveRunConfig({ cni: 'none', policies: String(MAX_POLICIES + 1) });
    expect(big.problems[0]!.message).toContain(String(MAX_POLICIES));
  });

  it("bounds --policy-map-capacity as Cilium bounds bpf.policyMapMax (256..65536) and defaults lockdown off", () => {
    expect(resolveRunConfig({ cni: 'cilium', policies: '1', policyMapCapacity: '255' }).problems[0]!.message).toMatch(/at least 256/);
    expect(resolveRunConfig({ cni: 'cilium', policies: '1', policyMapCapacity: '65537' }).problems[0]!.message).toMatch(/at most 65536/);
    expect(resolveRunConfig({ cni: 'cilium', policies: '1', policyMapCapacity: '65536' }).config?.policyMapCapacity).toBe(65536);
    expect(resolveRunConfig({ cni: 'cilium', policies: '1' }).config).toMatchObject({ policyMapCapacity: 16384, endpointLockdownOnPolicyOverflow: false });
    expect(resolveRunConfig({ cni: 'cilium', policies: '1', endpointLockdownOnPolicyOverflow: true }).config?.endpointLockdownOnPolicyOverflow).toBe(true);
  });

  it('requires a CNI', () => {
    expect(resolveRunConfig({ policies: '3' }).problems).toEqual([{ missing: true, where: '--cni', message: expect.stringMatching(/required/) }]);
  });

  it('checks concurrency against samples', () => {
    expect(where(resolveRunConfig({ cni: 'none', samples: '4', concurrency: '8' }).problems)).toEqual(['--concurrency']);
  });
});

describe('scenario files', () => {
  it('reports unknown keys with file, line and column', () => {
    const text = 'cni: calico\npolicies: 100\nsampels: 10\n';
    const { problems } = parseScenario('scenarios/x.yaml', text);
    expect(problems).toHaveLength(1);
    expect(problems[0]!.where).toBe('scenarios/x.yaml:3:1');
    expect(problems[0]!.message).toMatch(/unknown key 'sampels'/);
  });

  it('reports bad values at their line', () => {
    const { problems } = parseScenario('s.yaml', 'cni: calico\n\npolicies: -1\nplacement: up\n');
    expect(where(problems)).toEqual(['s.yaml:3:11', 's.yaml:4:12']);
  });

  it('reports YAML syntax errors with a position', () => {
    const { problems } = parseScenario('s.yaml', 'cni: [calico\n');
    expect(problems[0]!.where).toMatch(/^s\.yaml:\d+:\d+$/);
    expect(problems[0]!.message).toMatch(/YAML syntax/);
  });

  it('lets flags override the scenario', () => {
    const { scenario } = parseScenario('s.yaml', 'cni: calico\npolicies: 100\nsamples: 500\n');
    const { config } = resolveRunConfig({ policies: '7' }, { path: 's.yaml', scenario: scenario! });
    expect(config).toMatchObject({ cni: 'calico', policies: 7, samples: 500 });
  });

  it('tells bench run that lists belong to bench sweep', () => {
    const { scenario } = parseScenario('s.yaml', 'cni: [calico, cilium]\npolicies: [0, 100]\n');
    const r = resolveRunConfig({}, { path: 's.yaml', scenario: scenario! });
    expect(r.problems.map((p) => p.message).join('\n')).toMatch(/use bench sweep/);
    const picked = resolveRunConfig({ cni: 'cilium', policies: '100' }, { path: 's.yaml', scenario: scenario! });
    expect(picked.config).toMatchObject({ cni: 'cilium', policies: 100 });
  });

  it('takes the iptables backend from a flag or a scenario, nft by default (what Felix auto-detects on current nodes)', () => {
    expect(resolveRunConfig({ cni: 'calico' }).config?.iptablesBackend).toBe('nft');
    expect(resolveRunConfig({ cni: 'calico', iptablesBackend: 'legacy' }).config?.iptablesBackend).toBe('legacy');
    const { scenario } = parseScenario('s.yaml', 'cni: canal\niptablesBackend: legacy\n');
    expect(resolveRunConfig({}, { path: 's.yaml', scenario: scenario! }).config).toMatchObject({ cni: 'canal', iptablesBackend: 'legacy' });
    expect(resolveRunConfig({ cni: 'calico', iptablesBackend: 'xt' }).problems[0]).toMatchObject({ where: '--iptables-backend' });
  });
});

describe('flag strings of number settings (read off the run config schema)', () => {
  it('become numbers; a setting that also takes words keeps them, and says so when given neither', () => {
    expect(resolveRunConfig({ cni: 'none', timeoutMs: '250', pinCpu: 'off', policyMapCapacity: '512' }).config).toMatchObject({ timeoutMs: 250, pinCpu: 'off', policyMapCapacity: 512 });
    expect(resolveRunConfig({ cni: 'none', pinCpu: 'auto' }).config?.pinCpu).toBe('auto');
    const { problems } = resolveRunConfig({ cni: 'none', pinCpu: 'first', seed: '1.5', placement: '3' });
    expect(problems).toEqual([
      { where: '--pin-cpu', message: "expected a whole number, 'auto' or 'off', got 'first'" },
      { where: '--seed', message: "expected a whole number, got '1.5'" },
      { where: '--placement', message: 'must be one of cross-node, same-node, got "3"' },
    ]);
  });
});
