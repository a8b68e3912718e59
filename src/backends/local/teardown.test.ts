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
    const runner = new FakeRunner((argv) => {
      if (argv.join(' ') === 'ip netns list') return { stdout: [...live].map((n) => `${n}\n`).join('') };
      if (argv[1] === 'netns' && argv[2] === 'delete') {
        // The first delete of n1 started just before the SIGINT, and died with it (128 + 2).
        if (argv[3] === `cb-${runId}-n1` && !killedOnce) return (killedOnce = true), { exitCode: 130 };
        live.delete(argv[3]!);
      }
      return undefined;
    });
    const topology = { runId, nodes: [], pods: [] } as unknown as Topology;
    await teardownLocal({ runner, topology, model: {} as LocalModel, servers: [], namespaces: [...live] });
    expect(live).toEqual(new Set());
  });
});
