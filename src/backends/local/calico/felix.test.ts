import { describe, expect, it } from 'vitest';
import type { PodInfo, PortMatch, ResolvedPolicy } from '../../../policy/types.js';
import { calicoPolicyName, chainedRuleHashes, felixRules, localWorkloads, policyGroupUid, protocolPorts, splitPortRanges } from './felix.js';

const fail = (m: string) => new RangeError(m);
const tcp = (from: number, to?: number): PortMatch => ({ protocol: 'TCP', from, to });
const pod = (name: string, ip: string, node = 'n0'): PodInfo => ({ name, namespace: 'default', labels: {}, ip, node, ports: [] });

describe('Felix rule data shared by the iptables and nftables renderings', () => {
  it('simplifies ports as libcalico-go does, or keeps each distinct range for the nftables model', () => {
    const ports = [tcp(443), tcp(80), tcp(81), tcp(80), tcp(9000, 9010), tcp(9005, 9020)];
    expect(protocolPorts(ports, 'x', fail)).toEqual([{ protocol: 'tcp', ranges: [[80, 81], [443, 443], [9000, 9020]] }]);
    expect(protocolPorts(ports, 'x', fail, 'dedupe')).toEqual([{ protocol: 'tcp', ranges: [[80, 80], [81, 81], [443, 443], [9000, 9010], [9005, 9020]] }]);
    expect(() => protocolPorts([tcp(70000)], 'rule 3', fail)).toThrow(RangeError);
  });

  it('splits port lists at 15 multiport slots, a range taking two', () => {
    const ranges = Array.from({ length: 14 }, (_, i): [number, number] => [i + 1, i + 1]);
    expect(splitPortRanges([...ranges, [100, 200]]).map((s) => s.length)).toEqual([14, 1]);
    expect(splitPortRanges([...ranges, [100, 100]]).map((s) => s.length)).toEqual([15]);
  });

  it('turns a policy into one Calico rule per protocol × peer, leaving out rules that cannot match IPv4', () => {
    const policy: ResolvedPolicy = {
      policy: 'default/p',
      rules: [
        {
          peers: [
            { kind: 'pods', pods: [pod('a', '10.244.0.5'), pod('b', 'fd00::5')] },
            { kind: 'cidr', cidr: '10.1.2.3/8', except: ['10.9.0.0/16', 'fd00::/8'] },
            { kind: 'cidr', cidr: 'fd00::/8', except: [] },
            { kind: 'cidr', cidr: '0.0.0.0/0', except: ['0.0.0.0/0'] },
          ],
          ports: [tcp(80), { protocol: 'UDP', from: 53 }],
        },
      ],
    };
    const rules = felixRules(policy, 'ingress', fail);
    expect(rules).toEqual([
      { protocol: 'tcp', ranges: [[80, 80]], peer: { kind: 'set', rule: 0, peer: 0, nets: ['10.244.0.5/32'] } },
      { protocol: 'tcp', ranges: [[80, 80]], peer: { kind: 'net', net: '10.0.0.0/8', except: ['10.9.0.0/16'] } },
      { protocol: 'udp', ranges: [[53, 53]], peer: { kind: 'set', rule: 0, peer: 0, nets: ['10.244.0.5/32'] } },
      { protocol: 'udp', ranges: [[53, 53]], peer: { kind: 'net', net: '10.0.0.0/8', except: ['10.9.0.0/16'] } },
    ]);
  });

  it('names as Felix does: knp.default. policies, group ids by hash, rule hashes chained along the chain', () => {
    expect(calicoPolicyName('ns/allow')).toBe('ns/knp.default.allow');
    const a = policyGroupUid('ingress', 'sel', ['ns/knp.default.a', 'ns/knp.default.b'], 'sha3-224');
    expect(a).not.toBe(policyGroupUid('egress', 'sel', ['ns/knp.default.a', 'ns/knp.default.b'], 'sha3-224'));
    expect(a).not.toBe(policyGroupUid('ingress', 'sel', ['ns/knp.default.a', 'ns/knp.default.b'], 'sha224'));
    const [h1, h2] = chainedRuleHashes('cali-x', ['-A one', '-A two']);
    expect(h1).toHaveLength(16);
    expect(chainedRuleHashes('cali-x', ['-A zero', '-A two'])[1]).not.toBe(h2);
    expect(chainedRuleHashes('cali-y', ['-A one'])[0]).not.toBe(h1);
  });

  it('renders a node\'s workloads only: sorted by interface, hostNetwork and other nodes left out', () => {
    const ep = (p: PodInfo) => ({ pod: p, ingress: { isolated: false, policies: [] }, egress: { isolated: false, policies: [] } });
    const eps = [ep(pod('z', '10.244.0.3')), ep(pod('a', '10.244.0.2')), ep(pod('r', '10.244.1.2', 'n1')), ep({ ...pod('h', '172.18.0.2'), hostNetwork: true })];
    expect(localWorkloads('n0', eps, (p) => `cali${p.name}`, fail, 'why').map((w) => w.iface)).toEqual(['calia', 'caliz']);
    expect(() => localWorkloads('n0', eps, () => 'calisame', fail, 'why')).toThrow(/share interface calisame/);
    expect(() => localWorkloads('n0', eps, (p) => `eth${p.name}`, fail, 'the reason')).toThrow(/\(the reason\)/);
  });
});
