import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { loadWorkload } from './load.js';
import { flowKey, parseFlowSpec, probeFlows, resolveFlowSpecs } from './flows.js';

const shop = loadWorkload(join(import.meta.dirname, 'fixtures', 'shop-cluster.json'));
const small = loadWorkload(join(import.meta.dirname, '..', '..', 'scenarios', 'workloads', 'small.yaml'));

describe('--flow ns/pod->ns/pod:port[/proto]', () => {
  it('parses numbers, names and protocols in either case', () => {
    expect(parseFlowSpec('shop/cart-0->payments/api-1:8443/TCP').spec).toEqual({ from: 'shop/cart-0', to: 'payments/api-1', port: 8443, protocol: 'TCP' });
    expect(parseFlowSpec(' shop/a -> shop/b:53/udp ').spec).toEqual({ from: 'shop/a', to: 'shop/b', port: 53, protocol: 'UDP' });
    expect(parseFlowSpec('shop/a->shop/b:http').spec).toEqual({ from: 'shop/a', to: 'shop/b', port: 'http' });
  });

  it('says exactly what is wrong', () => {
    const problem = (s: string) => parseFlowSpec(s).problem;
    expect(problem('shop/a>shop/b:80')).toBe("'shop/a>shop/b:80' has no '->' between the two pods; expected namespace/pod->namespace/pod:port[/protocol], e.g. shop/cart-0->payments/api-1:8443/TCP");
    expect(problem('shop/a->shop/b')).toMatch(/^'shop\/a->shop\/b' has no ':port' after the destination/);
    expect(problem('a->shop/b:80')).toMatch(/^the source 'a' is not namespace\/pod/);
    expect(problem('shop/a->Shop/b:80')).toMatch(/^the destination 'Shop\/b' is not namespace\/pod/);
    expect(problem('shop/a->shop/b:0')).toBe('port 0 must be 1-65535');
    expect(problem('shop/a->shop/b:70000')).toBe('port 70000 must be 1-65535');
    expect(problem('shop/a->shop/b:8_0')).toBe("port '8_0' must be a number 1-65535 or the name of a port the destination declares");
    expect(problem('shop/a->shop/b:80/ICMP')).toBe("protocol 'ICMP' must be TCP, UDP or SCTP");
    expect(problem('shop/a->shop/b:80/TCP/x')).toBe("'80/TCP/x' has more than one '/'; the port is port[/protocol]");
    expect(problem('shop/a->shop/a:80')).toBe("'shop/a->shop/a:80' goes from a pod to itself, which never crosses the data plane");
  });

  it('checks the pods and named ports against the workload, every problem at once', () => {
    const { flows, problems } = resolveFlowSpecs(
      ['shop/cart-7c4d9b8f5-lx2pw->payments/payments-api-84c6b5d7f9-6hs2d:https', 'shop/cartt->shop/frontend-5d8f7c9b6-2kq7x:8080', 'shop/cart-7c4d9b8f5-lx2pw->payments/ledger-0:http', 'web/a->shop/b:1', 'x'],
      shop,
    );
    expect(flows).toEqual([{ from: 'shop/cart-7c4d9b8f5-lx2pw', to: 'payments/payments-api-84c6b5d7f9-6hs2d', port: 8443, protocol: 'TCP' }]);
    expect(problems.map((p) => p.message)).toEqual([
      "'shop/cartt->shop/frontend-5d8f7c9b6-2kq7x:8080': no pod shop/cartt in workload shop-cluster (pods in shop: frontend-5d8f7c9b6-2kq7x, frontend-5d8f7c9b6-9vbnm, cart-7c4d9b8f5-lx2pw, cart-7c4d9b8f5-rt6yz, catalog-6b9f8d7c4-p3k8s)",
      "'shop/cart-7c4d9b8f5-lx2pw->payments/ledger-0:http': payments/ledger-0 declares no port named 'http' (its ports: postgres=5432/TCP)",
      "'web/a->shop/b:1': no pod web/a in workload shop-cluster (it has no namespace web with pods)",
      "'web/a->shop/b:1': no pod shop/b in workload shop-cluster (pods in shop: frontend-5d8f7c9b6-2kq7x, frontend-5d8f7c9b6-9vbnm, cart-7c4d9b8f5-lx2pw, cart-7c4d9b8f5-rt6yz, catalog-6b9f8d7c4-p3k8s)",
      expect.stringMatching(/^'x' has no '->'/),
    ]);
    expect(problems.every((p) => p.where === '--flow')).toBe(true);
  });
});

describe('the flows verify probes', () => {
  const declared = (pods: typeof small.inventory.pods) => pods.reduce((n, p) => n + p.ports.length, 0);

  it('is every ordered pod pair on every declared port up to the limit', () => {
    const n = shop.inventory.pods.length;
    const all = probeFlows(shop, { max: 10_000 });
    expect(all.sampled).toBe(false);
    expect(all.total).toBe((n - 1) * declared(shop.inventory.pods));
    expect(all.flows).toHaveLength(all.total);
    expect(new Set(all.flows.map(flowKey)).size).toBe(all.total);
    expect(all.flows.every((f) => f.from !== f.to)).toBe(true);
  });

  it('is a seeded sample without repeats above it', () => {
    const a = probeFlows(small, { max: 500, seed: 3 });
    expect(a.sampled).toBe(true);
    expect(a.total).toBe((small.inventory.pods.length - 1) * declared(small.inventory.pods));
    expect(a.flows).toHaveLength(500);
    expect(new Set(a.flows.map(flowKey)).size).toBe(500);
    expect(probeFlows(small, { max: 500, seed: 3 }).flows).toEqual(a.flows);
    expect(probeFlows(small, { max: 500, seed: 4 }).flows).not.toEqual(a.flows);
    const pods = new Map(small.inventory.pods.map((p) => [`${p.namespace}/${p.name}`, p]));
    for (const f of a.flows) {
      expect(f.from).not.toBe(f.to);
      expect(pods.get(f.to)!.ports.some((p) => p.containerPort === f.port && p.protocol === f.protocol)).toBe(true);
    }
  });
});
