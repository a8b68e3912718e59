// The settings a flag can set, declared once for every command that takes them (run, sweep, enforce, verify,
// policies). A flag is its setting's config key in kebab-case, so the two cannot drift apart; the table is typed
// against the run config, so a key that is not a setting does not compile and a setting that takes a value must
// name its argument. Ranges and defaults are the config schema's (src/config/schema.ts); where a command reads a
// setting differently (a list in a sweep, another default), its entry says so here and nowhere else.
import { Option, type Command } from 'commander';
import { flagName } from '../config/load.js';
import { BACKENDS, CNIS, ENFORCE_CHANGES, KUBE_PROXY_MODES, MAX_ENDPOINTS_PER_SERVICE, MAX_POLICIES, MAX_SERVICES, type RunConfig, type RunConfigInput } from '../config/schema.js';

export const COMMANDS = ['run', 'sweep', 'enforce', 'verify', 'policies', 'snapshot'] as const;
export type CommandName = (typeof COMMANDS)[number];

/** How one command takes a setting, where it differs from the others: its words, its argument, its default. */
interface PerCommand<V> {
  /** Its flag there, where not the key's own (enforce's --repetitions sets enforceRepetitions). */
  flag?: `--${string}`;
  arg?: `<${string}>`;
  help?: string;
  /** The command's default where it is not the schema's. */
  default?: V;
}

type SettingFlag<V> = { help: string; for?: Partial<Record<CommandName, PerCommand<Exclude<V, undefined>>>> } & ([Exclude<V, undefined>] extends [boolean] ? { arg?: undefined } : { arg: `<${string}>` });

