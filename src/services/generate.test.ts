import { describe, expect, it } from 'vitest';
import { allocateClusterIPs, fillerEndpoint, generateServiceSet, withProbedEndpoints } from './generate.js';
import { serviceManifests } from './manifests.js';
import { probedService, servicePortName, serviceSetSize } from './types.js';

const probed = {
  namespace: 'bench-server',
  name: 'bench-server',
  selector: { app: 'bench-server' },
  port: { name: '', protocol: 'TCP' as const, port: 80, targetPort: 8080 },
  backends: [{ ip: '10.244.1.2' }, { ip: '10.244.1.3' }],
};

describe('service set generator', () => {
  it('puts the probed Service last (worst case for a rule walk) or first, with the same addresses either way', () => {
    const last = generateServiceSet({ services: 5, endpointsPerService: 2, position: 'last', seed: 3, probed });
    const first = generateServiceSet({ services: 5, endpointsPerService: 2, position: 'first', seed: 3, probed });
    expect(last.services).toHaveLength(6);
    expect(last.probed).toBe(5);
    expect(first.probed).toBe(0);
    expect(probedService(last)).toEqual(probedService(first));
    expect(probedService(last).endpoints.map((e) => e.ip)).toEqual(['10.244.1.2', '10.244.1.3']);
    expect(new Set(last.services.map((s) => s.clusterIP))).toEqual(new Set(first.services.map((s) => s.clusterIP)));
    expect(serviceSetSize(last)).toEqual({ services: 6, servicePorts: 6, endpoints: 12 });
  });

  it('is deterministic per seed and selectorless for fillers', () => {
    const a = generateServiceSet({ services: 3, endpointsPerService: 1, position: 'last', seed: 9, probed });
    const b = generateServiceSet({ services: 3, endpointsPerService: 1, position: 'last', seed: 9, probed });
    const c = generateServiceSet({ services: 3, endpointsPerService: 1, position: 'last', seed: 10, probed });
    expect(a).toEqual(b);
    expect(a.services.map((s) => s.clusterIP)).not.toEqual(c.services.map((s) => s.clusterIP));
    expect(a.services[0]).toMatchObject({ namespace: 'bench-services', name: 'svc-1', endpoints: [{ ip: '10.244.224.1' }] });
    expect(a.services[0]!.selector).toBeUndefined();
  });

  it('allocates distinct ClusterIPs inside 10.96.0.0/12, skipping .1 (kubernetes) and .10 (kube-dns)', () => {
    const ips = allocateClusterIPs('10.96.0.0/12', 30_001, 1);
    expect(new Set(ips).size).toBe(30_001);
    const outside = ips.filter((ip) => {
      const [a, b] = ip.split('.').map(Number);
      return a !== 10 || b! < 96 || b! >= 112;
    });
    expect(outside).toEqual([]);
    expect(ips).not.toContain('10.96.0.1');
    expect(ips).not.toContain('10.96.0.10');
    expect(() => allocateClusterIPs('10.96.0.0/30', 5, 1)).toThrow(/do not fit/);
  });

  it('fills endpoints from a block no node of the topology uses, inside the cluster CIDR', () => {
    expect(fillerEndpoint(0).ip).toBe('10.244.224.1');
    expect(fillerEndpoint(8189).ip).toBe('10.244.255.254');
    expect(fillerEndpoint(8190).ip).toBe('10.244.224.1');
  });

  it('rejects bad sizes', () => {
    expect(() => generateServiceSet({ services: -1, endpointsPerService: 1, position: 'last', seed: 1, probed })).toThrow(RangeError);
    expect(() => generateServiceSet({ services: 1, endpointsPerService: 0, position: 'last', seed: 1, probed })).toThrow(RangeError);
    expect(() => generateServiceSet({ services: 1, endpointsPerService: 1, position: 'last', seed: 1, probed: { ...probed, backends: [] } })).toThrow(/backend/);
  });

  it('replaces the probed endpoints only', () => {
    const set = generateServiceSet({ services: 2, endpointsPerService: 1, position: 'last', seed: 1, probed });
    const next = withProbedEndpoints(set, [{ ip: '10.244.1.9' }]);
    expect(probedService(next).endpoints).toEqual([{ ip: '10.244.1.9' }]);
    expect(next.services[0]).toBe(set.services[0]);
    expect(probedService(set).endpoints).toHaveLength(2);
  });

  it("names ports as kube-proxy's ServicePortName does", () => {
    expect(servicePortName({ namespace: 'ns1', name: 'svc1' }, { name: 'p80' })).toBe('ns1/svc1:p80');
    expect(servicePortName({ namespace: 'ns1', name: 'svc1' }, { name: '' })).toBe('ns1/svc1');
  });
});

describe('service manifests', () => {
  it('a selector Service is one object; a selectorless one gets its EndpointSlice', () => {
    const set = generateServiceSet({ services: 1, endpointsPerService: 2, position: 'last', seed: 1, probed });
    const [svc] = serviceManifests(probedService(set), { labels: { run: 'x' } });
    expect(serviceManifests(probedService(set))).toHaveLength(1);
    expect(svc).toMatchObject({ kind: 'Service', spec: { type: 'ClusterIP', clusterIP: probedService(set).clusterIP, selector: { app: 'bench-server' }, ports: [{ protocol: 'TCP', port: 80, targetPort: 8080 }] } });
    const filler = serviceManifests(set.services[0]!, { labels: { run: 'x' } });
    expect(filler).toHaveLength(2);
    expect(filler[1]).toMatchObject({
      apiVersion: 'discovery.k8s.io/v1',
      kind: 'EndpointSlice',
      metadata: { labels: { run: 'x', 'kubernetes.io/service-name': 'svc-1', 'endpointslice.kubernetes.io/managed-by': 'cni-bench' } },
      addressType: 'IPv4',
      endpoints: [{ addresses: ['10.244.224.1'], conditions: { ready: true } }, { addresses: ['10.244.224.2'], conditions: { ready: true } }],
      ports: [{ protocol: 'TCP', port: 8080 }],
    });
  });
});
