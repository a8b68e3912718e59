// The one command runner. Planners return CommandSpecs (plain data); only a Runner executes them.
// Every backend goes through here so that --dry-run, timeouts, cancellation and the command log behave
// the same everywhere, and so tests can inject a fake runner and check the exact argv.
import { closeSync, openSync, readFileSync } from 'node:fs';
import { spawn } from 'node:child_process';
import { execa } from 'execa';
import { BenchError } from '../errors.js';

export interface CommandSpec {
  /** argv, never a shell string. */
  argv: string[];
  /** Run inside this network namespace (prefixes `ip netns exec NS`). */
  netns?: string;
  /** Written to the child's stdin. */
  input?: string;
  timeoutMs?: number;
  /** A non-zero exit is returned, not thrown. */
  allowFailure?: boolean;
  /** What this command is for, in the plan's words ("create node namespace"). */
  purpose?: string;
}

export interface CommandResult {
  argv: string[];
  /** What was written to stdin (kept in the log so a dry run can print every manifest). */
  input?: string;
  purpose?: string;
  exitCode: number;
  stdout: string;
  stderr: string;
  durationMs: number;
  timedOut: boolean;
}

const DEFAULT_TIMEOUT_MS = 60_000;

/** A plan as a person reads it: purpose, the shell-pasteable command, and its stdin (a manifest) as a heredoc. */
export function renderPlan(log: readonly CommandResult[]): string {
  return log
    .map((c) => {
      const head = `${c.purpose ? `# ${c.purpose}\n` : ''}${shellQuote(c.argv)}`;
      return c.input ? `${head} <<'EOF'\n${c.input.trimEnd()}\nEOF` : head;
    })
    .join('\n');
}

