// The kind provider: a throw-away multi-node kind cluster per run with a real CNI installed from the pinned inputs
// in clusters/versions.yaml, deleted again on release. `bench run --backend kind` and `bench verify --backend
// kind` bring it up the same way; what they put on it is theirs.
import { createHash } from 'node:crypto';
import { existsSync, lstatSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { homedir, tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import type { KubeProxyMode } from '../../config/cnis.js';
import type { CniName } from '../../config/schema.js';
import type { CommandSpec, Runner } from '../../exec/runner.js';
import { RUN_LOCK_DIR } from '../../identity/locks.js';
import { RUN_RESOURCE_RE, runResourceName } from '../../identity/run-id.js';
import type { Progress } from '../types.js';
import { DEFAULT_READINESS, cniProfile, planCniInstall, planCniReady, planDnsReady, planNodesReady, type CniProfile, type InstallOptions, type ReadinessTimeouts } from '../k8s/cni.js';
import { BenchError } from '../../errors.js';
import { step, type K8sStep, type StepGuard } from '../k8s/errors.js';
import type { KubeTarget } from '../k8s/kubectl.js';
import { KIND_PEER_POD_CAP, kindNodeNames, renderKindConfig } from '../k8s/manifests.js';
import type { ClusterProvider, KeepNote, ProviderDescription, ProviderInfo, ProvisionedCluster } from '../k8s/provider.js';
import { validateManifests } from '../k8s/validate.js';
import type { Versions } from '../k8s/versions.js';
import { toYaml } from '../k8s/yaml.js';
import {
  controlPlaneAddressFrom,
  controlPlaneAddressPlaceholder,
  felixIptablesFlavour,
  kindProvider,
  planBrNetfilter,
  planControlPlaneAddress,
  planFelixIptablesRead,
  planImageLoad,
} from './node-plans.js';


/** A cni-bench kind cluster: `cb-<run-id>`; `bench gc --backend kind` finds leftovers by it. */
export const KIND_CLUSTER_RE = RUN_RESOURCE_RE;
export const kindClusterName = (runId: string) => runResourceName(runId);
export const KIND_WORKERS = 2;

function goArch(): string {
  return process.arch === 'x64' ? 'amd64' : process.arch;
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
    throw new BenchError('usage', `${dir}: not a private directory of this user (owner ${st.uid}, mode ${(st.mode & 0o777).toString(8)}); remove it or set XDG_RUNTIME_DIR`);
  }
}

export function defaultKubeconfigDir(runId: string): string {
  return join(process.env.XDG_RUNTIME_DIR || tmpdir(), `cni-bench-${runId}`);
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
    throw new BenchError('command', `${file}: sha256 ${got} does not match the published ${want ?? '(empty)'}; removed it, run again to re-download`);
  }
}

/**
 * `kind delete cluster` also removes the cluster's entry from a kubeconfig; it is always given one explicitly
 * (the run's own file, or for gc a scratch file) so the user's ~/.kube/config is never rewritten.
 */
export async function deleteKindCluster(runner: Runner, cluster: string, kubeconfig = join(tmpdir(), `${cluster}.gc.kubeconfig`)): Promise<void> {
  if (!KIND_CLUSTER_RE.test(cluster)) throw new BenchError('usage', `refusing to delete kind cluster '${cluster}': not a cni-bench cluster (cb-<runid>)`);
  await runner.run({ argv: ['kind', 'delete', 'cluster', '--name', cluster, '--kubeconfig', kubeconfig], purpose: `delete kind cluster ${cluster}`, timeoutMs: 300_000 });
  // gc of a killed run: its kubeconfig (outside the results) goes with its cluster.
  const runId = KIND_CLUSTER_RE.exec(cluster)![1]!;
  if (!runner.dryRun) rmSync(defaultKubeconfigDir(runId), { recursive: true, force: true });
}

