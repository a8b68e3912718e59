// The kind backend: a throw-away multi-node kind cluster per run with a real CNI installed from the pinned
// inputs in clusters/versions.yaml, the same policy set as every backend, fortio as the load generator.
//
// Exercised on the machine this was written on (no Docker engine, no internet): the complete plan (--dry-run),
// every generated manifest against its schema, and the control flow under an injected runner (failure at each
// step, diagnostics, teardown, cancellation). NOT exercised there: real kind/kubectl/helm/docker commands, the
// upstream manifests and charts themselves, and fortio's real output (the parser is tested against fixtures
// built from fortio's source, see src/backends/k8s/fixtures/README.md). The nightly workflow is what runs it.
import { createHash } from 'node:crypto';
import { lstatSync, mkdirSync, readFileSync, rmSync, writeFileSync, existsSync } from 'node:fs';
import { homedir, tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import type { RunConfig } from '../../config/schema.js';
import { ExecRunner, type CommandSpec, type Runner } from '../../exec/runner.js';
import type { MetricName, MetricResult } from '../../results/schema.js';
import { liveRuns, RUN_LOCK_DIR } from '../../identity/locks.js';
import { RUN_RESOURCE_RE } from '../../identity/run-id.js';
import type { BenchBackend, MeasureSettings, ModelDescription, PolicyInstallReport, PolicySet, BackendRunOptions } from '../types.js';
import { DEFAULT_READINESS, DISPLAY_NAME, cniProfile, planCniInstall, planCniReady, planDnsReady, planNodesReady, type CniProfile, type ReadinessTimeouts } from '../k8s/cni.js';
import { K8sStepError, step, type K8sStep } from '../k8s/errors.js';
import type { KubeTarget } from '../k8s/kubectl.js';
import { KIND_PEER_POD_CAP, kindNodeNames, renderKindConfig, type KindCni, type Placement } from '../k8s/manifests.js';
import { K8sSession } from '../k8s/session.js';
import { validateManifests } from '../k8s/validate.js';
import { loadVersions, type Versions } from '../k8s/versions.js';
import { toYaml } from '../k8s/yaml.js';

/** Every cluster this tool creates is named cb-<runId>; `bench gc --backend kind` finds leftovers by it. */
/** A cni-bench kind cluster: `cb-<run-id>`. */
export const KIND_CLUSTER_RE = RUN_RESOURCE_RE;
export const kindClusterName = (runId: string) => `cb-${runId}`;
const WORKERS = 2;

export interface KindBackendOptions extends BackendRunOptions {
  /** The run's results directory: kubeconfig and diagnostics go here. */
  outDir: string;
  versions?: Versions;
  readiness?: ReadinessTimeouts;
  /** Where downloaded CNI plugins are cached (default $XDG_CACHE_HOME or ~/.cache, then cni-bench). */
  cacheDir?: string;
  /**
   * Where the cluster's kubeconfig goes: outside the results directory, so uploaded results never carry cluster
   * credentials. Default $XDG_RUNTIME_DIR (or the temp directory)/cni-bench-<runId>; removed with the cluster.
   */
  kubeconfigDir?: string;
  /**
   * Images pulled once on the host (the engine's cache keeps them across the points of a sweep) and loaded into the
   * nodes with `kind load docker-image`, so no point pulls them from a registry again. Default: the load images.
   */
  preloadImages?: string[];
  /** Tests: enforcement probe pacing and bound. */
  probeIntervalMs?: number;
  enforcementTimeoutMs?: number;
}

function goArch(): string {
  return process.arch === 'x64' ? 'amd64' : process.arch;
}

/**
 * The container engine kind drives (KIND_EXPERIMENTAL_PROVIDER, kind's own switch: docker, podman, nerdctl). Node
 * commands go through it, never through a hard-coded `docker`.
 */
export function kindProvider(env: NodeJS.ProcessEnv = process.env): string {
  const p = env.KIND_EXPERIMENTAL_PROVIDER?.trim();
  return p && /^(docker|podman|nerdctl|finch)$/.test(p) ? p : 'docker';
}

/**
 * The kubeconfig directory holds cluster-admin credentials, possibly under a shared /tmp: it must be a real
 * directory of ours that nobody else can read (not a symlink or a directory someone else created first).
 */
export function ensurePrivateDir(dir: string): void {
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  const st = lstatSync(dir);
  const uid = process.getuid?.();
  if (!st.isDirectory() || (uid !== undefined && st.uid !== uid) || (st.mode & 0o077) !== 0) {
    throw new Error(`${dir}: not a private directory of this user (owner ${st.uid}, mode ${(st.mode & 0o777).toString(8)}); remove it or set XDG_RUNTIME_DIR`);
  }
}

export function defaultKubeconfigDir(runId: string): string {
  return join(process.env.XDG_RUNTIME_DIR || tmpdir(), `cni-bench-${runId}`);
}

/**
 * Loads br_netfilter before a flannel-based CNI starts (see CniProfile.needsBrNetfilter). Every kind node shares the
 * host's kernel, so one modprobe in one node (privileged, /lib/modules mounted by kind) loads it for all; the test
 * afterwards is what flanneld itself checks.
 */
export function planBrNetfilter(provider: string, node: string): CommandSpec[] {
  return [
    { argv: [provider, 'exec', node, 'modprobe', 'br_netfilter'], purpose: 'load br_netfilter (flanneld exits without /proc/sys/net/bridge; Docker >= 27.3 no longer loads it)' },
    { argv: [provider, 'exec', node, 'test', '-e', '/proc/sys/net/bridge/bridge-nf-call-iptables'], purpose: 'check bridge-nf-call-iptables exists, as flanneld does at start' },
  ];
}

export function defaultCacheDir(): string {
  return join(process.env.XDG_CACHE_HOME || join(homedir(), '.cache'), 'cni-bench');
}

/** The upstream CNI plugins release, downloaded once and checked against its published .sha256 file. */
export function planCniPluginsFetch(v: Versions, cacheDir: string, arch = goArch()): { dir: string; tgz: string; url: string; commands: CommandSpec[] } {
  const p = v.flannel.cniPlugins;
  const url = p.url.replace('{arch}', arch);
  const dir = join(cacheDir, `cni-plugins-${p.version}-${arch}`);
  const tgz = `${dir}.tgz`;
  return {
    dir,
    tgz,
    url,
    commands: [
      { argv: ['curl', '-fsSL', '--retry', '3', '-o', tgz, url], purpose: `download CNI plugins ${p.version} (flannel delegates to their bridge plugin)`, timeoutMs: 300_000 },
      { argv: ['curl', '-fsSL', '--retry', '3', '-o', `${tgz}.sha256`, `${url}.sha256`], purpose: 'download its published checksum' },
      { argv: ['mkdir', '-p', dir], purpose: 'unpack directory' },
      { argv: ['tar', '-xzf', tgz, '-C', dir], purpose: 'unpack the CNI plugins' },
    ],
  };
}

export function verifySha256File(file: string, sumFile: string): void {
  const want = readFileSync(sumFile, 'utf8').trim().split(/\s+/)[0]?.toLowerCase();
  const got = createHash('sha256').update(readFileSync(file)).digest('hex');
  if (!want || want !== got) {
    rmSync(file, { force: true });
    throw new Error(`${file}: sha256 ${got} does not match the published ${want ?? '(empty)'}; removed it, run again to re-download`);
  }
}

export class KindBackend implements BenchBackend {
  readonly name = 'kind' as const;
  readonly probeTool = 'fortio';
  readonly cni: RunConfig['cni'];
  readonly model: ModelDescription;
  readonly topology: { nodes: number; placement: 'cross-node' | 'same-node'; serverPods: number };
  readonly clusterName: string;
  readonly kubeconfig: string;
  private readonly kubeconfigDir: string;
  readonly target: KubeTarget;
  readonly profile: CniProfile;
  readonly session: K8sSession;
  private readonly versions: Versions;
  private readonly runner: Runner;
  private readonly cleanupRunner: Runner;
  private createRequested = false;
  private downDone = false;
  private diagnosticsDir?: string;

  constructor(private readonly opts: KindBackendOptions) {
    this.cni = opts.config.cni;
    this.profile = cniProfile(opts.config.cni);
    this.versions = opts.versions ?? loadVersions();
    this.runner = opts.runner ?? new ExecRunner(opts.signal);
    this.cleanupRunner = opts.cleanupRunner ?? new ExecRunner();
    this.clusterName = kindClusterName(opts.runId);
    // Its own kubeconfig file: kind writes the cluster's credentials there and nowhere else (not in the results).
    this.kubeconfigDir = resolve(opts.kubeconfigDir ?? defaultKubeconfigDir(opts.runId));
    this.kubeconfig = join(this.kubeconfigDir, 'kubeconfig');
    this.target = { kubeconfig: this.kubeconfig };
    const version = this.profile.version(this.versions);
    this.model = {
      name: `${DISPLAY_NAME[this.profile.cni]} ${version} (kind)`,
      description: `${this.profile.description}, on a ${1 + WORKERS}-node kind cluster (${this.versions.kind.nodeImage.split('@')[0]}); load: ${this.versions.load.fortioImage}; connect measured by the static cb-probe in the client pod; at most ${KIND_PEER_POD_CAP} of the filler policies' peers run as pods (evenly spaced over the fillers; the others' selectors match no pod), where the local backend gives every peer an address`,
      enforcesPolicy: this.profile.enforcesPolicy,
    };
    this.topology = { nodes: 1 + WORKERS, placement: opts.config.placement, serverPods: 1 };
    this.session = new K8sSession({
      config: opts.config,
      runId: opts.runId,
      runner: this.runner,
      cleanupRunner: this.cleanupRunner,
      target: this.target,
      versions: this.versions,
      agents: this.profile.agents,
      enforcesPolicy: this.profile.enforcesPolicy,
      sharedKernel: true,
      nodeCgroups: { provider: kindProvider() },
      // Over both workers whatever the placement: with same-node placement one node would otherwise hold all peers.
      peerPodCap: KIND_PEER_POD_CAP,
      peerNodes: kindNodeNames(this.clusterName, WORKERS).workers,
      outDir: opts.outDir,
      progress: opts.progress,
      signal: opts.signal,
      probeIntervalMs: opts.probeIntervalMs,
      enforcementTimeoutMs: opts.enforcementTimeoutMs,
    });
  }

  get placement(): Placement {
    const w = kindNodeNames(this.clusterName, WORKERS).workers;
    return { serverNode: w[0]!, clientNode: this.opts.config.placement === 'same-node' ? w[0]! : w[1]! };
  }

  private kind(args: string[], purpose: string, extra: Partial<CommandSpec> = {}): CommandSpec {
    return { argv: ['kind', ...args], purpose, ...extra };
  }

  /** Runs `fn`; on failure saves diagnostics (once) and rethrows as a K8sStepError naming the step. */
  private async guarded<T>(fallback: K8sStep, fn: () => Promise<T>): Promise<T> {
    try {
      return await step(fallback, fn);
    } catch (e) {
      const err = e as K8sStepError;
      if (this.createRequested && !this.diagnosticsDir) {
        this.opts.progress?.step(`step ${err.step} failed; collecting diagnostics`);
        // Diagnostics are best effort: failing to collect them must not hide the step that failed.
        try {
          this.diagnosticsDir = await this.session.diagnostics(this.profile.namespaces);
          await this.cleanupRunner.run(this.kind(['export', 'logs', join(this.diagnosticsDir, 'kind-logs'), '--name', this.clusterName], 'diagnostics: kind node logs', { allowFailure: true, timeoutMs: 120_000 }));
        } catch (d) {
          this.opts.progress?.step(`collecting diagnostics failed too: ${(d as Error).message}`);
        }
      }
      throw new K8sStepError(err.step, err.cause, this.diagnosticsDir);
    }
  }

  async up(): Promise<void> {
    await this.upCluster();
    await this.guarded('create-workloads', () => this.session.createWorkloads(this.placement));
  }

  /**
   * The cluster with its CNI installed and ready, nothing of the run's own in it yet. `bench verify --backend
   * kind` builds its grid on exactly this; failures are K8sStepErrors with diagnostics, as for a run.
   */
  async upCluster(): Promise<void> {
    const v = this.versions;
    const cni = this.profile.cni;
    const r = this.opts.readiness ?? DEFAULT_READINESS;
    const bridge = this.profile.needsBridgePlugin ? await this.fetchBridgePlugin() : undefined;
    const config = renderKindConfig(cni, v, { workers: WORKERS, bridgePluginHostPath: bridge ? join(bridge, 'bridge') : undefined });
    validateManifests([config]);
    const install = planCniInstall(cni, { target: this.target, versions: v, clusterName: this.clusterName, policyMapCapacity: this.opts.config.policyMapCapacity });
    if (!this.runner.dryRun) {
      mkdirSync(this.opts.outDir, { recursive: true });
      ensurePrivateDir(this.kubeconfigDir);
      try {
        mkdirSync(RUN_LOCK_DIR, { recursive: true });
        writeFileSync(join(RUN_LOCK_DIR, `${this.opts.runId}.pid`), `${process.pid}\n`);
      } catch {
        // Not root: gc cannot tell this run is live, and says so when it lists clusters.
      }
    }
    await this.guarded('create-cluster', async () => {
      this.opts.progress?.step(`creating kind cluster ${this.clusterName} (${1 + WORKERS} nodes, ${v.kind.nodeImage.split('@')[0]})`);
      this.createRequested = true;
      await this.runner.run(this.kind(['create', 'cluster', '--name', this.clusterName, '--config', '-', '--kubeconfig', this.kubeconfig, '--wait', '0s'], 'create the kind cluster', { input: toYaml([config]), timeoutMs: 600_000 }));
    });
    const images = this.opts.preloadImages ?? [v.load.fortioImage, v.load.statImage];
    if (images.length) {
      await this.guarded('create-cluster', async () => {
        const provider = kindProvider();
        for (const image of images) {
          const have = await this.runner.run({ argv: [provider, 'image', 'inspect', '--format', '{{.Id}}', image], purpose: `is ${image} already on the host?`, allowFailure: true });
          if (this.runner.dryRun || have.exitCode !== 0) {
            await this.runner.run({ argv: [provider, 'pull', '--quiet', image], purpose: `pull ${image} once on the host (cached across a sweep)`, timeoutMs: 600_000 });
          }
        }
        await this.runner.run(this.kind(['load', 'docker-image', ...images, '--name', this.clusterName], 'load the images into every node (no registry pull per point)', { timeoutMs: 600_000 }));
      });
    }
    await this.guarded('install-cni', async () => {
      this.opts.progress?.step(`installing ${this.model.name}`);
      if (this.profile.needsBrNetfilter) {
        for (const c of planBrNetfilter(kindProvider(), kindNodeNames(this.clusterName, WORKERS).controlPlane)) await this.runner.run(c);
      }
      for (const c of install) await this.runner.run(c);
    });
    await this.guarded('wait-nodes-ready', () => this.runner.run(planNodesReady(this.target, r.nodesS)));
    await this.guarded('wait-cni-ready', async () => {
      for (const c of planCniReady(this.profile, this.target, r.cniS)) await this.runner.run(c);
    });
    await this.guarded('wait-dns-ready', () => this.runner.run(planDnsReady(this.target, r.dnsS)));
  }

  /** The worker nodes' names (kind names them from the cluster's). */
  get workerNodes(): string[] {
    return kindNodeNames(this.clusterName, WORKERS).workers;
  }

  private async fetchBridgePlugin(): Promise<string> {
    const f = planCniPluginsFetch(this.versions, this.opts.cacheDir ?? defaultCacheDir());
    if (!this.runner.dryRun && existsSync(join(f.dir, 'bridge'))) return f.dir;
    await step('fetch-cni-plugins', async () => {
      if (!this.runner.dryRun) mkdirSync(join(f.dir, '..'), { recursive: true });
      const [download, sum, ...unpack] = f.commands;
      await this.runner.run(download!);
      await this.runner.run(sum!);
      if (!this.runner.dryRun) verifySha256File(f.tgz, `${f.tgz}.sha256`);
      for (const c of unpack) await this.runner.run(c);
    });
    return f.dir;
  }

  installPolicies(set: PolicySet): Promise<PolicyInstallReport> {
    return this.guarded('apply-policies', () => this.session.installPolicies(set));
  }

  measure(metric: MetricName, settings: MeasureSettings): Promise<Omit<MetricResult, 'summary'>> {
    return this.guarded('measure', () => this.session.measure(metric, settings));
  }

  /** Deletes the cluster (and with it everything the run made). Idempotent; a no-op if nothing was created. */
  async down(): Promise<void> {
    if (this.downDone || !this.createRequested) return;
    this.downDone = true;
    this.opts.progress?.step(`deleting kind cluster ${this.clusterName}`);
    await deleteKindCluster(this.cleanupRunner, this.clusterName, this.kubeconfig);
    if (!this.cleanupRunner.dryRun) {
      rmSync(join(RUN_LOCK_DIR, `${this.opts.runId}.pid`), { force: true });
      rmSync(this.kubeconfigDir, { recursive: true, force: true });
    }
  }

  keepInstructions(): string[] {
    const k = this.kubeconfig;
    return [
      `left up: kind cluster ${this.clusterName} (run id ${this.opts.runId})`,
      `  kubectl --kubeconfig ${k} get pods -A -o wide`,
      `  kubectl --kubeconfig ${k} -n ${this.session.names.clientNamespace} exec -it bench-client -c fortio -- fortio load -n 100 ${this.session.url}`,
      `remove with: kind delete cluster --name ${this.clusterName} --kubeconfig ${k}   (or: bench gc --backend kind)`,
    ];
  }
}

// ---- gc ----

export interface KindLeftover {
  cluster: string;
  runId: string;
  /** Its run's process is still alive (only known when the run could write its lock file). */
  live: boolean;
}

export async function findKindLeftovers(runner: Runner, lockDir = RUN_LOCK_DIR): Promise<KindLeftover[]> {
  const r = await runner.run({ argv: ['kind', 'get', 'clusters'], purpose: 'list kind clusters', allowFailure: true });
  if (r.exitCode !== 0) return [];
  const live = liveRuns(lockDir);
  return r.stdout
    .split('\n')
    .map((l) => l.trim())
    .flatMap((name) => {
      const m = KIND_CLUSTER_RE.exec(name);
      return m ? [{ cluster: name, runId: m[1]!, live: live.has(m[1]!) }] : [];
    });
}

/**
 * `kind delete cluster` also removes the cluster's entry from a kubeconfig; it is always given one explicitly
 * (the run's own file, or for gc a scratch file) so the user's ~/.kube/config is never rewritten.
 */
export async function deleteKindCluster(runner: Runner, cluster: string, kubeconfig = join(tmpdir(), `${cluster}.gc.kubeconfig`)): Promise<void> {
  if (!KIND_CLUSTER_RE.test(cluster)) throw new Error(`refusing to delete kind cluster '${cluster}': not a cni-bench cluster (cb-<runid>)`);
  await runner.run({ argv: ['kind', 'delete', 'cluster', '--name', cluster, '--kubeconfig', kubeconfig], purpose: `delete kind cluster ${cluster}`, timeoutMs: 300_000 });
  // gc of a killed run: its kubeconfig (outside the results) goes with its cluster.
  const runId = KIND_CLUSTER_RE.exec(cluster)![1]!;
  if (!runner.dryRun) rmSync(defaultKubeconfigDir(runId), { recursive: true, force: true });
}

export type { KindCni };
