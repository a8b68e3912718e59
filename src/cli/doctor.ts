// `bench doctor`: can this machine run the local backend (and the kind backend)? Each check says how to fix it.
import { existsSync, readFileSync } from 'node:fs';
import { release } from 'node:os';
import { BACKEND_DESCRIPTORS, backendDescriptor, type ToolCheck } from '../backends/factory.js';
import type { Runner } from '../exec/runner.js';
import { probeAvailable } from '../probe/native.js';

export interface Check {
  name: string;
  ok: boolean;
  detail: string;
  fix?: string;
  /** Which backend needs it. */
  for: 'local' | 'kind';
}

async function has(runner: Runner, argv: string[]): Promise<string | undefined> {
  const r = await runner.run({ argv, allowFailure: true, timeoutMs: 10_000 });
  if (r.exitCode !== 0) return undefined;
  return (r.stdout || r.stderr).split('\n')[0]?.trim() || 'present';
}

/** The tools a backend's descriptor lists, each found (with its version) or not (with its fix). */
async function toolChecks(runner: Runner, backend: 'local' | 'kind'): Promise<Check[]> {
  const out: Check[] = [];
  for (const t of BACKEND_DESCRIPTORS[backend].tools) {
    const v = await has(runner, t.argv);
    out.push({ name: t.name, ok: v !== undefined, detail: v ?? 'not found', fix: t.fix, for: backend });
  }
  return out;
}

export function kernelAtLeast(version: string, major: number, minor: number): boolean {
  const m = /^(\d+)\.(\d+)/.exec(version);
  if (!m) return false;
  const [a, b] = [Number(m[1]), Number(m[2])];
  return a > major || (a === major && b >= minor);
}

const readNumber = (path: string): number | undefined => {
  try {
    const n = Number(readFileSync(path, 'utf8').trim());
    return Number.isFinite(n) ? n : undefined;
  } catch {
    return undefined;
  }
};

/**
 * Flannel needs br_netfilter (flanneld >= v0.26 exits without /proc/sys/net/bridge/bridge-nf-call-iptables; Canal's
 * flannel v0.24.4 does not check);
 * Docker >= 27.3 no longer loads it (moby#48492). The kind backend loads it from inside a node, which works when
 * the module exists on the host.
 */
export function brNetfilterCheck(loaded: boolean, modinfo: string | undefined): Check {
  return {
    name: 'br_netfilter',
    ok: loaded || modinfo !== undefined,
    detail: loaded ? 'loaded' : modinfo !== undefined ? 'not loaded; available (kind runs of flannel load it with modprobe in a node)' : 'not loaded and not found (modinfo br_netfilter)',
    fix: 'flannel needs it: install your kernel\'s modules (Debian/Ubuntu: linux-modules-extra-$(uname -r)) and run sudo modprobe br_netfilter',
    for: 'kind',
  };
}

/**
 * kind's known issue "Pod errors due to too many open files": each node runs a kubelet and containerd that watch
 * with inotify; kind's docs recommend max_user_watches=524288 and max_user_instances=512.
 */
export function inotifyCheck(watches: number | undefined, instances: number | undefined): Check {
  const ok = (watches ?? 0) >= 524288 && (instances ?? 0) >= 512;
  return {
    name: 'inotify limits',
    ok,
    detail: `max_user_watches=${watches ?? '?'} max_user_instances=${instances ?? '?'}`,
    fix: 'sudo sysctl fs.inotify.max_user_watches=524288 fs.inotify.max_user_instances=512 (kind docs, known issues: too many open files)',
    for: 'kind',
  };
}

