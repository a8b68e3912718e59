// Installs compiled Calico-model rules into a node namespace: ipsets first (the chains reference them),
// then the whole cali-* filter state in ONE iptables-restore transaction, as Felix writes it.
// Planners are pure; installCalicoRules/readCalico* are the thin parts that talk to a Runner.
import type { CommandSpec, Runner } from '../../../exec/runner.js';
import { CHAIN_FORWARD, type CalicoNodeRules } from './compile.js';

/**
 * Which iptables flavour writes the rules. Both evaluate the cali-* chains rule by rule; `legacy` is
 * the default because it installs 5000-policy tables several times faster (see the kernel test).
 */
export type IptablesBackend = 'legacy' | 'nft';
export const DEFAULT_IPTABLES_BACKEND: IptablesBackend = 'legacy';

export function iptablesBinaries(backend: IptablesBackend): { restore: string; save: string } {
  return backend === 'nft'
    ? { restore: 'iptables-nft-restore', save: 'iptables-nft-save' }
    : { restore: 'iptables-legacy-restore', save: 'iptables-legacy-save' };
}

/** What a previous install left in the node namespace (read by readCalicoState). */
export interface CalicoInstalledState {
  /** FORWARD already jumps to cali-FORWARD. */
  hookPresent: boolean;
  /** cali-* chains present. */
  chains: string[];
  /** cali40* ipsets present. */
  ipsets: string[];
}

export interface CalicoInstallOptions {
  iptablesBackend?: IptablesBackend;
  timeoutMs?: number;
}

const NO_STATE: CalicoInstalledState = { hookPresent: false, chains: [], ipsets: [] };

/**
 * The restore text for going from `current` to `rules` atomically: the FORWARD hook only when it is
 * missing, every wanted chain re-declared (so flushed and refilled), and chains the new rules no longer
 * use flushed and deleted, all inside the same COMMIT.
 */
export function renderIptablesTransaction(rules: CalicoNodeRules, current: CalicoInstalledState): string {
  let text = rules.iptablesRestore;
  if (current.hookPresent) text = text.replace(`${rules.forwardHook}\n`, '');
  const wanted = new Set(rules.chains);
  const stale = current.chains.filter((c) => !wanted.has(c)).sort();
  if (stale.length === 0) return text;
  const declare = stale.map((c) => `:${c} - [0:0]`);
  const remove = stale.map((c) => `-X ${c}`);
  // Declarations go before the first rule (right after `*filter`), deletions just before COMMIT.
  const commitAt = text.lastIndexOf('COMMIT');
  return `*filter\n${declare.join('\n')}\n${text.slice('*filter\n'.length, commitAt)}${remove.join('\n')}\n${text.slice(commitAt)}`;
}

/**
 * Commands for installing `rules` into `nodeNetns`, given what is there already (default: nothing).
 * ipsets are content-addressed, so `ipset restore -exist` never changes a set a live rule uses;
 * sets the new rules dropped are destroyed after the iptables commit no longer references them.
 */
export function planCalicoUpdate(
  nodeNetns: string,
  rules: CalicoNodeRules,
  current: CalicoInstalledState,
  opts: CalicoInstallOptions = {},
): CommandSpec[] {
  const { restore } = iptablesBinaries(opts.iptablesBackend ?? DEFAULT_IPTABLES_BACKEND);
  const timeoutMs = opts.timeoutMs ?? 120_000;
  const plan: CommandSpec[] = [
    {
      argv: ['ipset', 'restore', '-exist'],
      netns: nodeNetns,
      input: rules.ipsetRestore,
      timeoutMs,
      purpose: `create Calico-model ipsets on ${rules.node} (${rules.counts.ipsets} sets)`,
    },
    {
      argv: [restore, '--noflush'],
      netns: nodeNetns,
      input: renderIptablesTransaction(rules, current),
      timeoutMs,
      purpose: `install Calico-model chains on ${rules.node} (${rules.counts.rules} rules)`,
    },
  ];
  const wantedSets = new Set(rules.ipsets);
  for (const set of current.ipsets.filter((s) => !wantedSets.has(s)).sort()) {
    plan.push({
      argv: ['ipset', 'destroy', set],
      netns: nodeNetns,
      timeoutMs,
      allowFailure: true, // a set still referenced elsewhere just stays
      purpose: `remove unused Calico-model ipset ${set}`,
    });
  }
  return plan;
}

