// kubectl and helm invocations as CommandSpecs (plain data). Every call names its kubeconfig and/or context
// explicitly, so nothing ever reads or writes the user's current context or ~/.kube/config by accident.
import type { CommandSpec } from '../../exec/runner.js';

export interface KubeTarget {
  /** Kubeconfig file; for kind, the run's own file inside its results directory. */
  kubeconfig?: string;
  /** Context inside that kubeconfig (or the default kubeconfig); the cluster backend requires one of the two. */
  context?: string;
}

export function targetFlags(t: KubeTarget): string[] {
  return [...(t.kubeconfig ? ['--kubeconfig', t.kubeconfig] : []), ...(t.context ? ['--context', t.context] : [])];
}

export interface KubectlOptions {
  input?: string;
  /** Wall-clock limit for the command; defaults to 60 s (kubectl's own --timeout, when set, must be below it). */
  timeoutMs?: number;
  allowFailure?: boolean;
}

export function kubectl(t: KubeTarget, args: string[], purpose: string, o: KubectlOptions = {}): CommandSpec {
  return { argv: ['kubectl', ...targetFlags(t), ...args], purpose, input: o.input, timeoutMs: o.timeoutMs, allowFailure: o.allowFailure };
}

export function helm(t: KubeTarget, args: string[], purpose: string, o: KubectlOptions = {}): CommandSpec {
  const flags = [...(t.kubeconfig ? ['--kubeconfig', t.kubeconfig] : []), ...(t.context ? ['--kube-context', t.context] : [])];
  return { argv: ['helm', ...args, ...flags], purpose, input: o.input, timeoutMs: o.timeoutMs, allowFailure: o.allowFailure };
}

/** `kubectl wait`/`rollout status` with kubectl's timeout and a runner timeout a little above it. */
export function waitSpec(t: KubeTarget, args: string[], timeoutS: number, purpose: string): CommandSpec {
  return kubectl(t, [...args, `--timeout=${timeoutS}s`], purpose, { timeoutMs: (timeoutS + 15) * 1000 });
}
