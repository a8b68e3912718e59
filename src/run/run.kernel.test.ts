// End-to-end runs on the kernel: the real CLI, real namespaces, real packets.
import { describe, expect } from 'vitest';
import { execa } from 'execa';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { spawn } from 'node:child_process';
import { cpus } from 'node:os';
import { join } from 'node:path';
import { itKernel, namespacesOfRun, tryConnect, upBenchmark } from '../backends/local/test-support/kernel.js';
import { PACKAGE_ROOT } from '../metrics/machine.js';
import { LocalBackend } from '../backends/local/backend.js';
import { resolveRunConfig } from '../config/load.js';
import { newRunId } from '../identity/run-id.js';
import { readResult } from '../results/io.js';
import type { NetworkPolicy } from '../policy/types.js';
import { tempDir } from '../test-support/temp.js';

const BENCH = join(PACKAGE_ROOT, 'dist', 'cli', 'main.js');

function bench(args: string[], opts: { timeout?: number } = {}) {
  if (!existsSync(BENCH)) throw new Error(`${BENCH} missing: run npm run build first`);
  return execa(process.execPath, [BENCH, ...args], { reject: false, timeout: opts.timeout ?? 120_000, env: { CI: process.env.CI ?? '' } });
}

function runIdFrom(stderr: string): string {
  const m = /run ([a-z][a-z0-9]{4}):/.exec(stderr);
  if (!m) throw new Error(`no run id in output:\n${stderr}`);
  return m[1]!;
}

/** A run that would take minutes, returned once it is measuring. */
async function startLongRun(opts: { via?: string[] } = {}) {
  const out = tempDir('cb-results-');
  const [file, ...pre] = opts.via ?? [process.execPath, BENCH];
  const child = execa(file!, [...pre, 'run', '--cni', 'flannel', '--samples', '1000000', '--warmup', '0', '--backend', 'local', '--out', out], { reject: false });
  let stderr = '';
  await new Promise<void>((resolve) => {
    child.stderr!.on('data', (d: Buffer) => {
      stderr += d.toString();
      if (stderr.includes('measuring connect')) resolve();
    });
  });
  return { child, runId: runIdFrom(stderr), out };
}

const denyAll: NetworkPolicy = {
  apiVersion: 'networking.k8s.io/v1',
  kind: 'NetworkPolicy',
  metadata: { name: 'deny-all', namespace: 'bench-server' },
  spec: { podSelector: {}, policyTypes: ['Ingress'] },
};

