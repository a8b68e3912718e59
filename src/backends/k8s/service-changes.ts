// `bench enforce --services` on kind and existing clusters: the Service changes of src/enforce/services.ts as
// Kubernetes operations on the run's own objects, timed and watched as the policy changes are (./changes.ts: the
// change starts when kubectl is started, the watch is cb-probe in the client pod on this machine's clock).
//
// Every Service of the set goes to the run's server namespace (cb-<runid>-server, removed with it), selectorless,
// with an EndpointSlice the tool writes (managed-by cni-bench, which the EndpointSlice controller leaves alone), so
// the endpoint set is ours to change: the probed Service's slice goes from the server pod's address to none
// (endpoint-removed: kube-proxy then REJECTs, the eBPF balancers find no backend: the connect fails, and how long
// connections still reach the server is the blackhole window) and back (endpoint-added: the first connection that
// reaches it); service-added applies a new Service and its slice. Every endpoint is a pod of the run, as in `bench
// run --services` (./services.ts): an address outside the run could be a real host on someone's cluster; the
// fillers' E endpoints (--endpoints-per-service) are the server and E−1 more server pods (./service-backends.ts).
//
// The ClusterIPs are the API server's: the probed one is read after the first apply; the added one exists only
// once its Service does, so its watch starts on the address the change returns (as new-pod's does on the pod's).
//
// The agent's own cost: on kind with kube-proxy in iptables or nftables mode, `kubeproxy_sync_proxy_rules_duration_
// seconds` (kubernetes/kubernetes pkg/proxy/metrics/metrics.go: a histogram of every sync) read on the client's node
// before and after each change, its delta the syncs that change caused. Not read on an existing cluster (the metric
// listens on each node's 127.0.0.1:10249) nor where the CNI replaces kube-proxy (its own service maps are not read).
import { shellQuote } from '../../exec/runner.js';
import type { ServiceSet } from '../../services/types.js';
import { serviceManifests } from '../../services/manifests.js';
import { SERVER_PORT, type EndpointId } from '../../workload/workload.js';
import type { RunningWatch, WatchSettings } from '../../probe/native.js';
import type { AppliedChange, ServiceChanges, ServiceInstall } from '../types.js';
import { parseSumCount, type MetricReader } from './agent-metrics.js';
import { applyInBatches, applySpec } from './apply.js';
import type { K8sPlaneContext } from './deployment.js';
import { K8sStepError } from './errors.js';
import { BenchError } from '../../errors.js';
import { kubectl } from './kubectl.js';
import { KUBE_PROXY_METRICS_URL, kubeProxyState, type ProxySeen } from './service-state.js';
import { DRY_RUN_CLUSTER_IP, K8S_SERVICE_PORT, K8sServices, planeOf } from './services.js';
import { validateManifests } from './validate.js';
import { BACKENDS_NAME, startBackends } from './service-backends.js';

/** kube-proxy's sync histogram (pkg/proxy/metrics/metrics.go, SyncProxyRulesLatency). */
export const KUBE_PROXY_SYNC_METRIC = 'kubeproxy_sync_proxy_rules_duration_seconds';
/** In dry-run plans, the ClusterIP of the Service service-added creates. */
export const DRY_RUN_ADDED_CLUSTER_IP = '<added-cluster-ip>';

/** What the Service changes use of the enforce deployment: its timed change and its watches. */
export interface TimedPlane {
  change(issue: () => Promise<string[]>, counts: Record<string, number>, reader?: MetricReader | null, absentNote?: string | null): Promise<AppliedChange>;
  watch(from: EndpointId, target: string, port: number, s: WatchSettings): Promise<RunningWatch>;
  watchCommand(from: EndpointId, target: string, port: number, s: WatchSettings): string;
}

export interface K8sServiceChangesOptions {
  c: K8sPlaneContext;
  plane: TimedPlane;
  /** The client probe pod's id (the wait for the starting state probes from it). */
  client: () => EndpointId;
  /** Bound of the wait until the starting state answers, ms (default 120 s + 10 ms per Service). */
  waitTimeoutMs?: number;
}

type Objects = Record<string, unknown>[];

export class K8sServiceChanges implements ServiceChanges {
  /** The objects applied per Service name (JSON), to apply only what a change alters. */
  private current = new Map<string, string>();
  private readonly ips = new Map<string, string>();
  private proxy: ProxySeen | null = null;
  private reader: MetricReader | null = null;
  private readerNote = '';
  /** The fillers' endpoints: the server pod, and with --endpoints-per-service E the E−1 backends beside it. */
  private fillerIps: string[] = [];

  constructor(private readonly o: K8sServiceChangesOptions) {}

