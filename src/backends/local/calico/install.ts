// Applies compiled Calico-model state to a node namespace the way Felix does (felix/iptables/table.go,
// felix/ipsets/ipsets.go): ipset changes first in one `ipset restore` session (per set its create, then its
// member dels and adds; COMMIT), then ONE `iptables-restore --noflush` holding only the chains that changed —
// Felix never splits it, however large — then destroying sets nothing uses. Each write's timeout is sized to its
// work and a long one reports progress (agent-write.ts). The diff is pure (diffCalico); installCalicoRules and
// readCalico* are the thin parts that talk to a Runner.
import { DEFAULT_IPTABLES_BACKEND, IPTABLES_BACKENDS, type IptablesBackendName } from '../../../config/schema.js';
import type { CommandSpec, Runner } from '../../../exec/runner.js';
import type { Progress } from '../../types.js';
import { runWrite, writeTimeoutMs } from './agent-write.js';
import { CHAIN_FORWARD, CHAIN_PREROUTING, TABLES, ipsetCreateLine, type CalicoNodeRules, type CompiledTable, type TableName } from './compile.js';

/**
 * Which iptables flavour writes the rules. Felix's IptablesBackend defaults to auto
 * (felix/config/config_params.go), and felix/environment/feature_detect_linux.go DetectBackend picks nft when
 * kubelet's KUBE-* chains are in the nft mangle table, as on current distributions and kind nodes: so nft
 * is the default here, legacy the recorded alternative.
 */
export { DEFAULT_IPTABLES_BACKEND, IPTABLES_BACKENDS };
export type IptablesBackend = IptablesBackendName;

export function iptablesBinaries(backend: IptablesBackend): { restore: string; save: string } {
  return backend === 'nft'
    ? { restore: 'iptables-nft-restore', save: 'iptables-nft-save' }
    : { restore: 'iptables-legacy-restore', save: 'iptables-legacy-save' };
}

/**
 * What is (believed to be) in a node: chains per table with their rendered rules, and sets with their
 * members. `null` content means "present, content unknown" (read back from the kernel): always rewritten.
 */
export interface CalicoDataplaneView {
  /** Tables whose Felix hooks (PREROUTING/FORWARD rules) are in place. */
  hooked: Set<TableName>;
  chains: Map<TableName, Map<string, readonly string[] | null>>;
  ipsets: Map<string, readonly string[] | null>;
}

export function emptyView(): CalicoDataplaneView {
  return { hooked: new Set(), chains: new Map(), ipsets: new Map() };
}

/** The view after `rules` were applied. */
export function viewOf(rules: CalicoNodeRules): CalicoDataplaneView {
  return {
    hooked: new Set(rules.tables.map((t) => t.table)),
    chains: new Map(rules.tables.map((t) => [t.table, new Map(t.chains)])),
    ipsets: new Map(rules.ipsets),
  };
}

export interface CalicoChangeCounts {
  chainsWritten: number;
  chainsDeleted: number;
  rulesWritten: number;
  setsCreated: number;
  setsDestroyed: number;
  setMembersAdded: number;
  setMembersDeleted: number;
}

export interface CalicoDelta {
  /** `ipset restore` input; empty when no set changes. */
  ipsetRestore: string;
  /** `iptables-restore --noflush` input with only the tables that change; empty when nothing does. */
  iptablesRestore: string;
  /** Sets to destroy after the iptables commit stopped referencing them. */
  destroySets: string[];
  changed: CalicoChangeCounts;
  /** Rules written that match an ipset: each one a get-by-name among all sets when the kernel checks the rule. */
  setMatchesWritten: number;
}

const sameLines = (a: readonly string[] | null | undefined, b: readonly string[]): boolean =>
  !!a && a.length === b.length && a.every((line, i) => line === b[i]);

/**
 * The change from `current` to `next`: chains whose rules differ (or are new) are declared — which flushes them
 * under --noflush — and refilled; chains `next` no longer has are flushed and deleted in the same COMMIT, after
 * the chains that referenced them were rewritten. Set members are added and deleted one by one.
 */
