// Services as plain data: what a service data plane (kube-proxy's iptables or nftables mode, Cilium's socket
// load balancer, Calico's connect-time load balancer) is handed, whatever backend renders it. A Service here is
// one ClusterIP with its ports and the ready endpoints its EndpointSlices list — the view kube-proxy's
// ServicePortMap and EndpointsMap give its proxier, and what the eBPF agents write into their service maps.
import { BenchError } from '../errors.js';

export type ServiceProtocol = 'TCP' | 'UDP';

export interface ServicePort {
  /** The port's name; '' for the single unnamed port of a one-port Service (ServicePortName then has no ":name"). */
  name: string;
  protocol: ServiceProtocol;
  /** The ClusterIP's port. */
  port: number;
  /** The endpoints' port (the EndpointSlice's port for this name). */
  targetPort: number;
}

export interface ServiceEndpoint {
  /** Pod address (IPv4). */
  ip: string;
  /** The pod behind it when it is one of the workload's pods; absent for an address-only endpoint. */
  pod?: { namespace: string; name: string };
}

export interface Service {
  namespace: string;
  name: string;
  /** From the Service CIDR; unique in the set. */
  clusterIP: string;
  ports: ServicePort[];
  /**
   * The pod selector; absent for a selectorless Service whose EndpointSlices are written directly, as
   * kube-proxy's scale tests and ClusterLoader2 do with address-only endpoints.
   */
  selector?: Record<string, string>;
  /** Ready endpoints, in the order the EndpointSlice lists them (the proxier's endpoint order). */
  endpoints: ServiceEndpoint[];
}

/** Where the probed Service stands in the order a rule-walking proxier writes its dispatch rules. */
export type ServicePosition = 'first' | 'last';

export interface ServiceSet {
  /** Kubernetes' Service CIDR for ClusterIPs (kind's default 10.96.0.0/12). */
  serviceCidr: string;
  /** Every Service, in the order the proxier is to write them (see `position`). */
  services: Service[];
  /** Index in `services` of the Service the probe connects to. */
  probed: number;
  position: ServicePosition;
}

/** `namespace/name` or `namespace/name:port`, kube-proxy's ServicePortName.String() (pkg/proxy/types.go). */
export function servicePortName(svc: Pick<Service, 'namespace' | 'name'>, port: Pick<ServicePort, 'name'>): string {
  return `${svc.namespace}/${svc.name}${port.name ? `:${port.name}` : ''}`;
}

/** The probed Service of a set. */
export function probedService(set: ServiceSet): Service {
  const s = set.services[set.probed];
  if (!s) throw new BenchError('internal', `service set has no probed service at index ${set.probed} (of ${set.services.length})`);
  return s;
}

/** Totals a report states beside the data plane's own state size. */
export function serviceSetSize(set: ServiceSet): { services: number; servicePorts: number; endpoints: number } {
  let servicePorts = 0;
  let endpoints = 0;
  for (const s of set.services) {
    servicePorts += s.ports.length;
    endpoints += s.ports.length * s.endpoints.length;
  }
  return { services: set.services.length, servicePorts, endpoints };
}

/** A Service's identity in a set: `namespace/name` (its ports and endpoints are what a change changes). */
export const serviceKey = (s: Pick<Service, 'namespace' | 'name'>): string => `${s.namespace}/${s.name}`;

/**
 * What one change touched, as an agent's watch delivers it: the Services added or changed, as they now stand, and
 * the Services removed. An agent that reconciles per object (Cilium's load-balancer reconciler) writes only these
 * Services' map entries; one that re-renders its whole state (Felix's BPF proxy syncer) needs only the new set.
 */
export interface ServiceDelta {
  upserted: Service[];
  removed: Pick<Service, 'namespace' | 'name'>[];
}
