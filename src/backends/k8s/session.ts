// The benchmark's pods on a cluster, whichever provider brought it: the run's namespaces and load pods, the
// policy set applied with server-side apply, the wait until the data plane enforces it, the measurements
// (./measure.ts) and removal of the run's namespaces. The benchmark's deployment (./benchmark.ts) is built on it.
import { BenchError, InterruptedError } from '../../errors.js';
import type { RunConfig } from '../../config/schema.js';
import type { CommandSpec, Runner } from '../../exec/runner.js';
import type { MetricName, MetricResult } from '../../results/schema.js';
import { SERVER_PORT, type WorkloadTarget } from '../../workload/workload.js';
import type { PolicySet } from '../../policy/generate.js';
import type { MeasureSettings, PolicyInstallReport, Progress } from '../types.js';
import type { AgentRef } from './cni.js';
import { step } from './errors.js';
import { probeSucceeded } from './fortio.js';
import { K8sMeasure } from './measure.js';
import { kubectl, waitSpec, type KubeTarget } from './kubectl.js';
import { ROLE_LABEL, type PeerPodSpec } from '../../policy/generate.js';
import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { PROBE_BIN } from '../../probe/native.js';
import type { NetworkPolicy } from '../../policy/types.js';
import { mapBounded } from './pool.js';
import {
  APPLY_CONCURRENCY,
  CLIENT_POD,
  ENCAPSULATION,
  FORTIO_BIN,
  DENIED_POD,
  FORTIO_CONTAINER,
  PEER_POD_CAP,
  PEER_ROLE,
  POLICY_BATCH_SIZE,
  PROBE_CONTAINER,
  PROBE_PATH,
  RUN_LABEL,
  renderPeerPods,
  selectPeers,
  SERVER_NAME,
  policyBatches,
  renderNamespaces,
  renderWorkloads,
  runNames,
  type Placement,
  type RunNames,
} from './manifests.js';
import { validateManifests } from './validate.js';
import type { Versions } from './versions.js';
import { toYaml } from './yaml.js';
import { applyInBatches, applySpec } from './apply.js';

/** Shown in dry-run plans where a value only exists once the cluster does. */
export const DRY_RUN_NODES: Placement = { serverNode: '<server-node>', clientNode: '<client-node>' };
export const DRY_RUN_SERVER_IP = '<server-pod-ip>';
export const DRY_RUN_SERVER_POD = '<server-pod>';
/** The statically linked probe `npm run build` makes for the client pod (scripts/build-native.mjs). */
export const STATIC_PROBE_BIN = join(dirname(PROBE_BIN), 'cb-probe-static');
/** Peer pods per `kubectl create` (see createPeers). */
export const PEER_CREATE_CHUNK = 20;
export const STATIC_PROBE_MISSING_HINT =
  'dist/native/cb-probe-static is missing: kind/cluster runs copy the statically linked probe into the client pod. Install the static C library (Debian/Ubuntu: libc6-dev, Fedora/RHEL: glibc-static) and run `npm run build`';

export interface SessionOptions {
  config: RunConfig;
  runId: string;
  runner: Runner;
  cleanupRunner: Runner;
  target: KubeTarget;
  versions: Versions;
  agents: AgentRef[];
  enforcesPolicy: boolean;
  /** True on kind: every node shares one kernel, so one /proc/stat read covers them all. */
  sharedKernel: boolean;
  /** kind: read per-container CPU from cgroup v2 inside the node containers through this engine (docker, podman…). */
  nodeCgroups?: { provider: string };
  /** cluster: false when the identity may not `get nodes/proxy` (the ClusterRole without node metrics): no CPU figures. */
  cadvisor?: boolean;
  outDir: string;
  progress?: Progress;
  signal?: AbortSignal;
  /** Overall bound of the enforcement wait; default 120 s + 20 ms per policy. */
  enforcementTimeoutMs?: number;
  /** Pause between enforcement probes (tests set 0). */
  probeIntervalMs?: number;
  workloadTimeoutS?: number;
  /** At most this many filler peers run as pods (default PEER_POD_CAP). */
  peerPodCap?: number;
  /** Nodes the peer pods are spread over (default: the client and server nodes). */
  peerNodes?: string[];
  /** The static cb-probe copied into the client pod (default STATIC_PROBE_BIN; tests point elsewhere). */
  probeBinary?: string;
}

