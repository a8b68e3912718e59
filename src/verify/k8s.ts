// The verification grid on a real cluster (`bench verify --backend kind|cluster`), run through the same case
// files as the local grid. As the upstream network-policy e2e suite builds it (kubernetes/kubernetes
// test/e2e/network/netpol): namespaces x, y, z — here cb-<runId>-x|y|z, labelled ns=x… and with the run label —
// holding pods a, b, c, one agnhost `serve-hostname` container per port and protocol (TCP and UDP on 80 and 81,
// container ports named serve-80-tcp… as on the local grid); probes are `kubectl exec … /agnhost connect`. The DNS
// endpoint is one of the cluster's own kube-dns pods in kube-system.
//
// Names: the runner, the evaluator and the output keep the case files' names (x/a, ns x), so matrices and
// JSON/JUnit read the same on every backend; this grid maps them onto the real namespaces at its boundary
// (policies rewritten in applyPolicies, `kubernetes.io/metadata.name` selectors included), a bijection the
// tests check against the evaluator with the real names.
//
// External hosts: not built on kind/cluster. A host outside the cluster that serves ports and routes to pod IPs
// does not exist there, and hostNetwork pods would be node addresses (traffic from a node to its own pods is
// allowed or not depending on the CNI, and ports 80/81 on a production node may be taken). Probes to and from
// ext1/ext2 are left out; their `{{ ext1 }}` templates resolve to TEST-NET-2 addresses (RFC 5737, routed
// nowhere), so ipBlock cases still apply and still decide every pod-to-pod probe.
//
// Exercised here: plans (dry run), manifests against their schemas, probe-output mapping, and the control flow
// with a scripted runner. Not exercised here: a real cluster (no Docker engine and no cluster on this machine).
import { resolve } from 'node:path';
import { runConfigSchema } from '../config/schema.js';
import { ExecRunner, type CommandResult, type CommandSpec, type Runner } from '../exec/runner.js';
import { ClusterTargetError, confirmCni, pickNodes, planFelixConfigurationRead } from '../backends/cluster/backend.js';
import { KindBackend } from '../backends/kind/backend.js';
import { DISPLAY_NAME, cniProfile, DEFAULT_READINESS, type AgentRef, type CniProfile, type ReadinessTimeouts } from '../backends/k8s/cni.js';
import { collectDiagnostics, planDiagnostics } from '../backends/k8s/diagnostics.js';
import { K8sStepError, step, type K8sStep } from '../backends/k8s/errors.js';
import { kubectl, waitSpec, type KubeTarget } from '../backends/k8s/kubectl.js';
import { RUN_LABEL, pinToNode, podSecurityLabels, type KindCni } from '../backends/k8s/manifests.js';
import { validateManifests } from '../backends/k8s/validate.js';
import { loadVersions, type Versions } from '../backends/k8s/versions.js';
import { toListJson, toYaml, type Manifest } from '../backends/k8s/yaml.js';
import type { ModelDescription, Progress } from '../backends/types.js';
import type { Inventory, LabelSelector, NetworkPolicy, NetworkPolicyPeer } from '../policy/types.js';
import type { VerifyCase } from './cases.js';
import type { Attempt } from './expect.js';
import { DNS_NAMESPACE, instantiatePolicies, planProbes, type EndpointId, type GridAddresses, type GridLayout, type GridPod, type ProbeSpec } from './grid.js';
import type { VerifyGrid } from './run.js';

export type K8sVerifyBackend = 'kind' | 'cluster';

const NAME_LABEL = 'kubernetes.io/metadata.name';
/** Stand-ins for the external hosts: TEST-NET-2 (RFC 5737), at the same offsets as the local grid's hosts. */
export const EXTERNAL_STANDIN_IPS: Readonly<Record<string, string>> = { ext1: '198.51.100.240', ext2: '198.51.100.241' };
export const DNS_SELECTOR = 'k8s-app=kube-dns';
/** A real agent programs policy asynchronously (Felix, the Cilium agent): seconds, not the local model's instant. */
export const K8S_READINESS_TIMEOUT_MS = 20_000;
/** What `kubectl exec` itself may add to a probe's own timeout (API server, kubelet, exec stream). */
const EXEC_OVERHEAD_MS = 30_000;

// ---- names ----

export interface GridNames {
  runId: string;
  runLabel: Record<string, string>;
  /** Case-file namespace (x) -> real namespace (cb-<runId>-x); the grid's namespaces only, not kube-system. */
  namespaceOf: Record<string, string>;
}

