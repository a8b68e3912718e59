import { describe, expect, it } from 'vitest';
import type { Command, Option } from 'commander';
import { runConfigSchema } from '../config/schema.js';
import { buildProgram } from './main.js';
import { MEASUREMENT_SETTINGS, SETTING_FLAGS } from './settings-flags.js';

const command = (name: string) => buildProgram().commands.find((c) => c.name() === name)!;
const option = (cmd: Command, attribute: string) => (cmd.options as readonly Option[]).find((o) => o.attributeName() === attribute);

describe('settings flags, declared once', () => {
  it('every flag is a run setting, named after its config key', () => {
    for (const key of Object.keys(SETTING_FLAGS)) expect(Object.keys(runConfigSchema.shape)).toContain(key);
    expect(option(command('run'), 'timeoutMs')?.long).toBe('--timeout-ms');
    expect(option(command('run'), 'endpointLockdownOnPolicyOverflow')?.flags).toBe('--endpoint-lockdown-on-policy-overflow');
  });

  it('bench run and bench sweep declare the shared settings alike (no drifting help texts)', () => {
    const run = command('run');
    const sweep = command('sweep');
    for (const key of [...MEASUREMENT_SETTINGS, 'iptablesBackend']) {
      // A setting a sweep reads as a list (--services) declares its sweep form on purpose.
      if ((SETTING_FLAGS[key] as { for?: { sweep?: unknown } }).for?.sweep) continue;
      const r = option(run, key);
      const s = option(sweep, key);
      expect(r, key).toBeDefined();
      expect([s?.flags, s?.description], key).toEqual([r!.flags, r!.description]);
    }
    for (const key of ['matchPosition', 'seed']) expect(option(command('enforce'), key)?.description).toBe(option(run, key)?.description);
  });
});
