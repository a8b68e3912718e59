// Every backend, described as data: what it needs from the CLI, which CNIs it runs, the tools it calls, its verify
// defaults, how it removes leftovers, how it builds a verify grid, and how it is constructed. The one place that
// knows every backend class; the CLI reads these descriptors instead of branching on a backend's name.
import type { BackendName, CniName, RunConfig } from '../config/schema.js';
import type { Runner } from '../exec/runner.js';
import type { BenchBackend, Progress } from './types.js';
import type { VerifyGrid } from '../verify/run.js';
import { CNI_CATALOGUE } from '../config/cnis.js';
import { LOCAL_MODELS } from './local/models.js';
import { CNI_PROFILES } from './k8s/cni.js';
import type { K8sBackend } from './k8s/backend.js';
import { KindBackend, type KindBackendOptions } from './kind/backend.js';
import { ClusterBackend } from './cluster/backend.js';

export interface BackendContext {
  config: RunConfig;
  backend: BackendName;
  runId: string;
  /** Executes (or, in dry-run, records) commands; cancelled by `signal`. */
  runner: Runner;
  /** For teardown after cancellation. */
  cleanupRunner?: Runner;
  signal?: AbortSignal;
  progress?: Progress;
  /** The run's results directory (diagnostics go here). */
  outDir: string;
}

export interface GcOptions {
  /** Only this run's leftovers. */
  run?: string;
  force: boolean;
  dryRun: boolean;
}

export interface ClusterGridContext {
  cni: CniName;
  runId: string;
  outDir: string;
  context?: string;
  kubeconfig?: string;
  keep?: boolean;
  runner: Runner;
  cleanupRunner: Runner;
  signal?: AbortSignal;
  progress?: Progress;
  /** kind: where downloaded CNI plugins are cached, and where the cluster's kubeconfig goes (tests). */
  cacheDir?: string;
  kubeconfigDir?: string;
  readiness?: { nodesS: number; cniS: number; dnsS: number };
}

/** What a backend says about a CNI it runs. */
export interface CniCapabilities {
  /** Does this data plane enforce NetworkPolicy at all? */
  enforcesPolicy: boolean;
  /** One line naming what really runs, for results and reports. */
  description: string;
}

/** A tool a backend calls: `bench doctor` checks it, and a backend checks the ones it needs before it starts. */
export interface ToolCheck {
  /** How `bench doctor` names it. */
  name: string;
  /** A command that succeeds when it is there (and prints its version). */
  argv: string[];
  fix: string;
  /** What the refusal names when it is missing before a start; absent: `bench doctor` only. */
  needed?: string;
}

const APT = 'apt-get update && apt-get install -y';
const KUBECTL: ToolCheck = { name: 'kubectl', argv: ['kubectl', 'version', '--client'], fix: 'install kubectl: https://kubernetes.io/docs/tasks/tools/', needed: 'kubectl' };

export interface BackendDescriptor {
  name: BackendName;
  /** The CNIs it can run today (the local model table, or the real CNIs' profiles); others fail validation. */
  cnis: Readonly<Partial<Record<CniName, CniCapabilities>>>;
  /** Why it does not run a CNI it lacks. */
  unavailableReason: (cni: CniName) => string;
  /** The tools it calls, in the order `bench doctor` lists them. */
  tools: readonly ToolCheck[];
  /** Kubernetes backends: the backend itself, for a command that drives its session beyond a run (enforce). */
  k8sBackend?: (o: KindBackendOptions) => K8sBackend;
  /** Needs an explicit --context or --kubeconfig (it never guesses which cluster to use). */
  needsTarget: boolean;
  /** A real run executes dist/native/cb-probe on this machine, which must be built. */
  needsNativeProbe: boolean;
  /** `bench doctor` exits non-zero when this backend's checks fail (the one that needs no Docker or cluster). */
  doctorGate: boolean;
  /** Runs its probes in pods of a Kubernetes cluster (kind, cluster), not in this machine's namespaces. */
  onKubernetes: boolean;
  /** The cluster is this run's own (created and deleted by it), so bench may reconfigure it (e.g. switch agent metrics on). */
  ownsCluster: boolean;
  /** Probes run on this machine's kernel, so their CLOCK_MONOTONIC is this machine's (local; kind's nodes are containers on it). */
  sharesHostClock: boolean;
  verify: {
    /** The grid runs on a real cluster: --dry-run and --keep apply, the local-model flags do not, no `none`. */
    onCluster: boolean;
    /** Probe timeout and probes in flight: a real cluster answers through `kubectl exec` (upstream's 1 s). */
    timeoutMs: number;
    parallelism: number;
    /** The grid on a real cluster (the local grid is built by the command itself). */
    clusterGrid?: (o: ClusterGridContext) => Promise<VerifyGrid & { keepInstructions(): string[] }>;
  };
  /** `bench gc --backend <name>`: removes what killed runs left; returns the lines to print. */
  gc?: (o: GcOptions) => Promise<string[]>;
  /** Removes one dead run's leftovers before a sweep resumes. */
  removeRun?: (runId: string) => Promise<void>;
  create(ctx: BackendContext): Promise<BenchBackend>;
}

