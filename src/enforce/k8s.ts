// `bench enforce` on kind and on an existing cluster: the real agents, every change through the API server
// (server-side apply / delete of a NetworkPolicy, `kubectl label`, a new Pod), watch probes from pods on the
// client node (cb-probe watch behind `kubectl exec -i`, streamed), and the CNI's own figure scraped through the
// pod proxy around each change.
//
// One clock: the change's start is process.hrtime.bigint() here, just before kubectl is started; each watch's
// probes are put on this machine's clock by stdin marks (k8s-clock.ts): on kind verified to be the same clock
// (bound 0), on a cluster the offset from the shortest mark round trip, ±half of it, recorded per observation.
// The time to enforcement therefore includes kubectl's own start and the API round trip (recorded as apiMs):
// that is what a user who applies a policy waits for.
//
// Exercised on the machine this was written on (no Docker, no cluster): the dry-run plan, the manifests against
// their schemas, and the control flow with an injected runner and a fake `kubectl exec` stream fed cb-probe
// watch output (src/enforce/k8s.test.ts). Not run against a real cluster there.
import type { RunConfig } from '../config/schema.js';
import { BenchError } from '../errors.js';
import { ExecRunner, shellQuote, type CommandSpec, type Runner } from '../exec/runner.js';
import type { K8sBackend } from '../backends/k8s/backend.js';
import { BACKEND_DESCRIPTORS, type BackendDescriptor } from '../backends/factory.js';
import { helm, kubectl, waitSpec, type KubeTarget } from '../backends/k8s/kubectl.js';
import { PROBE_CONTAINER, PROBE_PATH, renderWorkloads, type RunNames } from '../backends/k8s/manifests.js';
import { CLIENT_POD as K8S_CLIENT_POD } from '../backends/k8s/manifests.js';
import type { K8sSession } from '../backends/k8s/session.js';
import { STATIC_PROBE_BIN } from '../backends/k8s/session.js';
import { validateManifests } from '../backends/k8s/validate.js';
import { loadVersions, type Versions } from '../backends/k8s/versions.js';
import { toListJson, toYaml, type Manifest } from '../backends/k8s/yaml.js';
import type { PolicySet, Progress } from '../backends/types.js';
import { ROLE_LABEL } from '../policy/generate.js';
import type { NetworkPolicy } from '../policy/types.js';
import { watchArgv, type RunningWatch, type WatchSettings } from '../probe/native.js';
import { SERVER_LABELS, SERVER_PORT, benchmarkPolicySet } from '../workload/workload.js';
import { cniMetricSource, agentPodFrom, metricDelta, parseSumCount, planAgentPodOnNode, planScrape, type CniMetricDelta, type CniMetricSource, type SumCount } from './k8s-metrics.js';
import { spawnStreamer, startK8sWatch, type K8sRunningWatch, type Streamer } from './k8s-watch.js';
import { INTRUDER_LABELS, JOINER_LABELS } from './plan.js';
import type { AppliedChange, EnforceDataPlane, K8sChangeRecord } from './local.js';

export class K8sEnforceError extends BenchError {
  constructor(message: string) {
    super('k8s-step', message);
  }
}

/** The enforce topology's pods by their plan names (src/enforce/plan.ts), as pods of the run's client namespace. */
export const ENFORCE_PODS = { client: K8S_CLIENT_POD, intruder: 'bench-intruder', joiner: 'bench-joiner' } as const;
const PROBE_PODS = ['intruder', 'joiner'] as const;
/** Shown in dry-run plans for addresses that exist only on a cluster. */
export const DRY_RUN_NEW_POD_IP = '<new-pod-ip>';
const DRY_RUN_TARGET = '192.0.2.1';