/**
 * The real name of a namespace a case names. Every one is the run's own cb-<runId>-<name> — the grid's, and any
 * other a case mentions (a policy in a namespace without pods, a selector naming one) — except kube-system, the
 * cluster's own, which holds the DNS pods.
 */
export function realNamespace(names: GridNames, ns: string): string {
  return ns === DNS_NAMESPACE ? ns : names.namespaceOf[ns] ?? `cb-${names.runId}-${ns}`;
}

export function gridNames(runId: string, layout: GridLayout): GridNames {
  const namespaceOf: Record<string, string> = {};
  for (const ns of layout.namespaces) if (ns.name !== DNS_NAMESPACE) namespaceOf[ns.name] = `cb-${runId}-${ns.name}`;
  return { runId, runLabel: { [RUN_LABEL]: runId }, namespaceOf };
}

/**
 * The grid as it is built on kind/cluster: no external hosts (see the file comment), and the grid namespaces
 * carrying the run label as they will on the cluster, so the evaluator sees the labels the CNI sees.
 */
export function k8sLayout(layout: GridLayout, runId: string): GridLayout {
  return {
    ...layout,
    namespaces: layout.namespaces.map((n) => (n.name === DNS_NAMESPACE ? { ...n, labels: { ...n.labels } } : { ...n, labels: { ...n.labels, [RUN_LABEL]: runId } })),
    pods: layout.pods.map((p) => ({ ...p, labels: { ...p.labels }, ports: p.ports.map((cp) => ({ ...cp })) })),
    externals: [],
  };
}

/** Cases to run on kind/cluster, and the ones left out because every probe they make involves an external host. */
export function casesForK8s(cases: readonly VerifyCase[], layout: GridLayout): { run: VerifyCase[]; skipped: Array<{ name: string; why: string }> } {
  const run: VerifyCase[] = [];
  const skipped: Array<{ name: string; why: string }> = [];
  for (const c of cases) {
    if (planProbes(layout, c.probes).length) run.push(c);
    else skipped.push({ name: c.name, why: 'every probe it makes goes to or from an external host, which the kind/cluster grid does not have' });
  }
  return { run, skipped };
}

// ---- policies: case-file names -> real names ----

function rewriteSelector(sel: LabelSelector | undefined, names: GridNames): LabelSelector | undefined {
  if (!sel) return sel;
  const map = (v: string) => realNamespace(names, v);
  const out: LabelSelector = {};
  if (sel.matchLabels) out.matchLabels = Object.fromEntries(Object.entries(sel.matchLabels).map(([k, v]) => [k, k === NAME_LABEL ? map(v) : v]));
  if (sel.matchExpressions) out.matchExpressions = sel.matchExpressions.map((e) => (e.key === NAME_LABEL && e.values ? { ...e, values: e.values.map(map) } : { ...e }));
  return out;
}

function rewritePeers(peers: NetworkPolicyPeer[] | undefined, names: GridNames): NetworkPolicyPeer[] | undefined {
  return peers?.map((p) => {
    const out: NetworkPolicyPeer = { ...p };
    // Only namespace selectors name namespaces; a pod label called kubernetes.io/metadata.name is just a label.
    if (p.namespaceSelector) out.namespaceSelector = rewriteSelector(p.namespaceSelector, names);
    return out;
  });
}

/**
 * A case's policies (templates already substituted) as they go to the cluster: in the run's own namespaces
 * (realNamespace), namespace names in namespaceSelectors mapped the same way (labels such as ns=x stay), and the
 * run label on each so the next case can delete them. Refuses a policy in kube-system: on a shared cluster it
 * would reach the cluster's own DNS pods.
 */
export function rewritePolicies(policies: readonly NetworkPolicy[], names: GridNames): NetworkPolicy[] {
  const outside = policies.filter((p) => p.metadata.namespace === DNS_NAMESPACE);
  if (outside.length) {
    throw new Error(`policies ${outside.map((p) => `${p.metadata.namespace}/${p.metadata.name}`).join(', ')} would apply to the cluster's own ${DNS_NAMESPACE}; on kind/cluster only the run's namespaces take policies`);
  }
  return policies.map((p) => {
    const copy = structuredClone(p) as NetworkPolicy;
    copy.metadata = { ...copy.metadata, namespace: realNamespace(names, p.metadata.namespace), labels: { ...p.metadata.labels, ...names.runLabel } };
    copy.spec.ingress = copy.spec.ingress?.map((r) => ({ ...r, from: rewritePeers(r.from, names) }));
    copy.spec.egress = copy.spec.egress?.map((r) => ({ ...r, to: rewritePeers(r.to, names) }));
    if (!copy.spec.ingress) delete copy.spec.ingress;
    if (!copy.spec.egress) delete copy.spec.egress;
    for (const r of [...(copy.spec.ingress ?? []), ...(copy.spec.egress ?? [])] as Array<{ from?: unknown; to?: unknown }>) {
      if ('from' in r && r.from === undefined) delete r.from;
      if ('to' in r && r.to === undefined) delete r.to;
    }
    return copy;
  });
}