async function localGc(o: GcOptions): Promise<string[]> {
  const [{ collectGarbage }, { ExecRunner }] = await Promise.all([import('./local/gc.js'), import('../exec/runner.js')]);
  // Listing always runs for real (it changes nothing); --dry-run only holds back the kills and deletes.
  const report = await collectGarbage(new ExecRunner(), { only: o.run, force: o.force, dryRun: o.dryRun });
  const out: string[] = [];
  if (report.removed.length === 0) out.push('nothing to remove');
  for (const r of report.removed) {
    const what = [`${r.namespaces.length} namespaces`, ...(r.pins.length ? [`BPF pins ${r.pins.join(' ')}`] : []), ...(r.kept ? ['the --keep record'] : r.locks.length ? ['its stale lock'] : [])];
    out.push(`${o.dryRun ? 'would remove' : 'removed'} run ${r.runId}${r.kept ? ' (left up with --keep)' : ''}: ${what.join(', ')}`);
    for (const ns of r.namespaces) out.push(`  netns ${ns}`);
  }
  for (const id of report.skippedLive) out.push(`skipped run ${id}: its process is still running (use --force to remove anyway)`);
  return out;
}

async function kindGc(o: GcOptions): Promise<string[]> {
  const [{ findKindLeftovers, deleteKindCluster }, { ExecRunner }, { runResourceName }] = await Promise.all([import('./kind/gc.js'), import('../exec/runner.js'), import('../identity/run-id.js')]);
  const runner = new ExecRunner(); // listing is read-only, so it runs even with --dry-run
  const leftovers = (await findKindLeftovers(runner)).filter((l) => !o.run || l.cluster === runResourceName(o.run));
  const out: string[] = [];
  if (leftovers.length === 0) out.push('no kind clusters to remove');
  for (const l of leftovers) {
    if (l.live && !o.force) {
      out.push(`skipped kind cluster ${l.cluster}: its run is still going (use --force)`);
      continue;
    }
    if (!o.dryRun) await deleteKindCluster(runner, l.cluster);
    out.push(`${o.dryRun ? 'would remove' : 'removed'} kind cluster ${l.cluster}`);
  }
  return out;
}

const CLUSTER_VERIFY = { onCluster: true, timeoutMs: 1_000, parallelism: 8 } as const;

