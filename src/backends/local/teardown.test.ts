import { describe, expect, it } from 'vitest';
import { FakeRunner } from '../../exec/runner.js';
import { teardownLocal } from './teardown.js';
import type { LocalModel } from './types.js';
import type { Topology } from './topology.js';

describe('local teardown', () => {
  it('a delete killed by the Ctrl-C that reached the whole process group is done again: a clean stop leaves nothing', async () => {
    const runId = 'td0wn';
    const live = new Set([`cb-${runId}-sw`, `cb-${runId}-n0`, `cb-${runId}-n1`]);
    let killedOnce = false;
    const deletes: string[] = [];
    const runner = new FakeRunner((argv, spec) => {
      if (argv.join(' ') === 'ip netns list') return { stdout: [...live].map((n) => `${n}\n`).join('') };
      const names = (spec.input ?? '').split('\n').filter((l) => l.startsWith('netns delete ')).map((l) => l.slice('netns delete '.length));
      for (const ns of names) {
        deletes.push(ns);
        // The batch was deleting n1 when the SIGINT came, and died with it (128 + 2): the rest were not deleted.
        if (ns === `cb-${runId}-n1` && !killedOnce) return (killedOnce = true), { exitCode: 130 };
        live.delete(ns);
      }
      return undefined;
    });
    const topology = { runId, nodes: [], pods: [] } as unknown as Topology;
    await teardownLocal({ runner, topology, model: {} as LocalModel, servers: [], namespaces: [...live] });
    expect(live).toEqual(new Set());
    // One batch for the run (pods, nodes, switch: reverse creation order), then one for what the SIGINT left.
    expect(deletes).toEqual([`cb-${runId}-n1`, `cb-${runId}-n0`, `cb-${runId}-n1`, `cb-${runId}-sw`]);
  });
});