/** The inventory with the real namespace names, as the CNI sees it (tests: the mapping must not change a verdict). */
export function realInventory(inventory: Inventory, names: GridNames): Inventory {
  const map = (ns: string) => realNamespace(names, ns);
  return {
    namespaces: inventory.namespaces.map((n) => ({ name: map(n.name), labels: { ...n.labels } })),
    pods: inventory.pods.map((p) => ({ ...p, namespace: map(p.namespace), labels: { ...p.labels }, ports: p.ports.map((cp) => ({ ...cp })) })),
  };
}

// ---- manifests ----

export const containerName = (port: number, protocol: string) => `cont-${port}-${protocol.toLowerCase()}`;

export function renderGridNamespaces(layout: GridLayout, names: GridNames): Manifest[] {
  return layout.namespaces
    .filter((n) => n.name in names.namespaceOf)
    // baseline, as the upstream netpol suite sets for its namespaces (f.NamespacePodSecurityLevel =
    // admissionapi.LevelBaseline in test/e2e/network/netpol): agnhost serves ports 80/81, which needs root.
    .map((n) => ({ apiVersion: 'v1', kind: 'Namespace', metadata: { name: names.namespaceOf[n.name]!, labels: { ...n.labels, ...names.runLabel, ...podSecurityLabels('baseline') } } }));
}

/** A namespace without pods that a case's policies live in (labelled like the grid's: ns=<name>, the run label). */
export function renderExtraNamespace(ns: string, names: GridNames): Manifest {
  return { apiVersion: 'v1', kind: 'Namespace', metadata: { name: realNamespace(names, ns), labels: { ns, ...names.runLabel, ...podSecurityLabels('baseline') } } };
}

/** The grid's pods (not the DNS pod: that one is the cluster's). `nodes[i]` is where layout node i lands. */
export function renderGridPods(layout: GridLayout, names: GridNames, nodes: readonly string[], image: string): Manifest[] {
  return layout.pods
    .filter((p) => p.namespace in names.namespaceOf)
    .map((p) => ({
      apiVersion: 'v1',
      kind: 'Pod',
      // Exactly the layout's labels: the evaluator resolves selectors against those.
      metadata: { name: p.name, namespace: names.namespaceOf[p.namespace]!, labels: { ...p.labels } },
      spec: {
        automountServiceAccountToken: false,
        enableServiceLinks: false,
        terminationGracePeriodSeconds: 0,
        affinity: pinToNode(nodes[p.node % nodes.length]!),
        securityContext: { seccompProfile: { type: 'RuntimeDefault' } },
        // One container per port and protocol, as upstream's model.go: a port's server can fail alone.
        containers: p.ports.map((cp) => ({
          name: containerName(cp.containerPort, cp.protocol),
          image,
          imagePullPolicy: 'IfNotPresent',
          command: ['/agnhost', 'serve-hostname', cp.protocol === 'UDP' ? '--udp' : '--tcp', '--http=false', '--port', String(cp.containerPort)],
          ports: [{ name: cp.name, containerPort: cp.containerPort, protocol: cp.protocol }],
          securityContext: { allowPrivilegeEscalation: false },
        })),
      },
    }));
}

// ---- reading the cluster ----

interface PodList {
  items?: Array<{
    metadata?: { name?: string; namespace?: string; labels?: Record<string, string>; deletionTimestamp?: string };
    spec?: { nodeName?: string; containers?: Array<{ ports?: Array<{ name?: string; containerPort?: number; protocol?: string }> }> };
    status?: { phase?: string; podIP?: string; conditions?: Array<{ type?: string; status?: string }> };
  }>;
}

const ready = (p: NonNullable<PodList['items']>[number]) =>
  !p.metadata?.deletionTimestamp && p.status?.phase === 'Running' && Boolean(p.status?.podIP) && (p.status?.conditions ?? []).some((c) => c.type === 'Ready' && c.status === 'True');

