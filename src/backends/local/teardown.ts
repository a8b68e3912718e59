// One teardown for everything the local backend builds (benchmark runs and verification grids): stop the
// run's processes, let the model remove what lives outside namespaces (BPF pins), delete the namespaces, and
// then check with the kernel that nothing of the run is left — a run that leaks is reported, not called ok.
import type { Runner } from '../../exec/runner.js';
import type { RunningServer } from '../../probe/native.js';
import type { LocalModel } from './types.js';
import { collectGarbage, killNamespaceProcesses, remainsOfRun } from './gc.js';
import { releaseRun } from '../../identity/locks.js';
import type { Topology } from './topology.js';
import { BenchError } from '../../errors.js';

export interface LocalTeardown {
  runner: Runner;
  topology: Topology;
  model: LocalModel;
  servers: readonly RunningServer[];
  /** Every namespace of the run, in creation order (deleted in reverse). */
  namespaces: readonly string[];
}

export async function teardownLocal(t: LocalTeardown): Promise<void> {
  const problems: string[] = [];
  await Promise.all(t.servers.map((s) => s.stop().catch(() => undefined)));
  if (t.model.cleanup) {
    await t.model.cleanup({ cleanupRunner: t.runner, topology: t.topology }).catch((e: Error) => problems.push(`model cleanup: ${e.message}`));
  }
  if (t.runner.dryRun) {
    for (const ns of [...t.namespaces].reverse()) await t.runner.run({ argv: ['ip', 'netns', 'delete', ns], purpose: `delete namespace ${ns}` });
    return;
  }
  // A process inside a namespace does not keep it alive once deleted, but nothing of the run should outlive it.
  for (const ns of t.namespaces) await killNamespaceProcesses(t.runner, ns);
  for (const ns of [...t.namespaces].reverse()) {
    await t.runner.run({ argv: ['ip', 'netns', 'delete', ns], allowFailure: true, purpose: `delete namespace ${ns}` });
  }
  releaseRun(t.topology.runId);
  let left = await remainsOfRun(t.runner, t.topology.runId);
  if (left.length) {
    // Ctrl-C reaches the whole process group: a delete started just before it dies with it. Those started after
    // the signal are not affected, so a second pass (gc of this one run) completes a clean stop.
    await collectGarbage(t.runner, { only: t.topology.runId, force: true });
    left = await remainsOfRun(t.runner, t.topology.runId);
  }
  if (left.length) problems.push(`left behind: ${left.join(', ')} (remove with: bench gc --run ${t.topology.runId})`);
  if (problems.length) throw new BenchError('command', `teardown incomplete: ${problems.join('; ')}`);
}
