// bench verify on the real kernel: the grid as network namespaces, each CNI model compiling every case of the
// built-in library, real TCP connects and UDP echoes. Calico, Cilium and Calico nftables must pass everything; Flannel and
// none must come out NOT ENFORCED; a compiler that drops except clauses must be caught.
import { XMLParser, XMLValidator } from 'fast-xml-parser';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, vi } from 'vitest';
import { execa } from 'execa';
import { PACKAGE_ROOT } from '../metrics/machine.js';
import { main } from '../cli/main.js';
import { runConfigSchema, type CniName } from '../config/schema.js';
import { LocalBackend } from '../backends/local/backend.js';
import { localModel, localModelNames } from '../backends/local/models.js';
import type { LocalModel } from '../backends/local/types.js';
import { newRunId } from '../identity/run-id.js';
import { itKernel, namespacesOfRun } from '../backends/local/test-support/kernel.js';
import type { EndpointPolicy } from '../policy/types.js';
import { BUILTIN_CASES_DIR, loadCases } from './cases.js';
import { gridLayout, gridWorkload, planProbes } from './grid.js';
import { plannedAddresses } from '../backends/factory.js';
import { runVerify, type VerifyReport } from './run.js';
import { tempDir } from '../test-support/temp.js';

const layout = gridLayout();
const addresses = await plannedAddresses(gridWorkload(layout));
const library = loadCases([BUILTIN_CASES_DIR], { layout, ips: addresses.ips }).cases;

function registeredModel(cni: CniName): LocalModel {
  if (!localModelNames().includes(cni)) throw new Error(`the ${cni} model is not registered in src/backends/local/models.ts yet`);
  return localModel(cni);
}

async function verifyLocal(cni: CniName, opts: { model?: LocalModel; cases?: typeof library; iptablesBackend?: 'nft' | 'legacy' } = {}): Promise<{ report: VerifyReport; runId: string }> {
  const runId = newRunId();
  const plane = new LocalBackend({ config: runConfigSchema.parse({ cni, backend: 'local', iptablesBackend: opts.iptablesBackend }), runId, shape: 'verify-grid', model: opts.model });
  const report = await runVerify({ plane, workload: plane.fit(gridWorkload(layout)), cases: opts.cases ?? library });
  expect(namespacesOfRun(runId), 'namespaces left behind').toEqual([]);
  return { report, runId };
}

const failures = (r: VerifyReport) =>
  r.cases.filter((c) => c.status !== 'pass').map((c) => ({ name: c.name, error: c.error, mismatches: c.mismatches.slice(0, 5).map((m) => `${m.kind}: ${m.from} -> ${m.to} ${m.protocol}/${m.port} (${m.reason})`) }));

