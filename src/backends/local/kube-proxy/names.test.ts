import { describe, expect, it } from 'vitest';
import { base32, hashAndTruncate, kubeSepChain, kubeSvcChain, nftEndpointChainBase, nftServiceChainBase } from './names.js';

describe("kube-proxy's chain names", () => {
  it('base32 is RFC 4648 with padding', () => {
    expect(base32(new TextEncoder().encode('foobar'))).toBe('MZXW6YTBOI======');
    expect(base32(new TextEncoder().encode('f'))).toBe('MY======');
  });

  // The names upstream's own tests expect (pkg/proxy/iptables/proxier_test.go, pkg/proxy/nftables/proxier.go comments).
  it('iptables: KUBE-SVC and KUBE-SEP hashes equal upstream', () => {
    expect(kubeSvcChain('ns1/svc1:p80', 'tcp')).toBe('KUBE-SVC-XPGD46QRK7WJZT7O');
    expect(kubeSepChain('ns1/svc1:p80', 'tcp', '10.180.0.1:80')).toBe('KUBE-SEP-SXIVWICOYRO3J4NJ');
    expect(kubeSvcChain('ns1/svc1:p80', 'tcp').length).toBeLessThanOrEqual(28);
  });

  it('nftables: service and endpoint chain bases equal upstream', () => {
    expect(nftServiceChainBase('ns1', 'svc1', 'tcp', 'p80')).toBe('ULMVA6XW-ns1/svc1/tcp/p80');
    expect(nftEndpointChainBase('ns1', 'svc1', 'tcp', 'p80', '10.180.0.1', 80)).toBe('5OJB2KTY-ns1/svc1/tcp/p80__10.180.0.1/80');
  });

  it('nftables: an over-long name is truncated with an ellipsis', () => {
    const long = hashAndTruncate('x'.repeat(300));
    expect(long.length).toBe(240);
    expect(long.endsWith('...')).toBe(true);
  });
});