export interface K8sEnforceOptions {
  backend: 'kind' | 'cluster';
  runId: string;
  /** The run's config (cni, policies, matchPosition, seed; cluster: context/kubeconfig). */
  config: RunConfig;
  outDir: string;
  runner?: Runner;
  cleanupRunner?: Runner;
  signal?: AbortSignal;
  progress?: Progress;
  /** How `kubectl exec -i … cb-probe watch` is started (tests: a fake stream). */
  streamer?: Streamer;
  versions?: Versions;
  /** Longest wait after a change's API call for the CNI's metric to move, ms (default 3000). */
  metricWaitMs?: number;
  metricPollMs?: number;
  /** Longest wait for a new pod's address, ms (default 60000). */
  podIpTimeoutMs?: number;
  podIpPollMs?: number;
  /** kind: where the kubeconfig goes (tests). */
  kubeconfigDir?: string;
  /** Passed to the backend: its enforcement-probe pacing (tests set 0). */
  probeIntervalMs?: number;
  calibrationMarks?: number;
  now?: () => bigint;
}

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

interface PodTemplate {
  spec: { containers: Array<{ name: string }>; volumes?: unknown[] } & Record<string, unknown>;
}

/**
 * The run's own pods as the session renders them (renderWorkloads): the client pod (its probe container and
 * emptyDir) and the server Deployment's pod template (fortio serving), so the enforce pods cannot drift from them.
 */
function workloadPods(n: RunNames, node: string, v: Versions): { client: PodTemplate; server: PodTemplate } {
  const [server, client] = renderWorkloads(n, { serverNode: node, clientNode: node }, v) as unknown as [{ spec: { template: PodTemplate } }, PodTemplate];
  return { client, server: server.spec.template };
}

/** A probe-only pod on the client node: the client pod's probe container and emptyDir, other labels. */
export function renderProbePod(n: RunNames, name: string, labels: Record<string, string>, node: string, v: Versions): Manifest {
  const { client } = workloadPods(n, node, v);
  return {
    apiVersion: 'v1',
    kind: 'Pod',
    metadata: { name, namespace: n.clientNamespace, labels: { ...labels, ...n.runLabel } },
    spec: { ...client.spec, containers: client.spec.containers.filter((c) => c.name === PROBE_CONTAINER) },
  };
}

/** The new server pod of the new-pod change: the server Deployment's pod (labels, fortio) as a bare Pod, on the server's node. */
export function renderNewServerPod(n: RunNames, name: string, node: string, v: Versions): Manifest {
  const { server } = workloadPods(n, node, v);
  return {
    apiVersion: 'v1',
    kind: 'Pod',
    metadata: { name, namespace: n.serverNamespace, labels: { ...SERVER_LABELS, ...n.runLabel } },
    spec: { ...server.spec },
  };
}

/**
 * The enforce policies in the run's namespaces, by name: the benchmark set (fillers and allow-client, the same
 * generator and seed as src/enforce/plan.ts uses) and the isolating policy. The plan's sets are matched by name.
 */
export function runPolicyMap(config: Pick<RunConfig, 'policies' | 'matchPosition' | 'seed'>, n: RunNames): Map<string, NetworkPolicy> {
  const set = benchmarkPolicySet({ ...config, policies: Math.max(1, config.policies) }, { server: n.serverNamespace, client: n.clientNamespace }, n.runLabel);
  const isolate: NetworkPolicy = {
    apiVersion: 'networking.k8s.io/v1',
    kind: 'NetworkPolicy',
    metadata: { name: 'np-isolate', namespace: n.serverNamespace, labels: { ...n.runLabel, [ROLE_LABEL]: 'isolate' } },
    spec: { podSelector: { matchLabels: { ...SERVER_LABELS } }, policyTypes: ['Ingress'] },
  };
  return new Map([...set.policies, isolate].map((p) => [p.metadata.name, p]));
}

export class K8sEnforcePlane implements EnforceDataPlane {
  readonly cni: RunConfig['cni'];
  readonly model: { name: string; description: string; enforcesPolicy: boolean };
  readonly clockDescription: string;
  readonly backend: K8sBackend;
  private readonly session: K8sSession;
  private readonly target: KubeTarget;
  private readonly runner: Runner;
  private readonly versions: Versions;
  private readonly streamer: Streamer;
  private readonly policies: Map<string, NetworkPolicy>;
  private readonly metricSource: CniMetricSource | undefined;
  private metricPod: { namespace: string; name: string } | null = null;
  private metricNote: string | null = null;
  private current = new Set<string>();
  private readonly active = new Set<K8sRunningWatch>();
  private readonly now: () => bigint;

