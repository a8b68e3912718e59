// One wording for every refusal of every command: the flag, the value given, what is allowed — never the
// validation library's own words. And bench enforce takes --pin-cpu as bench run does (issue 26, items 5 and 6).
import { cpus } from 'node:os';
import { describe, expect, it } from 'vitest';
import { runBench } from './test-support/cli.js';

/** Words of the validation library that say nothing to a person (zod's defaults). */
const LIBRARY_WORDS = /Too small|Too big|Invalid input|Invalid option|expected int|expected number|received|Required\b|NaN/;

const problemLines = (stderr: string) => stderr.split('\n').filter((l) => /^\s+--/.test(l));

describe('bad input: one wording on every command', () => {
  it('bench enforce echoes the value and says what is allowed', async () => {
    const r = await runBench(['enforce', '--cni', 'weave', '--policies', '-1', '--probe-timeout-ms', 'autox', '--repetitions', '1.5', '--interval-us', '2000', '--changes', 'allow-added,bogus']);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/--cni: must be one of none, flannel, .*got "weave"/);
    expect(r.stderr).toMatch(/--policies: must be at least 0, got -1/);
    expect(r.stderr).toMatch(/--probe-timeout-ms: expected a whole number or 'auto', got 'autox'/);
    expect(r.stderr).toMatch(/--repetitions: expected a whole number, got '1\.5'/);
    expect(r.stderr).toMatch(/--interval-us: must be at most 1000, got 2000/);
    expect(r.stderr).toMatch(/--changes: must be one of allow-added, allow-removed, new-pod, peer-joins, endpoint-removed, endpoint-added, service-added, got "bogus"/);
    for (const line of problemLines(r.stderr)) expect(line).not.toMatch(LIBRARY_WORDS);
  });

  it('bench enforce refuses a Service change without --services, takes them on kind and clusters; verify --services stays local', async () => {
    const r = await runBench(['enforce', '--cni', 'calico', '--changes', 'allow-added,endpoint-removed,service-added', '--dry-run']);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/--changes: endpoint-removed, service-added change a Service set, and there is none: add --services N/);
    const kind = await runBench(['enforce', '--cni', 'calico', '--backend', 'kind', '--services', '10', '--changes', 'endpoint-added', '--dry-run']);
    expect(kind.stderr).toBe('');
    expect(kind.code).toBe(0);
    expect(kind.stdout).toMatch(/# change: apply bench-server \(Service and EndpointSlice\)/);
    expect(kind.stdout).toMatch(/endpoint-added: .*cb-probe watch --target '<cluster-ip>' --port 80 /);
    // --services with no --changes: the Service changes are measured beside the policy changes, on kind as locally.
    const all = await runBench(['enforce', '--cni', 'cilium', '--backend', 'kind', '--services', '2', '--dry-run']);
    expect(all.code).toBe(0);
    expect(all.stdout).toMatch(/service-added: .*--target '<ClusterIP of bench-server-added>'/);
    const verify = await runBench(['verify', '--cni', 'calico', '--backend', 'kind', '--services', '10', '--dry-run']);
    expect(verify.code).toBe(2);
    expect(verify.stderr).toMatch(/--services: verify probes through Services on the local backend only for now/);
  });

  it.each([
    ['run', ['run', '--cni', 'weave', '--policies', 'x', '--backend', 'local']],
    ['sweep', ['sweep', '--cni', 'none,weave', '--policies', '0,-5', '--repetitions', '0']],
    ['verify', ['verify', '--cni', 'weave', '--timeout-ms', '5', '--retries', 'x', '--parallel', '0', '--policies', '30000']],
    ['policies', ['policies', '--policies', '1.5', '--seed', '-1']],
  ])('bench %s: every problem names the flag, the value and what is allowed', async (_name, argv) => {
    const r = await runBench(argv);
    expect(r.code).toBe(2);
    const lines = problemLines(r.stderr);
    expect(lines.length).toBeGreaterThan(1);
    for (const line of lines) {
      expect(line).not.toMatch(LIBRARY_WORDS);
      // The value given is echoed: "got ..." closes every one of these.
      expect(line).toMatch(/got ['"]?-?[\w.,]+['"]?$/);
    }
  });

  it.each([
    ['--timeout-ms', ['run', '--cni', 'calico', '--backend', 'local', '--timeout-ms', '5'], ['verify', '--cni', 'calico', '--timeout-ms', '5']],
    ['--policies', ['run', '--cni', 'calico', '--backend', 'local', '--policies', '-1'], ['enforce', '--cni', 'calico', '--policies', '-1']],
    ['--seed', ['run', '--cni', 'calico', '--backend', 'local', '--seed', 'x'], ['policies', '--seed', 'x']],
  ])('the same bad %s gets the same words from every command that takes it', async (flag, a, b) => {
    const line = async (argv: string[]) => problemLines((await runBench(argv)).stderr).find((l) => l.trim().startsWith(`${flag}:`));
    const first = await line(a);
    expect(first).toBeDefined();
    expect(await line(b)).toBe(first);
  });

  it('a CNI list in a sweep is refused item by item in the same words as a single --cni', async () => {
    const sweep = await runBench(['sweep', '--cni', 'weave', '--dry-run']);
    const run = await runBench(['run', '--cni', 'weave', '--backend', 'local', '--dry-run']);
    const line = (s: string) => problemLines(s).find((l) => l.includes('--cni'));
    expect(line(sweep.stderr)).toBe(line(run.stderr));
  });
});

describe('bench enforce --pin-cpu, as bench run takes it', () => {
  it('refuses a CPU this machine does not have, up front (exit 2), as run does', async () => {
    const enforce = await runBench(['enforce', '--cni', 'calico', '--pin-cpu', '99', '--dry-run']);
    const run = await runBench(['run', '--cni', 'calico', '--backend', 'local', '--pin-cpu', '99', '--dry-run']);
    expect(enforce.code).toBe(2);
    expect(enforce.stderr).toContain(`--pin-cpu: this machine has CPUs 0..${cpus().length - 1}, got 99`);
    expect(enforce.stdout).toBe('');
    expect(run.code).toBe(2);
    expect(problemLines(enforce.stderr)).toEqual(problemLines(run.stderr));
  });

  it.each(['auto', 'off', '0'])('accepts --pin-cpu %s', async (pin) => {
    const r = await runBench(['enforce', '--cni', 'calico', '--pin-cpu', pin, '--dry-run']);
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/^# enforce plan for run/);
  });
});

describe('--services and --kube-proxy: refused where they cannot run, in the one wording', () => {
  it.each([
    ['calico-nftables', 'iptables', /--kube-proxy: calico-nftables runs beside kube-proxy in nftables mode only \(Calico's nftables data plane requires kube-proxy in nftables mode\), got "iptables"/],
    ['cilium', 'nftables', /--kube-proxy: cilium replaces kube-proxy with its socket-level load balancer at connect\(\) \(kube-proxy replacement\): no kube-proxy mode applies; leave --kube-proxy out, got "nftables"/],
    ['calico-ebpf', 'iptables', /--kube-proxy: calico-ebpf replaces kube-proxy with its connect-time load balancer and NAT maps: no kube-proxy mode applies; leave --kube-proxy out, got "iptables"/],
  ])('bench run --cni %s --kube-proxy %s exits 2', async (cni, mode, words) => {
    const r = await runBench(['run', '--cni', cni, '--backend', 'local', '--services', '10', '--kube-proxy', mode, '--dry-run']);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(words);
    expect(r.stdout).toBe('');
  });

  it('a sweep checks every CNI of its list against --kube-proxy, in the same words as run', async () => {
    const sweep = await runBench(['sweep', '--cni', 'calico,calico-nftables', '--services', '0,10', '--kube-proxy', 'iptables', '--backend', 'local', '--dry-run']);
    const run = await runBench(['run', '--cni', 'calico-nftables', '--services', '10', '--kube-proxy', 'iptables', '--backend', 'local', '--dry-run']);
    expect(sweep.code).toBe(2);
    const line = (s: string) => problemLines(s).find((l) => l.includes('--kube-proxy'));
    expect(line(sweep.stderr)).toBeDefined();
    expect(line(sweep.stderr)).toBe(line(run.stderr));
  });

  it('refuses more endpoints per Service than a backend can give, and bad counts', async () => {
    const kind = await runBench(['run', '--cni', 'calico', '--backend', 'kind', '--services', '10', '--endpoints-per-service', '33', '--dry-run']);
    expect(kind.code).toBe(2);
    expect(kind.stderr).toContain("--endpoints-per-service: at most 32 on kind: every endpoint there is a real server pod on the server's node, got 33");
    const enforce = await runBench(['enforce', '--cni', 'calico', '--backend', 'cluster', '--context', 'x', '--services', '10', '--endpoints-per-service', '40', '--dry-run']);
    expect(enforce.code).toBe(2);
    expect(enforce.stderr).toContain('--endpoints-per-service: at most 32 on cluster');
    const bad = await runBench(['run', '--cni', 'calico', '--backend', 'local', '--services', '-1', '--endpoints-per-service', '0', '--dry-run']);
    expect(bad.code).toBe(2);
    expect(bad.stderr).toMatch(/--services: must be at least 0, got -1/);
    expect(bad.stderr).toMatch(/--endpoints-per-service: must be at least 1, got 0/);
  });

  it('refuses the Service settings without --services (nothing would use them)', async () => {
    const r = await runBench(['run', '--cni', 'calico', '--backend', 'local', '--kube-proxy', 'nftables', '--service-position', 'first', '--dry-run']);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain('--kube-proxy: only with --services N (without it the client connects to the pod and no Service exists), got "nftables"');
    expect(r.stderr).toContain('--service-position: only with --services N');
  });

  it('--iptables-backend is read by kube-proxy with --services (none has no Felix), and refused without', async () => {
    const with_ = await runBench(['run', '--cni', 'none', '--backend', 'local', '--services', '2', '--iptables-backend', 'legacy', '--dry-run']);
    expect(with_.code).toBe(0);
    expect(with_.stdout).toContain('iptables-legacy-restore --noflush');
    const without = await runBench(['run', '--cni', 'none', '--backend', 'local', '--iptables-backend', 'legacy', '--dry-run']);
    expect(without.code).toBe(2);
    expect(without.stderr).toContain('--iptables-backend: applies to calico, canal only');
  });

  it('accepts the kube-proxy mode a CNI runs beside, and plans the ClusterIP connection', async () => {
    const r = await runBench(['run', '--cni', 'calico-nftables', '--backend', 'local', '--services', '2', '--kube-proxy', 'nftables', '--dry-run']);
    expect(problemLines(r.stderr)).toEqual([]);
    expect(r.code).toBe(0);
    expect(r.stdout).toContain('# kube-proxy nftables full sync on node-0');
    expect(r.stdout).toMatch(/cb-probe client --target 10\.\d+\.\d+\.\d+ --port 80 --mode connect/);
  });
});