/** Commands for a first install into a clean node namespace. */
export function planCalicoInstall(nodeNetns: string, rules: CalicoNodeRules, opts: CalicoInstallOptions = {}): CommandSpec[] {
  return planCalicoUpdate(nodeNetns, rules, NO_STATE, opts);
}

/** Parses `iptables-save -t filter` and `ipset list -n` output into the installed state. */
export function parseCalicoState(iptablesSave: string, ipsetNames: string): CalicoInstalledState {
  const chains: string[] = [];
  let hookPresent = false;
  for (const line of iptablesSave.split('\n')) {
    if (line.startsWith(':cali-')) chains.push(line.slice(1, line.indexOf(' ')));
    else if (line.startsWith('-A FORWARD ') && line.endsWith(`-j ${CHAIN_FORWARD}`)) hookPresent = true;
  }
  const ipsets = ipsetNames
    .split('\n')
    .map((l) => l.trim())
    .filter((l) => l.startsWith('cali40'));
  return { hookPresent, chains, ipsets };
}

export async function readCalicoState(runner: Runner, netns: string, opts: CalicoInstallOptions = {}): Promise<CalicoInstalledState> {
  const { save } = iptablesBinaries(opts.iptablesBackend ?? DEFAULT_IPTABLES_BACKEND);
  const ipt = await runner.run({ argv: [save, '-t', 'filter'], netns, purpose: 'read installed Calico-model chains' });
  const sets = await runner.run({ argv: ['ipset', 'list', '-n'], netns, purpose: 'read installed Calico-model ipsets' });
  return parseCalicoState(ipt.stdout, sets.stdout);
}

/** Installs or updates the node's rules; returns the time the iptables transaction took. */
export async function installCalicoRules(
  runner: Runner,
  nodeNetns: string,
  rules: CalicoNodeRules,
  opts: CalicoInstallOptions = {},
): Promise<{ iptablesRestoreMs: number; totalMs: number }> {
  const started = performance.now();
  const current = await readCalicoState(runner, nodeNetns, opts);
  let iptablesRestoreMs = 0;
  for (const spec of planCalicoUpdate(nodeNetns, rules, current, opts)) {
    const r = await runner.run(spec);
    if (spec.argv[0]!.includes('iptables')) iptablesRestoreMs = r.durationMs;
  }
  return { iptablesRestoreMs, totalMs: performance.now() - started };
}

export interface CalicoCounters {
  /** `-A` lines in cali-* chains plus FORWARD's jumps to cali-FORWARD. */
  rules: number;
  chains: number;
}

export function countCalicoRules(iptablesSave: string): CalicoCounters {
  let rules = 0;
  let chains = 0;
  for (const line of iptablesSave.split('\n')) {
    if (line.startsWith(':cali-')) chains++;
    else if (line.startsWith('-A cali-') || (line.startsWith('-A FORWARD ') && line.endsWith(`-j ${CHAIN_FORWARD}`))) rules++;
  }
  return { rules, chains };
}

export async function readCalicoCounters(runner: Runner, netns: string, opts: CalicoInstallOptions = {}): Promise<CalicoCounters> {
  const { save } = iptablesBinaries(opts.iptablesBackend ?? DEFAULT_IPTABLES_BACKEND);
  const r = await runner.run({ argv: [save, '-t', 'filter'], netns, purpose: 'count Calico-model rules' });
  return countCalicoRules(r.stdout);
}