  private readonly descriptor: BackendDescriptor;

  constructor(private readonly o: K8sEnforceOptions) {
    this.cni = o.config.cni;
    this.runner = o.runner ?? new ExecRunner(o.signal);
    const cleanupRunner = o.cleanupRunner ?? new ExecRunner();
    this.versions = o.versions ?? loadVersions();
    const common = { config: o.config, runId: o.runId, runner: this.runner, cleanupRunner, signal: o.signal, progress: o.progress, outDir: o.outDir, versions: this.versions, probeIntervalMs: o.probeIntervalMs };
    this.descriptor = BACKEND_DESCRIPTORS[o.backend];
    // The descriptor builds the backend (the plane itself never names one).
    const build = this.descriptor.k8sBackend;
    if (!build) throw new BenchError('internal', `enforce on ${o.backend}: not a Kubernetes backend`);
    this.backend = build({ ...common, kubeconfigDir: o.kubeconfigDir });
    this.session = this.backend.session;
    this.target = this.backend.target;
    this.streamer = o.streamer ?? spawnStreamer;
    this.now = o.now ?? (() => process.hrtime.bigint());
    this.policies = runPolicyMap(o.config, this.session.names);
    this.metricSource = cniMetricSource(o.config.cni);
    const m = this.backend.model;
    this.model = { name: m.name, description: `${m.description}; enforce: changes through the API server, watch probes from pods on the client node`, enforcesPolicy: m.enforcesPolicy };
    this.clockDescription =
      this.descriptor.sharesHostClock
        ? "CLOCK_MONOTONIC of this machine: kind's nodes share its kernel, and every watch checks it (each stdin mark is stamped in the pod between its write and its echo here); the change starts when kubectl is started"
        : "this machine's CLOCK_MONOTONIC; each watch's node clock is put on it by stdin marks through kubectl exec (offset from the shortest round trip, ±half of it: observation.k8s.clock.boundNs); the change starts when kubectl is started";
  }

  private get names(): RunNames {
    return this.session.names;
  }

  private run(spec: CommandSpec) {
    return this.runner.run(spec);
  }

  private nodes(): { serverNode: string; clientNode: string } {
    return this.session.placement ?? { serverNode: '<server-node>', clientNode: '<client-node>' };
  }

  async up(): Promise<void> {
    await this.backend.up();
    const n = this.names;
    const { clientNode } = this.nodes();
    const pods = [renderProbePod(n, ENFORCE_PODS.intruder, { ...INTRUDER_LABELS }, clientNode, this.versions), renderProbePod(n, ENFORCE_PODS.joiner, { ...JOINER_LABELS }, clientNode, this.versions)];
    validateManifests(pods);
    const ns = n.clientNamespace;
    this.o.progress?.step(`creating the intruder and joiner probe pods in ${ns} on ${clientNode}`);
    await this.run(kubectl(this.target, ['create', '-f', '-'], 'create the intruder and joiner probe pods (client node)', { input: toYaml(pods) }));
    await this.run(waitSpec(this.target, ['-n', ns, 'wait', '--for=condition=Ready', ...PROBE_PODS.map((p) => `pod/${ENFORCE_PODS[p]}`)], 300, 'wait for the probe pods'));
    for (const p of PROBE_PODS) {
      const pod = ENFORCE_PODS[p];
      await this.run(kubectl(this.target, ['cp', STATIC_PROBE_BIN, `${ns}/${pod}:${PROBE_PATH}`, '-c', PROBE_CONTAINER], `copy the static cb-probe into ${pod}`, { timeoutMs: 60_000 }));
      await this.run(kubectl(this.target, ['exec', '-n', ns, pod, '-c', PROBE_CONTAINER, '--', 'chmod', '0755', PROBE_PATH], `make the probe in ${pod} executable`, { timeoutMs: 30_000 }));
    }
    await this.setUpMetrics();
  }