/** IP and node of each grid pod of one namespace (`kubectl get pods -o json`). */
export function parseGridPods(json: string, namespace: string, expected: readonly GridPod[]): { ips: Record<EndpointId, string>; nodeOf: Record<EndpointId, string> } {
  const items = (JSON.parse(json) as PodList).items ?? [];
  const ips: Record<EndpointId, string> = {};
  const nodeOf: Record<EndpointId, string> = {};
  for (const want of expected) {
    const pod = items.find((i) => i.metadata?.name === want.name);
    if (!pod || !ready(pod) || !pod.spec?.nodeName) throw new Error(`grid pod ${namespace}/${want.name} is not running and ready with an IP`);
    ips[want.id] = pod.status!.podIP!;
    nodeOf[want.id] = pod.spec.nodeName;
  }
  return { ips, nodeOf };
}

/**
 * One of the cluster's DNS pods (first ready one by name). It must carry the layout's labels (the selector
 * guarantees that) and serve the layout's ports, or the evaluator would reason about a pod that is not there.
 */
export function pickDnsPod(json: string, dns: GridPod): { ip: string; node: string; name: string } {
  const items = ((JSON.parse(json) as PodList).items ?? []).filter(ready).sort((a, b) => (a.metadata?.name ?? '').localeCompare(b.metadata?.name ?? ''));
  const pod = items[0];
  if (!pod?.spec?.nodeName) throw new Error(`no ready pod labelled ${DNS_SELECTOR} in ${DNS_NAMESPACE}: the DNS cases need the cluster's DNS pods`);
  const served = (pod.spec.containers ?? []).flatMap((c) => c.ports ?? []);
  const missing = dns.ports.filter((cp) => !served.some((s) => s.containerPort === cp.containerPort && (s.protocol ?? 'TCP') === cp.protocol && s.name === cp.name));
  if (missing.length) {
    throw new Error(`DNS pod ${DNS_NAMESPACE}/${pod.metadata?.name} does not declare the ports the cases assume: ${missing.map((m) => `${m.name} ${m.containerPort}/${m.protocol}`).join(', ')}`);
  }
  return { ip: pod.status!.podIP!, node: pod.spec.nodeName, name: pod.metadata!.name! };
}

// ---- probes ----

export interface ProbeCommandInput {
  target: KubeTarget;
  namespace: string;
  pod: string;
  container: string;
  ip: string;
  port: number;
  protocol: 'TCP' | 'UDP' | 'SCTP';
  timeoutMs: number;
  /** The destination is a DNS server: UDP is probed with a real query (see planProbeCommand). */
  dns: boolean;
}

export type ProbeTool = 'agnhost' | 'dig';

/**
 * `kubectl exec` into the source pod. TCP and UDP to grid pods: `/agnhost connect ip:port --timeout=… --protocol=…`
 * as upstream's kubemanager.go. UDP to a DNS server: `dig`, because agnhost's UDP mode sends "hostname\n" and
 * waits for an answer, which a DNS server never gives to a 9-byte message that is not DNS.
 */
export function planProbeCommand(p: ProbeCommandInput): { spec: CommandSpec; tool: ProbeTool } {
  const hostPort = p.ip.includes(':') ? `[${p.ip}]:${p.port}` : `${p.ip}:${p.port}`;
  const exec = ['exec', '-n', p.namespace, p.pod, '-c', p.container, '--'];
  const opts = { allowFailure: true, timeoutMs: p.timeoutMs + EXEC_OVERHEAD_MS };
  if (p.dns && p.protocol === 'UDP') {
    // dig's +time is whole seconds, at least 1. +search: the source pod's search list makes the first name an
    // in-cluster one, which the cluster DNS answers itself (NXDOMAIN counts: any answer is a connection).
    const seconds = Math.max(1, Math.ceil(p.timeoutMs / 1000));
    const argv = ['dig', '+search', '+tries=1', `+time=${seconds}`, `-p`, String(p.port), `@${p.ip}`, 'kubernetes.default'];
    return { spec: kubectl(p.target, [...exec, ...argv], `probe ${p.namespace}/${p.pod} -> ${hostPort} UDP (DNS query)`, opts), tool: 'dig' };
  }
  const argv = ['/agnhost', 'connect', hostPort, `--timeout=${p.timeoutMs / 1000}s`, `--protocol=${p.protocol.toLowerCase()}`];
  return { spec: kubectl(p.target, [...exec, ...argv], `probe ${p.namespace}/${p.pod} -> ${hostPort} ${p.protocol}`, opts), tool: 'agnhost' };
}

export class ProbeError extends Error {
  constructor(message: string, readonly result: CommandResult) {
    super(message);
    this.name = 'ProbeError';
  }
}

const tail = (r: CommandResult) => `${r.stderr}\n${r.stdout}`.trim().split('\n').slice(-3).join(' | ');

