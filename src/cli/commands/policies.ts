// `bench policies`: print the generated NetworkPolicy set, as YAML or a JSON List.
import type { Command } from 'commander';
import { stringify } from 'yaml';
import { resolveRunConfig } from '../../config/load.js';
import { InputError } from '../../errors.js';
import { EXIT_OK } from '../io.js';

export async function cmdPolicies(opts: Record<string, unknown>): Promise<number> {
  const { config, problems } = resolveRunConfig({ cni: 'none', policies: opts.policies as string, matchPosition: opts.matchPosition as string, seed: opts.seed as string });
  const format = String(opts.output ?? 'yaml');
  if (!['yaml', 'json'].includes(format)) problems.push({ where: '-o', message: `must be yaml or json, got '${format}'` });
  if (!config || problems.length) throw new InputError(problems);
  const { benchmarkPolicySet } = await import('../../workload/workload.js');
  const { policies } = benchmarkPolicySet(config);
  if (format === 'json') process.stdout.write(`${JSON.stringify({ apiVersion: 'v1', kind: 'List', items: policies }, null, 2)}\n`);
  else process.stdout.write(policies.map((p) => stringify(p)).join('---\n'));
  return EXIT_OK;
}

export function register(program: Command): void {
  program
    .command('policies')
    .description('print the generated NetworkPolicy set')
    .option('--policies <n>', 'number of filler policies', '3')
    .option('--match-position <pos>', 'first|last', 'last')
    .option('--seed <n>', 'generator seed', '1')
    .option('-o, --output <format>', 'yaml|json', 'yaml')
    .action(async (opts: Record<string, unknown>) => {
      process.exitCode = await cmdPolicies(opts);
    });
}
