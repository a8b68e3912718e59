import { describe, expect, it } from 'vitest';
import { SERVICE_CHANGES } from '../config/schema.js';
import { ENFORCE_SERVICE_PORT, INITIAL_SERVICE_STATE, SERVICE_STEPS, enforceServices, sameServiceState } from './services.js';

const server = { ip: '10.244.1.2', namespace: 'bench-server', name: 'server-0', labels: { app: 'bench-server' }, targetPort: 8080 };
const svcs = (n: number, e = 1) => enforceServices({ services: n, endpointsPerService: e, servicePosition: 'last', seed: 1 }, server);

describe('enforceServices', () => {
  it('the probed Service lists the server as its one endpoint, or none; the added Service exists only when asked', () => {
    const s = svcs(10, 3);
    const full = s.setFor({ endpoint: true, added: true });
    const probed = full.services[full.probed]!;
    expect(probed.clusterIP).toBe(s.probed.clusterIP);
    expect(probed.endpoints).toEqual([{ ip: '10.244.1.2', pod: { namespace: 'bench-server', name: 'server-0' } }]);
    expect(probed.ports).toEqual([{ name: '', protocol: 'TCP', port: ENFORCE_SERVICE_PORT, targetPort: 8080 }]);
    expect(full.services).toHaveLength(12);
    expect(full.services.at(-1)!.clusterIP).toBe(s.added.clusterIP);
    const none = s.setFor({ endpoint: false, added: false });
    expect(none.services).toHaveLength(11);
    expect(none.services[none.probed]!.endpoints).toEqual([]);
    // The fillers carry E endpoints each, in every state: the data plane's size does not move with the change.
    for (const set of [full, none]) expect(set.services.filter((x) => x.namespace === 'bench-services').every((x) => x.endpoints.length === 3)).toBe(true);
  });

  it('a move hands the agent the Services it touched, as they stand in the new set', () => {
    const s = svcs(50);
    const states = [
      { endpoint: true, added: false },
      { endpoint: false, added: false },
      { endpoint: false, added: true },
      { endpoint: true, added: false },
    ];
    const key = (x: { namespace: string; name: string }) => `${x.namespace}/${x.name}`;
    for (const from of states) {
      for (const to of states) {
        const delta = s.deltaOf(from, to);
        const a = s.setFor(from).services;
        const b = s.setFor(to).services;
        // What differs between the two sets, Service by Service, is what the delta names: no more, no less.
        const changed = b.filter((x) => JSON.stringify(a.find((y) => key(y) === key(x))) !== JSON.stringify(x)).map(key);
        const removed = a.filter((x) => !b.some((y) => key(y) === key(x))).map(key);
        expect(delta.upserted.map(key).sort(), JSON.stringify([from, to])).toEqual(changed.sort());
        for (const u of delta.upserted) expect(u).toEqual(b.find((y) => key(y) === key(u)));
        expect(delta.removed.map(key), JSON.stringify([from, to])).toEqual(removed);
      }
    }
  });

  it('every ClusterIP is distinct, the added one included, and the states are seeded (same input, same set)', () => {
    const s = svcs(500);
    const ips = s.setFor({ endpoint: true, added: true }).services.map((x) => x.clusterIP);
    expect(new Set(ips).size).toBe(502);
    expect(svcs(500).setFor(INITIAL_SERVICE_STATE)).toEqual(s.setFor(INITIAL_SERVICE_STATE));
  });
});

describe('SERVICE_STEPS', () => {
  it('each change moves the state, and in run order each starts where the previous left it (no unmeasured reset inside a repetition)', () => {
    let state = INITIAL_SERVICE_STATE;
    for (const k of SERVICE_CHANGES) {
      const step = SERVICE_STEPS[k];
      expect(sameServiceState(step.from, step.to), k).toBe(false);
      expect(sameServiceState(state, step.from), k).toBe(true);
      state = step.to;
    }
    expect(SERVICE_STEPS['service-added'].watch).toBe('added');
    expect(SERVICE_STEPS['endpoint-removed'].to.endpoint).toBe(false);
  });
});
