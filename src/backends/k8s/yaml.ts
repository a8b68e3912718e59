// The one place manifests become text. Plans and --dry-run show YAML; kubectl gets JSON on stdin (a List for a
// batch), which is faster to produce for thousands of policies and is what kubectl parses anyway.
import { stringify } from 'yaml';

export type Manifest = { apiVersion: string; kind: string; metadata?: { name?: string; namespace?: string; labels?: Record<string, string> }; [k: string]: unknown };

export function toYaml(docs: readonly object[]): string {
  return docs.map((d) => stringify(d, { lineWidth: 0, aliasDuplicateObjects: false })).join('---\n');
}

/** A batch of objects as one v1 List, for `kubectl apply -f -`. */
export function toListJson(items: readonly object[]): string {
  return JSON.stringify({ apiVersion: 'v1', kind: 'List', items });
}
