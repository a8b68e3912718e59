// The enforce workload on kind and on an existing cluster: the benchmark's pods plus two probe pods, the real
// agents, every change through the API server
// (server-side apply / delete of a NetworkPolicy, `kubectl label`, a new Pod), watch probes from pods on the
// client node (cb-probe watch behind `kubectl exec -i`, streamed), and the CNI's own figure scraped through the
// pod proxy around each change.
//
// One clock: the change's start is process.hrtime.bigint() here, just before kubectl is started; each watch's
// probes are put on this machine's clock by stdin marks (./clock.ts): on kind verified to be the same clock
// (bound 0), on a cluster the offset from the shortest mark round trip, ±half of it, recorded per observation.
// The time to enforcement therefore includes kubectl's own start and the API round trip (recorded as apiMs):
// that is what a user who applies a policy waits for.
//
// Exercised on the machine this was written on (no Docker, no cluster): the dry-run plan, the manifests against
// their schemas, and the control flow with an injected runner and a fake `kubectl exec` stream fed cb-probe
// watch output (src/enforce/k8s.test.ts). Not run against a real cluster there.
import { BenchError } from '../../errors.js';
import { shellQuote, type CommandSpec } from '../../exec/runner.js';
import type { PolicySet } from '../../policy/generate.js';
import type { NetworkPolicy } from '../../policy/types.js';
import type { RunningWatch, WatchSettings } from '../../probe/native.js';
import type { MetricName, MetricResult } from '../../results/schema.js';
import { SERVER_LABELS, podId, type EndpointId, type Flow, type Workload, type WorkloadAddresses, type WorkloadPod } from '../../workload/workload.js';
import { benchmarkPolicySet } from '../../workload/benchmark.js';
import type { AppliedChange, K8sChangeRecord, MeasureSettings, NewPod, PlaneChanges, PolicyInstallReport, ServiceChanges } from '../types.js';
import { K8sServiceChanges } from './service-changes.js';
import { cniMetricSource, agentPodFrom, metricDelta, parseSumCount, planAgentPodOnNode, planScrape, type CniMetricDelta, type CniMetricSource, type MetricReader, type SumCount } from './agent-metrics.js';
import type { K8sDeployment, K8sPlaneContext } from './deployment.js';
import { kubectl, waitSpec } from './kubectl.js';
import { CLIENT_POD as K8S_CLIENT_POD, PROBE_CONTAINER, PROBE_PATH, renderWorkloads, type RunNames } from './manifests.js';
import type { KeepNote, ProviderDescription } from './provider.js';
import type { BenchmarkDeployment } from './benchmark.js';
import { STATIC_PROBE_BIN } from './session.js';
import { validateManifests } from './validate.js';
import type { Versions } from './versions.js';
import { probeWatchSpec, ProbeWatches, watchClockDescription } from './watch.js';
import { toListJson, toYaml, type Manifest } from './yaml.js';

export class K8sEnforceError extends BenchError {
  constructor(message: string) {
    super('k8s-step', message);
  }
}

/** Shown in dry-run plans for addresses that exist only on a cluster. */
export const DRY_RUN_NEW_POD_IP = '<new-pod-ip>';

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

/** A workload pod's name on the cluster: bench-<name> (the client is the session's own bench-client). */
export const k8sPodName = (pod: Pick<WorkloadPod, 'name'>) => `bench-${pod.name}`;

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
 * The enforce workload on a cluster: the benchmark's pods (the session's), a probe pod for every other client of
 * the workload on the client node, the CNI's own metric around each change; changes through the API server, timed
 * from kubectl's start, watched by cb-probe in the pods on this machine's clock.
 */
export class EnforceDeployment implements K8sDeployment, PlaneChanges {
  readonly clockDescription: string;
  readonly watchNote = "kubectl exec -i, one per change, started before it; new-pod: started on the pod's address once it has one";
  private workload?: Workload;
  private probePods: WorkloadPod[] = [];
  private readonly metricSource: CniMetricSource | undefined;
  private metricPod: { namespace: string; name: string } | null = null;
  private metricNote: string | null = null;
  private current = new Set<string>();
  private readonly watches: ProbeWatches;
  private readonly now: () => bigint;

  constructor(
    private readonly c: K8sPlaneContext,
    private readonly benchmark: BenchmarkDeployment,
  ) {
    const t = c.opts.enforce ?? {};
    // Through the run's process layer (its log records each watch); not cancelled by its signal: abort() stops it.
    this.now = t.now ?? (() => process.hrtime.bigint());
    this.watches = new ProbeWatches(t.streamer ?? ((spec) => c.runner.start(spec)), this.now);
    this.metricSource = cniMetricSource(c.config.cni);
    this.clockDescription = watchClockDescription(c.opts.sharesHostClock);
  }

