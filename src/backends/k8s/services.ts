// Services on kind and existing clusters (`--services N`): N filler Services beside the server's, created in the
// run's own server namespace (cb-<runid>-…, removed with it), applied with the backend's one server-side batch apply
// (./apply.ts), and the load then connecting to the ClusterIP of the server's Service instead of the pod.
//
// The server's Service is a selector Service (app=bench-server): the EndpointSlice controller lists the server
// Deployment's pod, so nothing about it is looked up by hand and it follows a restarted pod. The fillers are
// selectorless Services with one EndpointSlice each, written by the tool (managed-by cni-bench, which the controller
// ignores), the shape kube-proxy's scale tests and ClusterLoader2 use to hold N Services without N pods. Their one
// endpoint is the server pod's IP (looked up at run time; `<server-pod-ip>` in a dry run), not made-up addresses:
// on someone's cluster an address outside the run could be a real host, and a filler that answers is what lets
// the last-applied filler serve as the barrier of the wait below. kube-proxy keys endpoints by address and port,
// so repeating that address would not give a Service more endpoints: `--endpoints-per-service E` above 1 starts
// E−1 more server pods (./service-backends.ts, at most 32 here), and every Service lists the E addresses (the
// server's selector Service through the EndpointSlice controller, as the backends carry its label).
//
// Position. kube-proxy's iptables mode writes one KUBE-SERVICES rule per Service port while ranging over
// `proxier.svcPortMap`, a Go map (kubernetes/kubernetes pkg/proxy/iptables/proxier.go, syncProxyRules): the order is
// random and redrawn on every sync, so no client can put a Service first or last there; the nftables mode looks
// the destination up in the `service-ips` verdict map (pkg/proxy/nftables/proxier.go), and Cilium and Calico eBPF in
// BPF hash maps, where order means nothing. ClusterIPs are assigned by the API server. So here `--service-position`
// is only the order the run applies Services in (the server's first, or last); on kind with kube-proxy's iptables
// mode the position the measured ClusterIP's rule actually had is read from the client's node and recorded.
import type { KubeProxyMode } from '../../config/cnis.js';
import { cniEntry } from '../../config/cnis.js';
import type { RunConfig } from '../../config/schema.js';
import { BenchError, InterruptedError } from '../../errors.js';
import type { Runner } from '../../exec/runner.js';
import type { ServicesResult } from '../../results/schema.js';
import { generateServiceSet } from '../../services/generate.js';
import { serviceManifests } from '../../services/manifests.js';
import { probedService, type Service, type ServiceSet } from '../../services/types.js';
import { SERVER_PORT } from '../../workload/workload.js';
import type { Progress } from '../types.js';
import { applyInBatches, applySpec } from './apply.js';
import { step } from './errors.js';
import { probeSucceeded } from './fortio.js';
import { kubectl, type KubeTarget } from './kubectl.js';
import { CLIENT_POD, FORTIO_BIN, FORTIO_CONTAINER, SERVER_NAME, type RunNames } from './manifests.js';
import { kubeProxyState, readClusterKubeProxyMode, type ProxySeen } from './service-state.js';
import { validateManifests } from './validate.js';
import { BACKENDS_NAME, startBackends } from './service-backends.js';
import type { Placement } from './manifests.js';
import type { Versions } from './versions.js';

/** The Service port of every Service; its targetPort is the server's port. */
export const K8S_SERVICE_PORT = 80;
/** Shown in dry-run plans where the API server's assigned ClusterIP would be. */
export const DRY_RUN_CLUSTER_IP = '<cluster-ip>';

export interface K8sServicesOptions {
  runner: Runner;
  target: KubeTarget;
  names: RunNames;
  config: RunConfig;
  /** kind: the mode its cluster config set ('none': the CNI replaces kube-proxy); undefined on an existing cluster (read). */
  kubeProxy?: KubeProxyMode | 'none';
  /** kind: the client's node container, through the engine kind drives (reads kube-proxy's metrics and rules there). */
  nodeExec?: { provider: string; node: string };
  progress?: Progress;
  signal?: AbortSignal;
  /** Bound of the wait until the last-applied Service answers; default 120 s + 10 ms per Service. */
  waitTimeoutMs?: number;
  /** Pause between wait probes (tests set 0). */
  probeIntervalMs?: number;
  /** `--endpoints-per-service` above 1: where and with what the backend pods run. */
  backends?: { placement: Placement; versions: Versions };
}

/** The run's Service set: the server's Service and N fillers in its namespace, every Service's endpoints the backends (the server pod first). */
export function k8sServiceSet(config: Pick<RunConfig, 'services' | 'servicePosition' | 'seed'>, names: RunNames, backendIps: string | readonly string[]): ServiceSet {
  const ips = typeof backendIps === 'string' ? [backendIps] : [...backendIps];
  const endpoints = () => ips.map((ip) => ({ ip }));
  const set = generateServiceSet({
    services: config.services ?? 0,
    endpointsPerService: ips.length,
    position: config.servicePosition,
    seed: config.seed,
    fillerNamespace: names.serverNamespace,
    probed: {
      namespace: names.serverNamespace,
      name: SERVER_NAME,
      selector: { app: SERVER_NAME },
      port: { name: '', protocol: 'TCP', port: K8S_SERVICE_PORT, targetPort: SERVER_PORT },
      backends: endpoints(),
    },
  });
  const services = set.services.map((s, i) => (i === set.probed ? s : { ...s, ports: s.ports.map((p) => ({ ...p, port: K8S_SERVICE_PORT, targetPort: SERVER_PORT })), endpoints: endpoints() }));
  return { ...set, services };
}

