// `bench enforce --workload FILE` on kind and on an existing cluster: the workload replayed as `bench run/verify
// --workload` replay it (./workload.ts: its namespaces as the run's own, its policies applied server-side in
// batches, the wait until they are enforced), every watched flow's source with the probe container and the static
// cb-probe beside its own containers; then each change through the API server — `kubectl delete networkpolicy` of
// the one policy a remove names, a server-side apply of the one (rewritten) policy an add names — with
// `cb-probe watch` behind `kubectl exec -i` in the sources, on this machine's clock (./clock.ts, as the synthetic
// enforce: ./changes.ts).
//
// The change starts when kubectl is started (process.hrtime.bigint() just before), so the time to enforcement
// includes kubectl's start and the API round trip (recorded as apiMs). Unlike the synthetic enforce, the CNI's own
// metric is not scraped around a workload change (cniMetricNote says so).
//
// Exercised on the machine this was written on (no Docker, no cluster): the dry-run plan, the manifests against
// their schemas, and the control flow with an injected runner and a simulated `kubectl exec` stream
// (./workload-enforce.test.ts). Not run against a real cluster there.
import { BenchError } from '../../errors.js';
import { shellQuote, type CommandSpec } from '../../exec/runner.js';
import type { PolicySet } from '../../policy/generate.js';
import type { NetworkPolicy } from '../../policy/types.js';
import { watchArgv, type RunningWatch, type WatchSettings } from '../../probe/native.js';
import { podOf, type EndpointId, type WorkloadPod } from '../../workload/workload.js';
import type { AppliedChange, K8sChangeRecord, NewPod, PlaneChanges, PolicyInstallReport } from '../types.js';
import type { K8sPlaneContext } from './deployment.js';
import { realNamespace, rewritePolicies } from './grid-names.js';
import { kubectl } from './kubectl.js';
import { PROBE_CONTAINER, PROBE_PATH } from './manifests.js';
import { validateManifests } from './validate.js';
import { startK8sWatch, type K8sRunningWatch, type Streamer } from './watch.js';
import { ClusterWorkloadDeployment } from './workload.js';
import { toListJson } from './yaml.js';

/** Stands in a plan for a pod address that exists only on a cluster (watchArgv takes an address). */
const DRY_RUN_TARGET = '192.0.2.1';

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));
const keyOf = (p: NetworkPolicy) => `${p.metadata.namespace}/${p.metadata.name}`;

export class ClusterWorkloadEnforceDeployment extends ClusterWorkloadDeployment implements PlaneChanges {
  readonly clockDescription: string;
  readonly watchNote = "kubectl exec -i in the watched flow's source pod (its probe container), one per watched flow, started before the change";
  /** The agents program a change asynchronously: a state is waited for before the change that starts from it. */
  readonly appliesAsynchronously = true;
  /** The policies in place, by the workload's `ns/name`. */
  private current = new Map<string, NetworkPolicy>();
  private readonly active = new Set<K8sRunningWatch>();
  private readonly streamer: Streamer;
  private readonly now: () => bigint;

  private readonly k: K8sPlaneContext;

  constructor(k: K8sPlaneContext) {
    super(k, true);
    this.k = k;
    const t = k.opts.enforce ?? {};
    this.streamer = t.streamer ?? ((spec) => k.runner.start(spec));
    this.now = t.now ?? (() => process.hrtime.bigint());
    this.clockDescription = k.opts.sharesHostClock
      ? "CLOCK_MONOTONIC of this machine: kind's nodes share its kernel, and every watch checks it (each stdin mark is stamped in the pod between its write and its echo here); the change starts when kubectl is started"
      : "this machine's CLOCK_MONOTONIC; each watch's node clock is put on it by stdin marks through kubectl exec (offset from the shortest round trip, ±half of it: observation.k8s.clock.boundNs); the change starts when kubectl is started";
  }

  get changes(): PlaneChanges {
    return this;
  }

  override describe(cluster: Parameters<ClusterWorkloadDeployment['describe']>[0]): string {
    return `${super.describe(cluster)}; enforce: each change to one of its policies through the API server, watch probes (cb-probe) from the watched flows' source pods`;
  }

  /** The whole set, as bench run/verify install it; what is in place is remembered by the workload's names. */
  override async install(set: PolicySet): Promise<PolicyInstallReport> {
    const report = await super.install(set);
    this.current = new Map(set.policies.map((p) => [keyOf(p), p]));
    return { ...report, modelState: { ...report.modelState, installedBy: 'server-side apply in batches (as bench run --workload), then one kubectl call per change' } };
  }