export function diffCalico(current: CalicoDataplaneView, next: CalicoNodeRules): CalicoDelta {
  let setMatchesWritten = 0;
  const changed: CalicoChangeCounts = { chainsWritten: 0, chainsDeleted: 0, rulesWritten: 0, setsCreated: 0, setsDestroyed: 0, setMembersAdded: 0, setMembersDeleted: 0 };
  const ipt: string[] = [];
  const byTable = new Map<TableName, CompiledTable>(next.tables.map((t) => [t.table, t]));
  for (const table of TABLES) {
    const want = byTable.get(table);
    const have = current.chains.get(table) ?? new Map<string, readonly string[] | null>();
    const write = want ? [...want.chains].filter(([name, lines]) => !sameLines(have.get(name), lines)) : [];
    const stale = [...have.keys()].filter((name) => !want?.chains.has(name)).sort();
    const hook = want !== undefined && !current.hooked.has(table);
    if (write.length === 0 && stale.length === 0 && !hook) continue;
    ipt.push(`*${table}`);
    for (const [name] of write) ipt.push(`:${name} - [0:0]`);
    for (const name of stale) ipt.push(`:${name} - [0:0]`);
    if (hook) ipt.push(...want.hooks);
    for (const [, lines] of write) ipt.push(...lines);
    for (const name of stale) ipt.push(`-X ${name}`);
    ipt.push('COMMIT');
    changed.chainsWritten += write.length;
    changed.chainsDeleted += stale.length;
    changed.rulesWritten += write.reduce((a, [, l]) => a + l.length, 0) + (hook ? want.hooks.length : 0);
    for (const [, lines] of write) for (const l of lines) if (l.includes('--match-set')) setMatchesWritten++;
  }

  // felix/ipsets/ipsets.go writeUpdates: per set, its create (when new), then its member dels and adds; one
  // `ipset restore` session ending in COMMIT.
  const ipsetLines: string[] = [];
  for (const [name, members] of next.ipsets) {
    const had = current.ipsets.get(name);
    if (had === undefined) {
      ipsetLines.push(ipsetCreateLine(name), ...members.map((m) => `add ${name} ${m}`));
      changed.setsCreated++;
      changed.setMembersAdded += members.length;
    } else if (had === null) {
      // Present with unknown members (read back from the kernel): start it over.
      ipsetLines.push(`${ipsetCreateLine(name)} -exist`, `flush ${name}`, ...members.map((m) => `add ${name} ${m}`));
      changed.setMembersAdded += members.length;
    } else {
      const old = new Set(had);
      const now = new Set(members);
      for (const m of had) {
        if (!now.has(m)) {
          ipsetLines.push(`del ${name} ${m} --exist`);
          changed.setMembersDeleted++;
        }
      }
      for (const m of members) {
        if (!old.has(m)) {
          ipsetLines.push(`add ${name} ${m}`);
          changed.setMembersAdded++;
        }
      }
    }
  }
  const destroySets = [...current.ipsets.keys()].filter((s) => !next.ipsets.has(s)).sort();
  changed.setsDestroyed = destroySets.length;
  return {
    ipsetRestore: ipsetLines.length ? `${ipsetLines.join('\n')}\nCOMMIT\n` : '',
    iptablesRestore: ipt.length ? `${ipt.join('\n')}\n` : '',
    destroySets,
    changed,
    setMatchesWritten,
  };
}

export interface CalicoInstallOptions {
  iptablesBackend?: IptablesBackend;
  /** Overrides the timeouts sized to each write's work (agent-write.ts). */
  timeoutMs?: number;
  /** Reports writes that run for more than a few seconds. */
  progress?: Progress;
}

/** felix/iptables/table.go execIptablesRestore: --noflush --verbose, and the xtables lock waited for 10 s in 50 ms probes. */
export const IPTABLES_RESTORE_ARGS = ['--noflush', '--verbose', '--wait', '10', '--wait-interval', '50000'] as const;

const lineCount = (text: string): number => {
  let n = 0;
  for (let i = text.indexOf('\n'); i >= 0; i = text.indexOf('\n', i + 1)) n++;
  return n;
};

/**
 * Commands applying a delta in `nodeNetns` (node `rules`, the state after it); empty when nothing changes. Each
 * write's timeout is sized to its work: the kernel looks every ipset line's set up by name among all sets, and
 * iptables-nft-restore files the chain of every command into a sorted list of the chains named so far.
 */
export function planCalicoDelta(nodeNetns: string, rules: CalicoNodeRules, delta: CalicoDelta, opts: CalicoInstallOptions = {}): CommandSpec[] {
  const { restore } = iptablesBinaries(opts.iptablesBackend ?? DEFAULT_IPTABLES_BACKEND);
  const plan: CommandSpec[] = [];
  const c = delta.changed;
  const sets = rules.ipsets.size;
  if (delta.ipsetRestore) {
    const lines = lineCount(delta.ipsetRestore);
    plan.push({
      argv: ['ipset', 'restore'],
      netns: nodeNetns,
      input: delta.ipsetRestore,
      timeoutMs: opts.timeoutMs ?? writeTimeoutMs({ lines, nameComparisons: lines * sets }),
      purpose: `Calico-model ipsets on ${rules.node} (+${c.setsCreated} sets, +${c.setMembersAdded}/-${c.setMembersDeleted} members)`,
    });
  }
  if (delta.iptablesRestore) {
    const commands = c.rulesWritten + c.chainsWritten + c.chainsDeleted;
    plan.push({
      argv: [restore, ...IPTABLES_RESTORE_ARGS],
      netns: nodeNetns,
      input: delta.iptablesRestore,
      timeoutMs: opts.timeoutMs ?? writeTimeoutMs({ lines: commands, nameComparisons: commands * (c.chainsWritten + c.chainsDeleted) + delta.setMatchesWritten * sets }),
      purpose: `Calico-model chains on ${rules.node} (${c.chainsWritten} chains, ${c.rulesWritten} rules written; ${c.chainsDeleted} deleted)`,
    });
  }
  for (const set of delta.destroySets) {
    plan.push({ argv: ['ipset', 'destroy', set], netns: nodeNetns, timeoutMs: opts.timeoutMs, allowFailure: true, purpose: `remove unused Calico-model ipset ${set}` });
  }
  return plan;
}

