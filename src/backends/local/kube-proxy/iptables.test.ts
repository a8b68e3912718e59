import { describe, expect, it } from 'vitest';
import type { ServiceSet } from '../../../services/types.js';
import { generateServiceSet, withProbedEndpoints } from '../../../services/generate.js';
import { probability, renderKubeProxyIptables, renderKubeProxyIptablesPartial } from './iptables.js';

const O = { clusterCidr: '10.0.0.0/24' };

/** upstream's one-Service example (pkg/proxy/iptables/proxier_test.go): ns1/svc1:p80 at 10.20.30.41, one endpoint. */
const ns1: ServiceSet = {
  serviceCidr: '10.20.0.0/16',
  services: [{ namespace: 'ns1', name: 'svc1', clusterIP: '10.20.30.41', ports: [{ name: 'p80', protocol: 'TCP', port: 80, targetPort: 80 }], endpoints: [{ ip: '10.180.0.1' }] }],
  probed: 0,
  position: 'last',
};

const natLines = (text: string) => text.slice(text.indexOf('*nat')).split('\n');

describe('kube-proxy iptables mode', () => {
  it("renders upstream's ruleset for one Service (chain names, order, masquerade, nodeports last)", () => {
    const nat = natLines(renderKubeProxyIptables(ns1, { ...O, randomFully: false }).text).filter((l) => l.startsWith('-A') || l.startsWith(':KUBE'));
    expect(nat).toEqual([
      ':KUBE-SERVICES - [0:0]',
      ':KUBE-NODEPORTS - [0:0]',
      ':KUBE-POSTROUTING - [0:0]',
      ':KUBE-MARK-MASQ - [0:0]',
      ':KUBE-SVC-XPGD46QRK7WJZT7O - [0:0]',
      ':KUBE-SEP-SXIVWICOYRO3J4NJ - [0:0]',
      '-A KUBE-POSTROUTING -m mark ! --mark 0x4000/0x4000 -j RETURN',
      '-A KUBE-POSTROUTING -j MARK --xor-mark 0x4000',
      '-A KUBE-POSTROUTING -m comment --comment "kubernetes service traffic requiring SNAT" -j MASQUERADE',
      '-A KUBE-MARK-MASQ -j MARK --or-mark 0x4000',
      '-A KUBE-SERVICES -m comment --comment "ns1/svc1:p80 cluster IP" -m tcp -p tcp -d 10.20.30.41 --dport 80 -j KUBE-SVC-XPGD46QRK7WJZT7O',
      '-A KUBE-SVC-XPGD46QRK7WJZT7O -m comment --comment "ns1/svc1:p80 cluster IP" -m tcp -p tcp -d 10.20.30.41 --dport 80 ! -s 10.0.0.0/24 -j KUBE-MARK-MASQ',
      '-A KUBE-SVC-XPGD46QRK7WJZT7O -m comment --comment "ns1/svc1:p80 -> 10.180.0.1:80" -j KUBE-SEP-SXIVWICOYRO3J4NJ',
      '-A KUBE-SEP-SXIVWICOYRO3J4NJ -m comment --comment ns1/svc1:p80 -s 10.180.0.1 -j KUBE-MARK-MASQ',
      '-A KUBE-SEP-SXIVWICOYRO3J4NJ -m comment --comment ns1/svc1:p80 -m tcp -p tcp -j DNAT --to-destination 10.180.0.1:80',
      '-A KUBE-SERVICES -m comment --comment "kubernetes service nodeports; NOTE: this must be the last rule in this chain" -m addrtype --dst-type LOCAL -j KUBE-NODEPORTS',
    ]);
  });

  it('spreads over endpoints with statistic probabilities 1/n, 1/(n-1), …, the last rule unconditional', () => {
    expect(probability(3)).toBe('0.3333333333');
    const three = { ...ns1, services: [{ ...ns1.services[0]!, endpoints: [{ ip: '10.180.0.1' }, { ip: '10.180.0.2' }, { ip: '10.180.0.3' }] }] };
    const svc = natLines(renderKubeProxyIptables(three, O).text).filter((l) => l.startsWith('-A KUBE-SVC-') && l.includes('-j KUBE-SEP-'));
    expect(svc.map((l) => /--probability (\S+)/.exec(l)?.[1] ?? 'last')).toEqual(['0.3333333333', '0.5000000000', 'last']);
  });

  it('writes the probed Service last in KUBE-SERVICES for the worst case, first for the best', () => {
    const probed = { namespace: 'bench-server', name: 'bench-server', port: { name: '', protocol: 'TCP' as const, port: 80, targetPort: 8080 }, backends: [{ ip: '10.244.1.2' }] };
    for (const position of ['first', 'last'] as const) {
      const set = generateServiceSet({ services: 50, endpointsPerService: 1, position, seed: 1, probed });
      const dispatch = natLines(renderKubeProxyIptables(set, O).text).filter((l) => l.startsWith('-A KUBE-SERVICES'));
      expect(dispatch).toHaveLength(52);
      const at = dispatch.findIndex((l) => l.includes('bench-server/bench-server cluster IP'));
      expect(at).toBe(position === 'first' ? 0 : 50);
      expect(dispatch[51]).toContain('KUBE-NODEPORTS');
    }
  });

  it('drops per-endpoint comments beyond 1000 endpoints (largeClusterMode) but keeps the KUBE-SERVICES ones', () => {
    const probed = { namespace: 'a', name: 'b', port: { name: '', protocol: 'TCP' as const, port: 80, targetPort: 8080 }, backends: [{ ip: '10.244.1.2' }] };
    const r = renderKubeProxyIptables(generateServiceSet({ services: 1000, endpointsPerService: 1, position: 'last', seed: 1, probed }), O);
    expect(r.text).not.toMatch(/-A KUBE-SEP-\S+ -m comment/);
    expect(r.text).toMatch(/-A KUBE-SERVICES -m comment --comment "a\/b cluster IP"/);
    expect(r).toMatchObject({ kubeServicesRules: 1002, natChains: 4 + 2 * 1001 });
  });

  it('a Service without endpoints is a filter REJECT, not a nat rule', () => {
    const r = renderKubeProxyIptables({ ...ns1, services: [{ ...ns1.services[0]!, endpoints: [] }] }, O);
    expect(r.text).toContain('-A KUBE-SERVICES -m comment --comment "ns1/svc1:p80 has no endpoints" -m tcp -p tcp -d 10.20.30.41 --dport 80 -j REJECT');
    expect(r.text).not.toContain('KUBE-SVC-');
  });

  it('a partial sync rewrites KUBE-SERVICES whole but only the changed Service chains, and deletes stale ones', () => {
    const probed = { namespace: 'a', name: 'b', port: { name: '', protocol: 'TCP' as const, port: 80, targetPort: 8080 }, backends: [{ ip: '10.244.1.2' }] };
    const before = generateServiceSet({ services: 100, endpointsPerService: 1, position: 'last', seed: 1, probed });
    const after = withProbedEndpoints(before, [{ ip: '10.244.1.3' }]);
    const p = renderKubeProxyIptablesPartial(before, after, O);
    const lines = p.text.split('\n');
    expect(lines.filter((l) => l.startsWith('-A KUBE-SERVICES'))).toHaveLength(102);
    expect(lines.filter((l) => /^:KUBE-(SVC|SEP)-/.test(l))).toHaveLength(3); // the Service's chain, its new and its old endpoint
    expect(lines.filter((l) => l.startsWith('-X KUBE-SEP-'))).toHaveLength(1);
    expect(p).toMatchObject({ chainsWritten: 2, chainsDeleted: 1 });
    expect(lines.some((l) => l.startsWith('-I '))).toBe(false);
    expect(p.text).toContain('--to-destination 10.244.1.3:8080');
  });
});
