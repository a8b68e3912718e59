// Services in a run of the local backend: the run's Service set (N filler Services and the server's own, whose
// endpoint is the measured flow's server pod) on the service data plane the CNI runs beside — kube-proxy in the mode
// the run asks for (else the catalogue's default for the CNI), or the model's own eBPF load balancer where the CNI
// replaces kube-proxy — and the measured flow sent to the server's ClusterIP through it.
import { kubeProxyModeOf, type KubeProxyMode } from '../../config/cnis.js';
import type { RunConfig } from '../../config/schema.js';
import { BenchError } from '../../errors.js';
import type { CommandSpec, Runner } from '../../exec/runner.js';
import { allocateClusterIPs, generateServiceSet } from '../../services/generate.js';
import { probedService, type Service, type ServiceDelta, type ServicePort, type ServiceSet } from '../../services/types.js';
import type { ContainerPort } from '../../policy/types.js';
import { serviceDataPlane } from './service-planes.js';
import { DEFAULT_CLUSTER_CIDR, type ServiceDataPlane, type ServiceDataPlaneName, type ServiceState, type ServiceUpdateReport } from './service-types.js';
import type { PodSpec, Topology } from './topology.js';
import type { LocalModel } from './types.js';
import type { ServicesResult } from '../../results/schema.js';

/** The server's Service port (its targetPort is the measured flow's port). */
export const SERVICE_PORT = 80;

/** Which service data plane runs beside `model`: kube-proxy's mode (asked, else the CNI's default), or the model's own. */
export function servicePlaneName(model: Pick<LocalModel, 'cni' | 'serviceDataPlane'>, kubeProxy?: KubeProxyMode): ServiceDataPlaneName {
  const mode = kubeProxyModeOf(model.cni, kubeProxy);
  if (mode) return mode === 'iptables' ? 'kube-proxy-iptables' : 'kube-proxy-nftables';
  if (!model.serviceDataPlane) throw new BenchError('internal', `${model.cni} replaces kube-proxy, but its local model declares no service data plane`);
  return model.serviceDataPlane;
}

export type ServicesRecord = ServicesResult;

/**
 * `bench verify --services`: a Service's port is its pod's port plus this, so a data plane that judged the
 * Service's port instead of the backend pod's (policy before the translation) is caught by every port rule.
 */
export const POD_SERVICE_PORT_OFFSET = 10_000;

export interface PodBehindService {
  id: string;
  namespace: string;
  name: string;
  labels: Record<string, string>;
  ip: string;
  ports: readonly ContainerPort[];
}

/** Where a probe to `pod` on `protocol/port` connects instead: its Service's ClusterIP and port. */
export const frontKey = (pod: string, protocol: string, port: number) => `${pod} ${protocol}/${port}`;

/**
 * One Service per pod that serves ports, every port of it (named `tcp-80`, as a multi-port Service must name its
 * ports), the pod its one endpoint — as upstream's netpol e2e suite builds its model: a Service per pod, every probe
 * to the Service's ClusterIP (test/e2e/network/netpol/probe.go, probeWorker: `job.PodTo.ServiceIP`) — beside
 * `services` filler Services. Pure.
 */
export function podServiceSet(pods: readonly PodBehindService[], o: { services: number; endpointsPerService: number; position: 'first' | 'last'; seed: number }): { set: ServiceSet; fronts: Map<string, { clusterIP: string; port: number }> } {
  const serving = pods.filter((p) => p.ports.length);
  if (!serving.length) throw new BenchError('internal', 'no pod of the workload serves a port: no Service to put in front of it');
  const serviceOf = (p: PodBehindService): Omit<Service, 'clusterIP'> => {
    const seen = new Set<string>();
    const ports: ServicePort[] = [];
    for (const cp of p.ports) {
      const name = `${cp.protocol.toLowerCase()}-${cp.containerPort}`;
      if (seen.has(name)) continue;
      seen.add(name);
      ports.push({ name, protocol: cp.protocol === 'UDP' ? 'UDP' : 'TCP', port: cp.containerPort + POD_SERVICE_PORT_OFFSET, targetPort: cp.containerPort });
    }
    return { namespace: p.namespace, name: `s-${p.namespace}-${p.name}`, ports, selector: { ...p.labels }, endpoints: [{ ip: p.ip, pod: { namespace: p.namespace, name: p.name } }] };
  };
  const [first, ...rest] = serving.map(serviceOf);
  const base = generateServiceSet({ services: o.services, endpointsPerService: o.endpointsPerService, position: o.position, seed: o.seed, probed: { ...first!, port: first!.ports[0]!, backends: first!.endpoints } });
  const probed = { ...probedService(base), ports: first!.ports };
  // The same seeded allocation, further on: every ClusterIP distinct.
  const ips = allocateClusterIPs(base.serviceCidr, o.services + 1 + rest.length, o.seed).slice(o.services + 1);
  const services = [...base.services.map((s, i) => (i === base.probed ? probed : s)), ...rest.map((s, i) => ({ ...s, clusterIP: ips[i]! }))];
  const fronts = new Map<string, { clusterIP: string; port: number }>();
  const byPod = new Map(services.filter((s) => s.endpoints[0]?.pod).map((s) => [`${s.endpoints[0]!.pod!.namespace}/${s.endpoints[0]!.pod!.name}`, s]));
  for (const p of serving) {
    const s = byPod.get(`${p.namespace}/${p.name}`)!;
    for (const sp of s.ports) fronts.set(frontKey(p.id, sp.protocol, sp.targetPort), { clusterIP: s.clusterIP, port: sp.port });
  }
  return { set: { ...base, services }, fronts };
}

