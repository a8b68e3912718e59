// The one command runner. Planners return CommandSpecs (plain data); only a Runner executes them.
// Every backend goes through here so that --dry-run, timeouts, cancellation and the command log behave
// the same everywhere, and so tests can inject a fake runner and check the exact argv.
import { execa } from 'execa';
import { constants } from 'node:os';
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

/**
 * A long-lived process started by a runner (a watch behind `kubectl exec -i`, a server): its stdout as it comes,
 * its stdin open for control lines, and its end. Its caller bounds it (stop, kill): a started process is not
 * cancelled by the runner's signal, so the caller can first ask it to stop (a `stop` line on stdin reaches a probe
 * in a pod; a signal to kubectl would not). It is killed when this process exits.
 */
export interface RunningProcess {
  readonly pid?: number;
  onStdout(fn: (chunk: string) => void): void;
  write(text: string): void;
  /** Closes stdin. */
  end(): void;
  kill(signal?: NodeJS.Signals): void;
  /** Settles when it ends (an exit code, or the signal that ended it; 127 when it could not be started), with its stderr. */
  readonly exited: Promise<{ exitCode: number | null; signal: string | null; stderr: string }>;
}

export interface StartOptions {
  /** `pipe` (default): stdin stays open for write()/end(); `ignore`: no stdin. */
  stdin?: 'pipe' | 'ignore';
}

export interface Runner {
  readonly dryRun: boolean;
  /** Every command run (or, in dry-run, planned) so far, in order; a started process is logged when it ends. */
  readonly log: CommandResult[];
  run(spec: CommandSpec): Promise<CommandResult>;
  /** Starts a long-lived process without waiting for it (in a dry run: records it, and it ends at once). */
  start(spec: CommandSpec, o?: StartOptions): RunningProcess;
}

/** A process that ended before it began: what a dry run or a fake starts. */
function endedProcess(result: Promise<{ exitCode: number | null; signal: string | null; stderr: string }>): RunningProcess {
  return { onStdout: () => undefined, write: () => undefined, end: () => undefined, kill: () => undefined, exited: result };
}

abstract class RecordingRunner implements Runner {
  abstract readonly dryRun: boolean;
  readonly log: CommandResult[] = [];
  protected abstract execute(argv: string[], spec: CommandSpec): Promise<CommandResult>;

  start(spec: CommandSpec, o: StartOptions = {}): RunningProcess {
    const argv = fullArgv(spec);
    const started = performance.now();
    const p = this.launch(argv, spec, o);
    void p.exited.then((r) => this.log.push({ argv, exitCode: r.exitCode ?? -1, stdout: '', stderr: r.stderr, durationMs: performance.now() - started, timedOut: false, input: spec.input, purpose: spec.purpose }));
    return p;
  }

  /** Dry runs and fakes start nothing: the process ends at once, successfully. */
  protected launch(_argv: string[], _spec: CommandSpec, _o: StartOptions): RunningProcess {
    return endedProcess(Promise.resolve({ exitCode: 0, signal: null, stderr: '' }));
  }

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

  protected override launch(argv: string[], _spec: CommandSpec, o: StartOptions): RunningProcess {
    const [file, ...args] = argv as [string, ...string[]];
    // No cancelSignal: the caller stops it (see RunningProcess); cleanup kills it when this process exits.
    const child = execa(file, args, { stdin: o.stdin ?? 'pipe', buffer: false, reject: false, cleanup: true });
    let stderr = '';
    child.stderr?.on('data', (d: Buffer) => {
      if (stderr.length < 16_384) stderr += d.toString();
    });
    child.stdin?.on('error', () => undefined); // EPIPE once it has gone: its exit says why
    const exited = child.then((r) => ({ exitCode: r.exitCode ?? (r.code === 'ENOENT' ? 127 : null), signal: r.signal ?? null, stderr: r.failed && r.exitCode === undefined && !r.signal ? `${stderr}${r.message}` : stderr }));
    return {
      pid: child.pid,
      onStdout: (fn) => void child.stdout?.on('data', (d: Buffer) => fn(d.toString())),
      write: (text) => void (child.stdin?.writable && child.stdin.write(text)),
      end: () => void child.stdin?.end(),
      kill: (signal = 'SIGKILL') => void child.kill(signal),
      exited,
    };
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
      exitCode: r.exitCode ?? (r.signal ? 128 + (constants.signals[r.signal] ?? 0) : r.failed ? (r.code === 'ENOENT' ? 127 : 1) : 0),
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
