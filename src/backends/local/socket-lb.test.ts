import { describe, expect, it } from 'vitest';
import { DryRunRunner } from '../../exec/runner.js';
import { generateServiceSet, withProbedEndpoints } from '../../services/generate.js';
import type { ServiceSet } from '../../services/types.js';
import { encodeCalicoNat } from './calico-ebpf/ctlb.js';
import { cgroup2Root, inCgroup, nodeCgroupDir, planCgroupRemove, runCgroupDir } from './cgroup.js';
import { ciliumSocketLbFlavour, encodeCiliumServices } from './cilium/sock-lb.js';
import { DEFAULT_CLUSTER_CIDR } from './service-types.js';
import { diffEntries, IdAllocator, renderWrites, socketLbPlane } from './socket-lb.js';
import { planTopology } from './topology.js';

const one: ServiceSet = {
  serviceCidr: '10.96.0.0/12',
  services: [{ namespace: 'ns', name: 's', clusterIP: '10.96.1.2', ports: [{ name: '', protocol: 'TCP', port: 80, targetPort: 8080 }], endpoints: [{ ip: '10.244.1.2' }, { ip: '10.244.1.3' }] }],
  probed: 0,
  position: 'last',
};

describe("Cilium socket LB's maps", () => {
  it('lays out lb4_key / lb4_service / lb4_backend as bpf/lib/lb.h: frontend count, slots 1..n, backends', () => {
    const e = encodeCiliumServices(one, new IdAllocator());
    const hex = e.map((x) => `${x.map} ${x.key.toString('hex')} ${x.value.toString('hex')} ${x.rank}`);
    expect(hex).toEqual([
      // backend 1: 10.244.1.2, port 8080 (be16 1f90), proto 6
      'lb4_backends 01000000 0af401021f90060000000000 0',
      // slot 1 of 10.96.1.2:80 (be16 0050), proto 6 → backend 1, rev-NAT index 1
      'lb4_services 0a6001020050010006000000 010000000000010000000000 1',
      'lb4_backends 02000000 0af401031f90060000000000 0',
      'lb4_services 0a6001020050020006000000 020000000000010000000000 1',
      // the frontend: slot 0, count 2
      'lb4_services 0a6001020050000006000000 000000000200010000000000 2',
    ]);
  });

  it('keeps backend ids across updates and writes backends, slots, frontend — deletes in reverse', () => {
    const ids = new IdAllocator();
    const before = encodeCiliumServices(one, ids);
    const after = encodeCiliumServices(withProbedEndpoints(one, [{ ip: '10.244.1.3' }]), ids);
    const { adds, deletes } = diffEntries(before, after);
    // slot 1 now points at backend 2, the frontend's count drops to 1; slot 2 and backend 1 go.
    const lines = renderWrites(adds, deletes).trim().split('\n');
    expect(lines.map((l) => l.split(' ').slice(0, 2).join(' '))).toEqual(['lb4_services +', 'lb4_services +', 'lb4_services -', 'lb4_backends -']);
    expect(lines[0]).toContain(' 0a60010200500100'); // slot 1 rewritten before the frontend
    expect(lines[1]).toContain(' 0a60010200500000'); // frontend count 1
    expect(lines[3]).toBe('lb4_backends - 01000000');
  });
});

describe("Calico CTLB's NAT maps", () => {
  it('lays out the front-end key (prefix 56, port in host order) and back-end entries as felix/bpf/nat/maps.go', () => {
    const e = encodeCalicoNat(one, new IdAllocator());
    expect(e.map((x) => `${x.map} ${x.key.toString('hex')} ${x.value.toString('hex')}`)).toEqual([
      // (id 1, ordinal 0/1) → 10.244.1.2/3, port 8080 little-endian (901f)
      'cali_v4_nat_be 0100000000000000 0af40102901f0000',
      'cali_v4_nat_be 0100000001000000 0af40103901f0000',
      // prefix 56 | 10.96.1.2 | port 80 little-endian (5000) | proto 6 | src 0.0.0.0 | pad → (id 1, count 2)
      'cali_v4_nat_fe 380000000a6001025000060000000000 0100000002000000000000000000000000000000',
    ]);
  });
});