describe('bench verify on the local kernel', () => {
  itKernel('SIGHUP (terminal closed) mid-verify tears the whole grid down, exit 130', async () => {
    const child = execa(process.execPath, [join(PACKAGE_ROOT, 'dist', 'cli', 'main.js'), 'verify', '--cni', 'calico'], { reject: false, timeout: 300_000 });
    let err = '';
    const runId = await new Promise<string>((resolve) => {
      child.stderr!.on('data', (d: Buffer) => {
        err += d.toString();
        const m = /verify run ([a-z][a-z0-9]{4})/.exec(err);
        if (m) resolve(m[1]!);
      });
    });
    for (let i = 0; i < 600 && namespacesOfRun(runId).length < 13; i++) await new Promise((r) => setTimeout(r, 100));
    expect(namespacesOfRun(runId).length).toBeGreaterThanOrEqual(13);
    child.stdout!.destroy();
    child.stderr!.destroy();
    child.kill('SIGHUP');
    const r = await child;
    expect(r.exitCode).toBe(130);
    expect(namespacesOfRun(runId)).toEqual([]);
  });

  itKernel('bench verify --cni flannel: NOT ENFORCED, exit 1, a JUnit file that parses, nothing left behind', async () => {
    const junit = join(tempDir('cb-verify-'), 'flannel.xml');
    let out = '';
    let err = '';
    const so = vi.spyOn(process.stdout, 'write').mockImplementation((s) => ((out += String(s)), true));
    const se = vi.spyOn(process.stderr, 'write').mockImplementation((s) => ((err += String(s)), true));
    let code: number;
    try {
      code = await main(['node', 'bench', 'verify', '--cni', 'flannel', '--junit', junit]);
    } finally {
      so.mockRestore();
      se.mockRestore();
    }
    expect(code, err).toBe(1);
    expect(out).toContain('flannel on local (Flannel-style VXLAN model): NOT ENFORCED — policies are accepted but have no effect');
    expect(out).toContain('PASS  selects-no-pod');
    // Every expected allow connected: the grid itself (VXLAN, external hosts, servers) works.
    expect(out).not.toContain('expected allow but blocked');
    const runId = /verify run ([a-z][a-z0-9]{4})/.exec(err)?.[1];
    expect(runId).toBeDefined();
    expect(namespacesOfRun(runId!)).toEqual([]);
    const xml = readFileSync(junit, 'utf8');
    expect(XMLValidator.validate(xml)).toBe(true);
    const suite = new XMLParser({ ignoreAttributes: false, attributeNamePrefix: '' }).parse(xml).testsuites.testsuite;
    expect(suite).toMatchObject({ tests: String(library.length), failures: String(library.length - 1), errors: '0' });
    expect(suite.properties.property).toContainEqual({ name: 'verdict.kind', value: 'not-enforced' });
  }, 600_000); // the whole library, every case's policies applied and synced: past 3 min on a loaded 2-CPU machine

  itKernel('none (plain routing): NOT ENFORCED', async () => {
    const { report } = await verifyLocal('none');
    expect(report.verdict.kind).toBe('not-enforced');
    expect(report.verdict.denyConnected).toBe(report.verdict.expectedDeny);
    expect(report.cases.flatMap((c) => c.mismatches).filter((m) => m.kind === 'expected allow but blocked')).toEqual([]);
  }, 600_000);

  for (const cni of ['calico', 'cilium', 'calico-ebpf', 'calico-nftables'] as const) {
    itKernel(`${cni} model passes the whole library: enforced`, async () => {
      const model = registeredModel(cni);
      const { report } = await verifyLocal(cni, { model });
      expect(failures(report)).toEqual([]);
      expect(report.verdict.kind).toBe('enforced');
      expect(report.verdict.probes).toBe(library.reduce((n, c) => n + planProbes(layout, c.probes).length, 0));
    }, 600_000); // 1106 expected denies each wait out a probe timeout: ~3 min here, more on a loaded machine
  }

  // The Felix-layout model on its other iptables flavour (calico above runs the default, nft), and Canal.
  for (const [cni, iptablesBackend] of [['calico', 'legacy'], ['canal', 'nft']] as const) {
    // The whole library takes 4-7 minutes on a loaded 2-CPU machine.
    itKernel(`${cni} model on iptables-${iptablesBackend} passes the whole library: enforced`, { timeout: 900_000 }, async () => {
      const { report } = await verifyLocal(cni, { model: registeredModel(cni), iptablesBackend });
      expect(failures(report)).toEqual([]);
      expect(report.verdict.kind).toBe('enforced');
    });
  }

  itKernel('a compiler that drops ipBlock except clauses is caught as a mismatch', async () => {
    const base = localModelNames().includes('calico') ? registeredModel('calico') : registeredModel('cilium');
    const dropExcept = (eps: EndpointPolicy[]): EndpointPolicy[] =>
      eps.map((e) => {
        const strip = (d: EndpointPolicy['ingress']) => ({
          ...d,
          policies: d.policies.map((p) => ({ ...p, rules: p.rules.map((r) => ({ ...r, peers: r.peers.map((peer) => (peer.kind === 'cidr' ? { ...peer, except: [] } : peer)) })) })),
        });
        return { ...e, ingress: strip(e.ingress), egress: strip(e.egress) };
      });
    const broken: LocalModel = { ...base, install: (ctx) => base.install!({ ...ctx, endpoints: dropExcept(ctx.endpoints) }) };
    const { report } = await verifyLocal(base.cni, { model: broken, cases: library.filter((c) => c.name === 'ipblock-except') });
    expect(report.verdict.kind).toBe('partially-enforced');
    expect(report.cases[0]!.mismatches.map((m) => `${m.kind}: ${m.from} -> ${m.to} ${m.protocol}/${m.port}`).sort()).toEqual([
      'expected deny but connected: ext2 -> x/a TCP/80',
      'expected deny but connected: ext2 -> x/a TCP/81',
      'expected deny but connected: ext2 -> x/a UDP/80',
      'expected deny but connected: ext2 -> x/a UDP/81',
      'expected deny but connected: y/a -> ext2 TCP/80',
      'expected deny but connected: y/a -> ext2 UDP/80',
    ]);
  });
});
