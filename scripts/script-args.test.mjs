import { spawnSync } from 'node:child_process';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { countsFlag, intFlag, parseScriptArgs, ScriptUsageError } from './script-args.mjs';

const here = dirname(fileURLToPath(import.meta.url));
// Only --help and bad flags: each must end before any benchmark starts (a timeout here means one started).
const script = (name, ...args) => spawnSync(process.execPath, [join(here, name), ...args], { encoding: 'utf8', timeout: 20_000 });

describe('script arguments', () => {
  it('parses declared flags, refuses unknown ones and missing values', () => {
    const options = { counts: { type: 'string', default: '0,10' }, 'no-verify': { type: 'boolean', default: false } };
    expect(parseScriptArgs(['--counts', '5,6', '--no-verify'], options)).toMatchObject({ counts: '5,6', 'no-verify': true });
    expect(() => parseScriptArgs(['--count', '5'], options)).toThrow(ScriptUsageError);
    expect(() => parseScriptArgs(['--counts'], options)).toThrow(/argument missing/);
    expect(() => parseScriptArgs(['stray'], options)).toThrow(ScriptUsageError);
    expect(parseScriptArgs(['-h'], options).help).toBe(true);
  });

  it('checks integers and count lists where they are read', () => {
    expect(countsFlag({ counts: '0,1000,5000' }, 'counts')).toEqual([0, 1000, 5000]);
    expect(() => countsFlag({ counts: '0,1e3' }, 'counts')).toThrow(/--counts must be comma-separated integers/);
    expect(() => countsFlag({ counts: '' }, 'counts')).toThrow(ScriptUsageError);
    expect(intFlag({ samples: '1000' }, 'samples')).toBe(1000);
    expect(intFlag({ warmup: '0' }, 'warmup', 0)).toBe(0);
    expect(() => intFlag({ samples: '0' }, 'samples')).toThrow(/--samples must be an integer ≥ 1, got '0'/);
    expect(() => intFlag({ samples: '12abc' }, 'samples')).toThrow(ScriptUsageError);
  });

  it.each(['calico-nftables-bench.mjs', 'calico-nftables-set-flags.mjs'])('%s: --help prints the usage (exit 0); a bad flag is named with the usage (exit 2)', (name) => {
    const help = script(name, '--help');
    expect(help.status).toBe(0);
    expect(help.stdout).toMatch(new RegExp(`^usage: node scripts/${name.replace('.', '\\.')} \\[--counts`));
    const bad = script(name, '--bogus', '1');
    expect(bad.status).toBe(2);
    expect(bad.stderr).toMatch(new RegExp(`^${name.replace('.mjs', '')}: Unknown option '--bogus'`));
    expect(bad.stderr).toContain('usage: ');
    const counts = script(name, '--counts', '10,ten');
    expect(counts.status).toBe(2);
    expect(counts.stderr).toContain("--counts must be comma-separated integers ≥ 0 (e.g. 0,1000,5000), got '10,ten'");
  });
});