export interface KindClusterOptions {
  cni: CniName;
  runId: string;
  runner: Runner;
  /** Not cancellable: deletes the cluster after Ctrl-C. */
  cleanupRunner: Runner;
  versions: Versions;
  /** The run's results directory (created before the cluster). */
  outDir: string;
  /** --policy-map-capacity, for Cilium's bpf.policyMapMax. */
  policyMapCapacity: number;
  progress?: Progress;
  readiness?: ReadinessTimeouts;
  /** Where downloaded CNI plugins are cached (default $XDG_CACHE_HOME or ~/.cache, then cni-bench). */
  cacheDir?: string;
  /**
   * Where the cluster's kubeconfig goes: outside the results directory, so uploaded results never carry cluster
   * credentials. Default $XDG_RUNTIME_DIR (or the temp directory)/cni-bench-<runId>; removed with the cluster.
   */
  kubeconfigDir?: string;
  /**
   * Images pulled once on the host (the engine's cache keeps them across the points of a sweep), saved by the engine
   * and loaded into the nodes with `kind load image-archive`, so no point pulls them from a registry again.
   */
  preloadImages: string[];
  /** The container engine kind drives (default: KIND_EXPERIMENTAL_PROVIDER's, see kindProvider). */
  engine?: string;
  /**
   * --kube-proxy: kind's networking.kubeProxyMode beside a CNI that runs with kube-proxy ("nftables" since kind
   * v0.23.0, pkg/apis/config/v1alpha4/types.go NFTablesProxyMode); ignored where the profile replaces kube-proxy.
   */
  kubeProxy?: KubeProxyMode;
}

export class KindCluster implements ClusterProvider {
  readonly name = 'kind' as const;
  readonly clusterName: string;
  readonly kubeconfig: string;
  readonly target: KubeTarget;
  readonly profile: CniProfile;
  readonly info: ProviderInfo;
  private readonly kubeconfigDir: string;
  private readonly engine: string;
  private createRequested = false;
  private released = false;

  constructor(private readonly o: KindClusterOptions) {
    this.profile = cniProfile(o.cni);
    this.clusterName = kindClusterName(o.runId);
    // Its own kubeconfig file: kind writes the cluster's credentials there and nowhere else (not in the results).
    this.kubeconfigDir = resolve(o.kubeconfigDir ?? defaultKubeconfigDir(o.runId));
    this.kubeconfig = join(this.kubeconfigDir, 'kubeconfig');
    this.target = { kubeconfig: this.kubeconfig };
    this.engine = o.engine ?? kindProvider();
    this.info = {
      deletesCluster: true,
      sharedKernel: true,
      nodeCgroups: { provider: this.engine },
      peerPodCap: KIND_PEER_POD_CAP,
      // Over both workers whatever the placement: with same-node placement one node would otherwise hold all peers.
      peerNodes: this.workerNodes,
      nodes: 1 + KIND_WORKERS,
      diagnosticNamespaces: this.profile.namespaces,
      kubeProxy: this.kubeProxyMode ?? 'iptables',
    };
  }

  /** kind's kubeProxyMode for this run: the profile's ('none', 'nftables'), else --kube-proxy, else kind's default (unset: iptables). */
  get kubeProxyMode(): 'iptables' | 'nftables' | 'none' | undefined {
    return this.profile.kubeProxyMode === 'none' ? 'none' : (this.o.kubeProxy ?? this.profile.kubeProxyMode);
  }

  /** The worker nodes' names (kind names them from the cluster's). */
  get workerNodes(): string[] {
    return kindNodeNames(this.clusterName, KIND_WORKERS).workers;
  }

  private kind(args: string[], purpose: string, extra: Partial<CommandSpec> = {}): CommandSpec {
    return { argv: ['kind', ...args], purpose, ...extra };
  }

  describe(): ProviderDescription {
    const v = this.o.versions;
    return {
      name: `${this.profile.displayName} ${this.profile.version(v)} (kind)`,
      runs: `${this.profile.description}, on a ${1 + KIND_WORKERS}-node kind cluster (${v.kind.nodeImage.split('@')[0]})`,
      runsBrief: `${this.profile.description}, on a kind cluster`,
    };
  }

