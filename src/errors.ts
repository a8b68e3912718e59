// One error vocabulary for the whole tool. Every error `bench` raises on purpose is a BenchError with a
// `kind` that says what went wrong in terms a caller can act on; result files, the CLI's exit codes and the
// report's advice read the kind, never a class name. Anything else that reaches a top level is `internal`.

/**
 * - `usage`: bad input (a flag, a scenario or case file, a result file given as input); the user fixes it.
 * - `capacity`: the data plane cannot hold what was asked (a full policy map, a program chain too long).
 * - `command`: an external command failed (ip, iptables, nft, kind, helm, kubectl …).
 * - `k8s-step`: a step against a Kubernetes cluster failed or timed out.
 * - `probe`: the measurement probe failed or printed what could not be read.
 * - `manifest`: a generated or upstream manifest failed schema validation.
 * - `interrupted`: the run was stopped by a signal (Ctrl-C, kill, SIGHUP).
 * - `internal`: anything else: a bug in `bench`.
 */
export const ERROR_KINDS = ['usage', 'capacity', 'command', 'k8s-step', 'probe', 'manifest', 'interrupted', 'internal'] as const;
export type ErrorKind = (typeof ERROR_KINDS)[number];

export class BenchError extends Error {
  constructor(
    readonly kind: ErrorKind,
    message: string,
    options?: ErrorOptions,
  ) {
    super(message, options);
    this.name = new.target.name;
  }
}

/** The run was stopped by a signal. The one spelling of "interrupted". */
export class InterruptedError extends BenchError {
  constructor(message = 'interrupted', options?: ErrorOptions) {
    super('interrupted', message, options);
  }
}

/** One thing wrong with the input, and where: a flag (`--policies`), or `file:line:col` of a scenario, case or result file. */
export interface Problem {
  where: string;
  message: string;
  /** A required setting that is absent: not worth saying when the scenario file that may set it did not load. */
  missing?: true;
}

/**
 * Bad input: flags, a scenario or case file, a result or sweep file given as input. Carries every problem found
 * (validation reports them all at once); the message is one `where: message` line per problem.
 */
export class InputError extends BenchError {
  constructor(
    readonly problems: Problem[],
    options?: ErrorOptions,
  ) {
    super('usage', problems.map((p) => `${p.where}: ${p.message}`).join('\n'), options);
  }
}

/** The kind of any thrown value: a BenchError's own, an abort as `interrupted`, anything else `internal`. */
export function errorKind(e: unknown): ErrorKind {
  if (e instanceof BenchError) return e.kind;
  if (e instanceof Error && e.name === 'AbortError') return 'interrupted';
  return 'internal';
}
