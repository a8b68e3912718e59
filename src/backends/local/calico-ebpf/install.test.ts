import { describe, expect, it } from 'vitest';
import { FakeRunner } from '../../../exec/runner.js';
import type { EndpointPolicy, PeerMatch, PodInfo, PortMatch, ResolvedPolicy } from '../../../policy/types.js';
import { compileCalicoEbpfNode } from './compile.js';
import { MAX_PROGRAMS_PER_CHAIN } from './layout.js';
import { POL_SLOTS, calicoEbpfPinDir, emptyNodeInstalled, planDefaultDeny, planNodeChanges, subProgramSlot, type NodeInstalled } from './install.js';

function pod(name: string, ip: string, node = 'n0'): PodInfo {
  return { name, namespace: 'default', labels: {}, ip, node, ports: [] };
}
const server = pod('server', '10.244.0.2');
const web = pod('web', '10.244.0.5');
const client = pod('client', '10.244.1.3', 'n1');
const newcomer = pod('newcomer', '10.244.1.9', 'n1');
const tcp = (p: number): PortMatch => ({ protocol: 'TCP', from: p, to: p });
const pods = (...ps: PodInfo[]): PeerMatch => ({ kind: 'pods', pods: ps });
const policy = (name: string, peers: PeerMatch[], port = 8080): ResolvedPolicy => ({ policy: `default/${name}`, rules: [{ peers, ports: [tcp(port)] }] });
const endpoint = (p: PodInfo, ingress?: ResolvedPolicy[]): EndpointPolicy => ({
  pod: p,
  ingress: { isolated: ingress !== undefined, policies: ingress ?? [] },
  egress: { isolated: false, policies: [] },
});
const IFINDEX: Record<string, number> = { 'default/server': 11, 'default/web': 12 };
const ifindexOf = (p: string): number => IFINDEX[p]!;

function filler(n: number): ResolvedPolicy[] {
  return Array.from({ length: n }, (_, i) => policy(`f${String(i).padStart(5, '0')}`, [pods(pod(`p${i}`, `10.250.${i >> 8}.${i & 255}`, 'n2'))], 10000 + i));
}

const ops = (input: string): string[] => input.split('\n').filter(Boolean).map((l) => l.split(' ').slice(0, 2).join(' '));

