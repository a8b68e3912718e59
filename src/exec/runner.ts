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
