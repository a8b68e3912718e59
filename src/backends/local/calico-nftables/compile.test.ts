import { describe, expect, it } from 'vitest';
import type { EndpointPolicy, PeerMatch, PodInfo, PortMatch, ResolvedPolicy } from '../../../policy/types.js';
import { CHAIN_BASE_FORWARD, CHAIN_FORWARD, MAP_TO_WL_DISPATCH, NftCompileError, compileNftNode, endpointChainName, policyChainName, type NftNodePlan } from './compile.js';
import { renderChainDecl, renderSetDecl, ruleHashes } from './render.js';
import { lengthLimitedId } from '../calico/felix.js';

function pod(name: string, ip: string, node = 'n0', namespace = 'default'): PodInfo {
  return { name, namespace, labels: {}, ip, node, ports: [] };
}
const server = pod('server', '10.244.0.2');
const client = pod('client', '10.244.0.3');
const remote = pod('remote', '10.244.1.2', 'n1');
const ifaceOf = (p: PodInfo): string => `cali${p.name.padStart(11, '0').slice(-11)}`;
const tcp = (from: number, to = from): PortMatch => ({ protocol: 'TCP', from, to });
const pods = (...ps: PodInfo[]): PeerMatch => ({ kind: 'pods', pods: ps });
const allow = (name: string, peers: PeerMatch[], ports: PortMatch[] | 'all' = [tcp(8080)]): ResolvedPolicy => ({ policy: `default/${name}`, rules: [{ peers, ports }] });
const endpoint = (p: PodInfo, ingress: ResolvedPolicy[] = [], egress: ResolvedPolicy[] = []): EndpointPolicy => ({
  pod: p,
  ingress: { isolated: ingress.length > 0, policies: ingress },
  egress: { isolated: egress.length > 0, policies: egress },
});
const chain = (plan: NftNodePlan, name: string): string[] => {
  const c = plan.chains.find((x) => x.name === name);
  if (!c) throw new Error(`no chain ${name} in ${plan.chains.map((x) => x.name).join(', ')}`);
  return c.rules.map((r) => r.body);
};

describe('Felix names', () => {
  it('keeps a name that fits and hashes one that does not, as hashutils.GetLengthLimitedID', () => {
    expect(lengthLimitedId('cali-pi-', 'default/foo', 28)).toBe('cali-pi-default/foo');
    const long = lengthLimitedId('cali-pi-', 'default/a-very-long-policy-name-indeed', 28);
    expect(long).toHaveLength(28);
    expect(long).toMatch(/^cali-pi-_[A-Za-z0-9_-]{19}$/);
    // exactly the limit but starting with "_" could clash with a hashed name
    expect(lengthLimitedId('p-', '_abc', 6)).toMatch(/^p-_.{3}$/);
  });

  it('names policy chains tier/namespace/knp.default.<name> under the filter layer, as v3.30 nftables mode', () => {
    expect(policyChainName('ingress', 'bench-server/filler-00001')).toBe('filter-cali-pi-default/bench-server/knp.default.filler-00001');
    expect(policyChainName('egress', 'x/p')).toBe('filter-cali-po-default/x/knp.default.p');
    expect(endpointChainName('ingress', 'cali123')).toBe('filter-cali-tw-cali123');
  });

  it('rejects interfaces Felix would not dispatch', () => {
    expect(() => compileNftNode('n0', [endpoint(server)], () => 'veth0')).toThrow(NftCompileError);
    expect(() => compileNftNode('n0', [endpoint(server), endpoint(client)], () => 'cali1')).toThrow(/share interface cali1/);
  });
});