export const BACKEND_DESCRIPTORS: Readonly<Record<BackendName, BackendDescriptor>> = {
  local: {
    name: 'local',
    cnis: LOCAL_MODELS,
    unavailableReason: () => 'not available yet on this backend (no model in backends/local/models.ts)',
    tools: [
      { name: 'iproute2 (ip)', argv: ['ip', '-V'], fix: `${APT} iproute2` },
      { name: 'bridge', argv: ['bridge', '-V'], fix: `${APT} iproute2` },
      { name: 'tc', argv: ['tc', '-V'], fix: `${APT} iproute2` },
      { name: 'iptables', argv: ['iptables', '--version'], fix: `${APT} iptables` },
      { name: 'iptables-restore', argv: ['iptables-restore', '--version'], fix: `${APT} iptables` },
      { name: 'ipset', argv: ['ipset', '--version'], fix: `${APT} ipset` },
      { name: 'bpftool', argv: ['bpftool', 'version'], fix: `${APT} bpftool` },
      { name: 'clang', argv: ['clang', '--version'], fix: `${APT} clang llvm libbpf-dev` },
      { name: 'gcc', argv: ['gcc', '--version'], fix: `${APT} gcc` },
    ],
    needsTarget: false,
    needsNativeProbe: true,
    doctorGate: true,
    onKubernetes: false,
    ownsCluster: false,
    sharesHostClock: true,
    verify: { onCluster: false, timeoutMs: 300, parallelism: 32 },
    gc: localGc,
    removeRun: async (runId) => {
      const [{ collectGarbage }, { ExecRunner }] = await Promise.all([import('./local/gc.js'), import('../exec/runner.js')]);
      await collectGarbage(new ExecRunner(), { only: runId });
    },
    async create(ctx) {
      const { LocalBackend } = await import('./local/backend.js');
      if (!ctx.runner.dryRun) {
        const { assertProbeAvailable } = await import('../probe/native.js');
        assertProbeAvailable();
      }
      return new LocalBackend({ config: ctx.config, runId: ctx.runId, runner: ctx.runner, cleanupRunner: ctx.cleanupRunner, signal: ctx.signal, progress: ctx.progress });
    },
  },
  kind: {
    name: 'kind',
    cnis: CNI_PROFILES,
    unavailableReason: (cni) =>
      CNI_CATALOGUE[cni].floor
        ? 'not available on kind (a kind cluster without a CNI has no pod network; use --backend local for the no-CNI floor)'
        : 'not available on kind yet (no profile with its install recipe in backends/k8s/cni.ts; use --backend local)',
    tools: [
      { name: 'docker engine', argv: ['docker', 'info', '--format', '{{.ServerVersion}}'], fix: 'install Docker and start its engine (the client alone is not enough)', needed: 'a running Docker engine' },
      { name: 'kind', argv: ['kind', 'version'], fix: 'install kind: https://kind.sigs.k8s.io/docs/user/quick-start/#installation', needed: 'kind' },
      KUBECTL,
      { name: 'helm', argv: ['helm', 'version', '--short'], fix: 'install helm: https://helm.sh/docs/intro/install/' },
    ],
    k8sBackend: (o) => new KindBackend(o),
    needsTarget: false,
    needsNativeProbe: false,
    doctorGate: false,
    onKubernetes: true,
    ownsCluster: true,
    sharesHostClock: true,
    verify: {
      ...CLUSTER_VERIFY,
      async clusterGrid(o) {
        const [{ KindCluster }, { K8sVerifyGrid }, { loadVersions }, { DEFAULT_POLICY_MAP_CAPACITY }] = await Promise.all([
          import('./kind/provider.js'),
          import('../verify/k8s-grid.js'),
          import('./k8s/versions.js'),
          import('../config/schema.js'),
        ]);
        const versions = loadVersions();
        // The cluster is created and its CNI installed exactly as for `bench run --backend kind`.
        const provider = new KindCluster({ ...o, versions, policyMapCapacity: DEFAULT_POLICY_MAP_CAPACITY, preloadImages: [versions.verify.agnhostImage] });
        return new K8sVerifyGrid({ ...o, provider, versions });
      },
    },
    gc: kindGc,
    async create(ctx) {
      const { KindBackend } = await import('./kind/backend.js');
      return new KindBackend({ config: ctx.config, runId: ctx.runId, runner: ctx.runner, cleanupRunner: ctx.cleanupRunner, signal: ctx.signal, progress: ctx.progress, outDir: ctx.outDir });
    },
  },
  cluster: {
    name: 'cluster',
    cnis: CNI_PROFILES,
    unavailableReason: (cni) =>
      CNI_CATALOGUE[cni].floor ? 'not something an existing cluster can be detected to run' : 'not something bench can detect on a cluster yet (no profile in backends/k8s/cni.ts)',
    tools: [KUBECTL],
    k8sBackend: (o) => new ClusterBackend(o),
    needsTarget: true,
    needsNativeProbe: false,
    doctorGate: false,
    onKubernetes: true,
    ownsCluster: false,
    sharesHostClock: false,
    verify: {
      ...CLUSTER_VERIFY,
      async clusterGrid(o) {
        const [{ ExistingCluster }, { K8sVerifyGrid }] = await Promise.all([import('./cluster/provider.js'), import('../verify/k8s-grid.js')]);
        const provider = new ExistingCluster({ ...o, who: 'verify on the cluster backend' });
        return new K8sVerifyGrid({ ...o, provider });
      },
    },
    async create(ctx) {
      const { ClusterBackend } = await import('./cluster/backend.js');
      return new ClusterBackend({ config: ctx.config, runId: ctx.runId, runner: ctx.runner, cleanupRunner: ctx.cleanupRunner, signal: ctx.signal, progress: ctx.progress, outDir: ctx.outDir });
    },
  },
};

/** The descriptor of a backend name read from a flag or a file; undefined for a name that is none. */
export function backendDescriptor(name: string): BackendDescriptor | undefined {
  return (BACKEND_DESCRIPTORS as Partial<Record<string, BackendDescriptor>>)[name];
}

export function createBackend(ctx: BackendContext): Promise<BenchBackend> {
  return BACKEND_DESCRIPTORS[ctx.backend].create(ctx);
}
