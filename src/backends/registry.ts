// Which backends exist, which CNIs each can run, and how `--backend auto` chooses. Capabilities are declared
// here as data so the rest of the code never branches on a CNI or backend name to decide what is possible.
import type { BackendChoice, BackendName, CniName } from '../config/schema.js';
import type { Problem } from '../errors.js';
import { BenchError } from '../errors.js';
import { localModel, localModelNames } from './local/models.js';
import { CNI_PROFILES } from './k8s/cni.js';

export interface CniCapabilities {
  /** Does this data plane enforce NetworkPolicy at all? */
  enforcesPolicy: boolean;
  /** One line naming what really runs, for results and reports. */
  description: string;
}

export interface BackendInfo {
  name: BackendName;
  /** CNIs this backend can run today; others fail validation with a clear message. */
  cnis: Partial<Record<CniName, CniCapabilities>>;
  /** Why a CNI is missing, when it is. */
  unavailableReason?: string;
}

/** Capabilities of the local backend's models, read from the models themselves. */
export function localCapabilities(): Partial<Record<CniName, CniCapabilities>> {
  return Object.fromEntries(
    localModelNames().map((cni) => {
      const m = localModel(cni);
      return [cni, { enforcesPolicy: m.enforcesPolicy, description: m.description }];
    }),
  );
}

/** The real CNIs the kind and cluster backends install or detect. */
function realCnis(): Partial<Record<CniName, CniCapabilities>> {
  return Object.fromEntries(Object.values(CNI_PROFILES).map((p) => [p.cni, { enforcesPolicy: p.enforcesPolicy, description: p.description }]));
}

export const BACKEND_INFO: Record<BackendName, BackendInfo> = {
  local: { name: 'local', cnis: localCapabilities(), unavailableReason: 'not available yet on this backend' },
  kind: { name: 'kind', cnis: realCnis(), unavailableReason: "not available on kind (a kind cluster without a CNI has no pod network; use --backend local for the no-CNI floor)" },
  cluster: { name: 'cluster', cnis: realCnis(), unavailableReason: 'not something an existing cluster can be detected to run' },
};

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
  const localOnly = (cni === undefined ? [] : typeof cni === 'string' ? [cni] : cni).filter((c) => BACKEND_INFO.kind.cnis[c] === undefined);
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
  const info = BACKEND_INFO[backend];
  if (info.cnis[cni]) return undefined;
  const runnable = Object.keys(info.cnis);
  return {
    where: '--cni',
    message: `${cni} is ${info.unavailableReason ?? 'not supported'} (${backend} backend${runnable.length ? `; it runs: ${runnable.join(', ')}` : ''})`,
  };
}