describe('compileNftNode', () => {
  const plan = compileNftNode('n0', [endpoint(server, [allow('allow-client', [pods(client)])]), endpoint(client), endpoint(remote)], ifaceOf);

  it('hooks forward once and accepts on the accept mark (else sets it), then dispatches through verdict maps', () => {
    expect(plan.chains[0]!.name).toBe(CHAIN_BASE_FORWARD);
    expect(plan.chains[0]!.hook).toEqual({ type: 'filter', hook: 'forward', priority: 0 });
    expect(renderChainDecl(plan.chains[0]!)).toBe('add chain ip calico filter-FORWARD { type filter hook forward priority 0 ; }');
    // StaticFilterForwardAppendRules: accept on the accept mark, then set it (appended after Felix's insert)
    expect(chain(plan, CHAIN_BASE_FORWARD)).toEqual(['counter jump filter-cali-FORWARD', 'meta mark & 0x10000 == 0x10000 counter accept', 'counter meta mark set mark or 0x10000']);
    expect(plan.chains[0]!.appendsFrom).toBe(1);
    expect(chain(plan, 'filter-cali-to-wl-dispatch')).toEqual(['oifname vmap @filter-cali-to-wl-dispatch', 'counter drop']);
    expect(plan.maps.find((m) => m.name === MAP_TO_WL_DISPATCH)!.elements).toEqual([
      ['cali00000client', 'goto filter-cali-tw-cali00000client'],
      ['cali00000server', 'goto filter-cali-tw-cali00000server'],
    ]);
  });

  it('filter-cali-FORWARD jumps as felix/rules/static.go StaticFilterForwardChains: host endpoints, workloads both ways, CIDR block', () => {
    expect(chain(plan, CHAIN_FORWARD)).toEqual([
      'counter meta mark set mark & 0xfff1ffff',
      'meta mark & 0x10000 == 0 counter jump filter-cali-from-hep-forward',
      'iifname "cali*" counter jump filter-cali-from-wl-dispatch',
      'oifname "cali*" counter jump filter-cali-to-wl-dispatch',
      'counter jump filter-cali-to-hep-forward',
      'counter jump filter-cali-cidr-block',
    ]);
    // no host endpoints and no service CIDRs to block: the chains exist, empty, as Felix programs them
    for (const c of ['filter-cali-from-hep-forward', 'filter-cali-to-hep-forward', 'filter-cali-cidr-block']) expect(chain(plan, c)).toEqual([]);
  });

  it('ignores endpoints on other nodes', () => {
    expect(plan.chains.some((c) => c.name.includes('remote'))).toBe(false);
    expect(plan.counts.mapElements).toBe(4);
  });

  it('renders the endpoint chain: conntrack first, tier, jump and return per policy, end-of-tier drop, profiles', () => {
    const pi = policyChainName('ingress', 'default/allow-client');
    expect(chain(plan, endpointChainName('ingress', ifaceOf(server)))).toEqual([
      'ct state related,established counter accept',
      'ct state invalid counter drop',
      'counter meta mark set mark & 0xfffcffff',
      'counter meta mark set mark & 0xfffdffff',
      `meta mark & 0x20000 == 0 counter jump ${pi}`,
      'meta mark & 0x10000 == 0x10000 counter return',
      'meta mark & 0x20000 == 0 counter drop',
      'counter jump filter-cali-pri-kns.default',
      'meta mark & 0x10000 == 0x10000 counter return',
      'counter jump filter-cali-pri-ksa.default.default',
      'meta mark & 0x10000 == 0x10000 counter return',
      'counter drop',
    ]);
    // the only rule's trailing return is stripped, as ProtoRulesToIptablesRules does
    expect(chain(plan, pi)).toEqual([expect.stringMatching(/^meta l4proto tcp ip saddr @cali40s-\S+ tcp dport \{ 8080 \} counter meta mark set mark or 0x10000$/)]);
    expect(plan.chains.find((c) => c.name === pi)!.rules[0]!.comments).toEqual(['Policy default/knp.default.allow-client ingress']);
    expect(plan.sets).toEqual([{ name: expect.stringMatching(/^cali40s-/), elements: ['10.244.0.3'] }]);
  });

  it('lets an unselected direction through the namespace profile, and drops VXLAN/IPIP from workloads', () => {
    const fw = chain(plan, endpointChainName('egress', ifaceOf(client)));
    expect(fw).toContain('meta l4proto udp udp dport { 4789 } counter drop');
    expect(fw).toContain('counter jump filter-cali-pro-kns.default');
    expect(fw).not.toContain('counter meta mark set mark & 0xfffdffff');
    expect(chain(plan, 'filter-cali-pro-kns.default')).toEqual(['counter meta mark set mark or 0x10000']);
  });

  it('groups consecutive policies with one selector into a cali-gi- chain with a return every 5 jumps', () => {
    const fillers = Array.from({ length: 7 }, (_, i) => allow(`f${i}`, [pods(pod(`peer${i}`, `10.245.0.${i + 1}`, 'virtual'))], [tcp(10000 + i)]));
    const p = compileNftNode('n0', [endpoint(server, fillers), endpoint(client)], ifaceOf);
    const group = p.chains.find((c) => c.name.startsWith('filter-cali-gi-'))!;
    expect(group.name).toMatch(/^filter-cali-gi-[A-Za-z0-9_-]{20}$/);
    expect(group.rules.map((r) => r.body)).toEqual([
      `counter jump ${policyChainName('ingress', 'default/f0')}`,
      ...[1, 2, 3, 4].map((i) => `meta mark & 0x30000 == 0 counter jump ${policyChainName('ingress', `default/f${i}`)}`),
      'meta mark & 0x30000 != 0 counter return',
      `counter jump ${policyChainName('ingress', 'default/f5')}`,
      `meta mark & 0x30000 == 0 counter jump ${policyChainName('ingress', 'default/f6')}`,
    ]);
    expect(chain(p, endpointChainName('ingress', ifaceOf(server)))).toContain(`meta mark & 0x20000 == 0 counter jump ${group.name}`);
    // per policy: 1 jump + 1 policy rule, + the group's return rule and the endpoint chain's jump and return
    expect(p.counts.rulesTraversedPerPolicy).toBeCloseTo((7 + 1 + 7 + 2) / 7, 3);
    expect(p.counts.maxPoliciesPerEndpoint).toBe(7);
  });

  it('renders an ipBlock with excepts as a negated match block on the scratch mark', () => {
    const block: PeerMatch = { kind: 'cidr', cidr: '10.0.0.0/8', except: ['10.1.0.0/16', '10.2.3.4/32', 'fd00::/8'] };
    const p = compileNftNode('n0', [endpoint(server, [allow('b', [block], 'all')])], ifaceOf);
    expect(chain(p, policyChainName('ingress', 'default/b'))).toEqual([
      'counter meta mark set mark & 0xfff3ffff ^ 0x40000',
      'ip saddr 10.1.0.0/16 counter meta mark set mark & 0xfffbffff',
      'ip saddr 10.2.3.4 counter meta mark set mark & 0xfffbffff',
      'ip saddr 10.0.0.0/8 meta mark & 0x40000 == 0x40000 counter meta mark set mark or 0x10000',
    ]);
  });

  it('drops IPv6 blocks and negated catch-alls, as Felix does for an IPv4 table', () => {
    const p = compileNftNode('n0', [endpoint(server, [allow('v6', [{ kind: 'cidr', cidr: 'fd00::/8', except: [] }, { kind: 'cidr', cidr: '10.0.0.0/8', except: ['0.0.0.0/0'] }])])], ifaceOf);
    expect(chain(p, policyChainName('ingress', 'default/v6'))).toEqual(['continue']);
  });

  it('one rule per protocol with every port of it, a port block past 15 slots, "all" as no match', () => {
    const many = Array.from({ length: 16 }, (_, i) => tcp(1000 + i));
    const p = compileNftNode('n0', [endpoint(server, [allow('ports', [{ kind: 'any' }], [tcp(80), tcp(90, 99), { protocol: 'UDP' }, { protocol: 'SCTP', from: 5000, to: 5000 }]), allow('many', [{ kind: 'any' }], many), allow('all', [{ kind: 'any' }], 'all')])], ifaceOf);
    expect(chain(p, policyChainName('ingress', 'default/ports'))).toEqual([
      'meta l4proto sctp sctp dport { 5000 } counter meta mark set mark or 0x10000',
      'meta mark & 0x10000 == 0x10000 counter return',
      'meta l4proto tcp tcp dport { 80, 90-99 } counter meta mark set mark or 0x10000',
      'meta mark & 0x10000 == 0x10000 counter return',
      'meta l4proto udp counter meta mark set mark or 0x10000',
    ]);
    const m = chain(p, policyChainName('ingress', 'default/many'));
    expect(m[0]).toBe('counter meta mark set mark & 0xfff3ffff ^ 0x0');
    expect(m[1]).toMatch(/^meta l4proto tcp tcp dport \{ 1000, .*, 1014 \} counter meta mark set mark or 0x40000$/);
    expect(m[2]).toBe('meta l4proto tcp tcp dport { 1015 } counter meta mark set mark or 0x40000');
    expect(m[3]).toBe('meta l4proto tcp meta mark & 0x40000 == 0x40000 counter meta mark set mark or 0x10000');
    expect(chain(p, policyChainName('ingress', 'default/all'))).toEqual(['counter meta mark set mark or 0x10000']);
  });

  it('hashes rules as generictables.RuleHashes does: position and chain matter', () => {
    const c = { name: 'a', rules: [{ body: 'counter drop', comments: [] }, { body: 'counter drop', comments: [] }] };
    const [h1, h2] = ruleHashes(c);
    expect(h1).toHaveLength(16);
    expect(h1).not.toBe(h2);
    expect(ruleHashes({ ...c, name: 'b' })[0]).not.toBe(h1);
  });

  it("declares selector sets as Felix's NFTablesSet does: ipv4_addr with the interval flag, or plain hash sets", () => {
    expect(renderSetDecl(plan.sets[0]!, 'interval')).toBe(`add set ip calico ${plan.sets[0]!.name} { type ipv4_addr ; flags interval ; }`);
    expect(renderSetDecl(plan.sets[0]!, 'hash')).toBe(`add set ip calico ${plan.sets[0]!.name} { type ipv4_addr ; }`);
  });
});
