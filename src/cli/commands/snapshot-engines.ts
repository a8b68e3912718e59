// bench snapshot, second part: the policies of other engines (Cilium, Calico, AdminNetworkPolicy, Antrea) the
// replay does not run, read so that the workload importer's `not-replayed` finding reaches a snapshot of the
// cluster where they matter. One discovery (`kubectl api-resources --verbs=list -o name`), then one `kubectl get`
// of those the cluster serves, by fully qualified resource.group (a short name would let kubectl pick a same-named
// kind of another group: `networkpolicies` alone is Kubernetes'). Planners here; cmdSnapshot runs them.
import { kubectl, type KubeTarget } from '../../backends/k8s/kubectl.js';
import { shellQuote, type CommandResult, type CommandSpec, type Runner } from '../../exec/runner.js';

/**
 * The resources read, as `kubectl api-resources -o name` prints them: `<plural>.<group>`
 * (staging/src/k8s.io/kubectl/pkg/cmd/apiresources/apiresources.go, output "name"). Calico's API server serves
 * projectcalico.org/v3 and stores each object in the crd.projectcalico.org CRD of the same resource
 * (libcalico-go/lib/backend/k8s/k8s.go): where both are served the v3 one is read, not the same policy twice.
 */
export const OTHER_ENGINE_POLICY_RESOURCES: ReadonlyArray<{ resource: string; supersededBy?: string }> = [
  { resource: 'ciliumnetworkpolicies.cilium.io' },
  { resource: 'ciliumclusterwidenetworkpolicies.cilium.io' },
  { resource: 'networkpolicies.projectcalico.org' },
  { resource: 'globalnetworkpolicies.projectcalico.org' },
  { resource: 'networkpolicies.crd.projectcalico.org', supersededBy: 'networkpolicies.projectcalico.org' },
  { resource: 'globalnetworkpolicies.crd.projectcalico.org', supersededBy: 'globalnetworkpolicies.projectcalico.org' },
  { resource: 'adminnetworkpolicies.policy.networking.k8s.io' },
  { resource: 'baselineadminnetworkpolicies.policy.networking.k8s.io' },
  { resource: 'networkpolicies.crd.antrea.io' },
  { resource: 'clusternetworkpolicies.crd.antrea.io' },
];

const DISCOVERY_PURPOSE = 'find which policy kinds of other engines the cluster serves (read-only discovery)';

/** The discovery: every resource that can be listed, one `resource.group` a line (core ones without a group). */
export function planPolicyDiscovery(t: KubeTarget): CommandSpec {
  return kubectl(t, ['api-resources', '--verbs=list', '-o', 'name'], DISCOVERY_PURPOSE, { allowFailure: true });
}

export function planPolicyGet(t: KubeTarget, resources: readonly string[]): CommandSpec {
  return { ...kubectl(t, ['get', resources.join(','), '--all-namespaces', '-o', 'json'], "read the policies of other engines (read-only; counted for the not-replayed finding, not replayed)", { allowFailure: true }), timeoutMs: 300_000 };
}

/** The dry-run's words for the get whose resources only the discovery's answer gives. */
export function describePolicyGet(t: KubeTarget): string {
  const argv = planPolicyGet(t, ['RESOURCES']).argv;
  const ours = OTHER_ENGINE_POLICY_RESOURCES.filter((r) => !r.supersededBy).map((r) => r.resource).join(',');
  return `# then, depending on the discovery's answer (unknown in a dry run): read the policies of other engines it lists (nothing if none)\n# ${shellQuote(argv)}\n#   RESOURCES: those of ${ours} (or the crd.projectcalico.org ones without the projectcalico.org API server) it lists`;
}

/** Which of ours the discovery lists, in our order, without one another supersedes. */
export function servedPolicyResources(discoveryStdout: string): string[] {
  const served = new Set(discoveryStdout.split('\n').map((l) => l.trim()).filter(Boolean));
  return OTHER_ENGINE_POLICY_RESOURCES.filter((r) => served.has(r.resource) && !(r.supersededBy && served.has(r.supersededBy))).map((r) => r.resource);
}

/** The resources of `requested` a failed get names as forbidden (`Error from server (Forbidden): X is forbidden: …`). */
export function forbiddenResources(stderr: string, requested: readonly string[]): string[] {
  const named = new Set([...stderr.matchAll(/(\S+) is forbidden\b/g)].map((m) => m[1]!));
  return requested.filter((r) => named.has(r));
}

const lastLine = (r: CommandResult) => (r.timedOut ? `timed out after ${Math.round(r.durationMs / 1000)} s` : r.stderr.trim().split('\n').at(-1) || `exit code ${r.exitCode}`);

export interface EnginePolicies {
  /** The items read (each with its own apiVersion and kind), to add to the snapshot's List. */
  items: unknown[];
  /** Resources served that could not be read, and why. */
  unread: Array<{ resource: string; why: string }>;
  /** What the user should know (discovery failing or incomplete), one line each. */
  notes: string[];
}

/**
 * Discovery, then the get, dropping a resource RBAC forbids and reading the others. Never throws on kubectl's
 * answer: whatever cannot be read is named, and the snapshot is written without it.
 */
export async function readEnginePolicies(runner: Runner, t: KubeTarget): Promise<EnginePolicies> {
  const out: EnginePolicies = { items: [], unread: [], notes: [] };
  const d = await runner.run(planPolicyDiscovery(t));
  if (d.exitCode !== 0 || d.timedOut) {
    // An aggregated API that is down makes api-resources exit 1 after printing every other group: use those.
    if (d.timedOut || !d.stdout.trim()) {
      out.notes.push(`could not find out which policy kinds of other engines the cluster serves (kubectl api-resources: ${lastLine(d)}); the snapshot holds none, so verify cannot warn about CiliumNetworkPolicy, Calico or AdminNetworkPolicy objects: check with kubectl api-resources yourself`);
      return out;
    }
    out.notes.push(`the discovery was incomplete (kubectl api-resources: ${lastLine(d)}); policies of a group it could not list are not in the snapshot`);
  }
  let todo = servedPolicyResources(d.stdout);
  while (todo.length) {
    const g = await runner.run(planPolicyGet(t, todo));
    if (g.exitCode === 0 && !g.timedOut) {
      try {
        const list = JSON.parse(g.stdout) as { items?: unknown };
        if (!Array.isArray(list.items)) throw new Error('no items array');
        out.items.push(...(list.items as unknown[]));
      } catch (e) {
        for (const resource of todo) out.unread.push({ resource, why: `kubectl's output is not a List (${(e as Error).message})` });
      }
      return out;
    }
    const forbidden = g.timedOut ? [] : forbiddenResources(g.stderr, todo);
    if (!forbidden.length) {
      for (const resource of todo) out.unread.push({ resource, why: lastLine(g) });
      return out;
    }
    for (const resource of forbidden) out.unread.push({ resource, why: 'forbidden by RBAC: grant list on it, clusters/rbac-snapshot.yaml' });
    todo = todo.filter((r) => !forbidden.includes(r));
  }
  return out;
}
