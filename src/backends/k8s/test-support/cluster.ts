// Shared by the kind/cluster tests: a dry-run runner that keeps each command's full spec (stdin included), a
// scripted fake cluster, and the plan as text for snapshots.
import { readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { PROBE_BIN } from '../../../probe/native.js';
import { DryRunRunner, FakeRunner, shellQuote, type CommandResult, type CommandSpec, type FakeHandler } from '../../../exec/runner.js';

export class PlanRunner extends DryRunRunner {
  readonly specs: CommandSpec[] = [];
  override run(spec: CommandSpec): Promise<CommandResult> {
    this.specs.push(spec);
    return super.run(spec);
  }
}

/** The checkout's path (the static probe is copied from it), shown as <package> so snapshots do not depend on it. */
const PACKAGE_ROOT = join(dirname(PROBE_BIN), '..', '..');

export function planText(specs: readonly CommandSpec[]): string {
  return specs
    .map((s) => `# ${s.purpose ?? ''}\n$ ${shellQuote(s.argv)}${s.input ? `\n${s.input.trimEnd()}` : ''}`)
    .join('\n')
    .replaceAll(PACKAGE_ROOT, '<package>');
}

/** A DaemonSet as `kubectl get daemonsets -A -o json` lists it: what detection reads is the pod template. */
export function daemonSet(where: string, containers: Array<string | { name: string; env?: Record<string, string> }>, labels: Record<string, string> = {}) {
  const [namespace, name] = where.split('/');
  return {
    metadata: { namespace, name },
    spec: {
      template: {
        metadata: { labels },
        spec: {
          containers: containers.map((c) =>
            typeof c === 'string' ? { name: c, image: `example/${c}` } : { name: c.name, image: `example/${c.name}`, env: Object.entries(c.env ?? {}).map(([n, v]) => ({ name: n, value: v })) },
          ),
        },
      },
    },
  };
}

export const daemonSetList = (...items: object[]) => JSON.stringify({ items });

const fixture = (name: string) => readFileSync(new URL(`../fixtures/${name}`, import.meta.url), 'utf8');

export const PROC_STAT = (busy: number) => `cpu  ${busy} 0 ${busy} 100000 0 0 ${Math.round(busy / 10)} 0 0 0\ncpu0 1 0 1 1 0 0 0 0 0 0\n`;

export function cadvisorText(sec: number): string {
  return [
    '# TYPE container_cpu_usage_seconds_total counter',
    `container_cpu_usage_seconds_total{container="",cpu="total",id="/",image="",name="",namespace="",pod=""} ${1000 + sec * 3} 1700000000000`,
    `container_cpu_usage_seconds_total{container="fortio",cpu="total",id="/kubepods/a",image="fortio",name="x",namespace="cb-abcde-client",pod="bench-client"} ${sec} 1700000000000`,
    `container_cpu_usage_seconds_total{container="fortio",cpu="total",id="/kubepods/b",image="fortio",name="y",namespace="cb-abcde-server",pod="bench-server-7d9f-x2x"} ${sec / 2} 1700000000000`,
    `container_cpu_usage_seconds_total{container="cilium-agent",cpu="total",id="/kubepods/c",image="cilium",name="z",namespace="kube-system",pod="cilium-abcd"} ${sec / 4} 1700000000000`,
    `container_cpu_usage_seconds_total{container="calico-node",cpu="total",id="/kubepods/d",image="calico",name="w",namespace="calico-system",pod="calico-node-x"} ${sec / 4} 1700000000000`,
  ].join('\n');
}

export function probeClientOutput(samplesNs: number[], errors: Record<string, number> = {}): string {
  return `${JSON.stringify({ mode: 'connect', concurrency: 1, samples_ns: samplesNs, errors, wall_ns: 5_000_000, cpu_user_ns: 100_000, cpu_sys_ns: 900_000, started_ns: 1_000, ended_ns: 5_001_000 })}\n`;
}

/** A cluster that answers like a healthy one; `override` can fail or alter any command first. */
export function fakeCluster(override?: FakeHandler): FakeRunner {
  let tick = 0;
  return new FakeRunner((argv, spec) => {
    const o = override?.(argv, spec);
    if (o) return o;
    const a = argv.join(' ');
    if (a.includes('get pods -l app=bench-server -o json')) {
      return { stdout: JSON.stringify({ items: [{ metadata: { name: 'bench-server-7d9f-x2x' }, status: { podIP: '10.244.1.5' } }] }) };
    }
    if (a.includes('fortio load -n 2 ')) {
      const allowed = a.includes(' bench-client ');
      return { stdout: JSON.stringify({ DurationHistogram: { Count: 2 }, RetCodes: allowed ? { '200': 2 } : { '-1': 2 } }) };
    }
    if (a.includes('/probe/cb-probe check ')) return { stdout: 'open\n' };
    if (a.includes('/probe/cb-probe client ')) {
      // What cb-probe client prints: one JSON object, one latency per sample (ns), errors by errno name.
      const n = Number(argv[argv.indexOf('--samples') + 1]);
      return { stdout: probeClientOutput(Array.from({ length: n }, (_, i) => 150_000 + i * 1_000)) };
    }
    if (a.includes('/metrics/cadvisor')) return { stdout: cadvisorText(++tick) };
    if (a.includes('auth can-i get nodes --subresource=proxy')) return { stdout: 'yes\n' };
    if (a.includes('get pods -A --field-selector spec.nodeName=')) {
      const pod = (namespace: string, name: string, container: string, id: string) => ({ metadata: { namespace, name }, status: { containerStatuses: [{ name: container, containerID: `containerd://${id.repeat(64)}` }] } });
      return {
        stdout: JSON.stringify({
          items: [pod('cb-abcde-client', 'bench-client', 'fortio', 'a'), pod('cb-abcde-client', 'bench-client', 'probe', 'e'), pod('cb-abcde-server', 'bench-server-7d9f-x2x', 'fortio', 'b'), pod('kube-system', 'cilium-x', 'cilium-agent', 'c'), pod('kube-system', 'coredns-1', 'coredns', 'd')],
        }),
      };
    }
    if (argv[1] === 'exec' && argv[3] === 'sh' && argv[4] === '-c') {
      // The cgroup read: usage_usec per requested id, then the node's.
      const t = ++tick;
      const usec: Record<string, number> = { a: 1000, b: 500, c: 250, d: 9999, e: 2000 };
      return { stdout: `${argv.slice(7).map((id) => `${id} ${usec[id[0]!]! * t}`).join('\n')}\nnode ${4000 * t}\n` };
    }
    if (a.includes('cat /proc/stat')) return { stdout: PROC_STAT(1000 * ++tick) };
    // The measured runs (the enforcement probes are `-n 2`); rr asks for one more call per connection (fortioCalls).
    if (/fortio load -n (1[2-9]|[2-9]\d|\d{3,}) /.test(a)) {
      const m = a.includes('-keepalive=false') ? 'crr' : 'rr';
      return { stdout: fixture(`${m}.json`), stderr: fixture(`${m}.stderr`) };
    }
    if (a.includes('jsonpath={.status.addresses[?(@.type=="InternalIP")].address}')) return { stdout: '172.18.0.3' };
    // Felix's chains where kind nodes usually have them (nft), none in legacy.
    if (argv[1] === 'exec' && argv[3] === 'iptables-nft-save') return { stdout: '*filter\n:INPUT ACCEPT [0:0]\n:cali-FORWARD - [0:0]\n:cali-INPUT - [0:0]\n:KUBE-FORWARD - [0:0]\nCOMMIT\n' };
    if (a.includes('get daemonsets -A -o json')) {
      return { stdout: daemonSetList(daemonSet('kube-system/cilium', ['cilium-agent'], { 'k8s-app': 'cilium' }), daemonSet('kube-system/cilium-envoy', ['cilium-envoy'], { 'k8s-app': 'cilium-envoy' })) };
    }
    if (a.includes('get nodes -o json')) {
      const node = (name: string, cp = false) => ({
        metadata: { name, labels: cp ? { 'node-role.kubernetes.io/control-plane': '' } : {} },
        spec: cp ? { taints: [{ effect: 'NoSchedule' }] } : {},
        status: { conditions: [{ type: 'Ready', status: 'True' }] },
      });
      return { stdout: JSON.stringify({ items: [node('cp', true), node('w2'), node('w1')] }) };
    }
    return undefined;
  });
}
