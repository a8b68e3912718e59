// Checks every output path before any work starts: a benchmark that runs for minutes and then cannot write its
// result has thrown the result away. One place decides what an output option is, so every command (and every
// flag added later) gets the same treatment: an option declared with outputOption(), or any option named --out
// (a directory).
import { accessSync, constants, existsSync, statfsSync, statSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { Option } from 'commander';

export type OutputKind = 'dir' | 'file';
interface OutputSpec {
  kind: OutputKind;
  /** `-` means stdout, not a file named '-'. */
  stdout?: boolean;
}

const declared = new WeakMap<Option, OutputSpec>();

/** An option whose value is a path the command writes to. */
export function outputOption(flags: string, description: string, kind: OutputKind, opts: { stdout?: boolean; default?: string } = {}): Option {
  const o = new Option(flags, description);
  if (opts.default !== undefined) o.default(opts.default);
  declared.set(o, { kind, stdout: opts.stdout });
  return o;
}

export function outputSpecOf(o: Option): OutputSpec | undefined {
  return declared.get(o) ?? (o.long === '--out' ? { kind: 'dir' } : undefined);
}

// Filesystems that hold kernel state, not files: writing results there fails, or worse (procfs, sysfs).
const VIRTUAL_FS: Record<number, string> = {
  0x9fa0: 'proc',
  0x62656572: 'sysfs',
  0x63677270: 'cgroup2',
  0x27e0eb: 'cgroup',
  0xcafe4a11: 'bpf',
  0x64626720: 'debugfs',
  0x74726163: 'tracefs',
  0x73636673: 'securityfs',
  0x62656570: 'configfs',
  0x6165676c: 'pstore',
};

function errnoOf(e: unknown): string {
  return (e as NodeJS.ErrnoException).code ?? String(e);
}

/** Nearest existing path at or above `abs`. */
function nearestExisting(abs: string): string {
  let p = abs;
  while (!existsSync(p)) {
    const up = dirname(p);
    if (up === p) break;
    p = up;
  }
  return p;
}

/**
 * Why `path` cannot be written as a `kind`, or undefined when it can. Creates nothing: a directory output may
 * not exist yet (it is created with its parents), a file output's directory must exist.
 */
export function outputPathProblem(path: string, kind: OutputKind): string | undefined {
  if (path.trim() === '') return kind === 'dir' ? 'must not be empty: give a directory, e.g. results' : 'must not be empty: give a file name';
  const abs = resolve(path);
  if (existsSync(abs)) {
    const st = statSync(abs);
    if (kind === 'dir' && !st.isDirectory()) return `${path} exists and is not a directory`;
    if (kind === 'file' && st.isDirectory()) return `${path} is a directory; give a file name`;
  } else if (kind === 'file' && !existsSync(dirname(abs))) {
    return `directory ${dirname(abs)} does not exist; create it first or choose another file`;
  }
  const anchor = nearestExisting(abs);
  const anchorStat = statSync(anchor);
  if (!anchorStat.isDirectory() && anchor !== abs) return `cannot create ${path}: ${anchor} is a file, not a directory`;
  const dirToWrite = anchorStat.isDirectory() ? anchor : dirname(anchor);
  try {
    const fsType = VIRTUAL_FS[Number(statfsSync(dirToWrite).type)];
    if (fsType) return `${path} is on ${fsType}, a kernel filesystem, not a place for output; choose another path`;
  } catch {
    /* statfs unsupported: the access check below still applies */
  }
  try {
    accessSync(anchor === abs && !anchorStat.isDirectory() ? abs : dirToWrite, constants.W_OK | (anchorStat.isDirectory() ? constants.X_OK : 0));
  } catch (e) {
    return `cannot write to ${anchor === abs ? path : `${dirToWrite} (to create ${path})`}: ${errnoOf(e) === 'EROFS' ? 'read-only filesystem' : 'permission denied'} (${errnoOf(e)})`;
  }
  return undefined;
}

/** Problems of every output option of a command that has a value, in declaration order. */
export function outputProblems(options: readonly Option[], values: Record<string, unknown>): Array<{ where: string; message: string }> {
  const problems: Array<{ where: string; message: string }> = [];
  for (const o of options) {
    const spec = outputSpecOf(o);
    const value = values[o.attributeName()];
    if (!spec || typeof value !== 'string') continue;
    if (spec.stdout && value === '-') continue;
    const message = outputPathProblem(value, spec.kind);
    if (message) problems.push({ where: o.long ?? o.flags, message });
  }
  return problems;
}
