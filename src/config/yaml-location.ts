// Where in a YAML file something is, as `file:line:col`: the one place scenario files and verification case
// files turn a parse error or a path into the data (`policies[0].spec`) into a location a person can open.
import { isMap, isScalar, type Document, type LineCounter, type Node as YamlNode, type YAMLError } from 'yaml';

/** `file:line:col`, or just `file` when there is no position. */
const atPosition = (file: string, pos: { line: number; col: number } | undefined): string => `${file}${pos ? `:${pos.line}:${pos.col}` : ''}`;

/**
 * The location of the node at `path` in `doc` (followed as far as it exists), or of the key `key` in the map
 * found there (for an unknown key, the key is what to point at).
 */
export function yamlLocation(file: string, doc: Document, lines: LineCounter, path: readonly PropertyKey[], key?: string): string {
  let node: unknown = doc.contents;
  for (const seg of path) {
    if (!node || typeof node !== 'object' || !('get' in node)) break;
    const next = (node as { get(k: unknown, keep: true): unknown }).get(seg, true);
    if (next === undefined) break;
    node = next;
  }
  let target = node as YamlNode | undefined;
  if (key !== undefined && isMap(node)) {
    const pair = node.items.find((it) => isScalar(it.key) && it.key.value === key);
    if (pair && isScalar(pair.key)) target = pair.key;
  }
  const offset = target?.range?.[0];
  return atPosition(file, offset === undefined ? undefined : lines.linePos(offset));
}

/** The location of a YAML syntax error. */
export const yamlErrorLocation = (file: string, e: YAMLError, lines: LineCounter): string => atPosition(file, e.linePos?.[0] ?? lines.linePos(e.pos[0]));
