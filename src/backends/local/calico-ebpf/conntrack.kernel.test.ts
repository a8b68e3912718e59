// The Calico-eBPF model's conntrack on the real kernel: a TCP SYN walks the policy even when its tuple is still
// tracked (Felix's "Forcing policy on SYN", felix/bpf-gpl/tc.c), an entry closed both ways is recycled by the next
// SYN, an entry whose flow was reset expires after Felix's TCPResetSeen, and so a revoked allow is enforced on a
// tuple the client reuses. Connections come from a fixed client port so the tuple is reused on purpose.
import { execa } from 'execa';
import { existsSync } from 'node:fs';
import { describe, expect } from 'vitest';
import { resolveRunConfig } from '../../../config/load.js';
import { ExecRunner } from '../../../exec/runner.js';
import { newRunId } from '../../../identity/run-id.js';
import { ROLE_LABEL } from '../../../policy/generate.js';
import { resolveEndpoints } from '../../../policy/resolve.js';
import { SERVER_PORT } from '../../../workload/workload.js';
import { benchmarkPolicySet } from '../../../workload/benchmark.js';
import { LocalBackend } from '../backend.js';
import { localModel } from '../models.js';
import { itKernel, namespacesOfRun, upBenchmark } from '../test-support/kernel.js';
import { calicoEbpfPinDir, defaultCalicoEbpfBinaries, readCalicoEbpfStats, type CalicoEbpfStats } from './install.js';

const bin = defaultCalicoEbpfBinaries();
const built = existsSync(bin.loader) && existsSync(bin.object);

/**
 * One connection from `localPort`, closed with FIN (both sides then close: the probe server closes on EOF) or
 * with RST (SO_LINGER 0, as bench enforce's watcher closes its probes). 'connected' or 'timeout'.
 */