/** The apply order: the server's Service alone first (position first), the fillers in batches, one Service alone last (the barrier). */
export function serviceApplyOrder(set: ServiceSet): { head: Service[]; body: Service[]; barrier: Service } {
  const s = set.services;
  const head = set.position === 'first' && s.length > 1 ? [s[0]!] : [];
  return { head, body: s.slice(head.length, -1), barrier: s[s.length - 1]! };
}

export class K8sServices {
  constructor(private readonly o: K8sServicesOptions) {}

  private objects(svcs: readonly Service[]): Record<string, unknown>[] {
    return svcs.flatMap((s) => serviceManifests(s, { labels: { ...this.o.names.runLabel }, assignedByApiServer: true }));
  }

  /** Which service data plane runs: kube-proxy in the mode kind set or the cluster's (read), or the CNI's own. */
  async proxy(): Promise<ProxySeen> {
    const p = cniEntry(this.o.config.cni).serviceProxy;
    if (this.o.kubeProxy !== undefined) {
      if (this.o.kubeProxy === 'none') return { mode: 'none', source: `kind config kubeProxyMode: none (${this.o.config.cni} replaces kube-proxy)` };
      return { mode: this.o.kubeProxy, source: `kind config kubeProxyMode: ${this.o.kubeProxy}` };
    }
    const seen = await readClusterKubeProxyMode(this.o.runner, this.o.target);
    const asked = this.o.config.kubeProxy;
    if (asked && !this.o.runner.dryRun && seen.mode !== asked) {
      throw new BenchError(
        'usage',
        `--kube-proxy ${asked}: this cluster's kube-proxy is ${seen.mode === 'unknown' ? 'in a mode bench could not read' : `in ${seen.mode} mode`} (${seen.source}); bench cannot change an existing cluster's kube-proxy. Leave --kube-proxy out${seen.mode === 'iptables' || seen.mode === 'nftables' ? ` or give --kube-proxy ${seen.mode}` : ''}`,
      );
    }
    // No kube-proxy DaemonSet beside a CNI that can replace it: the CNI translates. Where kube-proxy runs beside it
    // (Cilium without kubeProxyReplacement), kube-proxy's mode is what the result names.
    if (!seen.running && p.kind === 'replaces-kube-proxy') return { mode: 'none', source: `${seen.source}; ${this.o.config.cni} replaces kube-proxy` };
    return { mode: seen.mode, source: seen.source };
  }

  private probe(url: string, purpose: string) {
    const args = [FORTIO_BIN, 'load', '-n', '2', '-c', '1', '-qps', '-1', '-timeout', '1s', '-json', '-', url];
    return this.o.runner.run(kubectl(this.o.target, ['exec', '-n', this.o.names.clientNamespace, CLIENT_POD, '-c', FORTIO_CONTAINER, '--', ...args], purpose, { allowFailure: true, timeoutMs: 30_000 }));
  }

  /** Probes `url` from the client until it answers (a Service is programmed once its ClusterIP reaches the server). */
  private async waitAnswers(url: string, purpose: string, deadline: number): Promise<number> {
    for (let probes = 1; ; probes++) {
      const ok = probeSucceeded((await this.probe(url, purpose)).stdout);
      if (this.o.runner.dryRun || ok) return probes;
      if (performance.now() > deadline) throw new BenchError('k8s-step', `after ${probes} probes ${url} still does not reach the server from the client pod: the service data plane has not programmed it`);
      await sleep(this.o.probeIntervalMs ?? 1000, this.o.signal);
    }
  }