describe('bench run on the local kernel', () => {
  for (const cni of ['none', 'flannel'] as const) {
    itKernel(`${cni}: measures connections, writes the result, leaves nothing behind`, async () => {
      const out = tempDir('cb-results-');
      const r = await bench(['run', '--cni', cni, '--policies', '20', '--samples', '2000', '--warmup', '200', '--backend', 'local', '--out', out, '--json']);
      expect(r.exitCode, r.stderr).toBe(0);
      const summary = JSON.parse(r.stdout) as { runId: string; metrics: Record<string, { count: number; p50: number; errors: Record<string, number> }> };
      for (const m of ['connect', 'crr', 'rr']) {
        expect(summary.metrics[m]!.count).toBe(2000);
        expect(summary.metrics[m]!.errors).toEqual({});
        expect(summary.metrics[m]!.p50).toBeGreaterThan(1000); // > 1 µs: a real kernel round trip, not a no-op
      }
      const result = readResult(join(out, summary.runId, 'result.json'));
      expect(result.meta.cni).toBe(cni);
      expect(result.policiesEnforced).toBe(false);
      expect(result.metrics.connect!.samplesNs).toHaveLength(2000);
      expect(namespacesOfRun(summary.runId)).toEqual([]);
    });
  }

  itKernel('flannel ignores a policy that would deny the client', async () => {
    const { config } = resolveRunConfig({ cni: 'flannel', backend: 'local', samples: '200', warmup: '0' });
    const backend = new LocalBackend({ config: config!, runId: newRunId() });
    try {
      const flow = await upBenchmark(backend);
      const report = await backend.install({ policies: [denyAll], peers: [] });
      expect(report.modelState.policiesEnforced).toBe(false);
      const m = await backend.measure(flow, 'connect', { samples: 200, warmup: 0, concurrency: 1, timeoutMs: 500 });
      expect(m.errors).toEqual({});
      expect(m.samplesNs).toHaveLength(200);
    } finally {
      await backend.down();
    }
    expect(namespacesOfRun(backend.plan.runId)).toEqual([]);
  });

  itKernel('SIGINT mid-run tears down and still writes a result saying so', async () => {
    const { child, runId, out } = await startLongRun();
    expect(namespacesOfRun(runId).length).toBeGreaterThan(0);
    child.kill('SIGINT');
    const r = await child;
    expect(r.exitCode).toBe(130);
    expect(namespacesOfRun(runId)).toEqual([]);
    const result = readResult(join(out, runId, 'result.json'));
    expect(result.status).toBe('failed');
    expect(result.errors[0]).toMatchObject({ stage: 'interrupted', kind: 'interrupted' });
  });

  itKernel('bench gc removes what a killed run left', async () => {
    const { child, runId, out } = await startLongRun();
    child.kill('SIGKILL');
    await child;
    // SIGKILL leaves the probe processes orphaned inside the namespaces, and the namespaces themselves.
    expect(namespacesOfRun(runId).length).toBeGreaterThanOrEqual(5);
    const gc = await bench(['gc', '--run', runId]);
    expect(gc.exitCode, gc.stderr).toBe(0);
    expect(gc.stdout).toContain(`removed run ${runId}`);
    expect(namespacesOfRun(runId)).toEqual([]);
    expect(readdirSync('/run/cni-bench').filter((f) => f.startsWith(runId))).toEqual([]);
    // No probe process of that run survives.
    const ps = await execa('ps', ['-eo', 'args'], { reject: false });
    expect(String(ps.stdout)).not.toContain(`cb-${runId}-`);
  });

  itKernel('--dry-run prints the plan and creates nothing', async () => {
    const r = await bench(['run', '--cni', 'flannel', '--policies', '3', '--backend', 'local', '--dry-run']);
    expect(r.exitCode, r.stderr).toBe(0);
    const runId = /plan for run ([a-z0-9]{5})/.exec(r.stdout)![1]!;
    expect(r.stdout).toContain(`ip netns add cb-${runId}-n0`);
    expect(r.stdout).toMatch(/type vxlan id 1 .*dstport 8472 nolearning/);
    expect(namespacesOfRun(runId)).toEqual([]);
    expect(readFileSync('/proc/self/status', 'utf8')).toBeTruthy();
  });

  itKernel('default placement: receive steering of the run\'s veths on the chosen CPU, inside its namespaces only', async () => {
    const { config } = resolveRunConfig({ cni: 'none', backend: 'local', samples: '100', warmup: '0' });
    const backend = new LocalBackend({ config: config!, runId: newRunId() });
    const hostBefore = await execa('sh', ['-c', 'cat /sys/class/net/*/queues/rx-0/rps_cpus 2>/dev/null | sort | uniq -c'], { reject: false });
    expect(backend.cpuPlacement.mode).toBe('auto');
    const cpu = backend.cpuPlacement.cpus![0]!;
    try {
      await upBenchmark(backend);
      const pod = backend.plan.pods[0]!;
      for (const [ns, dev] of [[pod.netns, 'eth0'], [pod.node.netns, pod.hostIf], [backend.plan.nodes[0]!.netns, 'eth0']] as const) {
        const r = await execa('ip', ['netns', 'exec', ns, 'cat', `/sys/class/net/${dev}/queues/rx-0/rps_cpus`]);
        expect(Number.parseInt(r.stdout.replace(/,/g, ''), 16)).toBe(2 ** cpu);
      }
    } finally {
      await backend.down();
    }
    const hostAfter = await execa('sh', ['-c', 'cat /sys/class/net/*/queues/rx-0/rps_cpus 2>/dev/null | sort | uniq -c'], { reject: false });
    expect(hostAfter.stdout).toBe(hostBefore.stdout);
  });

  itKernel('bench run --repetitions 3: three fresh runs, a run-level summary, placement recorded', async () => {
    const out = tempDir('cb-results-');
    const r = await bench(['run', '--cni', 'none', '--samples', '500', '--warmup', '50', '--repetitions', '3', '--backend', 'local', '--out', out, '--json'], { timeout: 180_000 });
    expect(r.exitCode, r.stderr).toBe(0);
    const doc = JSON.parse(r.stdout) as { summary: { ciLevel: string; runIds: string[]; metrics: Record<string, { runs: number; p50: { level: string; ci95: [number, number]; perRun: number[] } }> } };
    expect(doc.summary.ciLevel).toBe('runs');
    expect(new Set(doc.summary.runIds).size).toBe(3);
    expect(doc.summary.metrics.connect!.runs).toBe(3);
    expect(doc.summary.metrics.connect!.p50.perRun).toHaveLength(3);
    const group = join(out, doc.summary.runIds[0]!);
    expect(existsSync(join(group, 'summary.json'))).toBe(true);
    for (const k of [1, 2, 3]) {
      const res = readResult(join(group, `r${k}`, 'result.json'));
      expect(res.meta.repetition).toBe(k);
      expect(res.meta.cpuPlacement!.mode).toBe('auto');
      expect(res.metrics.connect!.stability).toBeDefined();
    }
    for (const id of doc.summary.runIds) expect(namespacesOfRun(id)).toEqual([]);
  });

  itKernel('--keep returns within seconds, leaves the server up detached and recorded, and gc --run removes it all', async () => {
    const out = tempDir('cb-results-');
    const t0 = performance.now();
    const r = await bench(['run', '--cni', 'flannel', '--policies', '10', '--samples', '200', '--warmup', '0', '--backend', 'local', '--out', out, '--keep', '--json'], { timeout: 60_000 });
    expect(r.exitCode, r.stderr).toBe(0);
    expect(performance.now() - t0).toBeLessThan(45_000); // it used to hang for good
    const runId = (JSON.parse(r.stdout) as { runId: string }).runId;
    expect(r.stderr).toContain(`bench gc --run ${runId}`);
    try {
      expect(namespacesOfRun(runId)).toHaveLength(5);
      const kept = JSON.parse(readFileSync(`/run/cni-bench/${runId}.kept`, 'utf8')) as { serverPid: number };
      expect(existsSync(`/run/cni-bench/${runId}.pid`)).toBe(false); // not a live run any more
      const server = readFileSync(`/proc/${kept.serverPid}/stat`, 'utf8');
      expect(server).toMatch(/\(cb-probe\) S /);
      // Its own session: no terminal signal of the shell that ran bench reaches it.
      const fields = server.slice(server.lastIndexOf(')') + 2).split(' ');
      expect(Number(fields[3])).toBe(kept.serverPid);
      // The measured placement, kept (issue 20): SCHED_BATCH (policy 3, field 41) on the run's one CPU.
      expect(Number(fields[38])).toBe(3);
      expect(readFileSync(`/proc/${kept.serverPid}/status`, 'utf8')).toMatch(new RegExp(`^Cpus_allowed_list:\\s+${cpus().length - 1}$`, 'm'));
      const result = readResult(join(out, runId, 'result.json'));
      const server0 = `cb-${runId}-server0`;
      const client = `cb-${runId}-client`;
      expect(result.status).toBe('ok');
      expect(namespacesOfRun(runId)).toContain(server0);
      expect(await tryConnect(client, '10.244.1.2', 8080)).toBe('connected');
    } finally {
      const gc = await bench(['gc', '--run', runId]);
      expect(gc.exitCode, gc.stderr).toBe(0);
      expect(gc.stdout).toContain(`removed run ${runId} (left up with --keep): 5 namespaces`);
    }
    expect(namespacesOfRun(runId)).toEqual([]);
    expect(readdirSync('/run/cni-bench').filter((f) => f.startsWith(runId))).toEqual([]);
  });

  itKernel('SIGHUP (terminal or ssh closed) tears down like SIGTERM, even with the output pipes gone', async () => {
    const { child, runId, out } = await startLongRun();
    expect(namespacesOfRun(runId).length).toBeGreaterThan(0);
    // The terminal is gone: nothing reads what the run writes any more.
    child.stdout!.destroy();
    child.stderr!.destroy();
    child.kill('SIGHUP');
    const r = await child;
    expect(r.exitCode).toBe(130);
    expect(namespacesOfRun(runId)).toEqual([]);
    expect(readdirSync('/run/cni-bench').filter((f) => f.startsWith(runId))).toEqual([]);
    expect(readResult(join(out, runId, 'result.json')).errors[0]!.stage).toBe('interrupted');
  });

  itKernel('scripts/bench (the bench on PATH): a kill reaches the run, and it returns only after teardown', async () => {
    const { child, runId } = await startLongRun({ via: [join(PACKAGE_ROOT, 'scripts', 'bench')] });
    child.kill('SIGTERM');
    const r = await child;
    expect(r.exitCode).toBe(130);
    // Nothing is left at the moment the command returns (npx returned 143 and left the run going).
    expect(namespacesOfRun(runId)).toEqual([]);
  });

  itKernel('bench gc removes a run whose killed process is a zombie nobody reaped', async () => {
    const out = tempDir('cb-results-');
    // `exec sleep` replaces the shell, so when the run is killed nothing reaps it: it stays a zombie.
    const parent = spawn('sh', ['-c', `"${process.execPath}" "${BENCH}" run --cni flannel --samples 1000000 --warmup 0 --backend local --out "${out}" 2>"${out}/stderr" & exec sleep 120`], { stdio: 'ignore' });
    try {
      let runId: string | undefined;
      for (let i = 0; i < 600 && !runId; i++) {
        await new Promise((res) => setTimeout(res, 100));
        const text = existsSync(`${out}/stderr`) ? readFileSync(`${out}/stderr`, 'utf8') : '';
        if (text.includes('measuring connect')) runId = runIdFrom(text);
      }
      expect(runId).toBeDefined();
      const pid = Number(readFileSync(`/run/cni-bench/${runId}.pid`, 'utf8').trim().split(' ')[0]);
      process.kill(pid, 'SIGKILL');
      await new Promise((res) => setTimeout(res, 500));
      expect(readFileSync(`/proc/${pid}/stat`, 'utf8')).toMatch(/\) Z /);
      const gc = await bench(['gc', '--run', runId!]);
      expect(gc.exitCode, gc.stderr).toBe(0);
      expect(gc.stdout).toContain(`removed run ${runId}`);
      expect(namespacesOfRun(runId!)).toEqual([]);
      expect(readdirSync('/run/cni-bench').filter((f) => f.startsWith(runId!))).toEqual([]);
    } finally {
      parent.kill('SIGKILL');
    }
  });

  itKernel('a run while another is live warns and records the other run in its result', async () => {
    const { child, runId: other } = await startLongRun();
    try {
      const out = tempDir('cb-results-');
      const r = await bench(['run', '--cni', 'none', '--samples', '200', '--warmup', '0', '--backend', 'local', '--out', out, '--json']);
      expect(r.exitCode, r.stderr).toBe(0);
      const runId = (JSON.parse(r.stdout) as { runId: string }).runId;
      expect(r.stderr).toMatch(new RegExp(`warning: other cni-bench runs .*${other}`));
      expect(readResult(join(out, runId, 'result.json')).meta.concurrentRuns).toContain(other);
    } finally {
      child.kill('SIGINT');
      await child;
    }
    expect(namespacesOfRun(other)).toEqual([]);
  });
});
