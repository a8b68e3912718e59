// Reading and writing result files: atomic writes (temp file + rename), and reads that name the file and say
// what is wrong with it (missing, truncated, not ours, a newer schema).
import { mkdirSync, readFileSync, renameSync, writeFileSync, existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { RESULT_KIND, RESULT_SCHEMA_VERSION, runResultSchema, type RunResult } from './schema.js';

export class ResultFileError extends Error {
  constructor(
    readonly file: string,
    reason: string,
  ) {
    super(`${file}: ${reason}`);
    this.name = 'ResultFileError';
  }
}

/** Writes via a temp file in the same directory and renames it: readers never see half a file. */
export function writeFileAtomic(path: string, content: string): void {
  mkdirSync(dirname(path), { recursive: true });
  const tmp = `${path}.tmp-${process.pid}`;
  writeFileSync(tmp, content);
  renameSync(tmp, path);
}

/** JSON cannot hold NaN/Infinity; write them as null rather than corrupting the file. */
function finiteOrNull(_key: string, value: unknown): unknown {
  return typeof value === 'number' && !Number.isFinite(value) ? null : value;
}

export function writeResult(dir: string, result: RunResult): string {
  const path = join(dir, 'result.json');
  writeFileAtomic(path, `${JSON.stringify(result, finiteOrNull)}\n`);
  return path;
}

export function readResult(file: string): RunResult {
  if (!existsSync(file)) throw new ResultFileError(file, 'no such file');
  let data: unknown;
  const text = readFileSync(file, 'utf8');
  try {
    data = JSON.parse(text);
  } catch (e) {
    throw new ResultFileError(file, `not valid JSON (truncated or corrupted?): ${(e as Error).message}`);
  }
  const obj = data as Record<string, unknown> | null;
  if (!obj || typeof obj !== 'object' || obj.kind !== RESULT_KIND) {
    throw new ResultFileError(file, `not a cni-bench result file (expected "kind": "${RESULT_KIND}")`);
  }
  if (typeof obj.schemaVersion === 'number' && obj.schemaVersion > RESULT_SCHEMA_VERSION) {
    throw new ResultFileError(file, `schema version ${obj.schemaVersion} is newer than this tool reads (${RESULT_SCHEMA_VERSION}); upgrade cni-bench`);
  }
  const parsed = runResultSchema.safeParse(data);
  if (!parsed.success) {
    const first = parsed.error.issues.slice(0, 3).map((i) => `${i.path.join('.') || '(root)'}: ${i.message}`);
    throw new ResultFileError(file, `does not match the result schema: ${first.join('; ')}`);
  }
  return parsed.data;
}
