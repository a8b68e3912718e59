// One error type for the kind/cluster backends: which step of bringing a cluster up or measuring on it failed,
// and where the diagnostics went, so a person knows what to look at first.
import { BenchError } from '../../errors.js';
import { CommandError } from '../../exec/runner.js';

/** Names of the steps, in the order a run goes through them (the plan and errors use the same words). */
export type K8sStep =
  | 'check-context'
  | 'detect-cni'
  | 'fetch-cni-plugins'
  | 'create-cluster'
  | 'install-cni'
  | 'wait-nodes-ready'
  | 'wait-cni-ready'
  | 'wait-dns-ready'
  | 'create-workloads'
  | 'wait-workloads-ready'
  | 'install-probe'
  | 'create-peers'
  | 'apply-policies'
  | 'wait-enforcement'
  | 'change-policy'
  | 'apply-services'
  | 'wait-services'
  | 'measure'
  | 'teardown';

export class K8sStepError extends BenchError {
  declare readonly kind: 'k8s-step' | 'usage';
  constructor(
    readonly step: K8sStep,
    override readonly cause: unknown,
    readonly diagnosticsDir?: string,
  ) {
    const why = cause instanceof Error ? cause.message : String(cause);
    // A refusal the user fixes (a --cni the cluster contradicts, RBAC missing) stays one: the CLI exits 2 on it.
    super(cause instanceof BenchError && cause.kind === 'usage' ? 'usage' : 'k8s-step', `step ${step} failed: ${why}${diagnosticsDir ? `\n  diagnostics: ${diagnosticsDir}` : ''}`);
  }

  /** The failed command's stderr, when the cause was a command. */
  get stderr(): string | undefined {
    return this.cause instanceof CommandError ? this.cause.result.stderr : undefined;
  }
}

/** Runs `fn` and tags whatever it throws with `step` (an error already tagged keeps its own step). */
export async function step<T>(name: K8sStep, fn: () => Promise<T>): Promise<T> {
  try {
    return await fn();
  } catch (e) {
    if (e instanceof K8sStepError) throw e;
    throw new K8sStepError(name, e);
  }
}

/**
 * Runs steps like `step`, and on the first failure worth it collects diagnostics once (`collect` returns their
 * directory, or undefined when there is nothing to collect yet); the rethrown error names that directory. The one
 * guard of the kind and cluster backends and the verify grid.
 */
export class StepGuard {
  private dir?: string;

  constructor(private readonly collect: (failed: K8sStepError) => Promise<string | undefined>) {}

  get diagnosticsDir(): string | undefined {
    return this.dir;
  }

  async run<T>(name: K8sStep, fn: () => Promise<T>): Promise<T> {
    try {
      return await step(name, fn);
    } catch (e) {
      const err = e as K8sStepError;
      if (!this.dir && !err.diagnosticsDir) this.dir = await this.collect(err);
      throw new K8sStepError(err.step, err.cause, err.diagnosticsDir ?? this.dir);
    }
  }
}