export const SETTING_FLAGS = {
  cni: {
    arg: '<name>',
    help: `CNI data plane: ${CNIS.join('|')}`,
    for: { sweep: { arg: '<list>', help: `comma-separated CNIs: ${CNIS.join(',')}` }, verify: { help: `CNI data plane: ${CNIS.join('|')}; with --workload a comma-separated list, verified one after the other` } },
  },
  policies: {
    arg: '<n>',
    help: `number of NetworkPolicies selecting the server (0..${MAX_POLICIES})`,
    for: {
      sweep: { arg: '<list>', help: `comma-separated policy counts (0..${MAX_POLICIES}), e.g. 0,100,500,1000,2000,5000,10000` },
      enforce: { help: `filler policies selecting the server, in place during every change (0..${MAX_POLICIES}, default 0)` },
      verify: { help: 'filler policies on every pod group a case isolates, built so no verdict changes (0..20000, default 0): is the data plane still right at scale?' },
      policies: { help: 'number of filler policies (default 3)', default: 3 },
    },
  },
  backend: {
    arg: '<name>',
    help: `where to run: ${BACKENDS.join('|')} (default auto)`,
    for: {
      enforce: { help: 'local (default), kind (a throw-away kind cluster) or cluster (an existing one: --context/--kubeconfig)', default: 'local' },
      verify: { help: 'where to run: local (namespaces on this kernel, CNI models), kind (a throw-away cluster with the real CNI) or cluster (an existing one) (default local)', default: 'local' },
    },
  },
  samples: { arg: '<n>', help: 'measured operations per metric (default 10000)' },
  warmup: { arg: '<n>', help: 'warm-up operations per metric, not recorded (default 1000)' },
  sampleBudgetMs: { arg: '<ms>', help: 'a metric stops sampling after this long measuring, never below 200 samples (set from its first round, so rounds > 1; the result records the samples taken and why) (default: none)' },
  metrics: { arg: '<list>', help: 'comma-separated subset of connect,crr,rr to measure (default all three; an adaptive sweep extends a data plane with only its open metrics)' },
  concurrency: { arg: '<n>', help: 'parallel probe workers (default 1)' },
  rounds: { arg: '<n>', help: 'measure connect, CRR and RR interleaved in N rounds, each metric spread over the whole run (default 10 on local, 1 on kind/cluster)' },
  placement: { arg: '<where>', help: 'cross-node|same-node (default cross-node)' },
  matchPosition: { arg: '<pos>', help: "where the client's allowing policy sits in evaluation order: first|last (default last)" },
  services: {
    arg: '<n>',
    help: `N ClusterIP Services beside the server's, the client connecting to the server's ClusterIP through the CNI's service data plane (0..${MAX_SERVICES}; kind/cluster: in the run's server namespace, ClusterIPs from the API server; unset: no Service, the client connects to the pod)`,
    for: {
      sweep: { arg: '<list>', help: `comma-separated Service counts, a dimension like --policies (0..${MAX_SERVICES}), e.g. 0,1000,5000,10000,30000` },
      verify: { help: `local backend: every probe from a pod to a pod goes to the destination's own Service (its ClusterIP, the pod's port + 10000), as upstream's netpol suite probes, through the CNI's service data plane; N more Services beside (0..${MAX_SERVICES})` },
      enforce: { help: `local backend: N Services beside the server's own, for the Service changes (endpoint-removed, endpoint-added, service-added; measured by default with --services) (0..${MAX_SERVICES})` },
    },
  },
  endpointsPerService: { arg: '<n>', help: `with --services: address-only endpoints of each other Service (1..${MAX_ENDPOINTS_PER_SERVICE}, default 1; kind/cluster: 1, the server pod)` },
  servicePosition: { arg: '<pos>', help: "with --services: where the server's Service sits in kube-proxy's KUBE-SERVICES order: first|last (default last, the whole walk; kind/cluster: the order Services are applied in, since real kube-proxy redraws it every sync)" },
  kubeProxy: { arg: '<mode>', help: `with --services: kube-proxy's mode beside CNIs that run with it: ${KUBE_PROXY_MODES.join('|')} (default: the CNI's, iptables; calico-nftables needs nftables; cilium and calico-ebpf replace kube-proxy; kind: its kubeProxyMode; cluster: must match the cluster's, which is read)` },
  seed: { arg: '<n>', help: "seed for the policy generator (with --workload: the random flows) and bootstrap, and a sweep's point order (default 1)", for: { verify: { help: 'with --workload: seed of the sampled flows (default 1)' } } },
  timeoutMs: {
    arg: '<n>',
    help: 'per-connection timeout (default 1000)',
    for: { verify: { help: 'per-probe timeout for a TCP connect or a UDP echo (default 300 local, 1000 kind/cluster)' } },
  },
  policyMapCapacity: { arg: '<n>', help: "Cilium: policy map entries per endpoint, 256..65536 (default 16384, Cilium's bpf.policyMapMax)" },
  pinCpu: {
    arg: '<n|auto|off>',
    help: "local backend: CPU for probe client, server and the veths' softirq work; auto (default) picks one, off leaves it to the scheduler",
    for: { enforce: { help: "local backend: CPU for the watch probes, the servers and the veths' softirq work; auto (default) and off leave them to the scheduler" } },
  },
  iptablesBackend: { arg: '<name>', help: "Calico/Canal models: nft|legacy, the iptables flavour Felix writes with (default nft, what Felix picks on current nodes); with --services also kube-proxy's iptables mode (node's iptables flavour)" },
  nftSelectorSets: { arg: '<kind>', help: "calico-nftables model: interval|hash, how selector sets are declared (default interval, Felix v3.30's flags interval)" },
  endpointLockdownOnPolicyOverflow: { help: "Cilium: lock an endpoint down (deny all) when its policy map overflows, instead of Cilium's default (map left stale)" },
  bpfPolicyDebug: { arg: '<on|off>', help: "Calico-eBPF: Felix's BPFPolicyDebugEnabled, a rule-id record in every rule of the policy programs (default on, as Felix; off makes each rule cheaper and a chain hold more rules)" },
  measure: { arg: '<what>', help: 'latency (bench run points, default) or enforce (bench enforce points: time to enforcement and fail-open windows vs N; scenario key measure:, with enforceRepetitions:)' },
  enforceRepetitions: { arg: '<n>', help: 'enforce points: repetitions of each change (default 3)', for: { enforce: { flag: '--repetitions', help: 'repetitions of each change (default 5)', default: 5 } } },
  changes: { arg: '<list>', help: `comma-separated subset of ${ENFORCE_CHANGES.join(',')} (default: the policy changes, and with --services the Service changes too)` },
  intervalUs: { arg: '<n>', help: 'probe cadence, µs: a new connect starts this often (100..1000, default 1000)' },
  probeTimeoutMs: { arg: '<n>', help: "each probe's timeout, ms, or auto: 5 × p99 of an allowed connect, at least 10 (default auto)" },
  deadlineMs: { arg: '<n>', help: 'longest wait for a change to be seen before it counts as not enforced (default 10000)' },
  settle: { arg: '<n>', help: 'consecutive probes with the new verdict that count as enforced (default 5)' },
  context: {
    arg: '<name>',
    help: 'cluster backend: kubeconfig context to use (required for --backend cluster; never the current one implicitly)',
    for: { snapshot: { help: 'kubeconfig context of the cluster (this or --kubeconfig is required)' } },
  },
  kubeconfig: { arg: '<file>', help: 'cluster backend: kubeconfig file' },
  workload: {
    arg: '<file>',
    help: 'a cluster-shaped workload: the output of kubectl get namespaces,nodes,pods,networkpolicies -A -o json (JSON or YAML), or a generated shape (scenarios/workloads/*.yaml); local backend',
    for: {
      verify: { help: "replay a cluster's pods and policies (kubectl get namespaces,nodes,pods,networkpolicies -A -o json, or scenarios/workloads/*.yaml) and probe the flows between its pods instead of the grid cases; local backend" },
      run: { help: "measure flows of a cluster-shaped workload (kubectl get namespaces,nodes,pods,networkpolicies -A -o json, or scenarios/workloads/*.yaml) instead of the benchmark's client and server; local backend" },
      enforce: { help: "replay a cluster's pods and policies and time changes to its own policies (--change remove:NS/POLICY, add:NS/POLICY; default: a few chosen, seeded) on each --cni (comma-separated); local backend" },
    },
  },
  out: {
    arg: '<dir>',
    help: 'results directory (default results)',
    for: { sweep: { help: 'results root (default results)' }, verify: { help: 'kind/cluster: where the kind kubeconfig and diagnostics go (<dir>/<run id>) (default results)' } },
  },
  keep: {
    help: 'leave the namespaces/cluster up after the run, print how to enter them, and exit (bench gc --run <id> removes them)',
    for: { verify: { help: 'kind/cluster: leave the cluster or the grid namespaces up afterwards and print how to enter them' } },
  },
  dryRun: {
    help: 'print the plan (every command) without running anything',
    for: { sweep: { help: 'print the planned order of points and exit' }, verify: { help: 'kind/cluster: print the plan (every command and manifest) without running anything' }, snapshot: { help: 'print the kubectl command and write nothing' } },
  },
  json: {
    help: 'print the summary as JSON on stdout',
    for: { sweep: { help: 'print the outcome and fits as JSON on stdout (progress stays on stderr)' }, verify: { help: 'print the report as JSON on stdout' } },
  },
} satisfies { [K in keyof RunConfig]?: SettingFlag<RunConfig[K]> };