/** Parses `iptables-save` (all tables) and `ipset list -n` into a view with unknown chain and set contents. */
export function parseCalicoState(iptablesSave: string, ipsetNames: string): CalicoDataplaneView {
  const view = emptyView();
  let table: TableName | undefined;
  for (const line of iptablesSave.split('\n')) {
    if (line.startsWith('*')) {
      const name = line.slice(1).trim();
      table = (TABLES as readonly string[]).includes(name) ? (name as TableName) : undefined;
    } else if (!table) continue;
    else if (line.startsWith(':cali-')) {
      const chains = view.chains.get(table) ?? new Map<string, null>();
      chains.set(line.slice(1, line.indexOf(' ')), null);
      view.chains.set(table, chains);
    } else if (
      (table === 'filter' && line.startsWith('-A FORWARD ') && line.endsWith(`-j ${CHAIN_FORWARD}`)) ||
      (table !== 'filter' && line.startsWith('-A PREROUTING ') && line.endsWith(`-j ${CHAIN_PREROUTING}`))
    ) {
      view.hooked.add(table);
    }
  }
  for (const l of ipsetNames.split('\n')) {
    const name = l.trim();
    if (name.startsWith('cali40')) view.ipsets.set(name, null);
  }
  return view;
}

export async function readCalicoState(runner: Runner, netns: string, opts: CalicoInstallOptions = {}): Promise<CalicoDataplaneView> {
  const { save } = iptablesBinaries(opts.iptablesBackend ?? DEFAULT_IPTABLES_BACKEND);
  const ipt = await runner.run({ argv: [save], netns, purpose: 'read installed Calico-model chains' });
  const sets = await runner.run({ argv: ['ipset', 'list', '-n'], netns, purpose: 'read installed Calico-model ipsets' });
  return parseCalicoState(ipt.stdout, sets.stdout);
}

export interface CalicoApplyReport {
  iptablesRestoreMs: number;
  ipsetRestoreMs: number;
  totalMs: number;
  changed: CalicoChangeCounts;
}

/** Applies the change from `current` (default: read from the node) to `rules`. */
export async function installCalicoRules(
  runner: Runner,
  nodeNetns: string,
  rules: CalicoNodeRules,
  opts: CalicoInstallOptions & { current?: CalicoDataplaneView } = {},
): Promise<CalicoApplyReport> {
  const started = performance.now();
  const current = opts.current ?? (await readCalicoState(runner, nodeNetns, opts));
  const delta = diffCalico(current, rules);
  let iptablesRestoreMs = 0;
  let ipsetRestoreMs = 0;
  for (const spec of planCalicoDelta(nodeNetns, rules, delta, opts)) {
    const r = spec.input ? await runWrite(runner, spec, opts.progress, spec.purpose!) : await runner.run(spec);
    if (spec.argv[0]!.startsWith('iptables')) iptablesRestoreMs = r.durationMs;
    else if (spec.argv[1] === 'restore') ipsetRestoreMs = r.durationMs;
  }
  return { iptablesRestoreMs, ipsetRestoreMs, totalMs: performance.now() - started, changed: delta.changed };
}

export interface CalicoCounters {
  /** Rules in cali-* chains plus Felix's rules in the kernel chains (marked by a cali: comment). */
  rules: number;
  chains: number;
}

export function countCalicoRules(iptablesSave: string): CalicoCounters {
  let rules = 0;
  let chains = 0;
  for (const line of iptablesSave.split('\n')) {
    if (line.startsWith(':cali-')) chains++;
    else if (line.startsWith('-A cali-') || (line.startsWith('-A ') && line.includes('--comment "cali:')) || (line.startsWith('-A ') && line.includes('--comment cali:'))) rules++;
  }
  return { rules, chains };
}

export async function readCalicoCounters(runner: Runner, netns: string, opts: CalicoInstallOptions = {}): Promise<CalicoCounters> {
  const { save } = iptablesBinaries(opts.iptablesBackend ?? DEFAULT_IPTABLES_BACKEND);
  const r = await runner.run({ argv: [save], netns, purpose: 'count Calico-model rules' });
  return countCalicoRules(r.stdout);
}