const sleep = (ms: number, signal?: AbortSignal) =>
  new Promise<void>((resolve, reject) => {
    if (signal?.aborted) return reject(signal.reason ?? new InterruptedError());
    const t = setTimeout(resolve, ms);
    signal?.addEventListener('abort', () => (clearTimeout(t), reject(signal.reason ?? new InterruptedError())), { once: true });
  });

export class K8sSession {
  readonly names: RunNames;
  placement?: Placement;
  serverPod = DRY_RUN_SERVER_POD;
  serverIp = DRY_RUN_SERVER_IP;
  private namespacesRequested = false;
  private serviceFront?: { ip: string; port: number };
  /** The install report's modelState; measure() adds per-metric CPU figures the result schema has no field for. */
  private readonly state: Record<string, number | string | boolean> = {};

  private readonly load = new K8sMeasure(() => ({
    runner: this.o.runner,
    target: this.o.target,
    names: this.names,
    placement: this.placement!,
    serverPod: this.serverPod,
    serverIp: this.front.ip,
    serverPort: this.front.port,
    url: this.url,
    agents: this.o.agents,
    sharedKernel: this.o.sharedKernel,
    nodeCgroups: this.o.nodeCgroups,
    cadvisor: this.o.cadvisor,
    progress: this.o.progress,
    state: this.state,
  }));

  constructor(private readonly o: SessionOptions) {
    this.names = runNames(o.runId);
  }

  /** The run's own namespaces and label: workloads are generated for them. */
  get target(): WorkloadTarget {
    const n = this.names;
    return { namespaces: { server: n.serverNamespace, client: n.clientNamespace }, runLabel: { ...n.runLabel } };
  }

  /** Detection on an existing cluster can know better than the profile (k3s' embedded policy controller). */
  setEnforcesPolicy(enforces: boolean): void {
    this.o.enforcesPolicy = enforces;
  }

  /** The cluster backend found it may not read kubelet metrics (nodes/proxy). */
  disableCadvisor(): void {
    this.o.cadvisor = false;
  }

  private run(spec: CommandSpec) {
    return this.o.runner.run(spec);
  }

  /** Where the load connects: the server pod, or once set (--services) the ClusterIP and port of its Service. */
  get front(): { ip: string; port: number } {
    return this.serviceFront ?? { ip: this.serverIp, port: SERVER_PORT };
  }

  /** From now on the probes and the load connect to a Service's ClusterIP instead of the server pod. */
  setFront(front: { ip: string; port: number }): void {
    this.serviceFront = { ...front };
  }

  get url(): string {
    return `http://${this.front.ip}:${this.front.port}/`;
  }

