import { describe, expect, it } from 'vitest';
import { FakeRunner } from '../exec/runner.js';
import { brNetfilterCheck, inotifyCheck, runDoctor } from './doctor.js';

describe('bench doctor: kind backend checks', () => {
  it('br_netfilter: loaded or loadable passes, missing fails with the fix', () => {
    expect(brNetfilterCheck(true, undefined)).toMatchObject({ ok: true, detail: 'loaded', for: 'kind' });
    expect(brNetfilterCheck(false, '/lib/modules/6.8.0/kernel/net/bridge/br_netfilter.ko.zst')).toMatchObject({ ok: true });
    const missing = brNetfilterCheck(false, undefined);
    expect(missing.ok).toBe(false);
    expect(missing.fix).toMatch(/modprobe br_netfilter/);
  });

  it("inotify limits below kind's recommendation fail", () => {
    expect(inotifyCheck(524288, 512).ok).toBe(true);
    expect(inotifyCheck(8192, 128)).toMatchObject({ ok: false, detail: 'max_user_watches=8192 max_user_instances=128' });
    expect(inotifyCheck(undefined, 512).ok).toBe(false);
  });

  it('runs both among the kind checks, asking modinfo through the runner', async () => {
    const runner = new FakeRunner((argv) => (argv[0] === 'modinfo' ? { exitCode: 1, stderr: 'modinfo: ERROR: Module br_netfilter not found.' } : { stdout: `${argv[0]} 1.0\n` }));
    const checks = await runDoctor(runner);
    expect(checks.filter((c) => c.for === 'kind').map((c) => c.name)).toEqual(['docker engine', 'kind', 'kubectl', 'helm', 'br_netfilter', 'inotify limits']);
    expect(runner.log.some((r) => r.argv.join(' ') === 'modinfo -n br_netfilter')).toBe(true);
  });
});