async function connectFrom(netns: string, ip: string, port: number, localPort: number, close: 'fin' | 'rst', timeoutMs = 700): Promise<'connected' | 'timeout'> {
  const script = `const s=require('net').connect({port:${port},host:'${ip}',localPort:${localPort}});
s.setTimeout(${timeoutMs},()=>{console.log('timeout');process.exit(0)});
s.on('connect',()=>{console.log('connected');s.setTimeout(0);${close === 'rst' ? 's.resetAndDestroy();setTimeout(()=>process.exit(0),100)' : 's.end()'}});
s.on('close',()=>setTimeout(()=>process.exit(0),100));
s.on('error',e=>{console.log('timeout');process.exit(0)})`;
  const r = await execa('ip', ['netns', 'exec', netns, process.execPath, '-e', script], { reject: false, timeout: timeoutMs + 10_000 });
  const out = String(r.stdout).trim().split('\n')[0];
  if (out === 'connected' || out === 'timeout') return out;
  throw new Error(`connect from ${netns}:${localPort}: unexpected output '${String(r.stdout)}' ${String(r.stderr)}`);
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe.skipIf(!built && process.env.CI !== 'true')('Calico-eBPF-style model: conntrack as Felix keeps it', () => {
  itKernel('a SYN on a tracked tuple walks the policy: a revoked allow is enforced on the reused tuple (RST- and FIN-closed), and reset flows expire', async () => {
    const { config: cfg, problems } = resolveRunConfig({ cni: 'calico-ebpf', policies: '20', backend: 'local', samples: '100', warmup: '0' });
    if (!cfg) throw new Error(JSON.stringify(problems));
    const runId = newRunId();
    const backend = new LocalBackend({ config: cfg, runId });
    const model = localModel('calico-ebpf');
    try {
      await upBenchmark(backend);
      const set = benchmarkPolicySet(cfg);
      await backend.install(set);
      const client = backend.plan.pods.find((p) => p.role === 'client')!;
      const server = backend.plan.pods.find((p) => p.role === 'server')!;
      const ctx = backend.modelContext!;
      const apply = (policies: typeof set.policies) => {
        const inventory = backend.inventoryFor({ ...set, policies });
        return model.update!({ ...ctx, inventory, endpoints: resolveEndpoints(inventory, policies).filter((e) => backend.plan.nodes.some((n) => n.name === e.pod.node)) });
      };
      const allowed = set.policies;
      const revoked = set.policies.filter((p) => p.metadata.labels?.[ROLE_LABEL] !== 'allow-client');
      const stats = async (): Promise<CalicoEbpfStats['counters']> => (await readCalicoEbpfStats(new ExecRunner(), bin, calicoEbpfPinDir(runId, server.node.name)))!.counters;
      const from = (port: number, close: 'fin' | 'rst') => connectFrom(client.netns, server.ip, SERVER_PORT, port, close);

      // RST-closed (bench enforce's probes): only the client's side reset, so the entry is not recycled; the next
      // SYN on the tuple finds it live and is sent to the policy anyway.
      const s0 = await stats();
      expect(await from(41000, 'rst')).toBe('connected');
      expect(await from(41000, 'rst')).toBe('connected');
      const s1 = await stats();
      expect(s1.synForced - s0.synForced).toBe(1);
      await apply(revoked);
      expect(await from(41000, 'rst')).toBe('timeout');
      const s2 = await stats();
      expect(s2.synForced - s1.synForced).toBeGreaterThanOrEqual(1);
      expect(s2.drops - s1.drops).toBeGreaterThanOrEqual(1);

      // FIN both ways: the next SYN recycles the entry (a new flow), and a revoked allow is enforced on it too.
      await apply(allowed);
      expect(await from(42000, 'fin')).toBe('connected');
      await sleep(1200); // the client's TIME_WAIT on the port: tcp_tw_reuse lets it go after a second
      const s3 = await stats();
      expect(await from(42000, 'fin')).toBe('connected');
      const s4 = await stats();
      expect(s4.ctRecycled - s3.ctRecycled).toBe(1);
      await sleep(1200);
      await apply(revoked);
      expect(await from(42000, 'fin')).toBe('timeout');

      // Every SYN at the server's enforced hook walked the policy.
      const s5 = await stats();
      expect(s5.syns - s0.syns).toBeGreaterThanOrEqual(6);
      expect(s5.synWalks - s0.synWalks).toBe(s5.syns - s0.syns);

      // A reset flow's entry ends after Felix's TCPResetSeen (40 s): the next SYN on the tuple finds it expired.
      await apply(allowed);
      expect(await from(43000, 'rst')).toBe('connected');
      await sleep(41_000);
      const s6 = await stats();
      expect(await from(43000, 'rst')).toBe('connected');
      const s7 = await stats();
      expect(s7.ctExpired - s6.ctExpired).toBeGreaterThanOrEqual(1);
      expect(s7.synForced - s6.synForced).toBe(0);
    } finally {
      await backend.down();
    }
    expect(namespacesOfRun(runId)).toEqual([]);
  }, 180_000);

  itKernel('when the client wraps its ephemeral ports, every SYN still walks the policy', async () => {
    const { config: cfg, problems } = resolveRunConfig({ cni: 'calico-ebpf', policies: '200', backend: 'local' });
    if (!cfg) throw new Error(JSON.stringify(problems));
    const runId = newRunId();
    const backend = new LocalBackend({ config: cfg, runId });
    try {
      const flow = await upBenchmark(backend);
      await backend.install(benchmarkPolicySet(cfg));
      const server = backend.plan.pods.find((p) => p.role === 'server')!;
      const client = backend.plan.pods.find((p) => p.role === 'client')!;
      // A narrow port range in the client pod (its own namespace) makes the wrap come early.
      await execa('ip', ['netns', 'exec', client.netns, 'sysctl', '-q', '-w', 'net.ipv4.ip_local_port_range=40000 42999']);
      const before = (await readCalicoEbpfStats(new ExecRunner(), bin, calicoEbpfPinDir(runId, server.node.name)))!.counters;
      const m = await backend.measure(flow, 'connect', { samples: 12_000, warmup: 0, concurrency: 1, timeoutMs: 1000 });
      const after = (await readCalicoEbpfStats(new ExecRunner(), bin, calicoEbpfPinDir(runId, server.node.name)))!.counters;
      const d = (k: keyof typeof after) => after[k] - before[k];
      console.log(`wrap: ${m.samplesNs.length} connects, errors ${JSON.stringify(m.errors)}, syns ${d('syns')}, synWalks ${d('synWalks')}, policyWalks ${d('policyWalks')}, synForced ${d('synForced')}, ctRecycled ${d('ctRecycled')}`);
      expect(m.samplesNs.length).toBeGreaterThan(6000);
      // Tuples were reused (found tracked or closed), and each of their SYNs was walked like a fresh one.
      expect(d('synForced') + d('ctRecycled')).toBeGreaterThan(1000);
      expect(d('policyWalks')).toBeGreaterThanOrEqual(m.samplesNs.length);
      expect(d('synWalks')).toBe(d('syns'));
    } finally {
      await backend.down();
    }
    expect(namespacesOfRun(runId)).toEqual([]);
  }, 180_000);
});
