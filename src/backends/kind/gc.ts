// `bench gc --backend kind`: the kind clusters this tool created (cb-<run-id>) whose run is gone.
import type { Runner } from '../../exec/runner.js';
import { liveRuns, RUN_LOCK_DIR } from '../../identity/locks.js';
import { deleteKindCluster, KIND_CLUSTER_RE } from './provider.js';

export interface KindLeftover {
  cluster: string;
  runId: string;
  /** Its run's process is still alive (only known when the run could write its lock file). */
  live: boolean;
}

export async function findKindLeftovers(runner: Runner, lockDir = RUN_LOCK_DIR): Promise<KindLeftover[]> {
  const r = await runner.run({ argv: ['kind', 'get', 'clusters'], purpose: 'list kind clusters', allowFailure: true });
  if (r.exitCode !== 0) return [];
  const live = liveRuns(lockDir);
  return r.stdout
    .split('\n')
    .map((l) => l.trim())
    .flatMap((name) => {
      const m = KIND_CLUSTER_RE.exec(name);
      return m ? [{ cluster: name, runId: m[1]!, live: live.has(m[1]!) }] : [];
    });
}

export { deleteKindCluster };
