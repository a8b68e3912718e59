// Where a command's results go, in the spirit of k6's outputs: each output is started before the work (it may
// print a header, or refuse), is handed the result's pieces as they come (a verify case, a sweep point) and the
// whole result at the end, when it writes it: the terminal summary, one JSON document on stdout, a file (markdown,
// perfdash, JUnit). A command lists its outputs once; the manager starts them in order, and if one fails to start
// it stops the ones already started, so nothing is left half-written. Which of the terminal and JSON a result
// reaches is decided here (`summaryOutput`), not in each command.
import { writeFileAtomic } from '../results/io.js';

export interface Output<R, P = never> {
  /** What and where, for messages: "JSON on stdout", "JUnit report.xml". */
  readonly description: string;
  /** Before any work. Throws to refuse (nothing of the work has started then). */
  start?(): void | Promise<void>;
  /** A piece of the result as soon as it exists (streamed outputs print it). */
  add?(piece: P): void;
  /** The whole result: write it. */
  stop(result: R): void | Promise<void>;
  /** The work ended without a result (an error, a refusal): close without writing one. */
  abort?(): void | Promise<void>;
}

/** A stream an output writes to (stdout in the CLI, a buffer in tests). */
export interface TextStream {
  write(s: string): unknown;
}

export class Outputs<R, P = never> {
  private readonly started: Array<Output<R, P>> = [];

  constructor(private readonly outputs: ReadonlyArray<Output<R, P>>) {}

  /** Starts every output in order; if one refuses, the ones already started are aborted and the refusal thrown. */
  async start(): Promise<void> {
    for (const o of this.outputs) {
      try {
        await o.start?.();
      } catch (e) {
        await this.abort();
        throw e;
      }
      this.started.push(o);
    }
  }

  add(piece: P): void {
    for (const o of this.started) o.add?.(piece);
  }

  /** Hands the result to every started output; one that fails does not keep the others from writing (the first error is thrown after). */
  async stop(result: R): Promise<void> {
    let failure: { error: unknown } | undefined;
    for (const o of this.started.splice(0)) {
      try {
        await o.stop(result);
      } catch (e) {
        failure ??= { error: e };
      }
    }
    if (failure) throw failure.error;
  }

  async abort(): Promise<void> {
    for (const o of this.started.splice(0).reverse()) await Promise.resolve(o.abort?.()).catch(() => undefined);
  }
}

/** JSON as results are written everywhere: non-finite numbers become null (JSON has no NaN). */
export const jsonText = (value: unknown, indent = 2): string => `${JSON.stringify(value, (_k, v: unknown) => (typeof v === 'number' && !Number.isFinite(v) ? null : v), indent)}\n`;

/** The human summary on a stream: an optional header at start, each piece as it comes, the summary at the end. */
export function terminalOutput<R, P = never>(out: TextStream, o: { summary: (r: R) => string; header?: () => string; piece?: (p: P) => string }): Output<R, P> {
  return {
    description: 'the terminal summary',
    start: o.header ? () => void out.write(o.header!()) : undefined,
    add: o.piece ? (p) => void out.write(o.piece!(p)) : undefined,
    stop: (r) => void out.write(o.summary(r)),
  };
}

/** One JSON document on a stream (stdout: then nothing else is written there). */
export function jsonOutput<R>(out: TextStream, document: (r: R) => unknown): Output<R> {
  return { description: 'JSON on stdout', stop: (r) => void out.write(jsonText(document(r))) };
}

/** A file written atomically once the result is complete. */
export function fileOutput<R>(path: string, what: string, render: (r: R) => string): Output<R> {
  return { description: `${what} ${path}`, stop: (r) => writeFileAtomic(path, render(r)) };
}

/**
 * The one place `--json` is decided: the result as a JSON document on stdout, or the human summary (header and
 * streamed pieces included) on the terminal.
 */
export function summaryOutput<R, P = never>(json: boolean, out: TextStream, o: { summary: (r: R) => string; document: (r: R) => unknown; header?: () => string; piece?: (p: P) => string }): Output<R, P> {
  return json ? (jsonOutput(out, o.document) as Output<R, P>) : terminalOutput(out, o);
}
