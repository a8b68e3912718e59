// The Service states `bench enforce --services N` moves between, as data: N filler Services (E address-only
// endpoints each, the data plane's state size), the probed Service whose one endpoint is the enforce server, and
// a second Service in front of the same server that exists or not. Each Service change goes from one state to
// the next; the watch probes the ClusterIP it concerns. Pure.
import type { ServiceChange } from '../config/schema.js';
import { allocateClusterIPs, DEFAULT_SERVICE_CIDR, generateServiceSet } from '../services/generate.js';
import { probedService, type Service, type ServicePosition, type ServiceSet } from '../services/types.js';

/** The Service port the watches connect to (the server's port is its targetPort). */
export const ENFORCE_SERVICE_PORT = 80;

/** Where the Service set stands: does the probed Service list the server as endpoint; does the added Service exist. */
export interface ServiceState {
  endpoint: boolean;
  added: boolean;
}

export const INITIAL_SERVICE_STATE: ServiceState = { endpoint: true, added: false };

/**
 * Each Service change: the state it starts from (reached unmeasured before the watch starts), the state it hands
 * to the service data plane (the measured change), and the ClusterIP the watch probes. The probed Service's
 * endpoint set goes 1 → 0 and 0 → 1, so "a connection reached the endpoint" is a verdict the connect itself gives:
 * with no endpoint every data plane refuses (kube-proxy's REJECT, the eBPF balancers' no-backend failure).
 */
export const SERVICE_STEPS: Record<ServiceChange, { from: ServiceState; to: ServiceState; watch: 'probed' | 'added' }> = {
  'endpoint-removed': { from: { endpoint: true, added: false }, to: { endpoint: false, added: false }, watch: 'probed' },
  'endpoint-added': { from: { endpoint: false, added: false }, to: { endpoint: true, added: false }, watch: 'probed' },
  'service-added': { from: { endpoint: true, added: false }, to: { endpoint: true, added: true }, watch: 'added' },
};

export const sameServiceState = (a: ServiceState, b: ServiceState) => a.endpoint === b.endpoint && a.added === b.added;

export interface EnforceServiceConfig {
  services: number;
  endpointsPerService: number;
  servicePosition: ServicePosition;
  seed: number;
}

export interface EnforceFront {
  name: string;
  clusterIP: string;
  port: number;
}

export interface EnforceServices {
  /** The probed Service's name, ClusterIP and port. */
  probed: EnforceFront;
  /** The added Service's name, ClusterIP and port (absent before service-added). */
  added: EnforceFront;
  /** The whole Service set in `state`. */
  setFor(state: ServiceState): ServiceSet;
}

/** The server behind both Services. */
export interface EnforceServiceBackend {
  ip: string;
  namespace: string;
  name: string;
  labels: Record<string, string>;
  targetPort: number;
}

/** Where a watch connects for `front`: the backend's address for it where the API server assigns them (null: not yet). */
export function frontAddress(changes: { frontOf?(svc: { name: string }): string | null }, front: EnforceFront): string | null {
  return changes.frontOf ? changes.frontOf(front) : front.clusterIP;
}

export function enforceServices(cfg: EnforceServiceConfig, server: EnforceServiceBackend): EnforceServices {
  const port = { name: '', protocol: 'TCP' as const, port: ENFORCE_SERVICE_PORT, targetPort: server.targetPort };
  const endpoint = { ip: server.ip, pod: { namespace: server.namespace, name: server.name } };
  const app = server.labels.app ?? server.name;
  const base = generateServiceSet({
    services: cfg.services,
    endpointsPerService: cfg.endpointsPerService,
    position: cfg.servicePosition,
    seed: cfg.seed,
    probed: { namespace: server.namespace, name: app, selector: { ...server.labels }, port, backends: [endpoint] },
  });
  // The same seeded allocation one address further: distinct from every ClusterIP of the set.
  const addedIp = allocateClusterIPs(DEFAULT_SERVICE_CIDR, cfg.services + 2, cfg.seed)[cfg.services + 1]!;
  const added: Service = { namespace: server.namespace, name: `${app}-added`, clusterIP: addedIp, ports: [{ ...port }], selector: { ...server.labels }, endpoints: [{ ...endpoint }] };
  const probed = probedService(base);
  return {
    probed: { name: probed.name, clusterIP: probed.clusterIP, port: ENFORCE_SERVICE_PORT },
    added: { name: added.name, clusterIP: addedIp, port: ENFORCE_SERVICE_PORT },
    setFor(state) {
      const services = base.services.map((s, i) => (i === base.probed ? { ...s, endpoints: state.endpoint ? [{ ...endpoint }] : [] } : s));
      // A new Service is appended: the order the proxier writes it in is its own (generate.ts); last is the worst walk.
      return { ...base, services: state.added ? [...services, added] : services };
    },
  };
}
