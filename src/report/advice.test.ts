import { describe, expect, it } from 'vitest';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { analyze } from './analyze.js';
import { collectResults } from './collect.js';
import { cniAdvice } from './advice.js';
import { writeSyntheticSweep } from './test-support/fixtures.js';

describe('capacity advice for a run that completed over its policy-map capacity', () => {
  const dir = mkdtempSync(join(tmpdir(), 'cb-advice-'));
  writeSyntheticSweep(dir, { curves: [{ cni: 'cilium', baseNs: 48_000, slopeNs: 0 }], policies: [0, 1000, 20000], repetitions: 1, samples: 100 });
  const base = analyze(collectResults([dir]).results);

  it('names the overflow, the entries needed and what the client saw, from the model state', () => {
    const a = {
      ...base,
      cnis: base.cnis.map((c) => ({
        ...c,
        stateAtMax: {
          ...c.stateAtMax,
          policyMapOverflow: 'bench-server/server-0 needs 20003 policy-map entries, capacity 16384: map sync skipped, the map keeps the 3 entries it held before (stale; Cilium 1.18 default)',
          policyMapOverflowNeeded: 20003,
          overflowClientVerdict: 'allowed',
          endpointLockdownOnPolicyOverflow: false,
        },
      })),
    };
    const item = cniAdvice(a).find((i) => i.title === 'Capacity limits: policy map overflow');
    expect(item?.text).toMatch(/needs 20003 policy-map entries, capacity 16384/);
    expect(item?.text).toMatch(/client was \*\*allowed\*\*/);
    expect(item?.text).toMatch(/stale policy/);
    expect(item?.text).toMatch(/above the 20003 entries needed/);
    // Without an overflow in the state there is no such paragraph.
    expect(cniAdvice(base).some((i) => i.title === 'Capacity limits: policy map overflow')).toBe(false);
  });
});
