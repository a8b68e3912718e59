import { describe, expect, it } from 'vitest';
import type { ServiceSet } from '../../../services/types.js';
import { generateServiceSet, withProbedEndpoints } from '../../../services/generate.js';
import { renderKubeProxyNftables, renderKubeProxyNftablesPartial, renderNftServicePort } from './nftables.js';

const O = { clusterCidr: '10.0.0.0/8' };
const svc1 = { namespace: 'ns1', name: 'svc1', clusterIP: '172.30.0.41', ports: [{ name: 'p80', protocol: 'TCP' as const, port: 80, targetPort: 80 }], endpoints: [{ ip: '10.180.0.1' }, { ip: '10.180.0.2' }] };

describe('kube-proxy nftables mode', () => {
  it('a Service: its chains, its service-ips element and numgen load balancing, named as upstream names them', () => {
    const r = renderNftServicePort(svc1, svc1.ports[0]!, O);
    expect(r.chains).toEqual(['endpoint-5OJB2KTY-ns1/svc1/tcp/p80__10.180.0.1/80', 'endpoint-2ZNDXFAB-ns1/svc1/tcp/p80__10.180.0.2/80', 'service-ULMVA6XW-ns1/svc1/tcp/p80']);
    expect(r.elements).toEqual([
      ['cluster-ips', '172.30.0.41'],
      ['service-ips', '172.30.0.41 . tcp . 80 : goto service-ULMVA6XW-ns1/svc1/tcp/p80'],
    ]);
    expect(r.rules).toEqual([
      ['service-ULMVA6XW-ns1/svc1/tcp/p80', 'ip daddr 172.30.0.41 tcp dport 80 ip saddr != 10.0.0.0/8 jump mark-for-masquerade'],
      ['service-ULMVA6XW-ns1/svc1/tcp/p80', 'numgen random mod 2 vmap { 0 : goto endpoint-5OJB2KTY-ns1/svc1/tcp/p80__10.180.0.1/80 , 1 : goto endpoint-2ZNDXFAB-ns1/svc1/tcp/p80__10.180.0.2/80 }'],
      ['endpoint-5OJB2KTY-ns1/svc1/tcp/p80__10.180.0.1/80', 'ip saddr 10.180.0.1 jump mark-for-masquerade'],
      ['endpoint-5OJB2KTY-ns1/svc1/tcp/p80__10.180.0.1/80', 'meta l4proto tcp dnat to 10.180.0.1:80'],
      ['endpoint-2ZNDXFAB-ns1/svc1/tcp/p80__10.180.0.2/80', 'ip saddr 10.180.0.2 jump mark-for-masquerade'],
      ['endpoint-2ZNDXFAB-ns1/svc1/tcp/p80__10.180.0.2/80', 'meta l4proto tcp dnat to 10.180.0.2:80'],
    ]);
  });

  it('a one-endpoint Service goes straight to its endpoint chain (upstream PR #140723), or through a map as in v1.33', () => {
    const one = { ...svc1, endpoints: [{ ip: '10.180.0.1' }] };
    expect(renderNftServicePort(one, one.ports[0]!, O).rules[1]).toEqual(['service-ULMVA6XW-ns1/svc1/tcp/p80', 'goto endpoint-5OJB2KTY-ns1/svc1/tcp/p80__10.180.0.1/80']);
    expect(renderNftServicePort(one, one.ports[0]!, { ...O, singleEndpointWithoutMap: false }).rules[1]![1]).toMatch(/^numgen random mod 1 vmap/);
  });

  it('a Service without endpoints is a no-endpoint-services element to the reject chain', () => {
    const none = { ...svc1, endpoints: [] };
    expect(renderNftServicePort(none, none.ports[0]!, O)).toMatchObject({ chains: [], rules: [], elements: [['cluster-ips', '172.30.0.41'], ['no-endpoint-services', '172.30.0.41 . tcp . 80 comment "ns1/svc1:p80" : goto reject-chain']] });
  });

  it('a full sync is one transaction: the table, the dispatch by verdict map, one element per Service', () => {
    const set: ServiceSet = { serviceCidr: '172.30.0.0/16', services: [svc1], probed: 0, position: 'last' };
    const s = renderKubeProxyNftables(set, O);
    expect(s.text.startsWith('add table ip kube-proxy { comment "rules for kube-proxy" ; }\n')).toBe(true);
    expect(s.text).toContain('add chain ip kube-proxy nat-prerouting { type nat hook prerouting priority -100 ; }');
    expect(s.text).toContain('add rule ip kube-proxy services ip daddr . meta l4proto . th dport vmap @service-ips');
    expect(s.text).toContain('add rule ip kube-proxy cluster-ips-check ip daddr { 172.30.0.0/16 } drop');
    expect(s).toMatchObject({ chains: 3, rules: 6, mapElements: 1, setElements: 1 });
  });

  it('a partial sync writes the changed Service and its elements only, flushing the stale endpoint chain', () => {
    const probed = { namespace: 'a', name: 'b', port: { name: '', protocol: 'TCP' as const, port: 80, targetPort: 8080 }, backends: [{ ip: '10.244.1.2' }] };
    const before = generateServiceSet({ services: 100, endpointsPerService: 1, position: 'last', seed: 1, probed });
    const after = withProbedEndpoints(before, [{ ip: '10.244.1.3' }]);
    const p = renderKubeProxyNftablesPartial(before, after, O);
    expect(p.text).not.toContain('add table');
    expect(p.text).not.toContain('bench-services/');
    expect(p.text).toContain('dnat to 10.244.1.3:8080');
    expect(p.staleChains).toEqual([expect.stringMatching(/^endpoint-.*__10\.244\.1\.2\/8080$/)]);
    expect(p).toMatchObject({ chainsWritten: 2, elementsAdded: 0, elementsDeleted: 0 });
    const unchanged = renderKubeProxyNftablesPartial(before, before, O);
    expect(unchanged.text).toBe('');
  });

  it('a partial sync adding a Service adds its elements; removing one deletes them', () => {
    const probed = { namespace: 'a', name: 'b', port: { name: '', protocol: 'TCP' as const, port: 80, targetPort: 8080 }, backends: [{ ip: '10.244.1.2' }] };
    const small = generateServiceSet({ services: 1, endpointsPerService: 1, position: 'first', seed: 1, probed });
    const big = generateServiceSet({ services: 2, endpointsPerService: 1, position: 'first', seed: 1, probed });
    const grow = renderKubeProxyNftablesPartial(small, big, O);
    expect(grow).toMatchObject({ elementsAdded: 2, elementsDeleted: 0 });
    // A new Service's chain exists before the map element that jumps to it.
    const lines = grow.text.split('\n');
    const chain = lines.findIndex((l) => /^add chain ip kube-proxy service-.*svc-2\/tcp\/$/.test(l));
    const element = lines.findIndex((l) => l.startsWith('add element ip kube-proxy service-ips'));
    expect(chain).toBeGreaterThanOrEqual(0);
    expect(chain).toBeLessThan(element);
    const shrink = renderKubeProxyNftablesPartial(big, small, O);
    expect(shrink).toMatchObject({ elementsAdded: 0, elementsDeleted: 2 });
    expect(shrink.text).toMatch(/delete element ip kube-proxy service-ips \{ [\d.]+ \. tcp \. 80 \}/);
  });
});
