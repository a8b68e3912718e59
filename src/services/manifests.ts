// A Service set as the Kubernetes objects a kind or cluster backend applies: one Service per entry (its
// ClusterIP fixed, so every backend uses the same addresses) and, for a selectorless Service, the
// EndpointSlice that lists its address-only endpoints (discovery.k8s.io/v1), as ClusterLoader2 writes them.
// Plain data; the backend validates and applies them.
import type { Service } from './types.js';

/** managed-by value for EndpointSlices the tool writes itself (the EndpointSlice controller ignores them). */
export const ENDPOINTSLICE_MANAGER = 'cni-bench';

export interface ServiceManifestOptions {
  /** Labels every object carries (the run label a teardown selects by). */
  labels?: Record<string, string>;
  /**
   * Leave the ClusterIP to the API server (kind, existing clusters: their Service CIDR is theirs, and a fixed
   * address could collide with a Service the CNI's install created); the set's own ClusterIPs are then unused.
   */
  assignedByApiServer?: boolean;
}

export function serviceManifests(svc: Service, opts: ServiceManifestOptions = {}): Record<string, unknown>[] {
  const labels = { ...(opts.labels ?? {}) };
  const service = {
    apiVersion: 'v1',
    kind: 'Service',
    metadata: { name: svc.name, namespace: svc.namespace, labels },
    spec: {
      type: 'ClusterIP',
      ...(opts.assignedByApiServer ? {} : { clusterIP: svc.clusterIP, clusterIPs: [svc.clusterIP] }),
      ports: svc.ports.map((p) => ({ ...(p.name ? { name: p.name } : {}), protocol: p.protocol, port: p.port, targetPort: p.targetPort })),
      ...(svc.selector ? { selector: { ...svc.selector } } : {}),
    },
  };
  if (svc.selector) return [service];
  const slice = {
    apiVersion: 'discovery.k8s.io/v1',
    kind: 'EndpointSlice',
    metadata: {
      name: `${svc.name}-cb`,
      namespace: svc.namespace,
      labels: { ...labels, 'kubernetes.io/service-name': svc.name, 'endpointslice.kubernetes.io/managed-by': ENDPOINTSLICE_MANAGER },
    },
    addressType: 'IPv4',
    endpoints: svc.endpoints.map((e) => ({ addresses: [e.ip], conditions: { ready: true } })),
    ports: svc.ports.map((p) => ({ ...(p.name ? { name: p.name } : {}), protocol: p.protocol, port: p.targetPort })),
  };
  return [service, slice];
}