  /** The commands that move the installed policies to `want`: one apply of those added, one delete per namespace of those removed. */
  private async applyDiff(want: readonly NetworkPolicy[], why: string): Promise<string[]> {
    const names = this.names!;
    const wanted = new Map(want.map((p) => [keyOf(p), p]));
    const add = want.filter((p) => !this.current.has(keyOf(p)));
    const del = [...this.current.values()].filter((p) => !wanted.has(keyOf(p)));
    const t = this.k.provider.target;
    const done: string[] = [];
    if (add.length) {
      const real = rewritePolicies(add, names);
      validateManifests(real);
      const spec = kubectl(t, ['apply', '--server-side', '--field-manager=cni-bench', '-f', '-'], `${why}: apply ${add.map(keyOf).join(', ')}`, { input: toListJson(real), timeoutMs: 120_000 });
      await this.k.runner.run(spec);
      done.push(shellQuote(spec.argv));
    }
    const byNs = new Map<string, string[]>();
    for (const p of del) byNs.set(p.metadata.namespace, [...(byNs.get(p.metadata.namespace) ?? []), p.metadata.name]);
    for (const [ns, list] of byNs) {
      // --wait=false: kubectl returns once the API server answered the DELETE (kubectl cmd/delete/delete.go: with
      // --wait it then waits until the object is gone); the agents act on their watch event from then on.
      const spec = kubectl(t, ['delete', 'networkpolicy', '-n', realNamespace(names, ns), ...list, '--wait=false'], `${why}: delete ${list.map((n) => `${ns}/${n}`).join(', ')}`, { timeoutMs: 120_000 });
      await this.k.runner.run(spec);
      done.push(shellQuote(spec.argv));
    }
    this.current = wanted;
    return done;
  }

  /** One change: a mark to every running watch (a clock sample next to it), the start, the API call. */
  async setPolicies(set: PolicySet): Promise<AppliedChange> {
    for (const w of this.active) w.mark();
    const startNs = this.now();
    const t = performance.now();
    const commands = await this.k.guard.run('change-policy', () => this.applyDiff(set.policies, 'change'));
    const apiMs = performance.now() - t;
    const k8s: K8sChangeRecord = { command: commands.join(' && '), apiMs, watchStartedMs: null, cniMetric: null, cniMetricNote: "not scraped for a workload's policy changes" };
    return { startNs, resolveMs: 0, report: { agentMs: apiMs, compileMs: 0, applyMs: 0, changed: { policies: set.policies.length }, state: {} }, k8s };
  }

  setLabels(): Promise<AppliedChange> {
    return Promise.reject(new BenchError('internal', "bench enforce --workload changes the workload's policies only"));
  }

  preparePod(pod: WorkloadPod): Promise<NewPod> {
    return Promise.reject(new BenchError('internal', `bench enforce --workload adds no pod (asked for ${pod.namespace}/${pod.name})`));
  }

  private watchSpec(from: EndpointId, target: string, port: number, s: WatchSettings): CommandSpec {
    const pod = podOf(this.workload!, from);
    if (!pod || pod.presence !== 'endpoint') throw new BenchError('internal', `watch from ${from}: not a running pod of the workload`);
    const placeholder = !/^[0-9.:a-fA-F]+$/.test(target);
    // No --realtime: the probe container runs unprivileged (no CAP_SYS_NICE); the cadence achieved is in every observation.
    const argv = watchArgv(PROBE_PATH, { target: placeholder ? DRY_RUN_TARGET : target, port, ...s, realtime: false, controlStdin: true }).map((a) => (placeholder && a === DRY_RUN_TARGET ? target : a));
    const ns = realNamespace(this.names!, pod.namespace);
    return kubectl(this.k.provider.target, ['exec', '-i', '-n', ns, pod.name, '-c', PROBE_CONTAINER, '--', ...argv], `watch ${target}:${port} from ${ns}/${pod.name} every ${s.intervalUs} µs`, { timeoutMs: s.maxMs + s.timeoutMs + 60_000 });
  }

  watchCommand(from: EndpointId, target: string, port: number, s: WatchSettings): string {
    return shellQuote(this.watchSpec(from, target, port, s).argv);
  }

  async watch(from: EndpointId, target: string, port: number, s: WatchSettings): Promise<RunningWatch> {
    const spec = this.watchSpec(from, target, port, s);
    const tuning = this.k.opts.enforce ?? {};
    const w = await startK8sWatch(this.streamer, spec, { sharedClock: Boolean(this.k.opts.sharesHostClock), timeoutMs: spec.timeoutMs!, calibrationMarks: tuning.calibrationMarks, now: this.now });
    this.active.add(w);
    const onAbort = () => w.abort();
    const signal = this.k.opts.signal;
    signal?.addEventListener('abort', onAbort, { once: true });
    void w.done
      .finally(() => {
        this.active.delete(w);
        signal?.removeEventListener('abort', onAbort);
      })
      .catch(() => undefined);
    return w;
  }

  override async teardown(clusterStays: boolean): Promise<void> {
    for (const w of [...this.active]) await Promise.race([w.stop().catch(() => undefined), sleep(5_000)]);
    await super.teardown(clusterStays);
  }
}