/**
 * A probe's verdict from its exit status and output. agnhost connect (its connect.go) exits 0 when connected;
 * otherwise 1 with a fixed prefix on stderr: TIMEOUT and REFUSED are verdicts, as is OTHER with "no route to
 * host" (an iptables REJECT with icmp-host-prohibited); DNS, UNKNOWN and any other OTHER say nothing about the
 * policies. kubectl's own failures (pod gone, container not found, API unreachable) also exit 1 but carry none
 * of those prefixes. dig exits 0 on any answer and 9 when no server replied. Anything else throws: no verdict.
 */
export function parseProbeResult(r: CommandResult, tool: ProbeTool): Attempt {
  if (r.timedOut) throw new ProbeError(`kubectl exec did not return in ${Math.round(r.durationMs)} ms: ${tail(r)}`, r);
  if (r.exitCode === 0) return { outcome: 'connected', reason: tool === 'dig' ? 'dns answer' : 'connected' };
  if (tool === 'dig') {
    if (r.exitCode === 9) return { outcome: 'blocked', reason: /refused/i.test(`${r.stdout}${r.stderr}`) ? 'refused (no DNS answer)' : 'timeout (no DNS answer)' };
    throw new ProbeError(`dig gave no verdict (exit ${r.exitCode}): ${tail(r)}`, r);
  }
  if (r.exitCode === 1) {
    const line = r.stderr
      .split('\n')
      .map((l) => l.trim())
      .filter((l) => /^(TIMEOUT|REFUSED|OTHER|DNS|UNKNOWN)\b/.test(l))
      .pop();
    if (line?.startsWith('TIMEOUT')) return { outcome: 'blocked', reason: 'timeout' };
    if (line?.startsWith('REFUSED')) return { outcome: 'blocked', reason: 'refused' };
    if (line?.startsWith('OTHER') && /no route to host|host is unreachable/.test(line)) return { outcome: 'blocked', reason: 'unreachable (ICMP)' };
    if (line) throw new ProbeError(`agnhost connect gave no verdict: ${line}`, r);
  }
  throw new ProbeError(`kubectl exec failed (exit ${r.exitCode}), no probe verdict: ${tail(r)}`, r);
}

// ---- the grid ----

export interface K8sVerifyGridOptions {
  backend: K8sVerifyBackend;
  cni: KindCni;
  runId: string;
  /** kind: the run's kubeconfig and diagnostics go here; cluster: diagnostics. */
  outDir: string;
  /** cluster: one of the two is required; never the current context implicitly. */
  context?: string;
  kubeconfig?: string;
  /** Leave the grid (cluster: namespaces; kind: the cluster) up after the run. */
  keep?: boolean;
  runner?: Runner;
  cleanupRunner?: Runner;
  signal?: AbortSignal;
  progress?: Progress;
  versions?: Versions;
  /** kind: where downloaded CNI plugins are cached. */
  cacheDir?: string;
  /** kind: where the cluster's kubeconfig goes (default outside the results, see KindBackendOptions). */
  kubeconfigDir?: string;
  readiness?: ReadinessTimeouts;
  /** How long the grid pods may take to become ready (image pull included). */
  podTimeoutS?: number;
}

export class K8sVerifyGrid implements VerifyGrid {
  readonly backend: K8sVerifyBackend;
  readonly cni: KindCni;
  readonly readinessTimeoutMs = K8S_READINESS_TIMEOUT_MS;
  readonly target: KubeTarget;
  private readonly profile: CniProfile;
  private agents: AgentRef[];
  private readonly kind?: KindBackend;
  private readonly versions: Versions;
  private readonly runner: Runner;
  private readonly cleanupRunner: Runner;
  private names?: GridNames;
  private layout?: GridLayout;
  private addresses?: GridAddresses;
  private detected: string[] = [];
  private namespacesRequested = false;
  /** Case-file names of the pod-less namespaces created for cases' policies. */
  private readonly extraNamespaces = new Set<string>();
  private downDone = false;
  private diagnosticsDir?: string;

