// Finding and reading result files for report and compare. A bad file (missing, truncated, foreign, newer
// schema) is named with its reason and skipped; the others are still used.
import { existsSync, readFileSync, readdirSync, statSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { readResult } from '../results/io.js';
import { InputError } from '../errors.js';
import type { RunResult } from '../results/schema.js';
import { MANIFEST_FILE, readManifest, type SweepManifest } from '../sweep/manifest.js';
import { ENFORCE_RESULT_FILE, checkBeside, enforceAsRun } from '../enforce/read.js';
import { VERIFY_FILE_RE, readWorkloadVerify, type WorkloadVerifyRecord } from '../results/workload-verify.js';
import { ENFORCE_WORKLOAD_FILE, readEnforceWorkloadResult, type EnforceWorkloadResult } from '../enforce/workload-result.js';

export interface LoadedResult {
  path: string;
  result: RunResult;
}

export interface InputProblem {
  file: string;
  message: string;
}

export interface Collected {
  results: LoadedResult[];
  manifests: Array<{ dir: string; manifest: SweepManifest }>;
  /** A workload sweep's verify records (verify-<cni>.json beside sweep.json). */
  verifies: Array<{ path: string; record: WorkloadVerifyRecord }>;
  /** `bench enforce --workload` results (enforce-workload-result.json): a table of their own (./enforce-workload.ts). */
  enforceWorkloads: Array<{ path: string; result: EnforceWorkloadResult }>;
  problems: InputProblem[];
}

const MAX_DEPTH = 4;

function walk(dir: string, depth: number, out: string[], manifests: string[], verifies: string[], enforceWorkloads: string[] = []): void {
  let entries;
  try {
    entries = readdirSync(dir, { withFileTypes: true });
  } catch {
    return;
  }
  for (const e of entries.sort((a, b) => a.name.localeCompare(b.name))) {
    const p = join(dir, e.name);
    if (e.isDirectory() && depth < MAX_DEPTH && !e.name.startsWith('.') && e.name !== 'node_modules') walk(p, depth + 1, out, manifests, verifies, enforceWorkloads);
    else if (e.isFile() && (e.name === 'result.json' || e.name === ENFORCE_RESULT_FILE)) out.push(p);
    else if (e.isFile() && e.name === MANIFEST_FILE) manifests.push(dir);
    else if (e.isFile() && VERIFY_FILE_RE.test(e.name)) verifies.push(p);
    else if (e.isFile() && e.name === ENFORCE_WORKLOAD_FILE) enforceWorkloads.push(p);
  }
}

/** Reads result files from directories (searched for result.json, and sweep.json manifests) and named files. */
/** Why an input file was skipped: the reason an input error gives for it (without the file name), else the message. */
const whyUnusable = (e: unknown) => (e instanceof InputError ? e.problems.map((p) => p.message).join('; ') : (e as Error).message);

export function collectResults(inputs: string[]): Collected {
  const out: Collected = { results: [], manifests: [], verifies: [], enforceWorkloads: [], problems: [] };
  for (const input of inputs) {
    const abs = resolve(input);
    if (!existsSync(abs)) {
      out.problems.push({ file: input, message: 'no such file or directory' });
      continue;
    }
    const files: string[] = [];
    const manifestDirs: string[] = [];
    const verifyFiles: string[] = [];
    const workloadEnforceFiles: string[] = [];
    if (statSync(abs).isDirectory()) {
      walk(abs, 0, files, manifestDirs, verifyFiles, workloadEnforceFiles);
      if (files.length === 0 && manifestDirs.length === 0 && workloadEnforceFiles.length === 0) out.problems.push({ file: input, message: `no result.json, ${ENFORCE_RESULT_FILE} or ${ENFORCE_WORKLOAD_FILE} files in this directory` });
    } else if (abs.endsWith(ENFORCE_WORKLOAD_FILE)) workloadEnforceFiles.push(abs);
    else files.push(abs);
    for (const f of workloadEnforceFiles) {
      try {
        out.enforceWorkloads.push({ path: f, result: readEnforceWorkloadResult(f, readFileSync(f, 'utf8')) });
      } catch (e) {
        out.problems.push({ file: f, message: whyUnusable(e) });
      }
    }
    for (const dir of manifestDirs) {
      try {
        out.manifests.push({ dir, manifest: readManifest(dir) });
      } catch (e) {
        out.problems.push({ file: join(dir, MANIFEST_FILE), message: whyUnusable(e) });
      }
    }
    for (const f of verifyFiles) {
      try {
        out.verifies.push({ path: f, record: readWorkloadVerify(f) });
      } catch (e) {
        out.problems.push({ file: f, message: whyUnusable(e) });
      }
    }
    const have = new Set(files);
    for (const f of files) {
      const beside = join(dirname(f), ENFORCE_RESULT_FILE);
      // A sweep's enforce point: its result.json is the run, checked against the observations beside it.
      if (f === beside && have.has(join(dirname(f), 'result.json'))) continue;
      try {
        if (f === beside) out.results.push({ path: f, result: enforceAsRun(f) });
        else {
          const result = readResult(f);
          if (have.has(beside)) checkBeside(result, beside);
          out.results.push({ path: f, result });
        }
      } catch (e) {
        // The file the problem is in (a sweep point's enforce-result.json, say), else the one being read.
        if (e instanceof InputError) out.problems.push(...e.problems.map((p) => ({ file: p.where, message: p.message })));
        else out.problems.push({ file: f, message: whyUnusable(e) });
      }
    }
  }
  return out;
}