  /** Namespaces, server Deployment, client and denied-client pods; waits until they are ready. */
  async createWorkloads(placement: Placement): Promise<void> {
    this.placement = placement;
    const t = this.o.target;
    const n = this.names;
    const namespaces = renderNamespaces(n);
    const workloads = renderWorkloads(n, placement, this.o.versions);
    validateManifests([...namespaces, ...workloads]);
    await step('create-workloads', async () => {
      this.o.progress?.step(`creating namespaces ${n.serverNamespace}, ${n.clientNamespace} and the load pods (server on ${placement.serverNode}, client on ${placement.clientNode})`);
      this.namespacesRequested = true;
      // `create`, not apply: a namespace of that name that is not ours makes the run stop instead of adopting it.
      await this.run(kubectl(t, ['create', '-f', '-'], 'create the run namespaces', { input: toYaml(namespaces) }));
      await this.run(kubectl(t, ['create', '-f', '-'], 'create the server deployment and client pods', { input: toYaml(workloads) }));
    });
    const s = this.o.workloadTimeoutS ?? 300;
    await step('wait-workloads-ready', async () => {
      await this.run(waitSpec(t, ['-n', n.serverNamespace, 'rollout', 'status', `deployment/${SERVER_NAME}`], s, 'wait for the server'));
      await this.run(waitSpec(t, ['-n', n.clientNamespace, 'wait', '--for=condition=Ready', `pod/${CLIENT_POD}`, `pod/${DENIED_POD}`], s, 'wait for the client pods'));
      const r = await this.run(kubectl(t, ['-n', n.serverNamespace, 'get', 'pods', '-l', `app=${SERVER_NAME}`, '-o', 'json'], 'find the server pod and its IP'));
      if (this.o.runner.dryRun) return;
      const items = (JSON.parse(r.stdout) as { items?: Array<{ metadata?: { name?: string; deletionTimestamp?: string }; status?: { podIP?: string } }> }).items ?? [];
      const pod = items.find((p) => !p.metadata?.deletionTimestamp && p.status?.podIP);
      if (!pod) throw new BenchError('k8s-step', `no running server pod with an IP in ${n.serverNamespace}`);
      this.serverPod = pod.metadata!.name!;
      this.serverIp = pod.status!.podIP!;
    });
    await this.installProbe();
  }

  /**
   * Copies the static cb-probe into the client pod's probe container (emptyDir; `kubectl cp` runs busybox's tar
   * there) and checks it runs there by opening one connection to the server (no policies yet, so it must be open).
   */
  private async installProbe(): Promise<void> {
    const bin = this.o.probeBinary ?? STATIC_PROBE_BIN;
    const t = this.o.target;
    const ns = this.names.clientNamespace;
    await step('install-probe', async () => {
      if (!this.o.runner.dryRun && !existsSync(bin)) throw new BenchError('usage', STATIC_PROBE_MISSING_HINT);
      this.o.progress?.step(`copying cb-probe into ${ns}/${CLIENT_POD} (container ${PROBE_CONTAINER})`);
      await this.run(kubectl(t, ['cp', bin, `${ns}/${CLIENT_POD}:${PROBE_PATH}`, '-c', PROBE_CONTAINER], 'copy the static cb-probe into the client pod', { timeoutMs: 60_000 }));
      await this.run(kubectl(t, ['exec', '-n', ns, CLIENT_POD, '-c', PROBE_CONTAINER, '--', 'chmod', '0755', PROBE_PATH], 'make the probe executable', { timeoutMs: 30_000 }));
      const r = await this.run(
        kubectl(t, ['exec', '-n', ns, CLIENT_POD, '-c', PROBE_CONTAINER, '--', PROBE_PATH, 'check', '--target', this.serverIp, '--port', String(SERVER_PORT), '--timeout-ms', '2000'], 'check the probe reaches the server from the client pod', { allowFailure: true, timeoutMs: 30_000 }),
      );
      if (this.o.runner.dryRun) return;
      if (r.exitCode !== 0 || r.stdout.trim() !== 'open') {
        throw new BenchError('probe', `cb-probe in ${ns}/${CLIENT_POD} could not connect to the server ${this.serverIp}:${SERVER_PORT} before any policy: exit ${r.exitCode}, ${(r.stdout + r.stderr).trim() || 'no output'} (a probe built for another architecture than the nodes'? rebuild on a machine of the nodes' architecture)`);
      }
    });
  }