/** Shell-pasteable rendering of an argv, for error messages and --dry-run. */
export function shellQuote(argv: readonly string[]): string {
  return argv.map((a) => (/^[A-Za-z0-9_@%+=:,./-]+$/.test(a) ? a : `'${a.replace(/'/g, `'\\''`)}'`)).join(' ');
}

export function fullArgv(spec: CommandSpec): string[] {
  return spec.netns ? ['ip', 'netns', 'exec', spec.netns, ...spec.argv] : [...spec.argv];
}

function exitWords(code: number): string {
  if (code === 127) return 'command not found';
  if (code === 126) return 'permission denied or not executable';
  if (code > 128 && code < 160) return `killed by signal ${code - 128}`;
  return `exit code ${code}`;
}

export class CommandError extends BenchError {
  readonly result: CommandResult;
  constructor(result: CommandResult, purpose?: string) {
    const what = purpose ? `${purpose}: ` : '';
    const why = result.timedOut ? `timed out after ${Math.round(result.durationMs)} ms` : exitWords(result.exitCode);
    const stderr = result.stderr.trim().split('\n').slice(-5).join('\n  ');
    super('command', `${what}${shellQuote(result.argv)} failed (${why})${stderr ? `\n  ${stderr}` : ''}`);
    this.result = result;
  }
}

export interface Runner {
  readonly dryRun: boolean;
  /** Every command run (or, in dry-run, planned) so far, in order. */
  readonly log: CommandResult[];
  run(spec: CommandSpec): Promise<CommandResult>;
}

abstract class RecordingRunner implements Runner {
  abstract readonly dryRun: boolean;
  readonly log: CommandResult[] = [];
  protected abstract execute(argv: string[], spec: CommandSpec): Promise<CommandResult>;

  async run(spec: CommandSpec): Promise<CommandResult> {
    const argv = fullArgv(spec);
    const result = { ...(await this.execute(argv, spec)), input: spec.input, purpose: spec.purpose };
    this.log.push(result);
    if ((result.exitCode !== 0 || result.timedOut) && !spec.allowFailure) throw new CommandError(result, spec.purpose);
    return result;
  }
}

/** Runs commands for real with execa: no shell, bounded time, killed on cancellation. */
export class ExecRunner extends RecordingRunner {
  readonly dryRun = false;
  constructor(private readonly signal?: AbortSignal) {
    super();
  }

  protected async execute(argv: string[], spec: CommandSpec): Promise<CommandResult> {
    const started = performance.now();
    const [file, ...args] = argv as [string, ...string[]];
    const r = await execa(file, args, {
      input: spec.input,
      timeout: spec.timeoutMs ?? DEFAULT_TIMEOUT_MS,
      cancelSignal: this.signal,
      reject: false,
      stripFinalNewline: false,
      maxBuffer: 256 * 1024 * 1024,
    });
    return {
      argv,
      exitCode: r.exitCode ?? (r.failed ? (r.code === 'ENOENT' ? 127 : 1) : 0),
      stdout: String(r.stdout ?? ''),
      stderr: String(r.stderr ?? (r.failed ? r.message : '')),
      durationMs: performance.now() - started,
      timedOut: Boolean(r.timedOut),
    };
  }
}

/** Records the plan without running anything; every command "succeeds" with empty output. */
export class DryRunRunner extends RecordingRunner {
  readonly dryRun = true;
  protected async execute(argv: string[]): Promise<CommandResult> {
    return { argv, exitCode: 0, stdout: '', stderr: '', durationMs: 0, timedOut: false };
  }
}

export type FakeHandler = (argv: string[], spec: CommandSpec) => Partial<CommandResult> | undefined;

/** For tests: answers each command with what the handler says (default: success, empty output). */
export class FakeRunner extends RecordingRunner {
  readonly dryRun = false;
  constructor(private readonly handler: FakeHandler = () => undefined) {
    super();
  }
  protected async execute(argv: string[], spec: CommandSpec): Promise<CommandResult> {
    const r = this.handler(argv, spec) ?? {};
    return { argv, exitCode: 0, stdout: '', stderr: '', durationMs: 0, timedOut: false, ...r };
  }
}

// ------------------------------------------------------------------------------------------------ long-lived
// Processes that run beside the measurement (an echo server, a watch) go through here too: argv and namespace
// from the same CommandSpec, the same error record, killed when Node exits. start() resolves once the process
// says it is ready (a line on stdout), so callers never race its start-up.

export interface StartOptions {
  /** start() resolves once a stdout line matches (e.g. /^ready$/m); without it, as soon as the process is spawned. */
  readyLine?: RegExp;
  readyTimeoutMs?: number;
  /** Between SIGTERM and SIGKILL on stop(). */
  graceMs?: number;
  /** Keep stdout in the result (a final JSON line); otherwise it is only scanned for the ready line. */
  keepStdout?: boolean;
  /** Outlive this process: own session, output to this file, CB_PROBE_DETACHED=1 in its environment (--keep). */
  detachedLog?: string;
  signal?: AbortSignal;
}

export interface RunningCommand {
  readonly argv: string[];
  readonly pid: number;
  /** The ready line's match (null when no readyLine was asked for). */
  readonly ready: RegExpExecArray | null;
  /** Settles when the process exits, whatever the reason (never rejects). */
  readonly exited: Promise<CommandResult>;
  /** SIGTERM (SIGKILL after graceMs); resolves with the result once the process is gone. */
  stop(): Promise<CommandResult>;
}

export class StartError extends BenchError {
  constructor(message: string) {
    super('command', message);
  }
}

/** How a started process ended, as a sentence's verb phrase. */
const ended = (code: number) => (code > 128 && code < 160 ? `was killed by signal ${code - 128}` : `exited with code ${code}${code === 127 ? ' (command not found)' : ''}`);
const describeSpec = (spec: CommandSpec, argv: string[]) => `${spec.purpose ? `${spec.purpose}: ` : ''}${shellQuote(argv)}`;

export async function startCommand(spec: CommandSpec, opts: StartOptions = {}): Promise<RunningCommand> {
  return opts.detachedLog ? startDetached(spec, opts, opts.detachedLog) : startChild(spec, opts);
}

async function startChild(spec: CommandSpec, opts: StartOptions): Promise<RunningCommand> {
  const argv = fullArgv(spec);
  const [file, ...args] = argv as [string, ...string[]];
  const started = performance.now();
  // cleanup kills the child when Node exits (cb-probe also asks for a parent-death signal).
  const child = execa(file, args, {
    stdin: 'ignore',
    reject: false,
    buffer: { stdout: Boolean(opts.keepStdout), stderr: false },
    cleanup: true,
    timeout: spec.timeoutMs,
    cancelSignal: opts.signal,
    forceKillAfterDelay: opts.graceMs ?? 3_000,
  });
  let stderr = '';
  child.stderr?.on('data', (d: Buffer) => {
    if (stderr.length < 8192) stderr += d.toString();
  });
  const exited: Promise<CommandResult> = child.then((r) => ({
    argv,
    purpose: spec.purpose,
    exitCode: r.exitCode ?? (r.signal ? 128 + (osSignals[r.signal] ?? 0) : 1),
    stdout: opts.keepStdout ? String(r.stdout ?? '') : '',
    stderr,
    durationMs: performance.now() - started,
    timedOut: Boolean(r.timedOut),
  }));
  const ready = await new Promise<RegExpExecArray | null>((resolve, reject) => {
    if (!opts.readyLine) return resolve(null);
    const limit = opts.readyTimeoutMs ?? 10_000;
    let out = '';
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new StartError(`${describeSpec(spec, argv)} was not ready within ${limit} ms${stderr ? `: ${stderr.trim()}` : ''}`));
    }, limit);
    child.stdout?.on('data', (d: Buffer) => {
      out += d.toString();
      const m = opts.readyLine!.exec(out);
      if (m) {
        clearTimeout(timer);
        resolve(m);
      }
    });
    void exited.then((r) => {
      clearTimeout(timer);
      reject(new StartError(`${describeSpec(spec, argv)} ${ended(r.exitCode)} before it was ready${r.stderr ? `: ${r.stderr.trim()}` : ''}`));
    });
  });
  if (child.pid === undefined) throw new StartError(`${describeSpec(spec, argv)} has no pid`);
  return {
    argv,
    pid: child.pid,
    ready,
    exited,
    async stop() {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGTERM');
      return exited;
    },
  };
}

const osSignals: Record<string, number> = { SIGHUP: 1, SIGINT: 2, SIGKILL: 9, SIGTERM: 15 };

async function startDetached(spec: CommandSpec, opts: StartOptions, logFile: string): Promise<RunningCommand> {
  const argv = fullArgv(spec);
  const [file, ...args] = argv as [string, ...string[]];
  const started = performance.now();
  const fd = openSync(logFile, 'w');
  let child;
  try {
    child = spawn(file, args, { detached: true, stdio: ['ignore', fd, fd], env: { ...process.env, CB_PROBE_DETACHED: '1' } });
  } finally {
    closeSync(fd);
  }
  child.unref();
  const pid = child.pid;
  if (pid === undefined) throw new StartError(`${describeSpec(spec, argv)} did not start`);
  const exited = new Promise<CommandResult>((resolve) =>
    child.once('exit', (code, sig) => resolve({ argv, purpose: spec.purpose, exitCode: code ?? 128 + (osSignals[sig ?? ''] ?? 0), stdout: '', stderr: readFileSync(logFile, 'utf8'), durationMs: performance.now() - started, timedOut: false })),
  );
  let gone: CommandResult | null = null;
  void exited.then((r) => (gone = r));
  const deadline = performance.now() + (opts.readyTimeoutMs ?? 10_000);
  let ready: RegExpExecArray | null = null;
  while (opts.readyLine) {
    ready = opts.readyLine.exec(readFileSync(logFile, 'utf8'));
    if (ready) break;
    if (gone) throw new StartError(`${describeSpec(spec, argv)} ${ended((gone as CommandResult).exitCode)} before it was ready: ${(gone as CommandResult).stderr.trim()}`);
    if (performance.now() > deadline) {
      process.kill(pid, 'SIGKILL');
      throw new StartError(`${describeSpec(spec, argv)} was not ready within ${opts.readyTimeoutMs ?? 10_000} ms`);
    }
    await new Promise((r) => setTimeout(r, 20));
  }
  return {
    argv,
    pid,
    ready,
    exited,
    async stop() {
      if (!gone) process.kill(pid, 'SIGTERM');
      return exited;
    },
  };
}
