// `bench policies`: print the generated NetworkPolicy set, as YAML or a JSON List.
import { Option, type Command } from 'commander';
import { stringify } from 'yaml';
import { resolveRunConfig } from '../../config/load.js';
import { InputError } from '../../errors.js';
import { EXIT_OK } from '../io.js';
import { commandDefaults, declareFlags, settingValues, settingsOf, type FlagList } from '../settings-flags.js';

const policiesFlags = (): FlagList => ['policies', 'matchPosition', 'seed', new Option('-o, --output <format>', 'yaml|json').default('yaml')];
const SETTINGS = settingsOf(policiesFlags());

export async function cmdPolicies(opts: Record<string, unknown>): Promise<number> {
  const { config, problems } = resolveRunConfig({ cni: 'none', ...settingValues(opts, SETTINGS, 'policies') }, undefined, { defaults: commandDefaults('policies') });
  const format = String(opts.output ?? 'yaml');
  if (!['yaml', 'json'].includes(format)) problems.push({ where: '-o', message: `must be one of yaml, json, got "${format}"` });
  if (!config || problems.length) throw new InputError(problems);
  const { benchmarkPolicySet } = await import('../../workload/benchmark.js');
  const { policies } = benchmarkPolicySet(config);
  if (format === 'json') process.stdout.write(`${JSON.stringify({ apiVersion: 'v1', kind: 'List', items: policies }, null, 2)}\n`);
  else process.stdout.write(policies.map((p) => stringify(p)).join('---\n'));
  return EXIT_OK;
}

export function register(program: Command): void {
  declareFlags(program.command('policies').description('print the generated NetworkPolicy set'), policiesFlags(), 'policies').action(async (opts: Record<string, unknown>) => {
    process.exitCode = await cmdPolicies(opts);
  });
}