export async function runDoctor(runner: Runner): Promise<Check[]> {
  const checks: Check[] = [];
  const add = (c: Check) => checks.push(c);
  const isRoot = process.getuid?.() === 0;
  add({ name: 'root', ok: isRoot, detail: isRoot ? 'running as root' : `uid ${process.getuid?.()}`, fix: 'run as root (sudo -E bench …): namespaces, iptables and BPF need CAP_NET_ADMIN and CAP_SYS_ADMIN', for: 'local' });
  const kernel = release();
  add({ name: 'kernel', ok: kernelAtLeast(kernel, 5, 10), detail: kernel, fix: 'the Cilium-style model uses tc BPF with map-in-map and LPM tries: Linux 5.10 or newer', for: 'local' });
  const netnsOk = existsSync('/proc/self/ns/net');
  add({ name: 'network namespaces', ok: netnsOk, detail: netnsOk ? 'supported' : 'no /proc/self/ns/net', fix: 'a kernel built with CONFIG_NET_NS', for: 'local' });
  checks.push(...(await toolChecks(runner, 'local')));
  const bpffs = existsSync('/proc/mounts') && readFileSync('/proc/mounts', 'utf8').split('\n').some((l) => l.split(' ')[2] === 'bpf');
  add({ name: 'BPF filesystem', ok: bpffs, detail: bpffs ? 'mounted' : 'not mounted', fix: 'mount -t bpf bpf /sys/fs/bpf', for: 'local' });
  const probe = probeAvailable();
  add({ name: 'native probe', ok: probe, detail: probe ? 'dist/native/cb-probe built' : 'not built', fix: 'npm run build (or bash scripts/setup.sh)', for: 'local' });
  checks.push(...(await toolChecks(runner, 'kind')));
  add(brNetfilterCheck(existsSync('/proc/sys/net/bridge/bridge-nf-call-iptables'), await has(runner, ['modinfo', '-n', 'br_netfilter'])));
  add(inotifyCheck(readNumber('/proc/sys/fs/inotify/max_user_watches'), readNumber('/proc/sys/fs/inotify/max_user_instances')));
  return checks;
}

export function formatChecks(checks: Check[]): string {
  const lines: string[] = [];
  for (const backend of ['local', 'kind'] as const) {
    const cs = checks.filter((c) => c.for === backend);
    const ok = cs.every((c) => c.ok);
    lines.push(`${backend} backend: ${ok ? 'ready' : 'NOT ready'}`);
    for (const c of cs) {
      lines.push(`  ${c.ok ? 'ok  ' : 'FAIL'} ${c.name.padEnd(20)} ${c.detail}`);
      if (!c.ok && c.fix) lines.push(`       fix: ${c.fix}`);
    }
  }
  return lines.join('\n');
}

/** Problems that stop a backend before it starts (the tools its descriptor says it needs): each names what is missing and `bench doctor`. */
export async function backendPreflight(runner: Runner, backend: string): Promise<Array<{ where: string; message: string }>> {
  const needed = (backendDescriptor(backend)?.tools ?? []).filter((t): t is ToolCheck & { needed: string } => t.needed !== undefined);
  const missing: string[] = [];
  for (const t of needed) {
    const r = await runner.run({ argv: t.argv, allowFailure: true, timeoutMs: 10_000 }).catch(() => ({ exitCode: 127 }));
    if (r.exitCode !== 0) missing.push(t.needed);
  }
  return missing.length ? [{ where: '--backend', message: `the ${backend} backend needs ${missing.join(', ')}, not found on this machine; run 'bench doctor' to see how to install them` }] : [];
}

/**
 * The cluster a --context names exists in the kubeconfig: checked before a run id, a lock or a result file exists
 * (otherwise the run fails late, at its first kubectl call, with a result file of nothing).
 */
export async function targetPreflight(runner: Runner, backend: string, target: { context?: string; kubeconfig?: string }): Promise<Array<{ where: string; message: string }>> {
  if (!backendDescriptor(backend)?.needsTarget || !target.context) return [];
  const file = target.kubeconfig ? ['--kubeconfig', target.kubeconfig] : [];
  const r = await runner.run({ argv: ['kubectl', 'config', 'get-contexts', '-o', 'name', ...file], allowFailure: true, timeoutMs: 10_000 }).catch(() => ({ exitCode: 127, stdout: '', stderr: '' }));
  const where = target.kubeconfig ?? 'the default kubeconfig ($KUBECONFIG or ~/.kube/config)';
  if (r.exitCode !== 0) return [{ where: target.kubeconfig ? '--kubeconfig' : '--context', message: `kubectl cannot read the contexts of ${where}: ${r.stderr.trim().split('\n').at(-1) || `exit code ${r.exitCode}`}` }];
  const contexts = r.stdout.split('\n').map((l) => l.trim()).filter(Boolean);
  if (contexts.includes(target.context)) return [];
  return [{ where: '--context', message: `no context '${target.context}' in ${where}${contexts.length ? ` (it has: ${contexts.join(', ')})` : ' (it has none)'}` }];
}
