// Kernel-test helpers for the service data planes: a two-node topology with one client and E backend pods, a
// Service set whose probed Service has those backends, servers that answer with their pod's name, and the two
// measurements the tests make through a plane (which backend answered; connect latency with the native probe).
import { execa } from 'execa';
import { ExecRunner, fullArgv, type CommandSpec } from '../../../exec/runner.js';
import { newRunId } from '../../../identity/run-id.js';
import { parseClientOutput, planClient, planServer, startServer, type RunningServer } from '../../../probe/native.js';
import { generateServiceSet } from '../../../services/generate.js';
import type { ServicePosition, ServiceSet } from '../../../services/types.js';
import { DEFAULT_CLUSTER_CIDR, type ServiceDataPlane, type ServiceDataPlaneKind } from '../service-types.js';
import { planTopology, planTopologyDown, planTopologyUp, type PodSpec, type Topology } from '../topology.js';

export const BACKEND_PORT = 8080;
export const SERVICE_PORT = 80;

export interface ServiceWorld {
  topology: Topology;
  client: PodSpec;
  backends: PodSpec[];
  down(): Promise<void>;
}

/** Client on node-0, `backends` server pods on node-1, routed veths (the none/calico/cilium attachment). */
export async function serviceWorld(backends: number): Promise<ServiceWorld> {
  const topology = planTopology({
    runId: newRunId(),
    attachment: 'routed',
    placement: 'cross-node',
    hostIfPrefix: 'veth',
    pods: [
      { name: 'client', namespace: 'bench-client', labels: { app: 'bench-client' }, role: 'client', node: 0 },
      ...Array.from({ length: backends }, (_, i) => ({ name: `server-${i}`, namespace: 'bench-server', labels: { app: 'bench-server' }, role: 'server' as const, node: 1 })),
    ],
  });
  const runner = new ExecRunner();
  try {
    for (const c of planTopologyUp(topology)) await runner.run(c);
  } catch (e) {
    for (const c of planTopologyDown(topology)) await runner.run(c);
    throw e;
  }
  return {
    topology,
    client: topology.pods.find((p) => p.role === 'client')!,
    backends: topology.pods.filter((p) => p.role === 'server'),
    async down() {
      for (const c of planTopologyDown(topology)) await runner.run(c);
    },
  };
}

export function worldServiceSet(w: ServiceWorld, fillers: number, position: ServicePosition, endpointsPerService = 1): ServiceSet {
  return generateServiceSet({
    services: fillers,
    endpointsPerService,
    position,
    seed: 7,
    probed: {
      namespace: 'bench-server',
      name: 'bench-server',
      selector: { app: 'bench-server' },
      port: { name: '', protocol: 'TCP', port: SERVICE_PORT, targetPort: BACKEND_PORT },
      backends: w.backends.map((b) => ({ ip: b.ip, pod: { namespace: b.namespace, name: b.name } })),
    },
  });
}

export function openPlane(kind: ServiceDataPlaneKind, w: ServiceWorld, iptablesBackend: 'nft' | 'legacy' = 'nft'): ServiceDataPlane {
  const runner = new ExecRunner();
  return kind.create({ runner, cleanupRunner: runner, topology: w.topology, settings: { iptablesBackend, clusterCidr: DEFAULT_CLUSTER_CIDR } });
}

/** A TCP server per backend pod that answers every connection with the pod's name. */
export async function nameServers(w: ServiceWorld): Promise<{ stop(): Promise<void> }> {
  const servers = await Promise.all(
    w.backends.map((b) =>
      startServer({
        argv: [process.execPath, '-e', `require('net').createServer(s=>{s.on('error',()=>{});s.end(${JSON.stringify(b.name)})}).listen(${BACKEND_PORT},()=>console.log('ready'))`],
        netns: b.netns,
        purpose: `name server in ${b.name}`,
      }),
    ),
  );
  return { stop: async () => void (await Promise.all(servers.map((s) => s.stop()))) };
}

/** The native echo server in every backend pod, for latency. */
export async function echoServers(w: ServiceWorld): Promise<RunningServer[]> {
  return Promise.all(w.backends.map((b) => startServer(planServer({ netns: b.netns, ports: [BACKEND_PORT] }))));
}

/** `count` sequential connections from the client to ip:port through `plane`: who answered, and failures. */
export async function tally(plane: ServiceDataPlane, w: ServiceWorld, ip: string, port: number, count: number): Promise<{ answers: Record<string, number>; failures: number }> {
  const script =
    `const net=require('net');const out={answers:{},failures:0};let left=${count};` +
    `function one(){if(left--<=0){console.log(JSON.stringify(out));return}` +
    `const s=net.connect(${port},'${ip}');let d='';s.setTimeout(1000,()=>{out.failures++;s.destroy();one()});` +
    `s.on('data',x=>d+=x);s.on('end',()=>{out.answers[d]=(out.answers[d]||0)+1;s.destroy();one()});` +
    `s.on('error',()=>{out.failures++;one()})}one()`;
  const spec = plane.wrapClient({ argv: [process.execPath, '-e', script], netns: w.client.netns }, w.client);
  return JSON.parse(await runCaptured(spec, 60_000)) as { answers: Record<string, number>; failures: number };
}

/** p50 of `samples` new TCP connections (cb-probe connect mode), µs. */
export async function connectP50(plane: ServiceDataPlane, w: ServiceWorld, ip: string, port: number, samples: number): Promise<number> {
  const spec = plane.wrapClient(planClient({ netns: w.client.netns, target: ip, port, mode: 'connect', samples, warmup: Math.ceil(samples / 10), concurrency: 1, timeoutMs: 1000 }), w.client);
  const out = parseClientOutput(await runCaptured(spec, 300_000));
  const errors = Object.values(out.errors).reduce((a, b) => a + b, 0);
  if (errors > samples / 100) throw new Error(`connect to ${ip}:${port}: ${JSON.stringify(out.errors)} errors of ${samples}`);
  const sorted = [...out.samplesNs].sort((a, b) => a - b);
  return sorted[Math.floor(sorted.length / 2)]! / 1000;
}

async function runCaptured(spec: CommandSpec, timeout: number): Promise<string> {
  const [file, ...args] = fullArgv(spec) as [string, ...string[]];
  const r = await execa(file, args, { reject: false, timeout, maxBuffer: 256 * 1024 * 1024 });
  if (r.exitCode !== 0) throw new Error(`${[file, ...args].slice(0, 8).join(' ')}… exited ${r.exitCode}: ${String(r.stderr)}`);
  return String(r.stdout);
}