describe('planNodeChanges', () => {
  it('first install: members, then programs, then endpoints; nothing to delete', () => {
    const c = planNodeChanges(emptyNodeInstalled(), compileCalicoEbpfNode('n0', [endpoint(server, [policy('a', [pods(client)])]), endpoint(web)]), ifindexOf);
    const lines = c.input.trim().split('\n');
    expect(lines[0]).toMatch(/^set-add [0-9a-f]{16} 10\.244\.1\.3\/32$/);
    expect(lines[1]).toMatch(/^prog 1 \d+ [0-9a-f]+$/);
    expect(lines.slice(2)).toEqual(['ep 11 1 0', 'ep 12 0 0']);
    expect(c.changed).toMatchObject({ programsLoaded: 1, setMembersAdded: 1, endpointsWritten: 2, slotsEmptied: 0, chainsReplaced: 0 });
  });

  it('the same state again writes nothing', () => {
    const node = compileCalicoEbpfNode('n0', [endpoint(server, [policy('a', [pods(client)])])]);
    const first = planNodeChanges(emptyNodeInstalled(), node, ifindexOf);
    const again = planNodeChanges(first.next, node, ifindexOf);
    expect(again.input).toBe('');
    expect(Object.values(again.changed).every((v) => v === 0)).toBe(true);
  });

  it('a peer joining a selector changes set members only, never a program', () => {
    const before = planNodeChanges(emptyNodeInstalled(), compileCalicoEbpfNode('n0', [endpoint(server, [policy('a', [pods(client)])])]), ifindexOf);
    const after = planNodeChanges(before.next, compileCalicoEbpfNode('n0', [endpoint(server, [policy('a', [pods(client, newcomer)])])]), ifindexOf);
    expect(ops(after.input)).toEqual([`set-add ${[...before.next.sets.keys()][0]}`]);
    expect(after.changed).toMatchObject({ programsLoaded: 0, setMembersAdded: 1, setMembersRemoved: 0 });
    const left = planNodeChanges(after.next, compileCalicoEbpfNode('n0', [endpoint(server, [policy('a', [pods(newcomer)])])]), ifindexOf);
    expect(left.input).toMatch(/^set-del [0-9a-f]{16} 10\.244\.1\.3\/32\n$/);
  });

  it('a changed chain goes into the other buffer, head last, then the old sub-programs are emptied', () => {
    let installed: NodeInstalled = emptyNodeInstalled();
    const one = planNodeChanges(installed, compileCalicoEbpfNode('n0', [endpoint(server, [...filler(3000), policy('zz', [pods(client)])])]), ifindexOf);
    installed = one.next;
    const progs = one.changed.programsLoaded;
    expect(progs).toBeGreaterThan(1);
    // Buffer 0 at first; sub-programs before the head, so the head never points at an empty slot.
    const firstSlots = one.input.split('\n').filter((l) => l.startsWith('prog ')).map((l) => Number(l.split(' ')[1]));
    expect(firstSlots.at(-1)).toBe(1);
    expect(firstSlots.slice(0, -1)).toEqual(Array.from({ length: progs - 1 }, (_, i) => subProgramSlot(1, 0, progs - 1 - i)));

    const two = planNodeChanges(installed, compileCalicoEbpfNode('n0', [endpoint(server, [...filler(3000)])]), ifindexOf);
    const lines = two.input.trim().split('\n');
    const progLines = lines.filter((l) => l.startsWith('prog '));
    expect(progLines.at(-1)!.startsWith('prog 1 ')).toBe(true);
    for (const l of progLines.slice(0, -1)) expect(Number(l.split(' ')[1]) % 256).toBe(1);
    expect(progLines.slice(0, -1).map((l) => Number(l.split(' ')[1]))).toEqual(
      Array.from({ length: progLines.length - 1 }, (_, i) => subProgramSlot(1, 1, progLines.length - 1 - i)),
    );
    const dels = lines.filter((l) => l.startsWith('slot-del ')).map((l) => Number(l.split(' ')[1]));
    expect(dels.sort((a, b) => a - b)).toEqual(Array.from({ length: progs - 1 }, (_, i) => subProgramSlot(1, 0, i + 1)));
    // Deletions come after the head swap.
    expect(lines.findIndex((l) => l.startsWith('slot-del'))).toBeGreaterThan(lines.findIndex((l) => l.startsWith('prog 1 ')));
    expect(two.changed).toMatchObject({ chainsReplaced: 1, setMembersRemoved: 1 });
  });

  it('only the endpoints whose policy changed are reprogrammed; a removed pod is deleted', () => {
    const a = planNodeChanges(emptyNodeInstalled(), compileCalicoEbpfNode('n0', [endpoint(server, [policy('a', [pods(client)])]), endpoint(web, [policy('w', [pods(client)], 80)])]), ifindexOf);
    const b = planNodeChanges(a.next, compileCalicoEbpfNode('n0', [endpoint(server, [policy('a', [pods(client)], 8081)]), endpoint(web, [policy('w', [pods(client)], 80)])]), ifindexOf);
    expect(ops(b.input)).toEqual(['prog 1']);
    const c = planNodeChanges(b.next, compileCalicoEbpfNode('n0', [endpoint(web, [policy('w', [pods(client)], 80)])]), ifindexOf);
    expect(ops(c.input)).toEqual(['ep-del 11', 'slot-del 1', `set-del ${[...a.next.sets.keys()].find((id) => !c.next.sets.has(id))}`]);
  });

  it('a new workload gets the default-deny program in both slots; the next change swaps in its chain and frees the unisolated slot', () => {
    const a = planNodeChanges(emptyNodeInstalled(), compileCalicoEbpfNode('n0', [endpoint(server, [policy('a', [pods(client)])])]), ifindexOf);
    const deny = planDefaultDeny(a.next, 'default/web', 'n0');
    // Slot 1 belongs to the server: the newcomer takes the next free ones, one program each, nothing else.
    expect(deny.slots).toEqual([2, 3]);
    expect(ops(deny.input)).toEqual(['prog 2', 'prog 3']);
    const installed = deny.next(12);
    expect(installed.eps.get(12)).toEqual([2, 3]);
    expect(installed.eps.get(11)).toEqual([1, 0]);
    // Its ingress is isolated by a policy, its egress by none.
    const b = planNodeChanges(installed, compileCalicoEbpfNode('n0', [endpoint(server, [policy('a', [pods(client)])]), endpoint(web, [policy('w', [pods(client)], 80)])]), ifindexOf);
    expect(ops(b.input).slice(1)).toEqual(['prog 2', 'ep 12', 'slot-del 3']);
    expect(b.changed).toMatchObject({ chainsReplaced: 1, setMembersAdded: 1, slotsEmptied: 1 });
    expect(b.input).toContain('ep 12 2 0\n');
    expect(b.next.chains.get(2)!.buf).toBe(1);
    // The default-deny program is an isolated direction with no rule: compiled, the same code.
    const isolatedNoRule = planNodeChanges(emptyNodeInstalled(), compileCalicoEbpfNode('n0', [{ ...endpoint(web), ingress: { isolated: true, policies: [] } }]), ifindexOf);
    expect(isolatedNoRule.input.split('\n')[0]!.split(' ').slice(2)).toEqual(deny.input.split('\n')[0]!.split(' ').slice(2));
  });

  it("a chain over Felix's 24 programs installs its first 24; the last one's tail call points outside the jump map", () => {
    const node = compileCalicoEbpfNode('n0', [endpoint(server, [...filler(28000), policy('zz', [pods(client)])])]);
    const chain = node.endpoints[0]!.ingress!;
    expect(chain.overflow?.programsNeeded).toBe(25);
    const c = planNodeChanges(emptyNodeInstalled(), node, ifindexOf);
    const progLines = c.input.split('\n').filter((l) => l.startsWith('prog '));
    expect(progLines).toHaveLength(MAX_PROGRAMS_PER_CHAIN);
    expect(c.changed.programsLoaded).toBe(MAX_PROGRAMS_PER_CHAIN);
    // Sub-programs 1..23 in their slots; the 24th program's "next" names an index no map entry has.
    expect(subProgramSlot(1, 0, MAX_PROGRAMS_PER_CHAIN - 1)).toBeLessThan(POL_SLOTS);
    expect(subProgramSlot(1, 1, MAX_PROGRAMS_PER_CHAIN - 1)).toBeLessThan(POL_SLOTS);
    expect(subProgramSlot(1, 0, MAX_PROGRAMS_PER_CHAIN)).toBe(POL_SLOTS);
    const last = chain.programs[MAX_PROGRAMS_PER_CHAIN - 1]!;
    const at = last.findIndex((i) => i.subProgram === MAX_PROGRAMS_PER_CHAIN);
    const line = progLines.find((l) => Number(l.split(' ')[1]) === subProgramSlot(1, 0, MAX_PROGRAMS_PER_CHAIN - 1))!;
    const insn = Buffer.from(line.split(' ')[3]!.slice(at * 16, at * 16 + 16), 'hex');
    expect(insn.readInt32LE(4)).toBe(POL_SLOTS);
  }, 60_000);

  it('pin directories carry the run id and the node', () => {
    expect(calicoEbpfPinDir('ab12c', 'node-0')).toBe('/sys/fs/bpf/cb-ab12c/ce-node-0');
    expect(() => calicoEbpfPinDir('../x', 'n')).toThrow(/run id/);
  });
});