export class RunServices {
  readonly plane: ServiceDataPlane;
  private record?: ServicesRecord;
  private set?: ServiceSet;

  constructor(private readonly o: { config: RunConfig; model: LocalModel; topology: Topology; runner: Runner; cleanupRunner: Runner }) {
    const kind = serviceDataPlane(servicePlaneName(o.model, o.config.kubeProxy));
    this.plane = kind.create({ runner: o.runner, cleanupRunner: o.cleanupRunner, topology: o.topology, settings: { iptablesBackend: o.config.iptablesBackend, clusterCidr: DEFAULT_CLUSTER_CIDR } });
  }

  /** Installs the run's Service set (the first sync), the server's Service in front of `server`'s `targetPort`. */
  async install(server: PodSpec, targetPort: number): Promise<ServicesRecord> {
    const c = this.o.config;
    const set = generateServiceSet({
      services: c.services ?? 0,
      endpointsPerService: c.endpointsPerService,
      position: c.servicePosition,
      seed: c.seed,
      probed: {
        namespace: server.namespace,
        // The Service is named after the app the server pods run (kubectl expose's default).
        name: server.labels.app ?? server.name,
        selector: { ...server.labels },
        port: { name: '', protocol: 'TCP', port: SERVICE_PORT, targetPort },
        backends: [{ ip: server.ip, pod: { namespace: server.namespace, name: server.name } }],
      },
    });
    this.set = set;
    let installMs: number | null = null;
    let state: ServiceState = {};
    if (this.o.runner.dryRun) {
      for (const spec of this.plane.plan(set)) await this.o.runner.run(spec);
    } else {
      const r = await this.plane.install(set);
      installMs = r.installMs;
      state = r.state;
    }
    const p = this.plane;
    this.record = { count: set.services.length - 1, endpointsPerService: c.endpointsPerService, position: set.position, dataPlane: p.name, description: p.description, lookup: p.lookup, clusterIP: probedService(set).clusterIP, port: SERVICE_PORT, installMs, state: { ...state } };
    return this.record;
  }

  private fronts = new Map<string, { clusterIP: string; port: number }>();

  /** `bench verify --services`: a Service in front of every serving pod (podServiceSet), its first sync. */
  async installPods(pods: readonly PodBehindService[]): Promise<ServicesRecord> {
    const c = this.o.config;
    const { set, fronts } = podServiceSet(pods, { services: c.services ?? 0, endpointsPerService: c.endpointsPerService, position: c.servicePosition, seed: c.seed });
    this.fronts = fronts;
    const { installMs, state } = await this.installSet(set);
    const p = this.plane;
    const probed = probedService(set);
    this.record = { count: c.services ?? 0, endpointsPerService: c.endpointsPerService, position: set.position, dataPlane: p.name, description: p.description, lookup: p.lookup, clusterIP: probed.clusterIP, port: probed.ports[0]!.port, installMs, state: { ...state } };
    return this.record;
  }

  /** `bench verify --services`: the ClusterIP and port a probe to `pod` on `protocol/port` goes to, if it has a Service. */
  frontOf(pod: string, protocol: string, port: number): { clusterIP: string; port: number } | undefined {
    return this.fronts.get(frontKey(pod, protocol, port));
  }

  /**
   * `bench enforce --services`: the first sync of a given set (enforce builds its own states, src/enforce/services.ts).
   * In a dry run only the commands are recorded.
   */
  async installSet(set: ServiceSet): Promise<{ installMs: number | null; state: ServiceState }> {
    this.set = set;
    if (this.o.runner.dryRun) {
      for (const spec of this.plane.plan(set)) await this.o.runner.run(spec);
      return { installMs: null, state: {} };
    }
    const r = await this.plane.install(set);
    return { installMs: r.installMs, state: r.state };
  }

  /**
   * A Service change handed to the agent: `startNs` just before it (the enforce clock), the agent's own apply
   * (slowest node) and the rest of the wall time (rendering the partial sync or the map entries, process start).
   */
  async change(set: ServiceSet, delta?: ServiceDelta): Promise<{ startNs: bigint; wallMs: number; report: ServiceUpdateReport }> {
    const startNs = process.hrtime.bigint();
    const t = performance.now();
    const report = await this.plane.update(set, delta);
    const wallMs = performance.now() - t;
    this.set = set;
    return { startNs, wallMs, report };
  }

  /** Where the measured flow connects: the ClusterIP and Service port, from a client the data plane sees. */
  get front(): { clusterIP: string; port: number } {
    if (!this.record) throw new BenchError('internal', 'Services are not installed yet');
    return { clusterIP: this.record.clusterIP, port: this.record.port };
  }

  wrap(spec: CommandSpec, client: PodSpec): CommandSpec {
    return this.plane.wrapClient(spec, client);
  }

  async teardown(): Promise<void> {
    if (this.set) await this.plane.teardown();
  }
}
