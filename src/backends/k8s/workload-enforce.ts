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
import type { RunningWatch, WatchSettings } from '../../probe/native.js';
import { podOf, type EndpointId, type WorkloadPod } from '../../workload/workload.js';
import type { AppliedChange, K8sChangeRecord, NewPod, PlaneChanges, PolicyInstallReport } from '../types.js';
import type { K8sPlaneContext } from './deployment.js';
import { realNamespace, rewritePolicies } from './grid-names.js';
import { kubectl } from './kubectl.js';
import { PROBE_CONTAINER, PROBE_PATH } from './manifests.js';
import { validateManifests } from './validate.js';
import { probeWatchSpec, ProbeWatches, watchClockDescription } from './watch.js';
import { ClusterWorkloadDeployment } from './workload.js';
import { toListJson } from './yaml.js';

/** Stands in a plan for a pod address that exists only on a cluster (watchArgv takes an address). */

const keyOf = (p: NetworkPolicy) => `${p.metadata.namespace}/${p.metadata.name}`;

export class ClusterWorkloadEnforceDeployment extends ClusterWorkloadDeployment implements PlaneChanges {
  readonly clockDescription: string;
  readonly watchNote = "kubectl exec -i in the watched flow's source pod (its probe container), one per watched flow, started before the change";
  /** The agents program a change asynchronously: a state is waited for before the change that starts from it. */
  readonly appliesAsynchronously = true;
  /** The policies in place, by the workload's `ns/name`. */
  private current = new Map<string, NetworkPolicy>();
  private readonly watches: ProbeWatches;
  private readonly now: () => bigint;

  private readonly k: K8sPlaneContext;

  constructor(k: K8sPlaneContext) {
    super(k, true);
    this.k = k;
    const t = k.opts.enforce ?? {};
    this.now = t.now ?? (() => process.hrtime.bigint());
    this.watches = new ProbeWatches(t.streamer ?? ((spec) => k.runner.start(spec)), this.now);
    this.clockDescription = watchClockDescription(k.opts.sharesHostClock);
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
    this.watches.mark();
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
    const ns = realNamespace(this.names!, pod.namespace);
    return probeWatchSpec(this.k.provider.target, { namespace: ns, pod: pod.name, container: PROBE_CONTAINER, probePath: PROBE_PATH, what: `${ns}/${pod.name}` }, target, port, s);
  }

  watchCommand(from: EndpointId, target: string, port: number, s: WatchSettings): string {
    return shellQuote(this.watchSpec(from, target, port, s).argv);
  }

  watch(from: EndpointId, target: string, port: number, s: WatchSettings): Promise<RunningWatch> {
    return this.watches.start(this.watchSpec(from, target, port, s), { sharesHostClock: this.k.opts.sharesHostClock, calibrationMarks: this.k.opts.enforce?.calibrationMarks, signal: this.k.opts.signal });
  }

  override async teardown(clusterStays: boolean): Promise<void> {
    await this.watches.stopAll();
    await super.teardown(clusterStays);
  }
}