  constructor(private readonly opts: K8sVerifyGridOptions) {
    this.backend = opts.backend;
    this.cni = opts.cni;
    this.profile = cniProfile(opts.cni);
    this.agents = [...this.profile.agents];
    this.versions = opts.versions ?? loadVersions();
    this.runner = opts.runner ?? new ExecRunner(opts.signal);
    this.cleanupRunner = opts.cleanupRunner ?? new ExecRunner();
    if (opts.backend === 'cluster') {
      if (!opts.context && !opts.kubeconfig) {
        throw new ClusterTargetError('verify on the cluster backend needs an explicit --context NAME or --kubeconfig FILE; it never uses the current context implicitly');
      }
      this.target = { kubeconfig: opts.kubeconfig, context: opts.context };
    } else {
      // The cluster is created and its CNI installed exactly as for `bench run --backend kind`.
      this.kind = new KindBackend({
        config: runConfigSchema.parse({ cni: opts.cni, policies: 0, backend: 'kind', out: opts.outDir }),
        runId: opts.runId,
        runner: this.runner,
        cleanupRunner: this.cleanupRunner,
        signal: opts.signal,
        progress: opts.progress,
        outDir: opts.outDir,
        versions: this.versions,
        cacheDir: opts.cacheDir,
        kubeconfigDir: opts.kubeconfigDir,
        readiness: opts.readiness,
        preloadImages: [this.versions.verify.agnhostImage],
      });
      this.target = this.kind.target;
    }
  }

  get model(): ModelDescription {
    const grid = `verification grid of agnhost pods (${this.versions.verify.agnhostImage})`;
    if (this.kind) return { name: this.kind.model.name, description: `${this.profile.description}, on a kind cluster; ${grid}`, enforcesPolicy: this.profile.enforcesPolicy };
    const where = this.target.context ? `context ${this.target.context}` : `kubeconfig ${this.target.kubeconfig}`;
    return {
      name: `${DISPLAY_NAME[this.cni]} (existing cluster)`,
      description: `${this.cni} as already installed on the cluster of ${where}${this.detected.length ? ` (detected: ${this.detected.join(', ')})` : ''}; ${grid}`,
      enforcesPolicy: this.profile.enforcesPolicy,
    };
  }

  private async guarded<T>(name: K8sStep, fn: () => Promise<T>): Promise<T> {
    try {
      return await step(name, fn);
    } catch (e) {
      const err = e as K8sStepError;
      if (!this.diagnosticsDir && !['check-context', 'detect-cni'].includes(err.step) && (this.namespacesRequested || this.kind)) {
        const namespaces = [...this.agents.map((a) => a.namespace), ...Object.values(this.names?.namespaceOf ?? {})];
        this.diagnosticsDir = await collectDiagnostics(this.cleanupRunner, resolve(this.opts.outDir, 'diagnostics'), planDiagnostics(this.target, { namespaces, agents: this.agents }));
      }
      throw new K8sStepError(err.step, err.cause, err.diagnosticsDir ?? this.diagnosticsDir);
    }
  }

  /** Two nodes to spread the grid over (one if the cluster has only one usable node). */
  private async clusterNodes(): Promise<string[]> {
    const t = this.target;
    const nodes = await this.guarded('check-context', () => this.runner.run(kubectl(t, ['get', 'nodes', '-o', 'json'], 'reach the cluster and list its nodes')));
    const ds = await this.guarded('detect-cni', () => this.runner.run(kubectl(t, ['get', 'daemonsets', '-A', '-o', 'json'], 'detect the CNI the cluster runs (DaemonSet pod templates, every namespace)')));
    const felix = await this.guarded('detect-cni', () => this.runner.run(planFelixConfigurationRead(t)));
    if (this.runner.dryRun) return ['<node-0>', '<node-1>'];
    await this.guarded('detect-cni', async () => {
      const mine = confirmCni(ds.stdout, nodes.stdout, felix, this.cni);
      this.detected = [mine.found];
      this.agents = mine.agents;
    });
    return this.guarded('check-context', async () => {
      try {
        const p = pickNodes(nodes.stdout, 'cross-node').placement;
        return [p.serverNode, p.clientNode];
      } catch {
        return [pickNodes(nodes.stdout, 'same-node').placement.serverNode];
      }
    });
  }

