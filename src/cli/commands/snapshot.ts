// bench snapshot: a cluster's namespaces, nodes, pods and NetworkPolicies as a workload file, with one read-only
// `kubectl get` through the runner (a second one without nodes when the credentials may not list them), and the
// policies of other engines the cluster serves (snapshot-engines.ts: discovery, then a get), which the replay does
// not run but the not-replayed finding names. What comes back is checked with the workload importer before
// anything is written; --anonymize hashes every name and label value with a salt that is never written out.
import { randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import type { Command } from 'commander';
import { kubectl, type KubeTarget } from '../../backends/k8s/kubectl.js';
import { InputError, type Problem } from '../../errors.js';
import { CommandError, type CommandSpec, type Runner } from '../../exec/runner.js';
import { EXIT_FAIL, EXIT_OK, processIo, type CommandIo } from '../io.js';
import { outputOption } from '../output-paths.js';
import { settingOption } from '../settings-flags.js';
import { describePolicyGet, planPolicyDiscovery, readEnginePolicies } from './snapshot-engines.js';

const EXIT_INTERRUPTED = 130;

export interface SnapshotCliOptions {
  context?: string;
  kubeconfig?: string;
  output?: string;
  anonymize?: boolean;
  salt?: string;
  force?: boolean;
  dryRun?: boolean;
}

/**
 * What the cluster is asked: one read-only get of the kinds a workload holds, every namespace. Nodes are
 * cluster-scoped: kubectl lists them whole beside --all-namespaces (cli-runtime's resource Builder gives a
 * mapping that is not namespaced no namespace, staging/src/k8s.io/cli-runtime/pkg/resource/builder.go
 * visitBySelector). Their spec.podCIDRs tell the local replay which addresses each node routes.
 */
export function planSnapshot(t: KubeTarget, o: { nodes?: boolean } = {}): CommandSpec {
  const nodes = o.nodes ?? true;
  const kinds = nodes ? 'namespaces,nodes,pods,networkpolicies' : 'namespaces,pods,networkpolicies';
  return { ...kubectl(t, ['get', kinds, '--all-namespaces', '-o', 'json'], `read the cluster's namespaces, ${nodes ? 'nodes, ' : ''}pods and NetworkPolicies (read-only)`), timeoutMs: 300_000 };
}

/** kubectl refused the Nodes only (RBAC: a namespaced role cannot list a cluster-scoped kind): worth a get without them. */
export const nodesForbidden = (e: unknown) => e instanceof CommandError && !e.result.timedOut && /\bnodes is forbidden\b/.test(e.result.stderr);

function checkOptions(opts: SnapshotCliOptions): Problem[] {
  const problems: Problem[] = [];
  if (!opts.context && !opts.kubeconfig) problems.push({ where: '--context', message: 'bench snapshot needs an explicit --context NAME or --kubeconfig FILE; it never reads the current context implicitly' });
  if (opts.kubeconfig && !existsSync(opts.kubeconfig)) problems.push({ where: '--kubeconfig', message: `${opts.kubeconfig} does not exist` });
  if (!opts.output) problems.push({ where: '-o', message: "required: the file to write, e.g. -o cluster.json ('-' for stdout)" });
  else if (opts.output !== '-' && existsSync(opts.output) && !opts.force) problems.push({ where: '-o', message: `${opts.output} exists; not overwriting it (use --force)` });
  if (opts.salt !== undefined && !opts.anonymize) problems.push({ where: '--salt', message: 'only with --anonymize' });
  if (opts.salt !== undefined && opts.salt.length < 8) problems.push({ where: '--salt', message: 'use at least 8 characters: the salt is what keeps the names from being guessed back' });
  return problems;
}

export interface SnapshotDeps {
  /** The runner (tests inject a scripted one); default: ExecRunner, or DryRunRunner with --dry-run. */
  runner?: Runner;
}

export async function cmdSnapshot(opts: SnapshotCliOptions, io: CommandIo = processIo(), deps: SnapshotDeps = {}): Promise<number> {
  const problems = checkOptions(opts);
  if (problems.length) throw new InputError(problems);
  const target: KubeTarget = { context: opts.context, kubeconfig: opts.kubeconfig };
  const out = opts.output!;
  const { DryRunRunner, ExecRunner, renderPlan } = await import('../../exec/runner.js');
  if (opts.dryRun) {
    const runner = deps.runner ?? new DryRunRunner();
    await runner.run(planSnapshot(target));
    await runner.run(planPolicyDiscovery(target));
    io.stdout.write(`${renderPlan(runner.log)}\n${describePolicyGet(target)}\n# then: check what came back with the workload importer${opts.anonymize ? ', anonymize it' : ''} and write ${out === '-' ? 'it to stdout' : out}\n`);
    return EXIT_OK;
  }
  const { onInterrupt } = await import('../process.js');
  const interrupt = onInterrupt('stopping kubectl; nothing is written');
  try {
    const runner = deps.runner ?? new ExecRunner(interrupt.signal);
    let got;
    let withoutNodes = false;
    try {
      got = await runner.run(planSnapshot(target));
    } catch (e) {
      if (!nodesForbidden(e)) throw e;
      io.stderr.write('bench snapshot: these credentials may not list Nodes; reading the rest without them (node pod CIDRs are then derived from the pods\' addresses)\n');
      withoutNodes = true;
      got = await runner.run(planSnapshot(target, { nodes: false }));
    }
    const engines = await readEnginePolicies(runner, target);
    for (const note of engines.notes) io.stderr.write(`bench snapshot: ${note}\n`);
    let raw = got.stdout;
    const list = engines.items.length ? jsonList(raw) : undefined;
    if (list) raw = `${JSON.stringify({ ...list, items: [...list.items, ...engines.items] }, null, 2)}\n`;
    const { parseSnapshot } = await import('../../workload/snapshot.js');
    const source = `kubectl get (${opts.context ? `context ${opts.context}` : `kubeconfig ${opts.kubeconfig}`})`;
    const { workload, problems: bad } = parseSnapshot(source, raw, { name: 'cluster' });
    if (!workload) {
      io.stderr.write(`bench snapshot: what kubectl returned cannot be read as a workload; nothing written:\n${bad.map((p) => `  ${p.where}: ${p.message}`).join('\n')}\n`);
      return EXIT_FAIL;
    }
    let text = raw.endsWith('\n') ? raw : `${raw}\n`;
    if (opts.anonymize) {
      const { anonymizeList } = await import('../../workload/anonymize.js');
      text = `${JSON.stringify(anonymizeList(JSON.parse(raw), opts.salt ?? randomBytes(32)), null, 2)}\n`;
    }
    if (out === '-') io.stdout.write(text);
    else {
      const { writeFileAtomic } = await import('../../results/io.js');
      writeFileAtomic(out, text);
    }
    const s = workload.source.kind === 'snapshot' ? workload.source : undefined;
    const left = s?.skippedPods.length ? ` (${s.skippedPods.length} more left out: finished, unscheduled or without an address)` : '';
    const anon = opts.anonymize ? `; names and label values anonymized with ${opts.salt ? 'your salt' : 'a random salt, not written (pass --salt to give the same cluster the same names next time)'}` : '';
    io.stderr.write(`bench snapshot: wrote ${out === '-' ? 'stdout' : out}: ${workload.inventory.namespaces.length} namespaces, ${workload.inventory.pods.length} pods${left}, ${workload.policies.length} NetworkPolicies, ${workload.nodes.length} nodes${withoutNodes ? ' (named by the pods; no Node objects)' : ''}${others(s?.unreplayedPolicies ?? [])}${anon}\n`);
    if (engines.unread.length) io.stderr.write(`bench snapshot: not in the snapshot, so verify cannot warn about them: ${engines.unread.map((u) => `${u.resource} (${u.why})`).join('; ')}\n`);
    return EXIT_OK;
  } catch (e) {
    if (interrupt.signal.aborted) {
      io.stderr.write('bench snapshot: interrupted; nothing written\n');
      return EXIT_INTERRUPTED;
    }
    if (e instanceof CommandError) {
      io.stderr.write(`bench snapshot: ${e.message}\n  nothing written\n`);
      return EXIT_FAIL;
    }
    throw e;
  } finally {
    interrupt.dispose();
  }
}

/** kubectl's List, or undefined when it is not one (the importer then says what is wrong with it). */
function jsonList(text: string): { items: unknown[] } | undefined {
  try {
    const v = JSON.parse(text) as { items?: unknown };
    return Array.isArray(v.items) ? (v as { items: unknown[] }) : undefined;
  } catch {
    return undefined;
  }
}

/** The summary's words for other engines' policies: `, not replayed: 2 CiliumNetworkPolicy.cilium.io`. */
const others = (u: ReadonlyArray<{ kind: string; group: string; names: readonly string[] }>) => (u.length ? `, not replayed: ${u.map((e) => `${e.names.length} ${e.kind}.${e.group}`).join(', ')}` : '');

export function register(program: Command): void {
  program
    .command('snapshot')
    .description("write a cluster's namespaces, nodes, pods and NetworkPolicies as a workload file (read-only kubectl gets; other engines' policies kept for the not-replayed finding), for --workload")
    .addOption(settingOption('context', 'snapshot'))
    .addOption(settingOption('kubeconfig', 'snapshot'))
    .addOption(outputOption('-o, --output <file>', "file to write ('-' for stdout)", 'file', { stdout: true }))
    .option('--anonymize', 'hash every name and label value (a keyed hash; the salt is not written), keeping the structure: selectors still select the same pods')
    .option('--salt <text>', 'with --anonymize: the hash key, to give the same cluster the same names in every snapshot (default: random)')
    .option('--force', 'overwrite the output file')
    .addOption(settingOption('dryRun', 'snapshot'))
    .action(async (opts: SnapshotCliOptions) => {
      process.exitCode = await cmdSnapshot(opts);
    });
}