  private get c() {
    return this.o.c;
  }
  private get ns() {
    return this.c.session.names.serverNamespace;
  }
  private get kube() {
    return this.c.provider.target;
  }
  private nodeExec(): { provider: string; node: string } | undefined {
    const p = this.c.provider.info.nodeCgroups;
    return p && this.c.session.placement ? { provider: p.provider, node: this.c.session.placement.clientNode } : undefined;
  }

  /** Each Service of `set` as the cluster takes it: in the run's server namespace, selectorless, its endpoints the server pod. */
  private objects(set: ServiceSet): Map<string, Objects> {
    const server = this.c.session.serverIp;
    const out = new Map<string, Objects>();
    for (const s of set.services) {
      // The probed and the added Service list the server (or nothing); a filler lists the E backends (--endpoints-per-service).
      const ips = s.endpoints.some((e) => e.pod) ? [server] : this.fillerIps;
      const svc = { ...s, namespace: this.ns, selector: undefined, ports: s.ports.map((p) => ({ ...p, port: K8S_SERVICE_PORT, targetPort: SERVER_PORT })), endpoints: s.endpoints.length ? ips.map((ip) => ({ ip })) : [] };
      out.set(s.name, serviceManifests(svc, { labels: { ...this.c.session.names.runLabel }, assignedByApiServer: true }));
    }
    return out;
  }

  /** The ClusterIP the API server gave Service `name` (a placeholder in a dry run); null before it exists. */
  frontOf(svc: { name: string }): string | null {
    return this.ips.get(svc.name) ?? null;
  }

  private async readClusterIP(name: string): Promise<string> {
    const r = await this.c.runner.run(kubectl(this.kube, ['-n', this.ns, 'get', 'service', name, '-o', 'jsonpath={.spec.clusterIP}'], `read the ClusterIP the API server gave ${name}`));
    const ip = this.c.runner.dryRun ? (this.ips.size ? DRY_RUN_ADDED_CLUSTER_IP : DRY_RUN_CLUSTER_IP) : r.stdout.trim();
    if (!ip) throw new K8sStepError('apply-services', new BenchError('k8s-step', `Service ${this.ns}/${name} has no ClusterIP after apply`));
    this.ips.set(name, ip);
    return ip;
  }

  /** kube-proxy's sync histogram on the client's node, where it can be read (kind, kube-proxy in iptables or nftables mode). */
  private kubeProxyReader(proxy: ProxySeen): MetricReader | null {
    const node = this.nodeExec();
    if (proxy.mode !== 'iptables' && proxy.mode !== 'nftables') {
      this.readerNote = proxy.mode === 'none' ? `not read: ${this.c.config.cni} replaces kube-proxy, and its own service maps are not read on kind/cluster` : `not read: kube-proxy mode ${proxy.mode}`;
      return null;
    }
    if (!node) {
      this.readerNote = `not read: ${KUBE_PROXY_SYNC_METRIC} listens on each node's ${KUBE_PROXY_METRICS_URL}, and bench has no node access on an existing cluster`;
      return null;
    }
    const runner = this.c.runner;
    return {
      metric: KUBE_PROXY_SYNC_METRIC,
      where: `kube-proxy on ${node.node}`,
      meaning: `kube-proxy's syncs after the change on the client's node (${proxy.mode} mode): count and total duration`,
      note: null,
      scrape: async (when) => {
        const r = await runner.run({ argv: [node.provider, 'exec', node.node, 'curl', '-s', '--max-time', '5', KUBE_PROXY_METRICS_URL], purpose: `read ${KUBE_PROXY_SYNC_METRIC} on ${node.node}${when}`, allowFailure: true, timeoutMs: 20_000 });
        if (runner.dryRun) return { value: null, why: 'dry run' };
        if (r.exitCode !== 0) return { value: null, why: r.stderr.trim().split('\n').pop() || `exit ${r.exitCode}` };
        const v = parseSumCount(r.stdout, KUBE_PROXY_SYNC_METRIC);
        return { value: v, why: v ? '' : `no ${KUBE_PROXY_SYNC_METRIC} in kube-proxy's metrics` };
      },
    };
  }