  async up(layout: GridLayout): Promise<GridAddresses> {
    if (layout.externals.length) throw new Error('the kind/cluster grid has no external hosts: build its layout with k8sLayout()');
    const names = gridNames(this.opts.runId, layout);
    this.names = names;
    this.layout = layout;
    let nodes: string[];
    if (this.kind) {
      await this.kind.upCluster();
      nodes = this.kind.workerNodes;
    } else {
      nodes = await this.clusterNodes();
    }
    const namespaces = renderGridNamespaces(layout, names);
    const pods = renderGridPods(layout, names, nodes, this.versions.verify.agnhostImage);
    validateManifests([...namespaces, ...pods]);
    const t = this.target;
    const real = Object.values(names.namespaceOf);
    await this.guarded('create-workloads', async () => {
      this.opts.progress?.step(`creating namespaces ${real.join(', ')} and ${pods.length} agnhost pods on ${[...new Set(nodes)].join(', ')}`);
      this.namespacesRequested = true;
      // `create`, not apply: a namespace of that name that is not ours stops the run instead of being adopted.
      await this.runner.run(kubectl(t, ['create', '-f', '-'], 'create the grid namespaces', { input: toYaml(namespaces) }));
      await this.runner.run(kubectl(t, ['create', '-f', '-'], 'create the grid pods', { input: toYaml(pods) }));
    });
    const ips: Record<EndpointId, string> = { ...EXTERNAL_STANDIN_IPS };
    const nodeOf: Record<EndpointId, string> = {};
    await this.guarded('wait-workloads-ready', async () => {
      const s = this.opts.podTimeoutS ?? 300;
      for (const ns of real) await this.runner.run(waitSpec(t, ['-n', ns, 'wait', '--for=condition=Ready', 'pod', '--all'], s, `wait for the pods in ${ns}`));
      for (const [logical, ns] of Object.entries(names.namespaceOf)) {
        const r = await this.runner.run(kubectl(t, ['-n', ns, 'get', 'pods', '-o', 'json'], `read the pod IPs in ${ns}`));
        const expected = layout.pods.filter((p) => p.namespace === logical);
        if (this.runner.dryRun) {
          for (const p of expected) (ips[p.id] = `<ip of ${p.id}>`), (nodeOf[p.id] = nodes[p.node % nodes.length]!);
          continue;
        }
        const found = parseGridPods(r.stdout, ns, expected);
        Object.assign(ips, found.ips);
        Object.assign(nodeOf, found.nodeOf);
      }
      const dnsPods = layout.pods.filter((p) => p.namespace === DNS_NAMESPACE);
      if (dnsPods.length) {
        const r = await this.runner.run(kubectl(t, ['-n', DNS_NAMESPACE, 'get', 'pods', '-l', DNS_SELECTOR, '-o', 'json'], 'find the cluster DNS pods (read only)'));
        for (const d of dnsPods) {
          if (this.runner.dryRun) {
            (ips[d.id] = `<ip of a ${DNS_SELECTOR} pod>`), (nodeOf[d.id] = '<its node>');
            continue;
          }
          const pod = pickDnsPod(r.stdout, d);
          ips[d.id] = pod.ip;
          nodeOf[d.id] = pod.node;
        }
      }
    });
    this.addresses = { ips, nodeOf };
    return this.addresses;
  }

  async applyPolicies(policies: NetworkPolicy[], _inventory: Inventory): Promise<Record<string, number | string | boolean>> {
    const names = this.requireNames();
    const real = rewritePolicies(policies, names);
    const extra = [...new Set(policies.map((p) => p.metadata.namespace))].filter((ns) => !(ns in names.namespaceOf) && !this.extraNamespaces.has(ns)).map((ns) => renderExtraNamespace(ns, names));
    validateManifests([...extra, ...real]);
    const t = this.target;
    const selector = `${RUN_LABEL}=${names.runId}`;
    return this.guarded('apply-policies', async () => {
      if (extra.length) {
        for (const n of extra) this.extraNamespaces.add(n.metadata!.labels!.ns!);
        await this.runner.run(kubectl(t, ['create', '-f', '-'], `create ${extra.map((n) => n.metadata!.name).join(', ')} (a namespace without pods the case's policies live in)`, { input: toYaml(extra) }));
      }
      // The previous case's set goes first, so a policy the new case does not name cannot linger. Namespace by
      // namespace (the run's own), not -A: a cluster-wide delete needs cluster-wide RBAC and could reach another
      // run's objects should a label ever be shared.
      for (const ns of this.policyNamespaces()) {
        await this.runner.run(kubectl(t, ['-n', ns, 'delete', 'networkpolicies', '-l', selector, '--ignore-not-found', '--wait=true'], `delete the previous case's policies in ${ns}`));
      }
      if (real.length) {
        await this.runner.run(kubectl(t, ['apply', '--server-side', '--field-manager=cni-bench', '-f', '-'], `apply ${real.length} NetworkPolicies (server-side)`, { input: toListJson(real) }));
      }
      return { policiesApplied: real.length, policyNamespaces: [...new Set(real.map((p) => p.metadata.namespace))].join(' ') };
    });
  }