export type SettingKey = keyof typeof SETTING_FLAGS;

/** The measurement settings bench run and bench sweep both take, in their help order. */
export const MEASUREMENT_SETTINGS = ['backend', 'samples', 'sampleBudgetMs', 'warmup', 'concurrency', 'rounds', 'placement', 'matchPosition', 'services', 'endpointsPerService', 'servicePosition', 'kubeProxy', 'seed', 'timeoutMs', 'policyMapCapacity', 'pinCpu'] as const satisfies readonly SettingKey[];

const perCommand = (key: SettingKey, command?: CommandName): PerCommand<unknown> | undefined => (command ? (SETTING_FLAGS[key] as { for?: Partial<Record<CommandName, PerCommand<unknown>>> }).for?.[command] : undefined);

/**
 * The shared declaration of one setting's flag (as `command` takes it). Defaults are not set on the option: the
 * resolver applies them (commandDefaults, then the schema), so "given" and "defaulted" stay apart.
 */
export function settingOption(key: SettingKey, command?: CommandName): Option {
  const f: { arg?: string; help: string } = SETTING_FLAGS[key];
  const own = perCommand(key, command);
  const arg = own?.arg ?? f.arg;
  const flag = settingFlag(key, command);
  return new Option(arg ? `${flag} ${arg}` : flag, own?.help ?? f.help);
}

/** The flag that sets `key` in `command`. */
export const settingFlag = (key: string, command?: CommandName): string => (key in SETTING_FLAGS ? perCommand(key as SettingKey, command)?.flag : undefined) ?? flagName(key);

/** The option attribute commander gives a flag: --pin-cpu -> pinCpu. */
const attributeOf = (flag: string) => flag.replace(/^--/, '').replace(/-([a-z])/g, (_, c: string) => c.toUpperCase());

/** The values of `keys` as `command`'s options hold them (each under its flag's attribute), keyed by setting. */
export function settingValues(opts: Record<string, unknown>, keys: readonly SettingKey[], command?: CommandName): Record<string, string | boolean | string[] | undefined> {
  const out: Record<string, string | boolean | string[] | undefined> = {};
  for (const key of keys) {
    const v = opts[attributeOf(settingFlag(key, command))];
    if (v !== undefined) out[key] = v as string | boolean | string[];
  }
  return out;
}

/** The defaults `command` gives settings where they are not the schema's. */
export function commandDefaults(command: CommandName): Partial<RunConfigInput> {
  const out: Record<string, unknown> = {};
  for (const key of Object.keys(SETTING_FLAGS) as SettingKey[]) {
    const d = perCommand(key, command)?.default;
    if (d !== undefined) out[key] = d;
  }
  return out as Partial<RunConfigInput>;
}

/** A command's flags in help order: a setting key stands for its shared declaration, an Option is the command's own. */
export type FlagList = ReadonlyArray<SettingKey | Option>;

export function declareFlags(cmd: Command, flags: FlagList, command?: CommandName): Command {
  for (const f of flags) cmd.addOption(typeof f === 'string' ? settingOption(f, command) : f);
  return cmd;
}

/** The settings among a command's flags. */
export const settingsOf = (flags: FlagList): SettingKey[] => flags.filter((f): f is SettingKey => typeof f === 'string');
