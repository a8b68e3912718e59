import { describe, expect, it } from 'vitest';
import { DryRunRunner } from '../../exec/runner.js';
import { generateServiceSet, withProbedEndpoints } from '../../services/generate.js';
import { probedService, type Service, type ServiceDelta, type ServiceSet } from '../../services/types.js';
import { calicoCtlbFlavour } from './calico-ebpf/ctlb.js';
import { ciliumSocketLbFlavour } from './cilium/sock-lb.js';
import { DEFAULT_CLUSTER_CIDR } from './service-types.js';
import { diffEntries, encodeServiceSet, IdAllocator, renderWrites, socketLbPlane, type MapEntry, type SocketLbFlavour } from './socket-lb.js';
import { ServiceEntryStore } from './socket-lb-store.js';
import { planTopology } from './topology.js';

// A change handed to a socket LB plane with the Services it touched: the maps after it must equal a full
// re-render of the new set, and a per-service agent must encode the touched Services alone.
const topology = planTopology({ runId: 'abcde', attachment: 'routed', placement: 'cross-node', hostIfPrefix: 'lxc' });
const server = { ip: topology.pods[1]!.ip, pod: { namespace: 'srv', name: 'server-0' } };
const port = { name: '', protocol: 'TCP' as const, port: 80, targetPort: 8080 };
const base = generateServiceSet({ services: 200, endpointsPerService: 2, position: 'last', seed: 3, probed: { namespace: 'srv', name: 'app', port, backends: [server] } });
// A second Service in front of the same server: its backend entry is shared with the probed Service's.
const added: Service = { namespace: 'srv', name: 'app-added', clusterIP: '10.96.200.200', ports: [{ ...port }], endpoints: [{ ...server }] };

interface Step {
  name: string;
  set: ServiceSet;
  delta: ServiceDelta;
}
const noEndpoint = withProbedEndpoints(base, []);
const withAdded: ServiceSet = { ...base, services: [...base.services, added] };
const steps: Step[] = [
  { name: 'endpoint removed', set: noEndpoint, delta: { upserted: [probedService(noEndpoint)], removed: [] } },
  { name: 'endpoint added', set: base, delta: { upserted: [probedService(base)], removed: [] } },
  { name: 'Service added', set: withAdded, delta: { upserted: [added], removed: [] } },
  { name: 'endpoint removed beside the added Service (its backend stays)', set: { ...noEndpoint, services: [...noEndpoint.services, added] }, delta: { upserted: [probedService(noEndpoint)], removed: [] } },
  { name: 'Service removed (the shared backend goes with it)', set: noEndpoint, delta: { upserted: [], removed: [added] } },
];

const lines = (entries: MapEntry[]) => entries.map((e) => `${e.map} ${e.key.toString('hex')} ${e.value.toString('hex')}`).sort();
const writes = (input: string) => input.trim().split('\n').filter(Boolean).sort();

function counted(f: SocketLbFlavour): { flavour: SocketLbFlavour; calls: { n: number } } {
  const calls = { n: 0 };
  return { flavour: { ...f, encodeService: (svc, ids) => (calls.n++, f.encodeService(svc, ids)) }, calls };
}

function plane(f: SocketLbFlavour) {
  const runner = new DryRunRunner();
  return { runner, plane: socketLbPlane(f, { runner, cleanupRunner: runner, topology, settings: { iptablesBackend: 'nft', clusterCidr: DEFAULT_CLUSTER_CIDR } }, '/cg') };
}

describe.each([ciliumSocketLbFlavour, calicoCtlbFlavour])('$name: a Service change', (f) => {
  it('leaves the maps equal to a full re-render of the new set, and writes what the whole-set diff writes', async () => {
    const { runner, plane: p } = plane(f);
    await p.install(base);
    let before = base;
    for (const step of steps) {
      const at = runner.log.length;
      await p.update(step.set, step.delta);
      // The same ids a full render of every set so far would give (ids are stable per name, as the agents' are).
      const ids = new IdAllocator();
      for (const s of [base, withAdded]) encodeServiceSet(s, f.encodeService, ids);
      const full = encodeServiceSet(step.set, f.encodeService, ids);
      expect(lines(p.heldEntries()), step.name).toEqual(lines(full));
      const { adds, deletes } = diffEntries(encodeServiceSet(before, f.encodeService, ids), full);
      const written = runner.log.slice(at).filter((r) => r.argv[1] === 'write');
      expect(written, step.name).toHaveLength(topology.nodes.length);
      expect(writes(written[0]!.input!), step.name).toEqual(writes(renderWrites(adds, deletes)));
      before = step.set;
    }
  });
});

describe('how each agent finds its writes', () => {
  it("Cilium's encodes only the Services the change touched", async () => {
    const { flavour, calls } = counted(ciliumSocketLbFlavour);
    const { plane: p } = plane(flavour);
    await p.install(base);
    expect(calls.n).toBe(base.services.length);
    calls.n = 0;
    await p.update(steps[0]!.set, steps[0]!.delta);
    expect(calls.n).toBe(1);
    await p.update(withAdded, { upserted: [probedService(base), added], removed: [] });
    expect(calls.n).toBe(3);
  });

  it("Felix's re-renders every Service at each sync (felix/bpf/proxy/syncer.go), and so does any agent not told what changed", async () => {
    for (const [f, delta] of [
      [calicoCtlbFlavour, steps[0]!.delta],
      [ciliumSocketLbFlavour, undefined],
    ] as const) {
      const { flavour, calls } = counted(f);
      const { plane: p } = plane(flavour);
      await p.install(base);
      calls.n = 0;
      await p.update(steps[0]!.set, delta);
      expect(calls.n, f.name).toBe(base.services.length);
    }
  });
});

describe("a whole-set flavour's Services share no entry (its render needs no de-duplication)", () => {
  it.each([calicoCtlbFlavour])('$name', (f) => {
    const ids = new IdAllocator();
    const all = withAdded.services.flatMap((svc) => f.encodeService(svc, ids));
    expect(f.reconcile).toBe('whole-set');
    expect(new Set(all.map((e) => `${e.map} ${e.key.toString('hex')}`)).size).toBe(all.length);
  });
});

describe('ServiceEntryStore', () => {
  const e = (map: string, key: number, value: number, rank = 0): MapEntry => ({ map, key: Buffer.from([key]), value: Buffer.from([value]), rank });

  it('keeps an entry two Services share until the last lets go; counts entries per map', () => {
    const s = new ServiceEntryStore();
    expect(s.replace([['a', [e('be', 1, 1), e('fe', 1, 9)]], ['b', [e('be', 1, 1), e('fe', 2, 9)]]]).adds).toHaveLength(3);
    expect(s.counts()).toEqual({ beEntries: 1, feEntries: 2 });
    const gone = s.replace([['a', []]]);
    expect(gone).toEqual({ adds: [], deletes: [e('fe', 1, 9)] });
    expect(s.replace([['b', []]]).deletes.map((x) => x.map).sort()).toEqual(['be', 'fe']);
    expect(s.size).toBe(0);
    expect(s.counts()).toEqual({});
  });

  it('rewrites an entry whose value changed, and writes nothing for one that did not', () => {
    const s = new ServiceEntryStore();
    s.replace([['a', [e('fe', 1, 1), e('be', 1, 5)]]]);
    expect(s.replace([['a', [e('fe', 1, 2), e('be', 1, 5)]]])).toEqual({ adds: [e('fe', 1, 2)], deletes: [] });
  });
});
