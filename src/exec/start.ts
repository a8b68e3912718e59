// Probe processes that run beside the measurement (an echo server, a watch): argv and namespace from the same
// CommandSpec as every command, the same error record, killed when Node exits, and a start that resolves once the
// process says it is ready (a line on stdout), so callers never race its start-up; --keep's detached server too.
// Runner.start (runner.ts) is the plain stream for processes driven over stdin (kubectl exec -i … watch).
import { closeSync, openSync, readFileSync } from 'node:fs';
import { spawn } from 'node:child_process';
import { constants } from 'node:os';
import { execa } from 'execa';
import { BenchError } from '../errors.js';
import { fullArgv, shellQuote, type CommandResult, type CommandSpec } from './runner.js';

export interface StartCommandOptions {
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

export async function startCommand(spec: CommandSpec, opts: StartCommandOptions = {}): Promise<RunningCommand> {
  return opts.detachedLog ? startDetached(spec, opts, opts.detachedLog) : startChild(spec, opts);
}

async function startChild(spec: CommandSpec, opts: StartCommandOptions): Promise<RunningCommand> {
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
    exitCode: r.exitCode ?? (r.signal ? 128 + (constants.signals[r.signal] ?? 0) : 1),
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

async function startDetached(spec: CommandSpec, opts: StartCommandOptions, logFile: string): Promise<RunningCommand> {
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
    child.once('exit', (code, sig) => resolve({ argv, purpose: spec.purpose, exitCode: code ?? 128 + ((sig ? constants.signals[sig] : 0) ?? 0), stdout: '', stderr: readFileSync(logFile, 'utf8'), durationMs: performance.now() - started, timedOut: false })),
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