  /** The command one probe runs (the dry-run plan shows a few). */
  probeCommand(p: ProbeSpec, timeoutMs: number): { spec: CommandSpec; tool: ProbeTool } {
    const names = this.requireNames();
    const layout = this.layout!;
    const src = layout.pods.find((x) => x.id === p.from);
    const dst = layout.pods.find((x) => x.id === p.to);
    const ip = this.addresses?.ips[p.to];
    if (!src || !(src.namespace in names.namespaceOf) || !dst || !ip) throw new Error(`probe ${p.from} -> ${p.to}: not a probe the kind/cluster grid can make (grid pods to grid or DNS pods)`);
    const first = src.ports[0]!;
    return planProbeCommand({
      target: this.target,
      namespace: names.namespaceOf[src.namespace]!,
      pod: src.name,
      container: containerName(first.containerPort, first.protocol),
      ip,
      port: p.port,
      protocol: p.protocol,
      timeoutMs,
      dns: dst.namespace === DNS_NAMESPACE,
    });
  }

  async probe(p: ProbeSpec, timeoutMs: number): Promise<Attempt> {
    const { spec, tool } = this.probeCommand(p, timeoutMs);
    return parseProbeResult(await this.runner.run(spec), tool);
  }

  /** cluster: deletes the grid namespaces, selected by the run label only; kind: deletes the cluster. */
  async down(): Promise<void> {
    if (this.downDone || this.opts.keep) return;
    this.downDone = true;
    if (this.kind) {
      await this.kind.down();
      return;
    }
    if (!this.namespacesRequested) return;
    this.opts.progress?.step('deleting the grid namespaces');
    await this.cleanupRunner.run(
      kubectl(this.target, ['delete', 'namespace', '-l', `${RUN_LABEL}=${this.opts.runId}`, '--ignore-not-found', '--wait=true', '--timeout=180s'], 'delete the grid namespaces', { timeoutMs: 200_000 }),
    );
  }

  keepInstructions(): string[] {
    const n = this.names;
    if (this.kind) {
      return [...this.kind.keepInstructions().filter((l) => !l.includes('fortio')), ...(n ? [`  grid namespaces: ${Object.values(n.namespaceOf).join(' ')} (the last case's policies are still applied)`] : [])];
    }
    const flags = [this.target.kubeconfig ? `--kubeconfig ${this.target.kubeconfig}` : '', this.target.context ? `--context ${this.target.context}` : ''].filter(Boolean).join(' ');
    return [
      `left up: namespaces ${Object.values(n?.namespaceOf ?? {}).join(' ')} (run id ${this.opts.runId}; the last case's policies are still applied)`,
      `  kubectl ${flags} get pods -A -l pod -o wide`,
      `remove with: kubectl ${flags} delete namespace -l ${RUN_LABEL}=${this.opts.runId}`,
    ];
  }

  /** Every namespace of the run that can hold a case's policies: the grid's and the pod-less ones created so far. */
  private policyNamespaces(): string[] {
    const names = this.requireNames();
    return [...new Set([...Object.values(names.namespaceOf), ...[...this.extraNamespaces].map((ns) => realNamespace(names, ns))])];
  }

  private requireNames(): GridNames {
    if (!this.names) throw new Error('the grid is not up');
    return this.names;
  }
}

/**
 * `bench verify --dry-run` on kind/cluster: every command the grid would run, manifests included — bring-up, each
 * case's delete + apply, one example probe of each kind (a case runs every probe of its matrix like these),
 * teardown — recorded by the grid's dry-run runner. Returns how many probes each case would make.
 */
export async function planK8sVerify(grid: K8sVerifyGrid, layout: GridLayout, cases: readonly VerifyCase[], timeoutMs: number): Promise<Record<string, number>> {
  const counts: Record<string, number> = {};
  try {
    const addresses = await grid.up(layout);
    let examplesShown = false;
    for (const c of cases) {
      const inst = instantiatePolicies(c.policies, addresses.ips);
      if (inst.problems.length) throw new Error(`case ${c.name}: ${inst.problems.map((p) => p.message).join('; ')}`);
      await grid.applyPolicies(inst.policies, { namespaces: [], pods: [] });
      const probes = planProbes(layout, c.probes);
      counts[c.name] = probes.length;
      if (!examplesShown) {
        examplesShown = true;
        // One per (destination kind, protocol): TCP and UDP to a grid pod, TCP and UDP (dig) to the DNS pod.
        const examples = new Map<string, ProbeSpec>();
        for (const p of probes) {
          const key = `${p.to.startsWith(`${DNS_NAMESPACE}/`) ? 'dns' : 'pod'} ${p.protocol}`;
          if (!examples.has(key)) examples.set(key, p);
        }
        for (const p of examples.values()) await grid.probe(p, timeoutMs);
      }
    }
  } finally {
    await grid.down();
  }
  return counts;
}