  /**
   * The filler peers as real pods (at most peerPodCap of them, evenly spaced over the fillers), created and Ready
   * before any policy, so Calico's selector ipsets and Cilium's identities/policy map hold them when the fillers land.
   */
  private async createPeers(peers: readonly PeerPodSpec[]): Promise<number> {
    const chosen = selectPeers(peers, this.o.peerPodCap ?? PEER_POD_CAP);
    if (chosen.length === 0) return 0;
    if (!this.placement) throw new BenchError('internal', 'the filler peers need the nodes chosen by createWorkloads(); create the workloads first');
    const pods = renderPeerPods(this.names, chosen, this.placement, this.o.versions, this.o.peerNodes);
    validateManifests(pods);
    const t = this.o.target;
    const ns = this.names.serverNamespace;
    await step('create-peers', async () => {
      this.o.progress?.step(`creating ${chosen.length} filler peer pods of ${peers.length} (cap ${this.o.peerPodCap ?? PEER_POD_CAP}) in ${ns}`);
      // Like the policies: kubectl's client-side limit (5 requests/s per process) would make one `create` of 300
      // pods take a minute, so they go in chunks through up to APPLY_CONCURRENCY processes.
      const chunks = [];
      for (let i = 0; i < pods.length; i += PEER_CREATE_CHUNK) chunks.push(pods.slice(i, i + PEER_CREATE_CHUNK));
      await mapBounded(chunks, APPLY_CONCURRENCY, (c, i) =>
        this.run(kubectl(t, ['create', '-f', '-'], chunks.length === 1 ? `create ${chosen.length} filler peer pods` : `create filler peer pods ${i + 1}/${chunks.length} (${c.length})`, { input: toYaml(c), timeoutMs: 120_000 })),
      );
      await this.run(waitSpec(t, ['-n', ns, 'wait', '--for=condition=Ready', 'pod', '-l', `${ROLE_LABEL}=${PEER_ROLE}`], this.o.workloadTimeoutS ?? 300, 'wait for the filler peer pods'));
    });
    return chosen.length;
  }

  /**
   * Fillers in batches of `batchSize`, applied by `concurrency` kubectl processes at once (see APPLY_CONCURRENCY),
   * then — only after every filler was accepted — the policy that allows the client, alone. Whatever
   * --match-position says about evaluation order, the allowing policy is the last one applied, so the enforcement
   * wait (allowed client connects AND denied client is blocked) cannot pass while later batches still program:
   * it needs the server isolated (some policy live) and the last-applied policy live.
   */
  async installPolicies(set: PolicySet, batchSize = POLICY_BATCH_SIZE, concurrency = APPLY_CONCURRENCY): Promise<PolicyInstallReport> {
    const started = performance.now();
    // Applied as handed: the orchestrator generated the set for `workload` (this run's namespaces and label).
    validateManifests(set.policies);
    const isClientPolicy = (p: NetworkPolicy) => p.metadata.labels?.[ROLE_LABEL] === 'allow-client';
    const fillers = set.policies.filter((p) => !isClientPolicy(p));
    const last = set.policies.filter(isClientPolicy);
    const batches = policyBatches(fillers, batchSize).length;
    const t = this.o.target;
    const peersRunning = await this.createPeers(set.peers);
    await step('apply-policies', async () => {
      this.o.progress?.step(`applying ${set.policies.length} NetworkPolicies: ${batches} server-side apply batches, ${concurrency} kubectl processes at a time, then the client's policy last`);
      await applyInBatches(this.o.runner, t, fillers, { what: 'filler policies', batchSize, concurrency });
      if (last.length) await this.run(applySpec(t, last, "apply the client's policy last (the enforcement wait's barrier)"));
    });
    const appliedAt = performance.now();
    const check = await this.waitEnforcement(set.policies.length > 0);
    Object.assign(this.state, {
      policiesApplied: set.policies.length,
      applyBatches: batches + (last.length ? 1 : 0),
      applyConcurrency: concurrency,
      applyMs: Math.round(appliedAt - started),
      enforcementMs: Math.round(performance.now() - appliedAt),
      enforcementBarrier: last.length ? 'client policy applied last' : 'none (no policies)',
      enforcementProbes: check.probes,
      allowedConnectionWorks: check.allowed,
      deniedConnectionBlocked: check.deniedBlocked,
      serverNode: this.placement?.serverNode ?? '',
      clientNode: this.placement?.clientNode ?? '',
      encapsulation: ENCAPSULATION,
      // The local backend gives every filler's peer an address; here up to peerPodCap of them run as pods, evenly
      // spaced over the fillers: those fillers' Calico ipsets have one member and Cilium gets one identity and
      // one policy-map entry each; the other fillers' selectors match no pod.
      fillerPeersPresent: peersRunning > 0,
      fillerPeersRunning: peersRunning,
      fillerPeersNamed: set.peers.length,
      fillerPeersCap: this.o.peerPodCap ?? PEER_POD_CAP,
      fillerPeers:
        peersRunning === set.peers.length
          ? `${peersRunning} of ${set.peers.length} running as pods: every filler's selector has its member, as on the local backend`
          : `${peersRunning} of ${set.peers.length} running as pods (cap ${this.o.peerPodCap ?? PEER_POD_CAP}, evenly spaced: about one filler in ${Math.round(set.peers.length / Math.max(1, peersRunning))}): the others' selectors match no pod, unlike on the local backend where all have an address`,
      connectSamples: 'cb-probe (static) in the client pod: one sample per connect, nanoseconds',
    });
    return { modelState: this.state, installMs: performance.now() - started };
  }

