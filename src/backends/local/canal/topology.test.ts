import { describe, expect, it } from 'vitest';
import { localModel } from '../models.js';
import { planTopology, planTopologyUp } from '../topology.js';

describe('canal topology (routed-vxlan attachment)', () => {
  const model = localModel('canal');
  const t = planTopology({ runId: 'k3f9a', attachment: model.attachment, placement: 'cross-node', hostIfPrefix: model.hostIfPrefix });
  const cmds = planTopologyUp(t).map((c) => c.argv.join(' '));

  it("routes pods on cali veths as the Calico CNI plugin does and joins nodes with flannel's VXLAN", () => {
    expect(model.attachment).toBe('routed-vxlan');
    expect(t.podMtu).toBe(1450);
    expect(cmds.some((c) => c.includes('cni0'))).toBe(false);
    for (const p of t.pods) {
      expect(p.hostIf.startsWith('cali')).toBe(true);
      expect(cmds).toContain(`ip -n ${p.node.netns} route add ${p.ip}/32 dev ${p.hostIf} scope link`);
      expect(cmds).toContain(`sysctl -q -w net.ipv4.conf.${p.hostIf}.proxy_arp=1`);
    }
    expect(cmds.filter((c) => c.includes('type vxlan id 1') && c.includes('dstport 8472'))).toHaveLength(2);
    expect(cmds).toContain('ip -n cb-k3f9a-n0 route add 10.244.1.0/24 via 10.244.1.0 dev flannel.1 onlink');
    // no BGP-style routes over eth0
    expect(cmds.some((c) => / route add 10\.244\.\d\.0\/24 via 172\.18\./.test(c))).toBe(false);
  });

  it('leaves the flannel model as it was: cni0 bridge, same VXLAN', () => {
    const f = planTopology({ runId: 'k3f9a', attachment: 'bridge-vxlan', placement: 'cross-node', hostIfPrefix: 'veth' });
    const fc = planTopologyUp(f).map((c) => c.argv.join(' '));
    expect(fc.filter((c) => /link add cni0 address \S+ type bridge/.test(c))).toHaveLength(2);
    expect(fc.filter((c) => c.includes('type vxlan id 1'))).toHaveLength(2);
    expect(fc.indexOf(fc.find((c) => c.includes('link add cni0'))!)).toBeLessThan(fc.indexOf(fc.find((c) => c.includes('master cni0'))!));
  });
});
