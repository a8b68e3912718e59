import { describe, expect, it } from 'vitest';
import { choosePlacement, cpuMask, planRpsPinning } from './placement.js';

describe('CPU placement', () => {
  it('auto: one CPU, the last, with the reason', () => {
    const p = choosePlacement('auto', 2);
    expect(p).toMatchObject({ mode: 'auto', cpus: [1] });
    expect(p.reason).toMatch(/cross-CPU wake-ups cost tens of µs/);
    expect(p.softirq).toMatch(/rps_cpus.*CPU 1/);
    expect(choosePlacement('auto', 1).cpus).toEqual([0]);
  });

  it('explicit and off', () => {
    expect(choosePlacement(0, 4)).toMatchObject({ mode: 'explicit', cpus: [0] });
    expect(choosePlacement('off', 4)).toMatchObject({ mode: 'off', cpus: null });
  });

  it('rps masks as sysfs writes them', () => {
    expect(cpuMask(0)).toBe('1');
    expect(cpuMask(1)).toBe('2');
    expect(cpuMask(31)).toBe('80000000');
    expect(cpuMask(33)).toBe('2,00000000');
  });

  it('writes rps_cpus inside the run namespaces only, mask and path as arguments', () => {
    const cmds = planRpsPinning([{ netns: 'cb-abcde-n1', dev: 'eth0' }], 1);
    expect(cmds).toEqual([{ argv: ['sh', '-c', 'printf %s "$1" > "$2"', 'rps', '2', '/sys/class/net/eth0/queues/rx-0/rps_cpus'], netns: 'cb-abcde-n1', purpose: 'steer eth0 receive softirq to CPU 1' }]);
  });
});

describe('--pin-cpu parsing', () => {
  it('defaults to auto; accepts off, auto and a CPU number; names the choices on a bad value', async () => {
    const { resolveRunConfig } = await import('../config/load.js');
    expect(resolveRunConfig({ cni: 'none' }).config!.pinCpu).toBe('auto');
    expect(resolveRunConfig({ cni: 'none', pinCpu: 'off' }).config!.pinCpu).toBe('off');
    expect(resolveRunConfig({ cni: 'none', pinCpu: '0' }).config!.pinCpu).toBe(0);
    const bad = resolveRunConfig({ cni: 'none', pinCpu: 'fast' });
    expect(bad.config).toBeUndefined();
    expect(bad.problems[0]!.message).toMatch(/whole number, 'auto' or 'off'/);
  });
});
