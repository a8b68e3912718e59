import { describe, expect, it } from 'vitest';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { ksoftirqdPids, softirqCharging, windowCpu } from './cpu.js';
import { tempDir } from '../test-support/temp.js';

const charging = softirqCharging('CONFIG_HZ=250\n# CONFIG_IRQ_TIME_ACCOUNTING is not set\n');

describe('windowCpu: CPU per operation from the task clocks of one window', () => {
  const reading = { wallNs: 50_000_000, cpuNs: 20_000_000, cpuClockResNs: 1, tickNs: 4_000_000, accounted: [{ pid: 10, ns: 15_000_000 }, { pid: 14, ns: 1_000_000 }] };

  it('adds client, server and ksoftirqd, per operation, and states the resolution of one window', () => {
    const c = windowCpu(reading, { ops: 1000, concurrency: 1, serverPid: 10, softirqPids: [14], cpus: 1, softirq: charging })!;
    expect(c.totalUsPerOp).toBeCloseTo(36);
    expect(c.probeClientUsPerOp).toBeCloseTo(20);
    expect(c.probeServerUsPerOp).toBeCloseTo(15);
    expect(c.softirqUsPerOp).toBeCloseTo(1);
    expect(c.wallUsPerOp).toBeCloseTo(50);
    // One operation's CPU (36 µs) in flight at each edge: 72 µs over 1000 operations.
    expect(c.resolutionUsPerOp).toBeCloseTo(0.072, 3);
    expect(c.dataPlaneUsPerOp).toBeNull();
    expect(c.dataPlane).toMatch(/not separable/);
    expect(c.includes).toMatch(/no CONFIG_IRQ_TIME_ACCOUNTING/);
  });

  it('off one CPU, a running task may lag by a tick at each edge: the resolution says so', () => {
    const c = windowCpu(reading, { ops: 1000, concurrency: 1, serverPid: 10, softirqPids: [14], cpus: 2, softirq: charging })!;
    expect(c.resolutionUsPerOp).toBeGreaterThan(16);
  });

  it('BPF run time is the data plane where it is counted; a missing server or an older probe has no figure', () => {
    const c = windowCpu({ ...reading, bpf: { programs: 4, runNs: 3_000_000 } }, { ops: 1000, concurrency: 1, serverPid: 10, softirqPids: [14], cpus: 1, softirq: charging })!;
    expect(c.dataPlaneUsPerOp).toBeCloseTo(3);
    expect(c.bpfUsPerOp).toBeCloseTo(3);
    const gone = windowCpu({ ...reading, accounted: [{ pid: 10, ns: null }] }, { ops: 1000, concurrency: 1, serverPid: 10, softirqPids: [], cpus: 1, softirq: charging })!;
    expect(gone.probeServerUsPerOp).toBeNull();
    expect(windowCpu({ wallNs: 1 }, { ops: 10, concurrency: 1, serverPid: null, softirqPids: [], cpus: 1, softirq: charging })).toBeNull();
  });
});

describe('softirqCharging', () => {
  it('reads CONFIG_IRQ_TIME_ACCOUNTING', () => {
    expect(charging.inTasks).toBe(true);
    expect(softirqCharging('CONFIG_IRQ_TIME_ACCOUNTING=y\n').inTasks).toBe(false);
    expect(softirqCharging(null).inTasks).toBeNull();
  });
});

describe('ksoftirqdPids', () => {
  it('finds ksoftirqd/<cpu> by its comm, in CPU order', () => {
    const root = tempDir('cb-proc-');
    for (const [pid, comm] of [[14, 'ksoftirqd/0'], [24, 'ksoftirqd/1'], [30, 'bash'], [31, 'ksoftirqd/10']] as const) {
      mkdirSync(join(root, String(pid)));
      writeFileSync(join(root, String(pid), 'comm'), `${comm}\n`);
    }
    mkdirSync(join(root, 'self'));
    expect(ksoftirqdPids([1], root)).toEqual([24]);
    expect(ksoftirqdPids([1, 0], root)).toEqual([14, 24]);
  });
});
