// The seeded Service-set generator: the probed Service (its endpoints are the workload's server pods) and N
// filler Services, selectorless, whose EndpointSlices list address-only endpoints — the shape kube-proxy's own
// scale tests and ClusterLoader2 use, so the data plane holds N Services without N running pods.
//
// Order, read from how the real proxier orders its rules: kube-proxy's iptables mode writes one KUBE-SERVICES rule
// per Service port while ranging over `proxier.svcPortMap` (pkg/proxy/iptables/proxier.go, syncProxyRules), a Go
// map, whose iteration order Go randomises on every range: a Service's position in KUBE-SERVICES is uniform at
// random and changes with every full sync, and only the "kubernetes service nodeports" jump is pinned last. A
// real cluster's average connection therefore walks half the chain, its unluckiest Service all of it. The
// generator fixes the order instead of drawing it: `last` puts the probed Service after every filler (the worst
// case, the whole walk), `first` before them (the best case). The nftables and BPF data planes look Services up
// in a map, where order means nothing.
import { seededRandom } from '../stats/summary.js';
import type { Service, ServiceEndpoint, ServicePort, ServicePosition, ServiceSet } from './types.js';
import { BenchError } from '../errors.js';

/** kind's default Service CIDR (kubeadm's serviceSubnet): ClusterIPs exist only inside the run's namespaces. */
export const DEFAULT_SERVICE_CIDR = '10.96.0.0/12';
/**
 * Filler endpoints: addresses in the cluster's pod CIDR (10.244.0.0/16, so kube-proxy's "is it local traffic"
 * match treats them as pods) in a block no node of the local topology gets (nodes use 10.244.<0..199>.0/24).
 * Nothing answers there; no filler endpoint is ever connected to.
 */
export const FILLER_ENDPOINT_CIDR = '10.244.224.0/19';
export const FILLER_NAMESPACE = 'bench-services';
export const MAX_SERVICES = 100_000;
export const MAX_ENDPOINTS_PER_SERVICE = 64;

export interface ServiceSetOptions {
  /** Filler Services beside the probed one: `--services N` installs N + 1. */
  services: number;
  /** Endpoints of each filler Service (the probed one has its backends). */
  endpointsPerService: number;
  position: ServicePosition;
  seed: number;
  probed: {
    namespace: string;
    name: string;
    selector?: Record<string, string>;
    port: ServicePort;
    /** The workload's server pods behind the probed ClusterIP. */
    backends: ServiceEndpoint[];
  };
  fillerNamespace?: string;
  serviceCidr?: string;
}

function parseCidr(cidr: string): { base: number; size: number } {
  const m = /^(\d+)\.(\d+)\.(\d+)\.(\d+)\/(\d+)$/.exec(cidr);
  if (!m) throw new BenchError('usage', `invalid IPv4 CIDR '${cidr}'`);
  const octets = m.slice(1, 5).map(Number);
  const len = Number(m[5]);
  if (octets.some((o) => o > 255) || len < 8 || len > 30) throw new BenchError('usage', `invalid IPv4 CIDR '${cidr}' (prefix 8..30)`);
  const addr = ((octets[0]! << 24) | (octets[1]! << 16) | (octets[2]! << 8) | octets[3]!) >>> 0;
  const size = 2 ** (32 - len);
  if (addr % size !== 0) throw new BenchError('usage', `CIDR '${cidr}' has host bits set`);
  return { base: addr, size };
}

export function ipv4(n: number): string {
  return [n >>> 24, (n >>> 16) & 255, (n >>> 8) & 255, n & 255].join('.');
}

/**
 * `count` distinct ClusterIPs from the CIDR, drawn by a seeded affine permutation of its host offsets (the API
 * server allocates ClusterIPs at random too). Skipped: the network and broadcast addresses and the two the
 * cluster itself holds, .1 (the `kubernetes` Service) and .10 (kube-dns).
 */
export function allocateClusterIPs(cidr: string, count: number, seed: number): string[] {
  const { base, size } = parseCidr(cidr);
  const reserved = new Set([0, 1, 10, size - 1]);
  if (count > size - reserved.size) throw new BenchError('capacity', `${count} ClusterIPs do not fit in ${cidr}`);
  const rand = seededRandom(seed ^ 0x5e4c1ce);
  // An odd multiplier is coprime with the power-of-two size: i -> (a*i + b) mod size is a bijection.
  const a = 2 * Math.floor(rand() * (size / 2)) + 1;
  const b = Math.floor(rand() * size);
  const out: string[] = [];
  for (let i = 0; out.length < count; i++) {
    const offset = (a * i + b) % size; // < 2^53 for any prefix of 8 or more
    if (!reserved.has(offset)) out.push(ipv4(base + offset));
  }
  return out;
}

/** Address-only endpoint k of the filler block (host offsets 1..size-2, reused round-robin). */
export function fillerEndpoint(k: number, cidr = FILLER_ENDPOINT_CIDR): ServiceEndpoint {
  const { base, size } = parseCidr(cidr);
  return { ip: ipv4(base + 1 + (k % (size - 2))) };
}

export function generateServiceSet(o: ServiceSetOptions): ServiceSet {
  if (!Number.isInteger(o.services) || o.services < 0 || o.services > MAX_SERVICES) throw new RangeError(`services must be an integer in [0, ${MAX_SERVICES}], got ${o.services}`);
  const e = o.endpointsPerService;
  if (!Number.isInteger(e) || e < 1 || e > MAX_ENDPOINTS_PER_SERVICE) throw new RangeError(`endpoints per service must be an integer in [1, ${MAX_ENDPOINTS_PER_SERVICE}], got ${e}`);
  if (o.probed.backends.length === 0) throw new RangeError('the probed service needs at least one backend');
  const cidr = o.serviceCidr ?? DEFAULT_SERVICE_CIDR;
  const ips = allocateClusterIPs(cidr, o.services + 1, o.seed);
  const probed: Service = {
    namespace: o.probed.namespace,
    name: o.probed.name,
    clusterIP: ips[0]!,
    ports: [{ ...o.probed.port }],
    ...(o.probed.selector ? { selector: { ...o.probed.selector } } : {}),
    endpoints: o.probed.backends.map((b) => ({ ...b })),
  };
  const width = String(o.services).length;
  const ns = o.fillerNamespace ?? FILLER_NAMESPACE;
  const fillers: Service[] = [];
  for (let i = 0; i < o.services; i++) {
    fillers.push({
      namespace: ns,
      name: `svc-${String(i + 1).padStart(width, '0')}`,
      clusterIP: ips[i + 1]!,
      ports: [{ name: '', protocol: 'TCP', port: 80, targetPort: 8080 }],
      endpoints: Array.from({ length: e }, (_, j) => fillerEndpoint(i * e + j)),
    });
  }
  const services = o.position === 'first' ? [probed, ...fillers] : [...fillers, probed];
  return { serviceCidr: cidr, services, probed: o.position === 'first' ? 0 : o.services, position: o.position };
}

/** The same set with the probed Service's endpoints replaced (an endpoint added or removed, for `bench enforce`). */
export function withProbedEndpoints(set: ServiceSet, endpoints: ServiceEndpoint[]): ServiceSet {
  const services = set.services.slice();
  services[set.probed] = { ...services[set.probed]!, endpoints: endpoints.map((x) => ({ ...x })) };
  return { ...set, services };
}