  get changes(): PlaneChanges {
    return this;
  }

  private serviceSide?: K8sServiceChanges;
  /** `bench enforce --services`: the Service changes on the run's own Services and EndpointSlices (./service-changes.ts). */
  get serviceChanges(): ServiceChanges {
    this.serviceSide ??= new K8sServiceChanges({ c: this.c, plane: this, waitTimeoutMs: this.c.opts.enforce?.serviceWaitMs, client: () => podId(this.workload!.pods.find((p) => p.role === 'client')!) });
    return this.serviceSide;
  }

  private get names(): RunNames {
    return this.c.session.names;
  }

  private get kube() {
    return this.c.provider.target;
  }

  private run(spec: CommandSpec) {
    return this.c.runner.run(spec);
  }

  private nodes(): { serverNode: string; clientNode: string } {
    return this.c.session.placement ?? { serverNode: '<server-node>', clientNode: '<client-node>' };
  }

  describe(cluster: ProviderDescription, benchmark: string): string {
    return `${this.benchmark.describe(cluster, benchmark)}; enforce: changes through the API server, watch probes from pods on the client node`;
  }

  fit(workload: Workload): Workload {
    return this.benchmark.fit(workload);
  }

  /** The pod of the workload with `id`, as the cluster names it. */
  private podName(id: EndpointId): string {
    const pod = this.workload?.pods.find((p) => podId(p) === id && p.role === 'client');
    if (!pod) throw new K8sEnforceError(`no probe pod ${id} in the enforce workload`);
    return k8sPodName(pod);
  }

  async up(workload: Workload): Promise<WorkloadAddresses> {
    this.workload = workload;
    const addresses = await this.benchmark.up(workload);
    const n = this.names;
    const { clientNode } = this.nodes();
    // The first client is the session's client pod; every other client of the workload gets a probe pod.
    this.probePods = workload.pods.filter((p) => p.role === 'client' && p.presence === 'endpoint').slice(1);
    const pods = this.probePods.map((p) => renderProbePod(n, k8sPodName(p), { ...p.labels }, clientNode, this.c.versions));
    validateManifests(pods);
    const ns = n.clientNamespace;
    const names = this.probePods.map((p) => k8sPodName(p));
    this.c.progress?.step(`creating the ${this.probePods.map((p) => p.name).join(' and ')} probe pods in ${ns} on ${clientNode}`);
    await this.run(kubectl(this.kube, ['create', '-f', '-'], `create the ${this.probePods.map((p) => p.name).join(' and ')} probe pods (client node)`, { input: toYaml(pods) }));
    await this.run(waitSpec(this.kube, ['-n', ns, 'wait', '--for=condition=Ready', ...names.map((p) => `pod/${p}`)], 300, 'wait for the probe pods'));
    for (const pod of names) {
      await this.run(kubectl(this.kube, ['cp', STATIC_PROBE_BIN, `${ns}/${pod}:${PROBE_PATH}`, '-c', PROBE_CONTAINER], `copy the static cb-probe into ${pod}`, { timeoutMs: 60_000 }));
      await this.run(kubectl(this.kube, ['exec', '-n', ns, pod, '-c', PROBE_CONTAINER, '--', 'chmod', '0755', PROBE_PATH], `make the probe in ${pod} executable`, { timeoutMs: 30_000 }));
    }
    await this.setUpMetrics();
    return addresses;
  }