  private probe(pod: string, purpose: string): CommandSpec {
    const args = [FORTIO_BIN, 'load', '-n', '2', '-c', '1', '-qps', '-1', '-timeout', '1s', '-json', '-', this.url];
    return kubectl(this.o.target, ['exec', '-n', this.names.clientNamespace, pod, '-c', FORTIO_CONTAINER, '--', ...args], purpose, { allowFailure: true, timeoutMs: 30_000 });
  }

  /**
   * Probes until the allowed client connects and (when the CNI enforces policy and there are policies) the denied
   * one does not. Policies are enforced asynchronously (Felix, the Cilium agent), so this is when the set is live.
   */
  private async waitEnforcement(isolated: boolean): Promise<{ probes: number; allowed: boolean; deniedBlocked: boolean }> {
    const expectDeny = isolated && this.o.enforcesPolicy;
    const policies = this.o.config.policies;
    const deadline = performance.now() + (this.o.enforcementTimeoutMs ?? 120_000 + policies * 20);
    return step('wait-enforcement', async () => {
      this.o.progress?.step(expectDeny ? 'waiting until the policies are enforced (allowed client connects, denied client does not)' : 'checking the allowed client connects');
      for (let probes = 1; ; probes++) {
        const allowed = probeSucceeded((await this.run(this.probe(CLIENT_POD, 'enforcement probe: allowed client'))).stdout);
        const deniedOk = probeSucceeded((await this.run(this.probe(DENIED_POD, 'enforcement probe: denied client'))).stdout);
        if (this.o.runner.dryRun) return { probes, allowed: true, deniedBlocked: expectDeny };
        if (allowed && (!expectDeny || !deniedOk)) return { probes, allowed, deniedBlocked: !deniedOk };
        if (performance.now() > deadline) {
          throw new BenchError(
            'k8s-step',
            `after ${probes} probes the data plane does not behave: allowed client ${allowed ? 'connects' : 'cannot connect'}, denied client ${deniedOk ? 'connects' : 'is blocked'}`,
          );
        }
        await sleep(this.o.probeIntervalMs ?? 1000, this.o.signal);
      }
    });
  }

  /** Latency and CPU of `metric` from the client pod to the server (./measure.ts). */
  measure(metric: MetricName, s: MeasureSettings): Promise<Omit<MetricResult, 'summary'>> {
    return this.load.measure(metric, s);
  }

  /** The run's namespaces, once their creation was asked for (diagnostics describe them). */
  createdNamespaces(): string[] {
    return this.namespacesRequested ? [this.names.serverNamespace, this.names.clientNamespace] : [];
  }

  /** Deletes this run's namespaces (and with them everything in them), selected by the run label only. */
  async deleteNamespaces(): Promise<void> {
    if (!this.namespacesRequested) return;
    this.namespacesRequested = false;
    await this.o.cleanupRunner.run(
      kubectl(this.o.target, ['delete', 'namespace', '-l', `${RUN_LABEL}=${this.o.runId}`, '--ignore-not-found', '--wait=true', '--timeout=180s'], 'delete the run namespaces', { timeoutMs: 200_000 }),
    );
  }
}
