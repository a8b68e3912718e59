// `--endpoints-per-service E` on kind and existing clusters: E real backends, so every Service of the set has E
// distinct endpoints (kube-proxy keys endpoints by address and port: one address repeated would count once). The
// server pod is the first; E−1 more come from a Deployment `bench-backends` in the run's server namespace (removed
// with it, every pod carrying the run label), pinned to the server's node, each pod the server's fortio serving
// the same port with the server's labels, so the run's policies treat it as the server and the server's selector
// Service lists it. Their addresses are read once every one is Ready, as the server's is (./session.ts).
import { BenchError } from '../../errors.js';
import type { Runner } from '../../exec/runner.js';
import { SERVER_LABELS } from '../../workload/workload.js';
import { kubectl, waitSpec, type KubeTarget } from './kubectl.js';
import { renderWorkloads, SERVER_NAME, type Placement, type RunNames } from './manifests.js';
import { validateManifests } from './validate.js';
import type { Versions } from './versions.js';
import { toYaml, type Manifest } from './yaml.js';

export const BACKENDS_NAME = 'bench-backends';
const BACKEND_ROLE = { 'cni-bench/role': 'service-backend' } as const;
/** Shown in dry-run plans where a backend pod's address would be. */
export const dryRunBackendIp = (i: number) => `<backend-pod-ip-${i + 1}>`;

/** The Deployment of the E−1 backends beside the server: the server's pod template, fortio alone, a small request. */
export function renderBackends(n: RunNames, p: Placement, v: Versions, replicas: number): Manifest {
  const server = renderWorkloads(n, p, v)[0] as unknown as { spec: { template: { metadata: { labels: Record<string, string> }; spec: { containers: Array<Record<string, unknown>> } & Record<string, unknown> } } };
  const labels = { ...server.spec.template.metadata.labels, ...BACKEND_ROLE };
  const tpl = server.spec.template.spec;
  return {
    apiVersion: 'apps/v1',
    kind: 'Deployment',
    metadata: { name: BACKENDS_NAME, namespace: n.serverNamespace, labels: { ...n.runLabel, ...BACKEND_ROLE } },
    spec: {
      replicas,
      // Its own selector: the server Deployment's (app only) must not be the one that owns these.
      selector: { matchLabels: { ...SERVER_LABELS, ...BACKEND_ROLE } },
      template: {
        metadata: { labels },
        spec: { ...tpl, containers: [{ ...tpl.containers[0]!, resources: { requests: { cpu: '10m', memory: '16Mi' } } }] },
      },
    },
  };
}

/** Starts the E−1 backends and returns their addresses once every one is Ready (placeholders in a dry run). */
export async function startBackends(o: { runner: Runner; target: KubeTarget; names: RunNames; placement: Placement; versions: Versions; count: number; timeoutS?: number }): Promise<string[]> {
  const { runner, target: t, names: n } = o;
  const d = renderBackends(n, o.placement, o.versions, o.count);
  validateManifests([d]);
  await runner.run(kubectl(t, ['create', '-f', '-'], `create ${o.count} more server pods (Deployment ${BACKENDS_NAME}, server node): every Service gets ${o.count + 1} endpoints`, { input: toYaml([d]) }));
  await runner.run(waitSpec(t, ['-n', n.serverNamespace, 'rollout', 'status', `deployment/${BACKENDS_NAME}`], o.timeoutS ?? 300, `wait until the ${o.count} backends are Ready`));
  const r = await runner.run(kubectl(t, ['-n', n.serverNamespace, 'get', 'pods', '-l', `app=${SERVER_NAME},cni-bench/role=service-backend`, '-o', 'json'], 'read the backends\' addresses'));
  if (runner.dryRun) return Array.from({ length: o.count }, (_, i) => dryRunBackendIp(i));
  const items = (JSON.parse(r.stdout) as { items?: Array<{ metadata?: { deletionTimestamp?: string }; status?: { podIP?: string; conditions?: Array<{ type: string; status: string }> } }> }).items ?? [];
  const ready = items.filter((p) => !p.metadata?.deletionTimestamp && p.status?.podIP && p.status.conditions?.some((c) => c.type === 'Ready' && c.status === 'True')).map((p) => p.status!.podIP!);
  const ips = [...new Set(ready)];
  if (ips.length < o.count) throw new BenchError('k8s-step', `${ips.length} of the ${o.count} backends of Deployment ${n.serverNamespace}/${BACKENDS_NAME} are Ready with an address after its rollout (kubectl -n ${n.serverNamespace} describe deployment ${BACKENDS_NAME}; a node short of pods or CPU: a smaller --endpoints-per-service)`);
  return ips.slice(0, o.count);
}
