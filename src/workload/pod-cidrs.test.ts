import { describe, expect, it } from 'vitest';
import { BenchError } from '../errors.js';
import { planPodCidrs, spareCidr, type AddressedPod } from './pod-cidrs.js';

const pods = (node: string, ...ips: string[]): AddressedPod[] => ips.map((ip, i) => ({ id: `ns/${node}-${i}`, node, ip }));
const errorOf = (fn: () => unknown): BenchError | undefined => {
  try {
    fn();
  } catch (e) {
    return e as BenchError;
  }
  return undefined;
};

describe('per-node pod CIDRs for the local replay', () => {
  it('one /24 per node (kind, kubeadm, k3s) gives exactly those /24s, in the nodes\' order', () => {
    const m = planPodCidrs([...pods('b', '10.42.1.7', '10.42.1.200'), ...pods('a', '10.42.0.3')]);
    expect([...m]).toEqual([
      ['b', ['10.42.1.0/24']],
      ['a', ['10.42.0.0/24']],
    ]);
  });

  it('Calico IPAM blocks: nodes sharing a /24 get the narrowest blocks that hold only their own pods; several per node', () => {
    const m = planPodCidrs([...pods('a', '192.168.5.3', '192.168.5.60', '192.168.9.1'), ...pods('b', '192.168.5.70', '192.168.5.130')]);
    expect(m.get('a')).toEqual(['192.168.5.0/26', '192.168.9.0/24']);
    // .70 and .130 are each alone in their /26 and /25 among b's blocks; a wider block holding them is a's too.
    expect(m.get('b')).toEqual(['192.168.5.64/26', '192.168.5.128/25']);
  });

  it('adjacent addresses of two nodes end at /32 blocks', () => {
    const m = planPodCidrs([...pods('a', '10.1.2.4'), ...pods('b', '10.1.2.5')]);
    expect(m.get('a')).toEqual(['10.1.2.4/32']);
    expect(m.get('b')).toEqual(['10.1.2.5/32']);
  });

  it('declared spec.podCIDRs are used as they are; a pod outside them, or overlapping declarations, are refused naming them', () => {
    expect(planPodCidrs(pods('a', '10.9.0.5'), { declared: { a: ['10.9.0.0/23'] } }).get('a')).toEqual(['10.9.0.0/23']);
    expect(errorOf(() => planPodCidrs(pods('a', '10.9.4.5'), { declared: { a: ['10.9.0.0/23'] } }))?.message).toMatch(/pod ns\/a-0 has address 10\.9\.4\.5, outside its node a's pod CIDRs 10\.9\.0\.0\/23/);
    const overlap = errorOf(() => planPodCidrs([...pods('a', '10.9.0.5'), ...pods('b', '10.9.1.5')], { declared: { a: ['10.9.0.0/23'], b: ['10.9.1.0/24'] } }));
    expect(overlap?.kind).toBe('capacity');
    expect(overlap?.message).toMatch(/nodes a and b declare overlapping pod CIDRs 10\.9\.0\.0\/23 and 10\.9\.1\.0\/24/);
    expect(errorOf(() => planPodCidrs([...pods('a', '10.9.0.5'), ...pods('b', '10.9.1.5')], { declared: { a: ['10.9.0.0/23'] } }))?.message).toMatch(/pod ns\/b-0 on node b has address 10\.9\.1\.5, inside node a's pod CIDRs/);
  });

  it('refuses one address on two nodes and addresses the local backend keeps, naming the pods', () => {
    const e = errorOf(() => planPodCidrs([...pods('a', '10.1.2.4'), ...pods('b', '10.1.2.4')]));
    expect(e?.message).toMatch(/pods ns\/a-0 \(node a\) and ns\/b-0 \(node b\) both have address 10\.1\.2\.4/);
    expect(errorOf(() => planPodCidrs(pods('a', '172.18.0.9')))?.message).toMatch(/pod ns\/a-0 has address 172\.18\.0\.9, in the local backend's node network/);
    expect(errorOf(() => planPodCidrs(pods('a', '169.254.1.1')))?.message).toMatch(/link-local/);
  });

  it('a spare /24 for a node without pods overlaps none in use', () => {
    expect(spareCidr(['10.244.0.0/24', '10.244.1.0/25'])).toBe('10.244.2.0/24');
    expect(errorOf(() => spareCidr(['10.244.0.0/16']))?.kind).toBe('capacity');
  });
});
