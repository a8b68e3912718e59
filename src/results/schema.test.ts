import { describe, expect, it } from 'vitest';
import { readFileSync, writeFileSync } from 'node:fs';
import { errorRecord, errorRecordSchema } from './schema.js';
import { readResult, writeResult } from './io.js';
import { syntheticResult } from '../report/test-support/fixtures.js';
import { InterruptedError } from '../errors.js';
import { CommandError } from '../exec/runner.js';
import { SlotExhaustedError } from '../backends/local/calico-ebpf/install.js';
import { tempDir } from '../test-support/temp.js';

describe('error records in result files', () => {
  it('record the kind of the error, not its class name', () => {
    expect(errorRecord('policy', new SlotExhaustedError('node-0'))).toMatchObject({ stage: 'policy', kind: 'capacity' });
    const failed = new CommandError({ argv: ['ip', 'link'], exitCode: 2, stdout: '', stderr: 'RTNETLINK answers: File exists', durationMs: 3, timedOut: false }, 'add veth');
    expect(errorRecord('setup', failed)).toEqual({ stage: 'setup', message: failed.message, kind: 'command' });
    expect(errorRecord('measure', new TypeError('x is undefined')).kind).toBe('internal');
  });

  it('record a tagged error that is no BenchError yet by its tag or class name', () => {
    class Tagged extends Error {
      readonly kind = 'k8s-step';
    }
    class FortioOutputError extends Error {
      readonly kind = 'fortio-output';
    }
    class ManifestError extends Error {}
    expect(errorRecord('setup', new Tagged('step failed')).kind).toBe('k8s-step');
    expect(errorRecord('measure', new FortioOutputError('bad json')).kind).toBe('probe');
    const m = new ManifestError('invalid');
    m.name = 'ManifestError';
    expect(errorRecord('setup', m).kind).toBe('manifest');
  });

  it('say interrupted, stage and kind, when the run was being stopped, whatever error surfaced', () => {
    expect(errorRecord('measure', new Error('killed'), { interrupted: true })).toEqual({ stage: 'interrupted', message: 'killed', kind: 'interrupted' });
    expect(errorRecord('measure', new InterruptedError()).kind).toBe('interrupted');
  });

  it('files written before the vocabulary still load, their tags read as kinds', () => {
    expect(errorRecordSchema.parse({ stage: 'policy', message: 'm', kind: 'PolicyMapCapacityError' }).kind).toBe('capacity');
    expect(errorRecordSchema.parse({ stage: 'setup', message: 'm', kind: 'CommandError' }).kind).toBe('command');
    expect(errorRecordSchema.parse({ stage: 'setup', message: 'm', kind: 'unsupported' }).kind).toBe('usage');
    expect(errorRecordSchema.parse({ stage: 'setup', message: 'm', kind: 'Error' }).kind).toBe('internal');
    expect(errorRecordSchema.parse({ stage: 'setup', message: 'm' }).kind).toBeUndefined();
    expect(errorRecordSchema.parse({ stage: 'policy', message: 'm', kind: 'capacity' }).kind).toBe('capacity');

    const dir = tempDir('cb-legacy-');
    const file = writeResult(dir, syntheticResult({ cni: 'cilium', policies: 100, seed: 3, connectNs: 50_000, status: 'failed', error: { stage: 'policy', message: 'full' } }));
    const old = JSON.parse(readFileSync(file, 'utf8')) as { errors: Array<Record<string, unknown>> };
    old.errors[0]!.kind = 'PolicyMapCapacityError';
    writeFileSync(file, JSON.stringify(old));
    expect(readResult(file).errors[0]).toEqual({ stage: 'policy', message: 'full', kind: 'capacity' });
  });
});