  /** Applies the set, waits until it is programmed, and says where the load connects from now on. */
  async install(serverIp: string): Promise<{ record: ServicesResult; front: { ip: string; port: number } }> {
    const started = performance.now();
    const { runner, target: t, names } = this.o;
    const proxy = await step('apply-services', () => this.proxy());
    const e = this.o.config.endpointsPerService ?? 1;
    const more = e > 1 && this.o.backends ? await step('apply-services', () => startBackends({ runner, target: t, names, ...this.o.backends!, count: e - 1 })) : [];
    const backendIps = [serverIp, ...more];
    const set = k8sServiceSet(this.o.config, names, backendIps);
    const probed = probedService(set);
    const { head, body, barrier } = serviceApplyOrder(set);
    validateManifests(this.objects(set.services));
    let batches = 0;
    const ips = await step('apply-services', async () => {
      this.o.progress?.step(`applying ${set.services.length} Services (${set.services.length - 1} selectorless, with their EndpointSlices) in ${names.serverNamespace}`);
      if (head.length) await runner.run(applySpec(t, this.objects(head), "apply the server's Service first (--service-position first)"));
      batches = await applyInBatches(runner, t, this.objects(body), { what: 'filler Services and EndpointSlices' });
      await runner.run(applySpec(t, this.objects([barrier]), barrier === probed ? "apply the server's Service last (the barrier the wait probes)" : 'apply the last filler Service alone (the barrier the wait probes)'));
      const wanted = [...new Set([probed.name, barrier.name])];
      const r = await runner.run(kubectl(t, ['-n', names.serverNamespace, 'get', 'services', ...wanted, '-o', 'json'], 'read the ClusterIPs the API server assigned'));
      if (runner.dryRun) return new Map(wanted.map((n) => [n, DRY_RUN_CLUSTER_IP]));
      const items = (JSON.parse(r.stdout) as { items?: Array<{ metadata?: { name?: string }; spec?: { clusterIP?: string } }> }).items ?? [];
      const found = new Map(items.filter((i) => i.metadata?.name && i.spec?.clusterIP).map((i) => [i.metadata!.name!, i.spec!.clusterIP!]));
      for (const n of wanted) if (!found.has(n)) throw new BenchError('k8s-step', `Service ${names.serverNamespace}/${n} has no ClusterIP after apply`);
      return found;
    });
    const appliedAt = performance.now();
    const url = (name: string) => `http://${ips.get(name)}:${K8S_SERVICE_PORT}/`;
    const deadline = appliedAt + (this.o.waitTimeoutMs ?? 120_000 + set.services.length * 10);
    const probes = await step('wait-services', async () => {
      this.o.progress?.step(`waiting until the service data plane answers on the last-applied ClusterIP${barrier === probed ? '' : " and the server's"}`);
      let n = await this.waitAnswers(url(barrier.name), 'wait probe: the last-applied Service', deadline);
      if (barrier !== probed) n += await this.waitAnswers(url(probed.name), "wait probe: the server's Service", deadline);
      return n;
    });
    const programmedMs = performance.now() - appliedAt;
    const clusterIP = ips.get(probed.name)!;
    const read = await kubeProxyState(runner, proxy, clusterIP, this.o.nodeExec);
    const plane = planeOf(this.o.config, proxy);
    const record: ServicesResult = {
      count: set.services.length - 1,
      endpointsPerService: backendIps.length,
      position: set.position,
      dataPlane: plane.name,
      description: `${plane.description} (${proxy.source}); ClusterIPs assigned by the API server; --service-position sets the apply order only (${plane.order})`,
      lookup: plane.lookup,
      clusterIP,
      port: K8S_SERVICE_PORT,
      installMs: runner.dryRun ? null : Math.round(performance.now() - started),
      state: {
        kubeProxyMode: proxy.mode,
        kubeProxyModeSource: proxy.source,
        applyBatches: batches + 1 + head.length,
        applyMs: Math.round(appliedAt - started),
        programmedMs: runner.dryRun ? 0 : Math.round(programmedMs),
        waitProbes: probes,
        endpoints: more.length ? `every Service's ${backendIps.length} endpoints are the server pod ${serverIp} and the ${more.length} pods of Deployment ${BACKENDS_NAME}, port ${SERVER_PORT}` : `every Service's one endpoint is the server pod ${serverIp}:${SERVER_PORT}`,
        ...read,
      },
    };
    return { record, front: { ip: clusterIP, port: K8S_SERVICE_PORT } };
  }
}

/** The service data plane's name (as the local backend names it), its lookup and what order means there. */
export function planeOf(config: Pick<RunConfig, 'cni'>, proxy: ProxySeen): { name: string; description: string; lookup: string; order: string } {
  const p = cniEntry(config.cni).serviceProxy;
  if (proxy.mode === 'iptables') return { name: 'kube-proxy-iptables', description: "kube-proxy's iptables mode", lookup: 'rule-walk', order: 'KUBE-SERVICES is written in Go map order, redrawn every sync' };
  if (proxy.mode === 'nftables') return { name: 'kube-proxy-nftables', description: "kube-proxy's nftables mode", lookup: 'verdict-map', order: 'the service-ips verdict map has no order' };
  if (p.kind === 'replaces-kube-proxy') return { name: p.plane, description: `${cniEntry(config.cni).displayName} replaces kube-proxy ${p.by}`, lookup: 'bpf-map', order: 'a BPF map has no order' };
  return { name: `kube-proxy-${proxy.mode}`, description: `kube-proxy, mode ${proxy.mode}`, lookup: 'unknown', order: 'order not known for this mode' };
}

const sleep = (ms: number, signal?: AbortSignal) =>
  new Promise<void>((resolve, reject) => {
    if (signal?.aborted) return reject(signal.reason ?? new InterruptedError());
    const t = setTimeout(resolve, ms);
    signal?.addEventListener('abort', () => (clearTimeout(t), reject(signal.reason ?? new InterruptedError())), { once: true });
  });
