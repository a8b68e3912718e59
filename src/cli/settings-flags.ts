// The run settings a flag can set, declared once for every command that takes them (bench run, bench sweep, and
// the ones bench enforce shares). A flag is its setting's config key in kebab-case, so the two cannot drift apart,
// and the table is typed against the run config: a key that is not a setting does not compile, and a setting
// that takes a value must name its argument.
import { Option, type Command } from 'commander';
import { flagName } from '../config/load.js';
import { BACKENDS, type RunConfig } from '../config/schema.js';

type SettingFlag<V> = { help: string } & ([Exclude<V, undefined>] extends [boolean] ? { arg?: undefined } : { arg: `<${string}>` });

export const SETTING_FLAGS = {
  backend: { arg: '<name>', help: `where to run: ${BACKENDS.join('|')} (default auto)` },
  samples: { arg: '<n>', help: 'measured operations per metric (default 10000)' },
  warmup: { arg: '<n>', help: 'warm-up operations per metric, not recorded (default 1000)' },
  concurrency: { arg: '<n>', help: 'parallel probe workers (default 1)' },
  rounds: { arg: '<n>', help: 'measure connect, CRR and RR interleaved in N rounds, each metric spread over the whole run (default 10 on local, 1 on kind/cluster)' },
  placement: { arg: '<where>', help: 'cross-node|same-node (default cross-node)' },
  matchPosition: { arg: '<pos>', help: "where the client's allowing policy sits in evaluation order: first|last (default last)" },
  seed: { arg: '<n>', help: "seed for the policy generator and bootstrap, and a sweep's point order (default 1)" },
  timeoutMs: { arg: '<n>', help: 'per-connection timeout (default 1000)' },
  policyMapCapacity: { arg: '<n>', help: "Cilium: policy map entries per endpoint, 256..65536 (default 16384, Cilium's bpf.policyMapMax)" },
  pinCpu: { arg: '<n|auto|off>', help: "local backend: CPU for probe client, server and the veths' softirq work; auto (default) picks one, off leaves it to the scheduler" },
  iptablesBackend: { arg: '<name>', help: 'Calico/Canal models: nft|legacy, the iptables flavour Felix writes with (default nft, what Felix picks on current nodes)' },
  endpointLockdownOnPolicyOverflow: { help: "Cilium: lock an endpoint down (deny all) when its policy map overflows, instead of Cilium's default (map left stale)" },
  bpfPolicyDebug: { arg: '<on|off>', help: "Calico-eBPF: Felix's BPFPolicyDebugEnabled, a rule-id record in every rule of the policy programs (default on, as Felix; off makes each rule cheaper and a chain hold more rules)" },
  measure: { arg: '<what>', help: 'latency (bench run points, default) or enforce (bench enforce points: time to enforcement and fail-open windows vs N; scenario key measure:, with enforceRepetitions:)' },
  context: { arg: '<name>', help: 'cluster backend: kubeconfig context to use (required for --backend cluster)' },
  kubeconfig: { arg: '<file>', help: 'cluster backend: kubeconfig file' },
} satisfies { [K in keyof RunConfig]?: SettingFlag<RunConfig[K]> };

export type SettingKey = keyof typeof SETTING_FLAGS;

/** The measurement settings bench run and bench sweep both take, in their help order. */
export const MEASUREMENT_SETTINGS = ['backend', 'samples', 'warmup', 'concurrency', 'rounds', 'placement', 'matchPosition', 'seed', 'timeoutMs', 'policyMapCapacity', 'pinCpu'] as const satisfies readonly SettingKey[];

/** The shared declaration of one setting's flag. */
export function settingOption(key: SettingKey): Option {
  const f: { arg?: string; help: string } = SETTING_FLAGS[key];
  return new Option(f.arg ? `${flagName(key)} ${f.arg}` : flagName(key), f.help);
}

/** A command's flags in help order: a setting key stands for its shared declaration, an Option is the command's own. */
export type FlagList = ReadonlyArray<SettingKey | Option>;

export function declareFlags(cmd: Command, flags: FlagList): Command {
  for (const f of flags) cmd.addOption(typeof f === 'string' ? settingOption(f) : f);
  return cmd;
}

/** The settings among a command's flags. */
export const settingsOf = (flags: FlagList): SettingKey[] => flags.filter((f): f is SettingKey => typeof f === 'string');