  /** kind: switch the agent's metrics on (the cluster is ours); cluster: use them only if already on. */
  private async setUpMetrics(): Promise<void> {
    const src = this.metricSource;
    if (!src) {
      this.metricNote = `${this.cni} has no agent metric of its own for policy changes`;
      return;
    }
    const t = this.target;
    if (this.descriptor.ownsCluster) for (const cmd of src.switchOn(t, this.versions)) await this.run(cmd);
    const r = await this.run(planAgentPodOnNode(t, src, this.nodes().serverNode));
    if (this.runner.dryRun) {
      this.metricPod = { namespace: '<agent-namespace>', name: '<agent-pod-on-server-node>' };
      await this.run(planScrape(t, this.metricPod, src, `scrape ${src.metric} (before and after every change)`));
      return;
    }
    this.metricPod = agentPodFrom(r.stdout);
    if (!this.metricPod) {
      this.metricNote = `no agent pod (${src.selector}) on the server's node ${this.nodes().serverNode}`;
      return;
    }
    // kind: the agent restarts with the new setting; give it time to serve.
    const deadline = performance.now() + (this.descriptor.ownsCluster ? 120_000 : 0);
    for (;;) {
      const s = await this.scrape();
      if (s.value) return;
      if (performance.now() >= deadline) {
        this.metricNote = `${src.metric} not available from ${this.metricPod.namespace}/${this.metricPod.name}:${src.port}: ${s.why} (${src.enable}; RBAC: pods/proxy, clusters/rbac-enforce-cni-metrics.yaml)`;
        this.metricPod = null;
        return;
      }
      await sleep(2_000);
    }
  }

  private async scrape(when = ''): Promise<{ value: SumCount | null; why: string }> {
    const src = this.metricSource!;
    const r = await this.run(planScrape(this.target, this.metricPod!, src, `scrape ${src.metric}${when}`));
    if (this.runner.dryRun) return { value: null, why: 'dry run' };
    if (r.exitCode !== 0) return { value: null, why: r.stderr.trim().split('\n').pop() || `exit ${r.exitCode}` };
    const v = parseSumCount(r.stdout, src.metric);
    return { value: v, why: v ? '' : `no ${src.metric} in the agent's metrics` };
  }

  async install(set: PolicySet): Promise<Record<string, number | string | boolean>> {
    const n = this.config.policies;
    // The session's install: filler peers as pods, fillers in batches, allow-client last, and the wait until the
    // allowed client connects and the denied one does not. Then the isolating policy, then allow-client removed
    // when the wanted state is closed: the starting state, not measured.
    const w = this.session.workload;
    const report = await this.session.installPolicies(benchmarkPolicySet(this.config, w.namespaces, w.runLabel));
    const have = new Set(n > 0 ? [...this.policies.keys()].filter((k) => k !== 'np-isolate') : []);
    this.current = have;
    const want = set.policies.map((p) => p.metadata.name);
    for (const name of want) if (!this.policies.has(name)) throw new K8sEnforceError(`policy ${name} of the enforce set has no counterpart in the run's namespaces`);
    await this.applyDiff(want, 'initial state');
    const allowClient = [...this.policies.values()].find((p) => p.metadata.labels?.[ROLE_LABEL] === 'allow-client')!.metadata.name;
    const waitedMs = await this.waitState(want.includes(allowClient));
    return {
      startingStateMs: waitedMs, ...report.modelState, installedBy: 'server-side apply (session install, then np-isolate, then the starting state)', cniMetric: this.metricPod ? `${this.metricSource!.metric} from ${this.metricPod.namespace}/${this.metricPod.name}` : this.metricNote ?? 'none' };
  }

  /**
   * The agents apply a change asynchronously: before the first measured change, the starting state must be in
   * force, or its precondition would fail for reasons of setup. A watch from the client until 20 probes in a row
   * show it (60 s at most); returns how long that took, ms.
   */
  private async waitState(open: boolean): Promise<number> {
    if (this.runner.dryRun) return 0;
    const t = performance.now();
    this.o.progress?.step(`waiting until the starting state is in force (client ${open ? 'allowed' : 'denied'})`);
    const w = await this.watch('client', this.session.serverIp, { intervalUs: 1000, timeoutMs: 100, maxMs: 60_000, until: open ? 'open' : 'closed', settle: 20 });
    const out = await w.done;
    if (out.settledIndex < 0) throw new K8sEnforceError(`the starting state (client ${open ? 'allowed' : 'denied'}) was not in force 60 s after it was applied`);
    return Math.round(performance.now() - t);
  }