  /** kind: switch the agent's metrics on (the cluster is ours); cluster: use them only if already on. */
  private async setUpMetrics(): Promise<void> {
    const src = this.metricSource;
    if (!src) {
      this.metricNote = `${this.c.config.cni} has no agent metric of its own for policy changes`;
      return;
    }
    const t = this.kube;
    const owns = Boolean(this.c.opts.ownsCluster);
    if (owns) for (const cmd of src.switchOn(t, this.c.versions)) await this.run(cmd);
    const r = await this.run(planAgentPodOnNode(t, src, this.nodes().serverNode));
    if (this.c.runner.dryRun) {
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
    const deadline = performance.now() + (owns ? 120_000 : 0);
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
    const r = await this.run(planScrape(this.kube, this.metricPod!, src, `scrape ${src.metric}${when}`));
    if (this.c.runner.dryRun) return { value: null, why: 'dry run' };
    if (r.exitCode !== 0) return { value: null, why: r.stderr.trim().split('\n').pop() || `exit ${r.exitCode}` };
    const v = parseSumCount(r.stdout, src.metric);
    return { value: v, why: v ? '' : `no ${src.metric} in the agent's metrics` };
  }

  /**
   * The starting state, not measured: the session's install of the benchmark set (filler peers as pods, fillers in
   * batches, allow-client last, and the wait until the allowed client connects and the denied one does not), then
   * `set` by difference, then a watch until it is in force.
   */
  async install(set: PolicySet): Promise<PolicyInstallReport> {
    const started = performance.now();
    const cfg = this.c.config;
    const target = this.c.session.target;
    const benchmarkSet = benchmarkPolicySet(cfg, target.namespaces, target.runLabel);
    const report = await this.c.session.installPolicies(benchmarkSet);
    this.current = new Set(benchmarkSet.policies.map((p) => p.metadata.name));
    await this.applyDiff(set.policies, 'initial state');
    const allowsClient = set.policies.some((p) => p.metadata.labels?.['cni-bench/role'] === 'allow-client');
    const waitedMs = await this.waitState(allowsClient);
    return {
      modelState: { startingStateMs: waitedMs, ...report.modelState, installedBy: 'server-side apply (session install, then np-isolate, then the starting state)', cniMetric: this.metricPod ? `${this.metricSource!.metric} from ${this.metricPod.namespace}/${this.metricPod.name}` : this.metricNote ?? 'none' },
      installMs: performance.now() - started,
    };
  }

  /**
   * The agents apply a change asynchronously: before the first measured change, the starting state must be in
   * force, or its precondition would fail for reasons of setup. A watch from the client until 20 probes in a row
   * show it (60 s at most); returns how long that took, ms.
   */
  private async waitState(open: boolean): Promise<number> {
    if (this.c.runner.dryRun) return 0;
    const t = performance.now();
    this.c.progress?.step(`waiting until the starting state is in force (client ${open ? 'allowed' : 'denied'})`);
    const client = this.workload!.pods.find((p) => p.role === 'client')!;
    const flow = this.workload!.flows[0]!;
    const w = await this.watch(podId(client), this.c.session.serverIp, flow.port, { intervalUs: 1000, timeoutMs: 100, maxMs: 60_000, until: open ? 'open' : 'closed', settle: 20 });
    const out = await w.done;
    if (out.settledIndex < 0) throw new K8sEnforceError(`the starting state (client ${open ? 'allowed' : 'denied'}) was not in force 60 s after it was applied`);
    return Math.round(performance.now() - t);
  }

  /** The commands that move the installed policies to `want` (objects as handed, in the run's names); their command lines. */
  private async applyDiff(want: readonly NetworkPolicy[], why: string): Promise<string[]> {
    const wanted = new Set(want.map((p) => p.metadata.name));
    const add = want.filter((p) => !this.current.has(p.metadata.name));
    const del = [...this.current].filter((c) => !wanted.has(c));
    const done: string[] = [];
    if (add.length) {
      const spec = kubectl(this.kube, ['apply', '--server-side', '--field-manager=cni-bench', '-f', '-'], `${why}: apply ${add.map((p) => p.metadata.name).join(', ')}`, { input: toListJson(add), timeoutMs: 120_000 });
      validateManifests(add);
      await this.run(spec);
      done.push(shellQuote(spec.argv));
    }
    if (del.length) {
      const spec = kubectl(this.kube, ['delete', 'networkpolicy', '-n', this.names.serverNamespace, ...del, '--wait=false'], `${why}: delete ${del.join(', ')}`, { timeoutMs: 120_000 });
      await this.run(spec);
      done.push(shellQuote(spec.argv));
    }
    this.current = wanted;
    return done;
  }

  /** The CNI's own policy metric, as a reader a change scrapes around itself (null when there is none). */
  private get cniReader(): MetricReader | null {
    if (!this.metricPod) return null;
    const src = this.metricSource!;
    return { metric: src.metric, where: `${this.metricPod.namespace}/${this.metricPod.name}`, meaning: src.meaning, note: this.metricNote, scrape: (when) => this.scrape(when) };
  }

  /**
   * One measured change: the agent's metric before, a mark to every running watch (a clock sample next to the
   * change), the start, the API call, then the metric until it moves (or metricWaitMs). `reader`: the CNI's own
   * metric by default; Service changes pass kube-proxy's (./service-changes.ts).
   */
  async change(issue: () => Promise<string[]>, counts: Record<string, number>, reader: MetricReader | null = this.cniReader, absentNote: string | null = this.metricNote): Promise<AppliedChange> {
    const tuning = this.c.opts.enforce ?? {};
    const before = reader ? (await reader.scrape(' before the change (after it: again every 200 ms until it moves)')).value : null;
    this.watches.mark();
    const startNs = this.now();
    const t = performance.now();
    const commands = await issue();
    const apiMs = performance.now() - t;
    let cniMetric: CniMetricDelta | null = null;
    let cniMetricNote = reader ? reader.note : absentNote;
    if (reader && before && !this.c.runner.dryRun) {
      const deadline = performance.now() + (tuning.metricWaitMs ?? 3_000);
      for (;;) {
        const after = (await reader.scrape(' after the change')).value;
        if (after) cniMetric = metricDelta(reader.metric, reader.where, before, after, performance.now() - t - apiMs);
        if ((cniMetric && cniMetric.countDelta > 0) || performance.now() >= deadline) break;
        await sleep(tuning.metricPollMs ?? 200);
      }
      cniMetricNote = cniMetric ? (cniMetric.countDelta > 0 ? reader.meaning : `${reader.metric} recorded nothing within ${tuning.metricWaitMs ?? 3_000} ms of the change`) : `${reader.metric} could not be scraped after the change`;
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
    return this.change(() => this.applyDiff(set.policies, 'change'), { policies: set.policies.length });
  }

  async setLabels(id: EndpointId, labels: Record<string, string>): Promise<AppliedChange> {
    const name = this.podName(id);
    const words = Object.entries(labels).map(([k, v]) => `${k}=${v}`);
    const spec = kubectl(this.kube, ['label', 'pod', '-n', this.names.clientNamespace, name, ...words, '--overwrite'], `change: label ${name} ${words.join(',')}`);
    return this.change(async () => (await this.run(spec), [shellQuote(spec.argv)]), { labels: Object.keys(labels).length });
  }

  async preparePod(pod: WorkloadPod): Promise<NewPod> {
    const podName = k8sPodName(pod);
    const ns = this.names.serverNamespace;
    const manifest = renderNewServerPod(this.names, podName, this.nodes().serverNode, this.c.versions);
    validateManifests([manifest]);
    const tuning = this.c.opts.enforce ?? {};
    const dryRun = this.c.runner.dryRun;
    let created = false;
    return {
      ip: dryRun ? DRY_RUN_NEW_POD_IP : null,
      attach: async () => {
        const spec = kubectl(this.kube, ['create', '-f', '-'], `change: create the new server pod ${podName} (server labels, server node)`, { input: toYaml([manifest]) });
        const applied = await this.change(async () => (await this.run(spec), (created = true), [shellQuote(spec.argv)]), { pods: 1 });
        // Its address, once the kubelet has reported it (after the sandbox and the CNI ADD).
        const deadline = performance.now() + (tuning.podIpTimeoutMs ?? 60_000);
        for (;;) {
          const r = await this.run(kubectl(this.kube, ['get', 'pod', '-n', ns, podName, '-o', 'jsonpath={.status.podIP}'], `the address of ${podName}`));
          const ip = dryRun ? DRY_RUN_NEW_POD_IP : r.stdout.trim();
          if (ip) return { ...applied, ip, attachMs: Number(this.now() - applied.startNs) / 1e6 };
          if (performance.now() > deadline) throw new K8sEnforceError(`${ns}/${podName} had no address ${tuning.podIpTimeoutMs ?? 60_000} ms after it was created`);
          await sleep(tuning.podIpPollMs ?? 50);
        }
      },
      remove: async () => {
        if (!created && !dryRun) return;
        await this.run(kubectl(this.kube, ['delete', 'pod', '-n', ns, podName, '--ignore-not-found', '--wait=false'], `remove ${podName} (not measured)`));
      },
    };
  }

  private watchSpec(from: EndpointId, target: string, port: number, s: WatchSettings): CommandSpec {
    const pod = this.podName(from);
    return probeWatchSpec(this.kube, { namespace: this.names.clientNamespace, pod, container: PROBE_CONTAINER, probePath: PROBE_PATH, what: pod }, target, port, s);
  }

  watchCommand(from: EndpointId, target: string, port: number, s: WatchSettings): string {
    return shellQuote(this.watchSpec(from, target, port, s).argv);
  }

  watch(from: EndpointId, target: string, port: number, s: WatchSettings): Promise<RunningWatch> {
    return this.watches.start(this.watchSpec(from, target, port, s), { sharesHostClock: this.c.opts.sharesHostClock, calibrationMarks: this.c.opts.enforce?.calibrationMarks, signal: this.c.opts.signal });
  }

  measure(flow: Flow, metric: MetricName, settings: MeasureSettings): Promise<Omit<MetricResult, 'summary'>> {
    return this.benchmark.measure(flow, metric, settings);
  }

  namespaces(): string[] {
    return this.benchmark.namespaces();
  }

  async teardown(clusterStays: boolean): Promise<void> {
    await this.watches.stopAll();
    await this.benchmark.teardown(clusterStays);
  }

  keepNote(): KeepNote {
    return this.benchmark.keepNote();
  }
}
