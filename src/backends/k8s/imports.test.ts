// No import circles among the cluster backends' modules (COMMON: no import circles): manifests are rendered from
// plain inputs and never import the CNI profiles that use them. Type-only imports count too: they still tie two
// modules' meanings together.
import { readdirSync, readFileSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';

const backends = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const DIRS = ['k8s', 'kind', 'cluster'].map((d) => join(backends, d));

function sources(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) => {
    const p = join(dir, e.name);
    if (e.isDirectory()) return e.name === 'test-support' || e.name === '__snapshots__' || e.name === 'fixtures' ? [] : sources(p);
    return p.endsWith('.ts') && !p.endsWith('.test.ts') ? [p] : [];
  });
}

/** Relative imports and re-exports of a module, as absolute .ts paths. */
function importsOf(file: string, text = readFileSync(file, 'utf8')): string[] {
  return [...text.matchAll(/^\s*(?:import|export)\s[^;]*?from\s+'(\.{1,2}\/[^']+)'/gms)].map((m) => resolve(dirname(file), m[1]!.replace(/\.js$/, '.ts')));
}

/** Every cycle (as a path of files) in the graph, each found once from its first file in DFS order. */
function cycles(graph: Map<string, string[]>): string[][] {
  const out: string[][] = [];
  const done = new Set<string>();
  const stack: string[] = [];
  const visit = (n: string) => {
    stack.push(n);
    for (const m of graph.get(n) ?? []) {
      const at = stack.indexOf(m);
      if (at >= 0) out.push([...stack.slice(at), m]);
      else if (!done.has(m) && graph.has(m)) visit(m);
    }
    stack.pop();
    done.add(n);
  };
  for (const n of graph.keys()) if (!done.has(n)) visit(n);
  return out;
}

describe('module structure of the kind and cluster backends', () => {
  it('finds a circle when there is one (the check can fail)', () => {
    expect(cycles(new Map([['a', ['b']], ['b', ['a']]]))).toEqual([['a', 'b', 'a']]);
    expect(importsOf('/x/a.ts', "import type { X } from './b.js';\nexport { y } from '../c.js';")).toEqual(['/x/b.ts', '/c.ts']);
  });

  it('has no import circle (cni.ts ⇄ manifests.ts was one)', () => {
    const files = DIRS.flatMap(sources);
    const graph = new Map(files.map((f) => [f, importsOf(f).filter((d) => files.includes(d))]));
    expect(cycles(graph).map((c) => c.map((f) => relative(backends, f)).join(' → '))).toEqual([]);
  });
});