  private get config() {
    return this.o.config;
  }

  /** The commands that move the installed policies to `want`; returns their purposes. */
  private async applyDiff(want: string[], why: string): Promise<string[]> {
    const wanted = new Set(want);
    const add = want.filter((w) => !this.current.has(w)).map((w) => this.policies.get(w)!);
    const del = [...this.current].filter((c) => !wanted.has(c));
    const done: string[] = [];
    if (add.length) {
      const spec = kubectl(this.target, ['apply', '--server-side', '--field-manager=cni-bench', '-f', '-'], `${why}: apply ${add.map((p) => p.metadata.name).join(', ')}`, { input: toListJson(add), timeoutMs: 120_000 });
      validateManifests(add);
      await this.run(spec);
      done.push(shellQuote(spec.argv));
    }
    if (del.length) {
      const spec = kubectl(this.target, ['delete', 'networkpolicy', '-n', this.names.serverNamespace, ...del, '--wait=false'], `${why}: delete ${del.join(', ')}`, { timeoutMs: 120_000 });
      await this.run(spec);
      done.push(shellQuote(spec.argv));
    }
    this.current = wanted;
    return done;
  }

  /**
   * One measured change: the CNI metric before, a mark to every running watch (a clock sample next to the
   * change), the start, the API call, then the metric until it moves (or metricWaitMs).
   */
  private async change(issue: () => Promise<string[]>, counts: Record<string, number>): Promise<AppliedChange> {
    const before = this.metricPod ? (await this.scrape(' before the change (after it: again every 200 ms until it moves)')).value : null;
    for (const w of this.active) w.mark();
    const startNs = this.now();
    const t = performance.now();
    const commands = await issue();
    const apiMs = performance.now() - t;
    let cniMetric: CniMetricDelta | null = null;
    let cniMetricNote = this.metricNote;
    if (this.metricPod && before && !this.runner.dryRun) {
      const src = this.metricSource!;
      const deadline = performance.now() + (this.o.metricWaitMs ?? 3_000);
      for (;;) {
        const after = (await this.scrape(' after the change')).value;
        if (after) cniMetric = metricDelta(src.metric, `${this.metricPod.namespace}/${this.metricPod.name}`, before, after, performance.now() - t - apiMs);
        if ((cniMetric && cniMetric.countDelta > 0) || performance.now() >= deadline) break;
        await sleep(this.o.metricPollMs ?? 200);
      }
      cniMetricNote = cniMetric ? (cniMetric.countDelta > 0 ? src.meaning : `${src.metric} recorded nothing within ${this.o.metricWaitMs ?? 3_000} ms of the change`) : `${src.metric} could not be scraped after the change`;
    }
    const k8s: K8sChangeRecord = { command: commands.join(' && '), apiMs, watchStartedMs: null, cniMetric, cniMetricNote };
    return {
      startNs,
      resolveMs: 0,
      // The agent's own work happens on the nodes: what is known of it is the CNI's metric (k8s.cniMetric).
      report: { agentMs: apiMs, compileMs: 0, applyMs: cniMetric?.sumDeltaMs ?? 0, changed: counts, state: {} },
      k8s,
    };
  }

  async setPolicies(set: PolicySet): Promise<AppliedChange> {
    const want = set.policies.map((p) => p.metadata.name);
    return this.change(() => this.applyDiff(want, 'change'), { policies: want.length });
  }

  async setLabels(pod: string, labels: Record<string, string>): Promise<AppliedChange> {
    const name = ENFORCE_PODS[pod as keyof typeof ENFORCE_PODS];
    if (!name) throw new K8sEnforceError(`no pod ${pod} in the enforce topology`);
    const spec = kubectl(this.target, ['label', 'pod', '-n', this.names.clientNamespace, name, ...Object.entries(labels).map(([k, v]) => `${k}=${v}`), '--overwrite'], `change: label ${name} ${Object.entries(labels).map(([k, v]) => `${k}=${v}`).join(',')}`);
    return this.change(async () => (await this.run(spec), [shellQuote(spec.argv)]), { labels: Object.keys(labels).length });
  }

