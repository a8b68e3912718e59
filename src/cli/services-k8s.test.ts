// Services and the iptables flavour on the kind and cluster backends: what the CLI refuses before any work.
import { describe, expect, it } from 'vitest';
import { runBench } from './test-support/cli.js';

describe('kind/cluster: settings the backend cannot honour are refused, not ignored', () => {
  it.each([
    [['run', '--backend', 'kind', '--cni', 'calico', '--iptables-backend', 'legacy', '--dry-run'], '--iptables-backend: only for the local backend'],
    [['run', '--backend', 'cluster', '--context', 'x', '--cni', 'calico', '--iptables-backend', 'nft', '--dry-run'], '--iptables-backend: only for the local backend'],
    [['sweep', '--backend', 'kind', '--cni', 'calico', '--policies', '0', '--iptables-backend', 'nft', '--dry-run'], '--iptables-backend: only for the local backend'],
    [['run', '--backend', 'kind', '--cni', 'calico', '--services', '2', '--endpoints-per-service', '33', '--dry-run'], "--endpoints-per-service: at most 32 on kind: every endpoint there is a real server pod on the server's node, got 33"],
  ])('%j', async (argv, message) => {
    const r = await runBench(argv);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain(message);
  });

  it('accepts the same on the local backend, and --services on kind', async () => {
    expect((await runBench(['run', '--backend', 'local', '--cni', 'calico', '--policies', '1', '--iptables-backend', 'legacy', '--dry-run'])).code).toBe(0);
    const r = await runBench(['run', '--backend', 'kind', '--cni', 'calico', '--policies', '1', '--services', '2', '--dry-run']);
    expect(r.code).toBe(0);
    expect(r.stdout).toContain("apply the server's Service last");
    const e = await runBench(['run', '--backend', 'kind', '--cni', 'calico', '--policies', '1', '--services', '2', '--endpoints-per-service', '3', '--dry-run']);
    expect(e.code).toBe(0);
    expect(e.stdout).toContain('create 2 more server pods (Deployment bench-backends, server node): every Service gets 3 endpoints');
  });
});
