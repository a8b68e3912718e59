// `--workload FILE`: either form, told apart by its content. A kubectl List (JSON, or YAML with a top-level
// `kind`/`apiVersion`) is a cluster snapshot; any other YAML mapping is a cluster shape to generate.
import { readFileSync } from 'node:fs';
import { InputError } from '../errors.js';
import type { ClusterWorkload } from './cluster.js';
import { generateWorkload } from './generate-shape.js';
import { parseShape } from './shape.js';
import { decodeWorkloadText, parseSnapshot, type SnapshotOptions } from './snapshot.js';

export interface LoadOptions extends SnapshotOptions {
  /** A generated shape's scale, instead of the file's. */
  scale?: number;
}

/** Which form a workload file's text is in, without parsing all of it. */
export function workloadFormOf(text: string): 'snapshot' | 'shape' {
  // An empty file is most often a `kubectl get … > file` that failed: the snapshot importer says what it expected.
  if (!/\S/.test(text.replace(/^\uFEFF/, ''))) return 'snapshot';
  return /^\uFEFF?\s*[[{]/.test(text) || /^(kind|apiVersion|items):/m.test(text) ? 'snapshot' : 'shape';
}

export function parseWorkload(file: string, text: string, opts: LoadOptions = {}): ClusterWorkload {
  if (workloadFormOf(text) === 'snapshot') {
    const { workload, problems } = parseSnapshot(file, text, opts);
    if (!workload) throw new InputError(problems);
    return workload;
  }
  const { shape, problems } = parseShape(file, text);
  if (!shape) throw new InputError(problems);
  return generateWorkload(shape, { scale: opts.scale, file });
}

/** Reads a workload file of either form; every problem at once as an InputError (exit 2). */
export function loadWorkload(file: string, opts: LoadOptions = {}): ClusterWorkload {
  let text: string;
  try {
    text = decodeWorkloadText(readFileSync(file));
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    throw new InputError([{ where: file, message: code === 'ENOENT' ? 'workload file not found' : code === 'EISDIR' ? 'is a directory; give a workload file' : `cannot read the workload file (${code})` }]);
  }
  return parseWorkload(file, text, opts);
}