  /** The first sync of the set (not measured): applied in batches, then a watch until the probed ClusterIP answers. */
  async install(set: ServiceSet): Promise<ServiceInstall> {
    const started = performance.now();
    const { runner } = this.c;
    const config = this.c.config;
    const proxy = await new K8sServices({ runner, target: this.kube, names: this.c.session.names, config, kubeProxy: this.c.provider.info.kubeProxy }).proxy();
    this.proxy = proxy;
    this.reader = this.kubeProxyReader(proxy);
    const e = config.endpointsPerService ?? 1;
    const placement = this.c.session.placement ?? { serverNode: '<server-node>', clientNode: '<client-node>' };
    const more = e > 1 ? await startBackends({ runner, target: this.kube, names: this.c.session.names, placement, versions: this.c.versions, count: e - 1 }) : [];
    this.fillerIps = [this.c.session.serverIp, ...more];
    const objects = this.objects(set);
    const all = [...objects.values()].flat();
    validateManifests(all);
    this.c.progress?.step(`applying ${set.services.length} Services with their EndpointSlices in ${this.ns} (the Service changes' starting state)`);
    const batches = await applyInBatches(runner, this.kube, all, { what: 'Services and EndpointSlices (starting state)' });
    this.current = new Map([...objects].map(([n, o]) => [n, JSON.stringify(o)]));
    const probed = set.services[set.probed]!;
    const ip = await this.readClusterIP(probed.name);
    let waitedMs = 0;
    if (!runner.dryRun) {
      const t = performance.now();
      const maxMs = this.o.waitTimeoutMs ?? 120_000 + set.services.length * 10;
      this.c.progress?.step(`waiting until ${probed.name}'s ClusterIP ${ip} answers from the client`);
      const w = await this.o.plane.watch(this.o.client(), ip, K8S_SERVICE_PORT, { intervalUs: 1000, timeoutMs: 100, maxMs, until: 'open', settle: 20 });
      const out = await w.done;
      if (out.settledIndex < 0) throw new K8sStepError('wait-services', new BenchError('k8s-step', `${this.ns}/${probed.name} (ClusterIP ${ip}) did not answer from the client within ${maxMs} ms of its apply: the service data plane has not programmed it (kubectl -n ${this.ns} get endpointslices; the kube-proxy or CNI agent logs on the client's node)`));
      waitedMs = Math.round(performance.now() - t);
    }
    const plane = planeOf(config, proxy);
    const read = await kubeProxyState(runner, proxy, ip, this.nodeExec());
    return {
      dataPlane: plane.name,
      description: `${plane.description} (${proxy.source}); Services and EndpointSlices through the API server, ClusterIPs assigned by it`,
      lookup: plane.lookup,
      installMs: runner.dryRun ? null : Math.round(performance.now() - started),
      state: { kubeProxyMode: proxy.mode, kubeProxyModeSource: proxy.source, applyBatches: batches, programmedMs: waitedMs, agentMetric: this.reader ? `${KUBE_PROXY_SYNC_METRIC} from ${this.reader.where}` : this.readerNote, endpoints: `the probed Service's endpoint is the server pod ${this.c.session.serverIp}:${SERVER_PORT}; each filler's ${this.fillerIps.length === 1 ? 'too' : `${this.fillerIps.length}: it and the pods of Deployment ${BACKENDS_NAME}`}`, ...read },
    };
  }

  /** One measured change: the Services whose objects differ applied (server-side, one List), the ones gone deleted. */
  async setServices(set: ServiceSet): Promise<AppliedChange> {
    const want = this.objects(set);
    const apply = [...want].filter(([n, o]) => this.current.get(n) !== JSON.stringify(o));
    const gone = [...this.current.keys()].filter((n) => !want.has(n));
    const created = apply.filter(([n]) => !this.current.has(n)).map(([n]) => n);
    const applied = await this.o.plane.change(
      async () => {
        const done: string[] = [];
        if (apply.length) {
          const items = apply.flatMap(([, o]) => o);
          validateManifests(items);
          const spec = applySpec(this.kube, items, `change: apply ${apply.map(([n]) => n).join(', ')} (Service and EndpointSlice)`);
          await this.c.runner.run(spec);
          done.push(shellQuote(spec.argv));
        }
        if (gone.length) {
          const spec = kubectl(this.kube, ['-n', this.ns, 'delete', ...gone.flatMap((n) => [`service/${n}`, `endpointslice/${n}-cb`]), '--ignore-not-found', '--wait=false'], `change: delete ${gone.join(', ')}`, { timeoutMs: 120_000 });
          await this.c.runner.run(spec);
          done.push(shellQuote(spec.argv));
        }
        return done;
      },
      { servicesApplied: apply.length, servicesDeleted: gone.length },
      this.reader,
      this.readerNote,
    );
    this.current = new Map([...want].map(([n, o]) => [n, JSON.stringify(o)]));
    for (const n of gone) this.ips.delete(n);
    // A new Service's address exists only now: the watch starts on it (as new-pod's does on the pod's).
    if (created.length === 1) return { ...applied, ip: await this.readClusterIP(created[0]!) };
    return applied;
  }

  watch(from: EndpointId, target: string, port: number, s: WatchSettings): Promise<RunningWatch> {
    return this.o.plane.watch(from, target, port, s);
  }

  watchCommand(from: EndpointId, target: string, port: number, s: WatchSettings): string {
    return this.o.plane.watchCommand(from, target, port, s);
  }
}
