// The run's own cgroup v2 directory, for the socket-level service load balancers: their connect() hooks are
// attached to a cgroup and see the sockets of the processes in it, so a run attaches them to `cb-<runid>/<node>`
// under the cgroup2 mount — never to the host's root cgroup — and starts its client in there. Removed by the
// data plane's teardown and, after a killed run, by `bench gc`.
import { existsSync, readFileSync, readdirSync, rmdirSync, writeFileSync } from 'node:fs';
import type { CommandSpec } from '../../exec/runner.js';
import { assertRunId, RUN_RESOURCE_RE, runResourceName } from '../../identity/run-id.js';
import { BenchError } from '../../errors.js';
import { withReferenceCgroupFd } from '../../probe/client.js';

const NODE_RE = /^[a-z0-9][a-z0-9-]{0,62}$/;

/** Where cgroup v2 is mounted: /sys/fs/cgroup on a unified host, /sys/fs/cgroup/unified on a hybrid one. */
export function cgroup2Root(mounts = existsSync('/proc/self/mounts') ? readFileSync('/proc/self/mounts', 'utf8') : ''): string {
  for (const line of mounts.split('\n')) {
    const [, mountPoint, type] = line.split(' ');
    if (type === 'cgroup2' && mountPoint) return mountPoint;
  }
  return '/sys/fs/cgroup';
}

/** `<root>/cb-<runid>`: every cgroup of the run lives under it. */
export function runCgroupDir(root: string, runId: string): string {
  assertRunId(runId);
  return `${root}/${runResourceName(runId)}`;
}

/** `<root>/cb-<runid>/<node>`: one node's "root cgroup", where that node's agent attaches its socket hooks. */
export function nodeCgroupDir(root: string, runId: string, node: string): string {
  if (!NODE_RE.test(node)) throw new BenchError('internal', `invalid node name '${node}' for a cgroup`);
  return `${runCgroupDir(root, runId)}/${node}`;
}

export function planCgroupCreate(dir: string): CommandSpec {
  return { argv: ['mkdir', '-p', dir], purpose: `create cgroup ${dir}` };
}

/** rmdir, children first (a cgroup with children or processes cannot go). */
export function planCgroupRemove(dirs: string[]): CommandSpec[] {
  return [...dirs]
    .sort((a, b) => b.length - a.length)
    .map((d) => ({ argv: ['rmdir', d], allowFailure: true, purpose: `remove cgroup ${d}` }));
}

/**
 * `spec` started inside the cgroup `dir`: a shell moves itself into the cgroup and then execs the command, so the
 * command and everything it starts belong to it from their first socket on. The move happens before
 * `ip netns exec`, whose fresh /sys mount hides the cgroup filesystem from the command.
 */
export function inCgroup(spec: CommandSpec, dir: string): CommandSpec {
  const inner = spec.netns ? ['ip', 'netns', 'exec', spec.netns, ...spec.argv] : spec.argv;
  const { netns: _netns, ...rest } = spec;
  return { ...rest, argv: ['sh', '-c', 'echo $$ > "$0" && exec "$@"', `${dir}/cgroup.procs`, ...inner] };
}

/**
 * `<root>/cb-<runid>/reference`: where a client's loopback reference runs, beside the node cgroups, so the socket
 * hooks attached to a node's cgroup do not run on its connects. Removed with the run's cgroups.
 */
export function referenceCgroupDir(root: string, runId: string): string {
  return `${runCgroupDir(root, runId)}/reference`;
}

/** The descriptor the wrapper opens on the reference cgroup's `cgroup.procs` for the client (dash allows 0-9). */
export const REFERENCE_CGROUP_FD = 9;

/**
 * As inCgroup, and the probe client's reference, if it has one, moves to `refDir` (same CPUs: no cpuset controller
 * there) before its first socket: the shell opens `refDir/cgroup.procs` on fd 9 before `ip netns exec` (inside,
 * /sys/fs/cgroup is hidden) and the client writes itself into it (cb-probe --reference-cgroup-fd).
 */
export function inCgroupReferenceOutside(spec: CommandSpec, dir: string, refDir: string): CommandSpec {
  const moved = withReferenceCgroupFd(spec, REFERENCE_CGROUP_FD);
  if (moved === spec) return inCgroup(spec, dir);
  const inner = moved.netns ? ['ip', 'netns', 'exec', moved.netns, ...moved.argv] : moved.argv;
  const { netns: _netns, ...rest } = moved;
  return { ...rest, argv: ['sh', '-c', `echo $$ > "$0" && exec ${REFERENCE_CGROUP_FD}>"$1" && shift && exec "$@"`, `${dir}/cgroup.procs`, `${refDir}/cgroup.procs`, ...inner] };
}

/** Run ids with a cgroup directory under the cgroup2 root. */
export function runCgroups(root = cgroup2Root()): Map<string, string> {
  const out = new Map<string, string>();
  if (!existsSync(root)) return out;
  for (const f of readdirSync(root)) {
    const m = RUN_RESOURCE_RE.exec(f);
    if (m) out.set(m[1]!, `${root}/${f}`);
  }
  return out;
}

/**
 * Removes a run's cgroup tree for `bench gc`: kills what still runs in it (cgroup.kill, kernel 5.14+; the
 * processes are the run's own clients), then removes the directories, deepest first. Returns what could not go.
 */
export function removeCgroupTree(dir: string): string[] {
  if (!existsSync(dir)) return [];
  const dirs: string[] = [];
  const walk = (d: string) => {
    dirs.push(d);
    for (const e of readdirSync(d, { withFileTypes: true })) if (e.isDirectory()) walk(`${d}/${e.name}`);
  };
  walk(dir);
  if (existsSync(`${dir}/cgroup.kill`)) writeFileSync(`${dir}/cgroup.kill`, '1');
  const left: string[] = [];
  for (const d of dirs.sort((a, b) => b.length - a.length)) {
    let removed = false;
    for (let i = 0; i < 50 && !removed; i++) {
      try {
        rmdirSync(d);
        removed = true;
      } catch (e) {
        if ((e as NodeJS.ErrnoException).code !== 'EBUSY') break;
        Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 20); // killed tasks leave within ms
      }
    }
    if (!removed && existsSync(d)) left.push(d);
  }
  return left;
}