  /** The cluster with its CNI installed and ready, nothing of the consumer's in it yet. */
  async provision(guard: StepGuard): Promise<ProvisionedCluster> {
    const v = this.o.versions;
    const runner = this.o.runner;
    const r = this.o.readiness ?? DEFAULT_READINESS;
    const nodes = kindNodeNames(this.clusterName, KIND_WORKERS);
    const bridge = this.profile.nodeBinaries.includes('bridge') ? await this.fetchBridgePlugin() : undefined;
    const config = renderKindConfig({ ...this.profile, kubeProxyMode: this.kubeProxyMode }, v, { workers: KIND_WORKERS, bridgePluginHostPath: bridge ? join(bridge, 'bridge') : undefined });
    validateManifests([config]);
    const installFor = (controlPlaneAddress?: string): InstallOptions => ({ target: this.target, versions: v, clusterName: this.clusterName, policyMapCapacity: this.o.policyMapCapacity, controlPlaneAddress });
    // Rendered (and so validated) before anything is created; rendered again with the real address after.
    planCniInstall(this.profile.cni, installFor(controlPlaneAddressPlaceholder(nodes.controlPlane)));
    if (!runner.dryRun) {
      mkdirSync(this.o.outDir, { recursive: true });
      ensurePrivateDir(this.kubeconfigDir);
      try {
        mkdirSync(RUN_LOCK_DIR, { recursive: true });
        writeFileSync(join(RUN_LOCK_DIR, `${this.o.runId}.pid`), `${process.pid}\n`);
      } catch {
        // Not root: gc cannot tell this run is live, and says so when it lists clusters.
      }
    }
    await guard.run('create-cluster', async () => {
      this.o.progress?.step(`creating kind cluster ${this.clusterName} (${1 + KIND_WORKERS} nodes, ${v.kind.nodeImage.split('@')[0]})`);
      this.createRequested = true;
      await runner.run(this.kind(['create', 'cluster', '--name', this.clusterName, '--config', '-', '--kubeconfig', this.kubeconfig, '--wait', '0s'], 'create the kind cluster', { input: toYaml([config]), timeoutMs: 600_000 }));
    });
    if (this.o.preloadImages.length) await guard.run('create-cluster', () => this.loadImages(this.o.preloadImages));
    await guard.run('install-cni', async () => {
      this.o.progress?.step(`installing ${this.describe().name}`);
      if (this.profile.needsBrNetfilter) {
        for (const c of planBrNetfilter(this.engine, nodes.controlPlane)) await runner.run(c);
      }
      let address: string | undefined;
      if (this.profile.apiServerByAddress) {
        const found = await runner.run(planControlPlaneAddress(this.target, nodes.controlPlane));
        address = runner.dryRun ? controlPlaneAddressPlaceholder(nodes.controlPlane) : controlPlaneAddressFrom(found.stdout, nodes.controlPlane);
      }
      for (const c of planCniInstall(this.profile.cni, installFor(address))) await runner.run(c);
    });
    await guard.run('wait-nodes-ready', () => runner.run(planNodesReady(this.target, r.nodesS)));
    await guard.run('wait-cni-ready', async () => {
      for (const c of planCniReady(this.profile, this.target, r.cniS)) await runner.run(c);
    });
    await guard.run('wait-dns-ready', () => runner.run(planDnsReady(this.target, r.dnsS)));
    const workers = nodes.workers;
    const prefix = this.profile.felixIptablesChains;
    const modelState = prefix ? await guard.run('wait-cni-ready', () => this.felixIptables(prefix, workers[0]!)) : undefined;
    return {
      agents: [...this.profile.agents],
      modelState,
      place: (placement) => ({ placement: { serverNode: workers[0]!, clientNode: placement === 'same-node' ? workers[0]! : workers[1]! }, nodeCount: 1 + KIND_WORKERS }),
    };
  }