describe('the run cgroup', () => {
  it('finds the cgroup2 mount on unified and hybrid hosts', () => {
    expect(cgroup2Root('cgroup2 /sys/fs/cgroup cgroup2 rw 0 0\n')).toBe('/sys/fs/cgroup');
    expect(cgroup2Root('cgroup /sys/fs/cgroup/cpu cgroup rw 0 0\ncgroup2 /sys/fs/cgroup/unified cgroup2 rw 0 0\n')).toBe('/sys/fs/cgroup/unified');
    expect(cgroup2Root('')).toBe('/sys/fs/cgroup');
  });

  it('names it after the run, per node, and removes children first', () => {
    expect(runCgroupDir('/sys/fs/cgroup', 'abcde')).toBe('/sys/fs/cgroup/cb-abcde');
    expect(nodeCgroupDir('/sys/fs/cgroup', 'abcde', 'node-0')).toBe('/sys/fs/cgroup/cb-abcde/node-0');
    expect(() => runCgroupDir('/sys/fs/cgroup', '../x')).toThrow(/run id/);
    expect(planCgroupRemove(['/c/cb-abcde', '/c/cb-abcde/node-0']).map((c) => c.argv.join(' '))).toEqual(['rmdir /c/cb-abcde/node-0', 'rmdir /c/cb-abcde']);
  });

  it('starts a command in the cgroup before it enters the pod namespace', () => {
    const spec = inCgroup({ argv: ['cb-probe', 'client'], netns: 'cb-abcde-client', timeoutMs: 5 }, '/c/cb-abcde/node-0');
    expect(spec).toEqual({ argv: ['sh', '-c', 'echo $$ > "$0" && exec "$@"', '/c/cb-abcde/node-0/cgroup.procs', 'ip', 'netns', 'exec', 'cb-abcde-client', 'cb-probe', 'client'], timeoutMs: 5 });
  });
});

describe('a socket LB plane, planned', () => {
  it("creates each node's cgroup, loads, attaches there only, writes the maps; wraps a client into its node's cgroup", () => {
    const topology = planTopology({ runId: 'abcde', attachment: 'routed', placement: 'cross-node', hostIfPrefix: 'lxc' });
    const runner = new DryRunRunner();
    const plane = socketLbPlane(ciliumSocketLbFlavour, { runner, cleanupRunner: runner, topology, settings: { iptablesBackend: 'nft', clusterCidr: DEFAULT_CLUSTER_CIDR } }, '/cg');
    const set = generateServiceSet({ services: 3, endpointsPerService: 1, position: 'last', seed: 1, probed: { namespace: 'a', name: 'b', port: { name: '', protocol: 'TCP', port: 80, targetPort: 8080 }, backends: [{ ip: topology.pods[1]!.ip }] } });
    const plan = plane.plan(set).map((c) => c.argv.slice(0, 2).concat(c.argv.includes('--cgroup') ? [c.argv[c.argv.indexOf('--cgroup') + 1]!] : []).join(' '));
    expect(plane.plan(set).filter((c) => c.argv[0] === 'mkdir').map((c) => c.argv[2])).toEqual(['/cg/cb-abcde/reference', '/cg/cb-abcde/node-0', '/cg/cb-abcde/node-1']);
    expect(plan.filter((c) => c.includes(' attach '))).toEqual(['/cg/cb-abcde/node-0', '/cg/cb-abcde/node-1'].map((d) => expect.stringContaining(d)));
    expect(plane.plan(set).filter((c) => c.argv[1] === 'write').map((c) => c.input!.split('\n').length - 1)).toEqual([12, 12]); // per node: 4 × (backend, slot, frontend)
    const client = topology.pods.find((p) => p.role === 'client')!;
    expect(plane.wrapClient({ argv: ['x'], netns: client.netns }, client).argv.slice(0, 4)).toEqual(['sh', '-c', 'echo $$ > "$0" && exec "$@"', '/cg/cb-abcde/node-0/cgroup.procs']);
    // A client with a reference: the reference's cgroup (beside the hooked node cgroups) is opened for it on fd 9.
    expect(plane.wrapClient({ argv: ['cb-probe', 'client', '--reference', '10'], netns: client.netns }, client).argv).toEqual([
      'sh', '-c', 'echo $$ > "$0" && exec 9>"$1" && shift && exec "$@"', '/cg/cb-abcde/node-0/cgroup.procs', '/cg/cb-abcde/reference/cgroup.procs',
      'ip', 'netns', 'exec', client.netns, 'cb-probe', 'client', '--reference', '10', '--reference-cgroup-fd', '9',
    ]);
  });
});
