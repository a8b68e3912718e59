// Run identity: every resource a run creates carries its short run id in its name (`cb-<run-id>-…`), so
// parallel runs never collide and `bench gc` finds what a killed run left behind. Used by every backend, the
// orchestrator and the CLI; it knows nothing of any of them.
import { createHash, randomBytes } from 'node:crypto';
import { BenchError } from '../errors.js';

/** Every local resource name starts with this prefix, then the run id: `bench gc` finds leftovers by it. */
export const NAME_PREFIX = 'cb-';
/** The run id alone: a letter and four lowercase letters/digits. */
export const RUN_ID_PATTERN = '[a-z][a-z0-9]{4}';
export const RUN_ID_RE = new RegExp(`^${RUN_ID_PATTERN}$`);
/** A run's own resource: `cb-<run-id>` (a kind cluster, a BPF pin directory). */
export const RUN_RESOURCE_RE = new RegExp(`^cb-(${RUN_ID_PATTERN})$`);
/** A resource belonging to a run: `cb-<run-id>-<part>` (a namespace, a Kubernetes namespace). */
export const NETNS_RE = new RegExp(`^cb-(${RUN_ID_PATTERN})-[a-z0-9-]+$`);

/** `cb-<run-id>`, or `cb-<run-id>-<part>`: the one naming rule for what a run creates. */
export function runResourceName(runId: string, part?: string): string {
  return part === undefined ? `${NAME_PREFIX}${runId}` : `${NAME_PREFIX}${runId}-${part}`;
}

let seededRunIds = 0;

/** Starts the CNI_BENCH_RUN_ID_SEED sequence again (tests that run several commands in one process, each as a fresh `bench`). */
export function restartRunIdSequence(): void {
  seededRunIds = 0;
}

/**
 * A fresh run id. CNI_BENCH_RUN_ID_SEED makes the sequence of ids reproducible (each call still gets a new
 * one): the plan snapshot tests set it so dry-run plans are byte-for-byte comparable.
 */
export function newRunId(): string {
  const alphabet = 'abcdefghijklmnopqrstuvwxyz0123456789';
  const seed = process.env.CNI_BENCH_RUN_ID_SEED;
  const bytes = seed ? createHash('sha256').update(`${seed}:${seededRunIds++}`).digest() : randomBytes(5);
  let id = alphabet[bytes[0]! % 26]!;
  for (let i = 1; i < 5; i++) id += alphabet[bytes[i]! % alphabet.length];
  return id;
}

export function assertRunId(runId: string): void {
  if (!RUN_ID_RE.test(runId)) throw new BenchError('internal', `invalid run id '${runId}': expected a letter and 4 lowercase letters/digits`);
}
