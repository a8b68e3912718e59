// Every backend, described as data: what it needs from the CLI, which CNIs it runs, the tools it calls, its verify
// defaults, how it removes leftovers, and how its data plane is constructed — for any workload: the benchmark, the verification grid, the enforce
// topology. The one place that knows every backend class; the commands read these descriptors and never build a
// data plane themselves.
import { CNI_CATALOGUE } from '../config/cnis.js';
import { K8S_MAX_ENDPOINTS_PER_SERVICE, MAX_ENDPOINTS_PER_SERVICE, type BackendName, type CniName, type RunConfig } from '../config/schema.js';
import type { Runner } from '../exec/runner.js';
import { CNI_PROFILES } from './k8s/cni.js';
import { LOCAL_MODELS } from './local/models.js';
import type { Workload, WorkloadAddresses, WorkloadShape } from '../workload/workload.js';
import type { DataPlane, Progress } from './types.js';

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
  /** The kind of workload the data plane will carry (default: the benchmark). */
  shape?: WorkloadShape;
  /** kind: where downloaded CNI plugins are cached, and where the cluster's kubeconfig goes (tests). */
  cacheDir?: string;
  kubeconfigDir?: string;
  /** kind/cluster: enforcement-probe pacing (tests set 0). */
  probeIntervalMs?: number;
  /** Test seams of the enforce workload on kind/cluster. */
  enforce?: import('./k8s/deployment.js').EnforceTuning;
  /** kind/cluster, shape 'cluster': its policies change (bench enforce --workload). */
  workloadChanges?: boolean;
}

export interface GcOptions {
  /** Only this run's leftovers. */
  run?: string;
  force: boolean;
  dryRun: boolean;
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
  /**
   * Runs `--services` (a Service set and the CNI's service data plane under the probe), with at most this many
   * endpoints per Service; false where it does not.
   */
  services: false | { endpointsPerServiceMax: number };
  /** `bench enforce`'s Service changes (endpoint-removed, endpoint-added, service-added). */
  serviceChanges: boolean;
  /** `bench verify --services` (probes through each pod's Service). */
  verifyServices: boolean;
  verify: {
    /** The grid runs on a real cluster: --dry-run and --keep apply, the local-model flags do not, no `none`. */
    onCluster: boolean;
    /** Probe timeout and probes in flight: a real cluster answers through `kubectl exec` (upstream's 1 s). */
    timeoutMs: number;
    parallelism: number;
  };
  /** `bench gc --backend <name>`: removes what killed runs left; returns the lines to print. */
  gc?: (o: GcOptions) => Promise<string[]>;
  /** Removes one dead run's leftovers before a sweep resumes. */
  removeRun?: (runId: string) => Promise<void>;
  create(ctx: BackendContext): Promise<DataPlane>;
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

/** What a Kubernetes data plane is built with: the context, and the descriptor's own capabilities. */
function k8sOptions(ctx: BackendContext, d: Pick<BackendDescriptor, 'ownsCluster' | 'sharesHostClock'>) {
  return {
    config: ctx.config,
    runId: ctx.runId,
    shape: ctx.shape,
    runner: ctx.runner,
    cleanupRunner: ctx.cleanupRunner,
    signal: ctx.signal,
    progress: ctx.progress,
    outDir: ctx.outDir,
    ownsCluster: d.ownsCluster,
    sharesHostClock: d.sharesHostClock,
    probeIntervalMs: ctx.probeIntervalMs,
    enforce: ctx.enforce,
    workloadChanges: ctx.workloadChanges,
  };
}

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
    services: { endpointsPerServiceMax: MAX_ENDPOINTS_PER_SERVICE },
    serviceChanges: true,
    verifyServices: true,
    verify: { onCluster: false, timeoutMs: 300, parallelism: 32 },
    gc: async (o) => (await import('./local/backend.js')).gcLocal(o),
    removeRun: async (runId) => (await import('./local/backend.js')).removeLocalRun(runId),
    async create(ctx) {
      const { LocalBackend } = await import('./local/backend.js');
      if (!ctx.runner.dryRun) {
        const { assertProbeAvailable } = await import('../probe/native.js');
        assertProbeAvailable();
      }
      return new LocalBackend({ config: ctx.config, runId: ctx.runId, shape: ctx.shape, runner: ctx.runner, cleanupRunner: ctx.cleanupRunner, signal: ctx.signal, progress: ctx.progress });
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
    needsTarget: false,
    needsNativeProbe: false,
    doctorGate: false,
    onKubernetes: true,
    ownsCluster: true,
    sharesHostClock: true,
    services: { endpointsPerServiceMax: K8S_MAX_ENDPOINTS_PER_SERVICE },
    serviceChanges: true,
    verifyServices: false,
    verify: CLUSTER_VERIFY,
    gc: kindGc,
    async create(ctx) {
      const { KindBackend } = await import('./kind/backend.js');
      return new KindBackend({ ...k8sOptions(ctx, BACKEND_DESCRIPTORS.kind), cacheDir: ctx.cacheDir, kubeconfigDir: ctx.kubeconfigDir });
    },
  },
  cluster: {
    name: 'cluster',
    cnis: CNI_PROFILES,
    unavailableReason: (cni) =>
      CNI_CATALOGUE[cni].floor ? 'not something an existing cluster can be detected to run' : 'not something bench can detect on a cluster yet (no profile in backends/k8s/cni.ts)',
    tools: [KUBECTL],
    needsTarget: true,
    needsNativeProbe: false,
    doctorGate: false,
    onKubernetes: true,
    ownsCluster: false,
    sharesHostClock: false,
    services: { endpointsPerServiceMax: K8S_MAX_ENDPOINTS_PER_SERVICE },
    serviceChanges: true,
    verifyServices: false,
    verify: CLUSTER_VERIFY,
    async create(ctx) {
      const { ClusterBackend } = await import('./cluster/backend.js');
      return new ClusterBackend(k8sOptions(ctx, BACKEND_DESCRIPTORS.cluster));
    },
  },
};

/** The descriptor of a backend name read from a flag or a file; undefined for a name that is none. */
export function backendDescriptor(name: string): BackendDescriptor | undefined {
  return (BACKEND_DESCRIPTORS as Partial<Record<string, BackendDescriptor>>)[name];
}

/** The data plane of `ctx.backend`, ready to bring a workload up. */
export function createBackend(ctx: BackendContext): Promise<DataPlane> {
  return BACKEND_DESCRIPTORS[ctx.backend].create(ctx);
}

/**
 * Where the local backend puts a workload's pods and hosts, known before anything is up: a workload's address
 * templates (a verify case's `{{ x/a }}`) are checked against these on every backend.
 */
export async function plannedAddresses(workload: Workload): Promise<WorkloadAddresses> {
  const { layoutWorkload } = await import('./local/workload.js');
  return layoutWorkload(workload, { runId: 'check', model: { attachment: 'routed', hostIfPrefix: 'veth' } }).addresses;
}