  async prepareServerPod(name: string): Promise<{ ip: string | null; attach(): Promise<AppliedChange>; remove(): Promise<void> }> {
    const podName = `bench-${name}`;
    const ns = this.names.serverNamespace;
    const manifest = renderNewServerPod(this.names, podName, this.nodes().serverNode, this.versions);
    validateManifests([manifest]);
    let created = false;
    return {
      ip: this.runner.dryRun ? DRY_RUN_NEW_POD_IP : null,
      attach: async () => {
        const spec = kubectl(this.target, ['create', '-f', '-'], `change: create the new server pod ${podName} (server labels, server node)`, { input: toYaml([manifest]) });
        const applied = await this.change(async () => (await this.run(spec), (created = true), [shellQuote(spec.argv)]), { pods: 1 });
        // Its address, once the kubelet has reported it (after the sandbox and the CNI ADD).
        const deadline = performance.now() + (this.o.podIpTimeoutMs ?? 60_000);
        for (;;) {
          const r = await this.run(kubectl(this.target, ['get', 'pod', '-n', ns, podName, '-o', 'jsonpath={.status.podIP}'], `the address of ${podName}`));
          const ip = this.runner.dryRun ? DRY_RUN_NEW_POD_IP : r.stdout.trim();
          if (ip) return { ...applied, ip, attachMs: Number(this.now() - applied.startNs) / 1e6 };
          if (performance.now() > deadline) throw new K8sEnforceError(`${ns}/${podName} had no address ${this.o.podIpTimeoutMs ?? 60_000} ms after it was created`);
          await sleep(this.o.podIpPollMs ?? 50);
        }
      },
      remove: async () => {
        if (!created && !this.runner.dryRun) return;
        await this.run(kubectl(this.target, ['delete', 'pod', '-n', ns, podName, '--ignore-not-found', '--wait=false'], `remove ${podName} (not measured)`));
      },
    };
  }

  ipOf(pod: string): string {
    if (pod !== 'server-0') throw new K8sEnforceError(`no address for ${pod}: only the server's is known before a change`);
    return this.session.serverIp;
  }

  private watchCommand(from: string, target: string, s: WatchSettings): CommandSpec {
    const pod = ENFORCE_PODS[from as keyof typeof ENFORCE_PODS];
    if (!pod) throw new K8sEnforceError(`no probe pod ${from} in the enforce topology`);
    const placeholder = !/^[0-9.:a-fA-F]+$/.test(target);
    // No --realtime: the pods run restricted (no CAP_SYS_NICE); the cadence achieved is in every observation.
    const argv = watchArgv(PROBE_PATH, { target: placeholder ? DRY_RUN_TARGET : target, port: SERVER_PORT, ...s, realtime: false, controlStdin: true }).map((a) => (placeholder && a === DRY_RUN_TARGET ? target : a));
    return kubectl(this.target, ['exec', '-i', '-n', this.names.clientNamespace, pod, '-c', PROBE_CONTAINER, '--', ...argv], `watch ${target}:${SERVER_PORT} from ${pod} every ${s.intervalUs} µs`, { timeoutMs: s.maxMs + s.timeoutMs + 60_000 });
  }

  watchSpec(from: string, target: string, s: WatchSettings): string {
    return shellQuote(this.watchCommand(from, target, s).argv);
  }

  async watch(from: string, target: string, s: WatchSettings): Promise<RunningWatch> {
    const spec = this.watchCommand(from, target, s);
    const w = await startK8sWatch(this.streamer, spec, { sharedClock: this.descriptor.sharesHostClock, timeoutMs: spec.timeoutMs!, calibrationMarks: this.o.calibrationMarks, now: this.now });
    this.active.add(w);
    const onAbort = () => w.abort();
    this.o.signal?.addEventListener('abort', onAbort, { once: true });
    void w.done
      .finally(() => {
        this.active.delete(w);
        this.o.signal?.removeEventListener('abort', onAbort);
      })
      .catch(() => undefined);
    return w;
  }

  async down(): Promise<void> {
    for (const w of [...this.active]) await Promise.race([w.stop().catch(() => undefined), sleep(5_000)]);
    await this.backend.down();
  }
}

