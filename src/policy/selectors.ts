// Kubernetes label selectors (metav1.LabelSelector): matchLabels AND matchExpressions.
import type { LabelSelector, LabelSelectorRequirement } from './types.js';

export type Labels = Readonly<Record<string, string>>;
export type LabelMatcher = (labels: Labels) => boolean;

/** One problem found by a validator; `path` names the field the way kubectl would (spec.podSelector.matchExpressions[0].values). */
export interface ValidationIssue {
  path: string;
  message: string;
}

/** Kubernetes labels every namespace with its own name (since 1.21); selectors may rely on it. */
export const NAMESPACE_NAME_LABEL = 'kubernetes.io/metadata.name';

export function effectiveNamespaceLabels(name: string, labels: Labels | undefined): Labels {
  return { ...labels, [NAMESPACE_NAME_LABEL]: name };
}

function has(labels: Labels, key: string): boolean {
  return Object.hasOwn(labels, key);
}

function requirementMatcher(req: LabelSelectorRequirement): LabelMatcher {
  const key = req.key;
  const values = new Set(req.values ?? []);
  switch (req.operator) {
    case 'In':
      return (l) => has(l, key) && values.has(l[key] as string);
    case 'NotIn':
      // Kubernetes semantics: a pod without the key is "not in" any value set.
      return (l) => !has(l, key) || !values.has(l[key] as string);
    case 'Exists':
      return (l) => has(l, key);
    case 'DoesNotExist':
      return (l) => !has(l, key);
    default:
      // An operator the API server would reject: select nothing rather than everything.
      return () => false;
  }
}

/** Compiles a selector once so that evaluating it against many label sets costs no re-parsing. */
export function compileSelector(sel: LabelSelector): LabelMatcher {
  const pairs = Object.entries(sel.matchLabels ?? {});
  const reqs = (sel.matchExpressions ?? []).map(requirementMatcher);
  if (pairs.length === 0 && reqs.length === 0) return () => true;
  return (labels) => {
    for (const [k, v] of pairs) {
      if (!has(labels, k) || labels[k] !== v) return false;
    }
    for (const r of reqs) {
      if (!r(labels)) return false;
    }
    return true;
  };
}

/** Full LabelSelector semantics; the empty selector `{}` matches every label set. */
export function matchesSelector(sel: LabelSelector, labels: Labels): boolean {
  return compileSelector(sel)(labels);
}

export function isEmptySelector(sel: LabelSelector): boolean {
  return Object.keys(sel.matchLabels ?? {}).length === 0 && (sel.matchExpressions ?? []).length === 0;
}

/**
 * A canonical text for a selector, for memoisation: matchLabels keys sorted, expressions kept in order (their
 * order does not change the meaning, but sorting them would cost more than the rare duplicate it saves).
 */
export function selectorKey(sel: LabelSelector): string {
  const ml = sel.matchLabels ?? {};
  const keys = Object.keys(ml).sort();
  let out = '{';
  for (const k of keys) out += `${JSON.stringify(k)}:${JSON.stringify(ml[k])},`;
  out += '}[';
  for (const e of sel.matchExpressions ?? []) {
    out += `${JSON.stringify([e.key, e.operator, e.values ?? []])},`;
  }
  return `${out}]`;
}

/** Memoises compiled selectors by their canonical text. */
export class SelectorCache {
  private readonly compiled = new Map<string, LabelMatcher>();

  matcher(sel: LabelSelector): LabelMatcher {
    const key = selectorKey(sel);
    let m = this.compiled.get(key);
    if (!m) {
      m = compileSelector(sel);
      this.compiled.set(key, m);
    }
    return m;
  }
}

const OPERATORS = new Set(['In', 'NotIn', 'Exists', 'DoesNotExist']);

/** Reports the selectors the API server would reject; every problem, not only the first. */
export function validateSelector(sel: LabelSelector, path: string): ValidationIssue[] {
  const issues: ValidationIssue[] = [];
  for (const [k, v] of Object.entries(sel.matchLabels ?? {})) {
    if (k === '') issues.push({ path: `${path}.matchLabels`, message: 'label key must not be empty' });
    if (typeof v !== 'string') {
      issues.push({ path: `${path}.matchLabels[${JSON.stringify(k)}]`, message: 'label value must be a string' });
    }
  }
  (sel.matchExpressions ?? []).forEach((req, i) => {
    const p = `${path}.matchExpressions[${i}]`;
    if (!req.key) issues.push({ path: `${p}.key`, message: 'key must not be empty' });
    if (!OPERATORS.has(req.operator)) {
      issues.push({ path: `${p}.operator`, message: `unknown operator ${JSON.stringify(req.operator)}; use In, NotIn, Exists or DoesNotExist` });
      return;
    }
    const n = req.values?.length ?? 0;
    if ((req.operator === 'In' || req.operator === 'NotIn') && n === 0) {
      issues.push({ path: `${p}.values`, message: `must be non-empty when operator is ${req.operator}` });
    }
    if ((req.operator === 'Exists' || req.operator === 'DoesNotExist') && n > 0) {
      issues.push({ path: `${p}.values`, message: `must be empty when operator is ${req.operator}` });
    }
  });
  return issues;
}
