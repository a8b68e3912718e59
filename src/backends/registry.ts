// How `--backend auto` chooses, and whether a backend runs a CNI: read from the backend descriptors (factory.ts),
// where each backend declares the CNIs it runs as data, so the rest of the code never branches on a CNI or
// backend name to decide what is possible.
import type { BackendChoice, BackendName, CniName } from '../config/schema.js';
import type { Problem } from '../errors.js';
import { BenchError } from '../errors.js';
import { BACKEND_DESCRIPTORS } from './factory.js';

export type { CniCapabilities } from './factory.js';

export interface Environment {
  dockerEngine: boolean;
  kind: boolean;
}

export interface BackendSelection {
  backend: BackendName;
  /** Printed as the first line of output when auto chose. */
  note?: string;
}

/** `cni`: the CNI of a run, or every CNI of a sweep: auto picks kind only when kind runs all of them. */
export function selectBackend(choice: BackendChoice, env: Environment, cni?: CniName | readonly CniName[]): BackendSelection {
  if (choice !== 'auto') return { backend: choice };
  const localOnly = (cni === undefined ? [] : typeof cni === 'string' ? [cni] : cni).filter((c) => BACKEND_DESCRIPTORS.kind.cnis[c] === undefined);
  const kindRuns = localOnly.length === 0;
  if (env.dockerEngine && env.kind && kindRuns) {
    return { backend: 'kind', note: 'backend: kind (auto: a Docker engine and kind were found)' };
  }
  const missing = [!env.dockerEngine && 'no Docker engine', !env.kind && 'no kind binary', env.dockerEngine && env.kind && !kindRuns && `${localOnly.join(', ')} ${localOnly.length > 1 ? 'run' : 'runs'} only on the local backend`].filter(Boolean).join(', ');
  return {
    backend: 'local',
    note: `backend: local (auto: ${missing || 'the kind backend is not available yet'}; CNI data planes are modelled on this machine's kernel)`,
  };
}

/**
 * A sweep point's backend: chosen once by selectBackend when the sweep was planned and recorded in its manifest, so
 * never `auto` here (the one auto rule is selectBackend's).
 */
export function resolvedBackend(choice: BackendChoice): BackendName {
  if (choice === 'auto') throw new BenchError('internal', 'a sweep point reached the backend factory with backend auto; the sweep should have resolved it with selectBackend');
  return choice;
}

export function checkBackendCni(backend: BackendName, cni: CniName): Problem | undefined {
  const d = BACKEND_DESCRIPTORS[backend];
  if (d.cnis[cni]) return undefined;
  const runnable = Object.keys(d.cnis);
  return {
    where: '--cni',
    message: `${cni} is ${d.unavailableReason(cni)} (${backend} backend${runnable.length ? `; it runs: ${runnable.join(', ')}` : ''})`,
  };
}