  /** Pulled once on the host if missing, saved by the engine kind drives, loaded into every node; the archives go again. */
  private async loadImages(images: readonly string[]): Promise<void> {
    const runner = this.o.runner;
    for (const image of images) {
      const have = await runner.run({ argv: [this.engine, 'image', 'inspect', '--format', '{{.Id}}', image], purpose: `is ${image} already on the host?`, allowFailure: true });
      if (runner.dryRun || have.exitCode !== 0) {
        await runner.run({ argv: [this.engine, 'pull', '--quiet', image], purpose: `pull ${image} once on the host (cached across a sweep)`, timeoutMs: 600_000 });
      }
    }
    // Beside the kubeconfig: private, and removed with the cluster (and by gc) if this process dies first.
    const dir = join(this.kubeconfigDir, 'images');
    const load = planImageLoad(this.engine, images, dir, this.clusterName);
    if (!runner.dryRun) mkdirSync(dir, { recursive: true, mode: 0o700 });
    try {
      for (const c of load.commands) await runner.run(c);
    } finally {
      if (!runner.dryRun) rmSync(dir, { recursive: true, force: true });
    }
  }

  /** Which iptables flavour Felix detected and wrote its chains with, for the result (a dry run reads nothing). */
  private async felixIptables(prefix: string, node: string): Promise<Record<string, string> | undefined> {
    const [nft, legacy] = planFelixIptablesRead(this.engine, node);
    const n = await this.o.runner.run(nft!);
    const l = await this.o.runner.run(legacy!);
    if (this.o.runner.dryRun) return undefined;
    return { ...felixIptablesFlavour(n.exitCode === 0 ? n.stdout : '', l.exitCode === 0 ? l.stdout : '', prefix, node) };
  }

  private async fetchBridgePlugin(): Promise<string> {
    const runner = this.o.runner;
    const f = planCniPluginsFetch(this.o.versions, this.o.cacheDir ?? defaultCacheDir());
    if (!runner.dryRun && existsSync(join(f.dir, 'bridge'))) return f.dir;
    await step('fetch-cni-plugins', async () => {
      if (!runner.dryRun) mkdirSync(join(f.dir, '..'), { recursive: true });
      const [download, sum, ...unpack] = f.commands;
      await runner.run(download!);
      await runner.run(sum!);
      if (!runner.dryRun) verifySha256File(f.tgz, `${f.tgz}.sha256`);
      for (const c of unpack) await runner.run(c);
    });
    return f.dir;
  }

  /** Once the create was asked for, a cluster (or what kind left of one) may be there to look at. */
  worthDiagnosing(_step: K8sStep): boolean {
    return this.createRequested;
  }

  async collectDiagnostics(dir: string): Promise<void> {
    await this.o.cleanupRunner.run(this.kind(['export', 'logs', join(dir, 'kind-logs'), '--name', this.clusterName], 'diagnostics: kind node logs', { allowFailure: true, timeoutMs: 120_000 }));
  }

  /** Deletes the cluster (and with it everything in it). Idempotent; a no-op if nothing was created. */
  async release(): Promise<void> {
    if (this.released || !this.createRequested) return;
    this.released = true;
    this.o.progress?.step(`deleting kind cluster ${this.clusterName}`);
    await deleteKindCluster(this.o.cleanupRunner, this.clusterName, this.kubeconfig);
    if (!this.o.cleanupRunner.dryRun) {
      rmSync(join(RUN_LOCK_DIR, `${this.o.runId}.pid`), { force: true });
      rmSync(this.kubeconfigDir, { recursive: true, force: true });
    }
  }

  keepInstructions(left: KeepNote): string[] {
    const k = this.kubeconfig;
    return [
      `left up: kind cluster ${this.clusterName} (run id ${this.o.runId})`,
      ...left.examples.map((e) => `  kubectl --kubeconfig ${k} ${e}`),
      `remove with: kind delete cluster --name ${this.clusterName} --kubeconfig ${k}   (or: bench gc --backend kind)`,
      ...(left.label ? [`  ${left.label}: ${left.namespaces.join(' ')}${left.note ? ` (${left.note})` : ''}`] : []),
    ];
  }
}
