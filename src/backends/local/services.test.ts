import { describe, expect, it } from 'vitest';
import { POD_SERVICE_PORT_OFFSET, frontKey, podServiceSet } from './services.js';

const pod = (ns: string, name: string, ip: string, ports: Array<[number, 'TCP' | 'UDP']>) => ({
  id: `${ns}/${name}`,
  namespace: ns,
  name,
  labels: { pod: name },
  ip,
  ports: ports.map(([containerPort, protocol]) => ({ name: `serve-${containerPort}-${protocol.toLowerCase()}`, containerPort, protocol })),
});

describe('podServiceSet (verify --services)', () => {
  const pods = [
    pod('x', 'a', '10.244.0.2', [
      [80, 'TCP'],
      [80, 'UDP'],
      [81, 'TCP'],
    ]),
    pod('x', 'b', '10.244.1.2', [[80, 'TCP']]),
    pod('x', 'client-only', '10.244.0.3', []),
  ];

  it('puts one Service in front of every serving pod, each port at the pod port + offset, the pod its one endpoint', () => {
    const { set, fronts } = podServiceSet(pods, { services: 5, endpointsPerService: 2, position: 'last', seed: 1 });
    expect(set.services).toHaveLength(5 + 2);
    const a = set.services.find((s) => s.name === 's-x-a')!;
    expect(a.ports).toEqual([
      { name: 'tcp-80', protocol: 'TCP', port: 80 + POD_SERVICE_PORT_OFFSET, targetPort: 80 },
      { name: 'udp-80', protocol: 'UDP', port: 80 + POD_SERVICE_PORT_OFFSET, targetPort: 80 },
      { name: 'tcp-81', protocol: 'TCP', port: 81 + POD_SERVICE_PORT_OFFSET, targetPort: 81 },
    ]);
    expect(a.endpoints).toEqual([{ ip: '10.244.0.2', pod: { namespace: 'x', name: 'a' } }]);
    expect(set.services.find((s) => s.name === 's-x-b')!.endpoints[0]!.ip).toBe('10.244.1.2');
    expect(new Set(set.services.map((s) => s.clusterIP)).size).toBe(7);
    // Where each probe goes instead: the pod's Service, on the port for that protocol and port.
    expect(fronts.get(frontKey('x/a', 'UDP', 80))).toEqual({ clusterIP: a.clusterIP, port: 10080 });
    expect(fronts.get(frontKey('x/b', 'TCP', 80))!.clusterIP).toBe(set.services.find((s) => s.name === 's-x-b')!.clusterIP);
    expect(fronts.get(frontKey('x/b', 'TCP', 81))).toBeUndefined();
    expect(fronts.get(frontKey('x/client-only', 'TCP', 80))).toBeUndefined();
  });
});