describe('calicoEbpfModel through a fake runner', () => {
  it('install loads once and attaches each pod; update writes only the difference and attaches a new pod', async () => {
    const { calicoEbpfModel } = await import('./model.js');
    let ifindex = 20;
    const runner = new FakeRunner((argv) => {
      if (argv.includes('attach')) return { stdout: JSON.stringify({ ifindex: ifindex++ }) };
      if (argv.includes('apply')) return { stdout: JSON.stringify({ progs: 0, insns: 0, verifyMs: 1, setAdds: 0, setDels: 0, slotDels: 0, eps: 0 }) };
      return undefined;
    });
    const node = { index: 0, name: 'node-0', netns: 'cb-ab12c-node-0', ip: '10.0.0.1', podCidr: '10.244.0.0/24', switchPort: 'x' };
    const podSpec = (p: PodInfo, hostIf: string) => ({ name: p.name, namespace: p.namespace, labels: {}, role: 'server' as const, netns: `ns-${p.name}`, node, ip: p.ip, hostIf, slot: 0 });
    const topology = { runId: 'ab12c', attachment: 'routed' as const, switchNs: 's', nodes: [node], pods: [podSpec({ ...server, node: 'node-0' }, 'caliserver')], podMtu: 1500 };
    const ctx = (eps: EndpointPolicy[]) => ({ runner, cleanupRunner: runner, topology, inventory: { namespaces: [], pods: [] }, endpoints: eps, settings: {} as never });
    const srv = { ...server, node: 'node-0' };
    const state = await calicoEbpfModel.install!(ctx([endpoint(srv, [policy('a', [pods(client)])])]) as never);
    // Felix's defaults are recorded with the state: policy debug on, 24 programs per chain; nothing overflowed.
    expect(state).toMatchObject({ policyPrograms: 1, ipSetEntries: 1, rulesTraversedPerPolicy: 1, bpfPolicyDebugEnabled: true, chainProgramLimit: 24, capacityOverflowEndpoints: 0 });
    expect(state.capacityOverflow).toBeUndefined();
    const argv = runner.log.map((r) => r.argv[1]);
    // After the load, the node's own address (host-to-workload traffic skips policy, as Felix's route map says).
    expect(argv).toEqual(['load', 'apply', 'attach', 'apply']);
    expect(runner.log[1]!.input).toBe('host 10.0.0.1\n');

    topology.pods.push(podSpec({ ...web, node: 'node-0' }, 'caliweb'));
    const webSrv = { ...web, node: 'node-0' };
    const report = await calicoEbpfModel.update!(ctx([endpoint(srv, [policy('a', [pods(client, newcomer)])]), endpoint(webSrv)]) as never);
    expect(runner.log.map((r) => r.argv[1]).slice(4)).toEqual(['attach', 'apply']);
    expect(report.changed).toMatchObject({ programsLoaded: 0, setMembersAdded: 1, endpointsWritten: 1 });
    expect(runner.log.at(-1)!.input).toMatch(/^set-add [0-9a-f]{16} 10\.244\.1\.9\/32\nep 21 0 0\n$/);

    // A pod added under policy: attached closed at its CNI ADD, not attached again by the update.
    const late = podSpec({ ...pod('late', '10.244.0.7'), node: 'node-0' }, 'calilate');
    topology.pods.push(late);
    await calicoEbpfModel.attachPod({ runner, topology } as never, late);
    const [apply, attach] = runner.log.slice(-2);
    expect(apply!.argv[1]).toBe('apply');
    expect(ops(apply!.input!)).toEqual(['prog 2', 'prog 3']);
    expect(attach!.argv.slice(1)).toEqual(['attach', '--pin', '/sys/fs/bpf/cb-ab12c/ce-node-0', '--netns', 'cb-ab12c-node-0', '--ifname', 'calilate', '--ingress-slot', '2', '--egress-slot', '3']);
    const n = runner.log.length;
    await calicoEbpfModel.update!(ctx([endpoint(srv, [policy('a', [pods(client, newcomer)])]), endpoint(webSrv), endpoint({ ...pod('late', '10.244.0.7'), node: 'node-0' }, [policy('a', [pods(client, newcomer)])])]) as never);
    expect(runner.log.slice(n).map((r) => r.argv[1])).toEqual(['apply']);
    expect(ops(runner.log.at(-1)!.input!)).toEqual(['prog 2', 'ep 22', 'slot-del 3']);

    await calicoEbpfModel.cleanup!({ cleanupRunner: runner, topology } as never);
    expect(runner.log.at(-1)!.argv.slice(1)).toEqual(['unload', '--pin', '/sys/fs/bpf/cb-ab12c/ce-node-0']);
  });

  it('an endpoint over the chain cap is installed as Felix leaves it and recorded as a capacity overflow; policy debug off is recorded', async () => {
    const { calicoEbpfModel } = await import('./model.js');
    const runner = new FakeRunner((argv) => {
      if (argv.includes('attach')) return { stdout: JSON.stringify({ ifindex: 30 }) };
      if (argv.includes('apply')) return { stdout: JSON.stringify({ progs: 0, insns: 0, verifyMs: 1, setAdds: 0, setDels: 0, slotDels: 0, eps: 0 }) };
      return undefined;
    });
    const node = { index: 0, name: 'node-0', netns: 'cb-cd34e-node-0', ip: '10.0.0.1', podCidr: '10.244.0.0/24', switchPort: 'x' };
    const srv = { ...server, node: 'node-0' };
    const topology = { runId: 'cd34e', attachment: 'routed' as const, switchNs: 's', nodes: [node], pods: [{ name: 'server', namespace: 'default', labels: {}, role: 'server' as const, netns: 'ns-server', node, ip: srv.ip, hostIf: 'caliserver', slot: 0 }], podMtu: 1500 };
    const ctx = (bpfPolicyDebug: 'on' | 'off') => ({ runner, cleanupRunner: runner, topology, inventory: { namespaces: [], pods: [] }, endpoints: [endpoint(srv, [...filler(28000), policy('zz', [pods(client)])])], settings: { bpfPolicyDebug } });
    const state = await calicoEbpfModel.install!(ctx('on') as never);
    expect(state).toMatchObject({ capacityOverflowEndpoints: 1, capacityOverflowRulesNeeded: 28001, capacityOverflowRulesLive: 27384, maxProgramsPerChain: 24, bpfPolicyDebugEnabled: true });
    expect(String(state.capacityOverflow)).toBe('the ingress policy of default/server needs 28001 rules in 25 chained programs; Felix keeps 24, so rules 1–27384 are live and the rest are never reached');
    expect(String(state.capacityOverflowAdvice)).toMatch(/dropped at the last program's failed tail call/);
    // Without the rule-id records the same rules fit.
    const off = await calicoEbpfModel.update!(ctx('off') as never);
    expect(off.state).toMatchObject({ capacityOverflowEndpoints: 0, bpfPolicyDebugEnabled: false, maxRulesPerChain: 28001 });
    await calicoEbpfModel.cleanup!({ cleanupRunner: runner, topology } as never);
  }, 60_000);
});
