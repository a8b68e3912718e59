#!/usr/bin/env node
// Figures for the kind/cluster backends, from the compiled code (run `npx tsc -p tsconfig.json` first):
//  1. the size of the complete plan for `bench run --backend kind --cni cilium --policies 5000` (commands, objects);
//  2. the time to render and validate N policies into server-side-apply batches (goal: 10000 in under 2 s).
// Usage: node scripts/bench-k8s-render.mjs [policies=10000] [repetitions=5]
import { parse } from 'yaml';
import { runConfigSchema } from '../dist/config/schema.js';
import { DryRunRunner } from '../dist/exec/runner.js';
import { executeRun } from '../dist/run/run.js';
import { benchmarkPolicySet } from '../dist/workload/benchmark.js';
import { KindBackend } from '../dist/backends/kind/backend.js';
import { policyBatches, runNames } from '../dist/backends/k8s/manifests.js';
import { validateManifests } from '../dist/backends/k8s/validate.js';
import { toListJson } from '../dist/backends/k8s/yaml.js';

class PlanRunner extends DryRunRunner {
  specs = [];
  run(spec) {
    this.specs.push(spec);
    return super.run(spec);
  }
}

const objectsIn = (input) => {
  if (!input) return 0;
  if (input.startsWith('{')) {
    const o = JSON.parse(input);
    return o.kind === 'List' ? o.items.length : 1;
  }
  return input.split(/^---$/m).filter((d) => parse(d) && typeof parse(d) === 'object').length;
};

const config = runConfigSchema.parse({ cni: 'cilium', policies: 5000, backend: 'kind', dryRun: true });
const runner = new PlanRunner();
const backend = new KindBackend({ config, runId: 'abcde', runner, cleanupRunner: runner, outDir: '/results/abcde' });
const t0 = performance.now();
await executeRun({ runId: 'abcde', config, backend, outDir: '/results/abcde' });
const planMs = performance.now() - t0;
const objects = runner.specs.reduce((a, s) => a + objectsIn(s.input), 0);
console.log(`plan --backend kind --cni cilium --policies 5000: ${runner.specs.length} commands, ${objects} objects on stdin (${runner.specs.filter((s) => s.argv.includes('--server-side')).length} apply batches), planned in ${planMs.toFixed(0)} ms`);

const n = Number(process.argv[2] ?? 10000);
const reps = Number(process.argv[3] ?? 5);
const names = runNames('abcde');
const times = [];
for (let i = 0; i < reps; i++) {
  const s = performance.now();
  const set = benchmarkPolicySet(runConfigSchema.parse({ cni: 'cilium', policies: n }), { server: names.serverNamespace, client: names.clientNamespace }, names.runLabel);
  validateManifests(set.policies);
  const bytes = policyBatches(set.policies).reduce((a, b) => a + toListJson(b).length, 0);
  times.push(performance.now() - s);
  if (i === 0) console.log(`${set.policies.length} policies -> ${(bytes / 1e6).toFixed(1)} MB of apply input`);
}
times.sort((a, b) => a - b);
console.log(`render + validate + batch ${n} policies: median ${times[Math.floor(reps / 2)].toFixed(0)} ms, min ${times[0].toFixed(0)} ms, max ${times.at(-1).toFixed(0)} ms (${reps} runs, node ${process.version})`);
