import { loadWorkload } from './dist/workload/load.js';
import { chooseFlows, FlowSpace } from './dist/workload/choose-flows.js';
import { probeFlows } from './dist/workload/flows.js';
for (const f of ['scenarios/workloads/small.yaml', 'scenarios/workloads/large.yaml']) {
  let t = performance.now();
  const w = loadWorkload(f);
  const gen = performance.now() - t; t = performance.now();
  const space = new FlowSpace(w);
  const sp = performance.now() - t; t = performance.now();
  const c = chooseFlows(space, { random: 3, seed: 1 });
  const ch = performance.now() - t; t = performance.now();
  const pf = probeFlows(w, { max: 2000 });
  const pr = performance.now() - t;
  console.log(f, { gen: gen.toFixed(0), space: sp.toFixed(0), choose: ch.toFixed(0), probe: pr.toFixed(0) }, c.flows.map(x => `${x.reason} ${x.from}->${x.to}:${x.port}/${x.protocol} rules=${x.cost.rules}`), c.notes, pf.total, pf.sampled);
}
