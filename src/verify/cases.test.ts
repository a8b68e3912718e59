import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { loadCases, parseCaseFile } from './cases.js';
import { gridLayout, gridWorkload, instantiatePolicies, matchesPattern, planProbes } from './grid.js';
import { plannedAddresses } from '../backends/factory.js';
import { tempDir } from '../test-support/temp.js';

const layout = gridLayout();
const addresses = await plannedAddresses(gridWorkload(layout));
const ctx = { layout, ips: addresses.ips };

const GOOD = `name: ok
description: fine
policies:
  - apiVersion: networking.k8s.io/v1
    kind: NetworkPolicy
    metadata: { name: p, namespace: x }
    spec:
      podSelector: {}
`;

describe('parseCaseFile', () => {
  it('accepts several cases in one file, one per YAML document, and records where each starts', () => {
    const r = parseCaseFile('c.yaml', `${GOOD}---\n${GOOD.replace('name: ok', 'name: ok2')}---\n`, ctx);
    expect(r.problems).toEqual([]);
    expect(r.cases.map((c) => [c.name, c.source])).toEqual([
      ['ok', 'c.yaml:1:1'],
      ['ok2', 'c.yaml:10:1'],
    ]);
  });

  it('reports a misspelt NetworkPolicy key at its line and column', () => {
    const text = GOOD.replace('podSelector: {}', 'podSelector: {}\n      ingres: []');
    const r = parseCaseFile('c.yaml', text, ctx);
    expect(r.cases).toEqual([]);
    expect(r.problems).toEqual([{ where: 'c.yaml:9:7', message: "unknown key 'ingres' in policies.0.spec" }]);
  });

  it('reports every problem of a case at once, each with file:line:col', () => {
    const text = `name: Bad_Name
description: ""
policies:
  - apiVersion: networking.k8s.io/v1
    kind: NetworkPolicy
    metadata: { name: p, namespace: x }
    spec:
      podSelector: {}
      ingress:
        - ports:
            - { protocol: ICMP, port: 80 }
probes:
  ports: [TCP80]
`;
    const r = parseCaseFile('c.yaml', text, ctx);
    expect(r.problems.map((p) => p.where).sort()).toEqual(['c.yaml:11:27', 'c.yaml:13:11', 'c.yaml:1:7', 'c.yaml:2:14'].sort());
    expect(r.problems.find((p) => p.where === 'c.yaml:11:27')?.message).toMatch(/protocol: must be "TCP" or "UDP" or "SCTP"/);
  });

  it('checks policy semantics after substituting templates: an except outside its block is reported on its line', () => {
    const text = `${GOOD.replace('podSelector: {}', `podSelector: {}
      ingress:
        - from:
            - ipBlock:
                cidr: "{{ ext1 }}/30"
                except: ["{{ x/a }}/32"]`)}`;
    const r = parseCaseFile('c.yaml', text, ctx);
    expect(r.problems).toHaveLength(1);
    expect(r.problems[0]!.where).toBe('c.yaml:13:26');
    expect(r.problems[0]!.message).toMatch(/must be a strict subset of cidr 172\.18\.0\.240\/30/);
  });

  it('rejects a template naming no grid endpoint, and probe patterns that match nothing', () => {
    const text = `${GOOD.replace('podSelector: {}', `podSelector: {}
      egress:
        - to:
            - ipBlock: { cidr: "{{ q/a }}/32" }`)}probes:
  from: [w/*]
`;
    const r = parseCaseFile('c.yaml', text, ctx);
    expect(r.problems.map((p) => [p.where, p.message.slice(0, 40)])).toEqual([
      ['c.yaml:11:32', "'{{ q/a }}' names no grid endpoint (know"],
      ['c.yaml:13:10', "'w/*' matches no grid endpoint (x/a, x/b"],
    ]);
  });

  it('reports YAML syntax errors with their position', () => {
    const r = parseCaseFile('c.yaml', 'name: [unclosed\n', ctx);
    expect(r.problems[0]!.where).toMatch(/^c\.yaml:\d+:\d+$/);
    expect(r.problems[0]!.message).toMatch(/^YAML syntax/);
  });

  it('reports duplicate policies within a case', () => {
    const dup = GOOD + GOOD.split('\n').slice(3).join('\n');
    const r = parseCaseFile('c.yaml', dup, ctx);
    expect(r.problems).toEqual([{ where: 'c.yaml:11:23', message: 'duplicate policy x/p in this case' }]);
  });
});

describe('loadCases', () => {
  it('reads a directory of *.yaml files in name order and reports duplicate case names across files', () => {
    const dir = tempDir('cb-verify-cases-');
    writeFileSync(join(dir, 'b.yaml'), GOOD);
    writeFileSync(join(dir, 'a.yaml'), GOOD.replace('name: ok', 'name: first'));
    writeFileSync(join(dir, 'c.yml'), GOOD);
    writeFileSync(join(dir, 'notes.txt'), 'ignored');
    const r = loadCases([dir], ctx);
    expect(r.cases.map((c) => c.name)).toEqual(['first', 'ok', 'ok']);
    expect(r.problems).toEqual([{ where: `${join(dir, 'c.yml')}:1:1`, message: `duplicate case name 'ok' (also at ${join(dir, 'b.yaml')}:1:1)` }]);
  });

  it('says so when a path does not exist', () => {
    expect(loadCases(['/nonexistent/cases'], ctx).problems).toEqual([{ where: '/nonexistent/cases', message: 'no such file or directory' }]);
  });
});

describe('grid', () => {
  it('probes every ordered pair except a pod to itself, on the ports the destination serves', () => {
    const probes = planProbes(layout);
    expect(probes).toHaveLength(414);
    expect(probes.some((p) => p.from === p.to)).toBe(false);
    expect(probes.filter((p) => p.to === 'kube-system/coredns').map((p) => `${p.protocol}/${p.port}`)).toEqual(Array(9).fill(['UDP/53', 'TCP/53']).flat());
    expect(probes.some((p) => p.from === 'kube-system/coredns')).toBe(false);
  });

  it('filters probes by endpoint patterns and ports', () => {
    const probes = planProbes(layout, { from: ['x/*'], to: ['*/b', 'ext1'], ports: ['TCP/80'] });
    expect(probes.map((p) => `${p.from}>${p.to}`)).toEqual(['x/a>x/b', 'x/a>y/b', 'x/a>z/b', 'x/a>ext1', 'x/b>y/b', 'x/b>z/b', 'x/b>ext1', 'x/c>x/b', 'x/c>y/b', 'x/c>z/b', 'x/c>ext1']);
    expect(matchesPattern('x/*', 'xx/a')).toBe(false);
    expect(matchesPattern('*', 'ext2')).toBe(true);
  });

  it('substitutes endpoint addresses into ipBlocks and clears host bits', () => {
    const { policies, problems } = instantiatePolicies(
      [{ apiVersion: 'networking.k8s.io/v1', kind: 'NetworkPolicy', metadata: { name: 'p', namespace: 'x' }, spec: { podSelector: {}, ingress: [{ from: [{ ipBlock: { cidr: '{{ext1}}/28', except: ['{{ ext2 }}/32'] } }] }] } }],
      addresses.ips,
    );
    expect(problems).toEqual([]);
    expect(policies[0]!.spec.ingress![0]!.from![0]!.ipBlock).toEqual({ cidr: '172.18.0.240/28', except: ['172.18.0.241/32'] });
  });
});

describe('case files that would check nothing, or hide problems', () => {
  it('an empty case file is an error, not "0 cases passed"', () => {
    expect(parseCaseFile('empty.yaml', '', ctx).problems).toEqual([{ where: 'empty.yaml', message: expect.stringMatching(/holds no cases/) }]);
    expect(parseCaseFile('empty.yaml', '---\n# nothing\n---\n', ctx).problems).toHaveLength(1);
    const dir = tempDir('cb-cases-');
    writeFileSync(join(dir, 'a.yaml'), '');
    expect(loadCases([join(dir, 'a.yaml')], ctx).problems.map((p) => p.message).join('\n')).toMatch(/holds no cases/);
  });

  it('a policy in a namespace outside the grid is an error unless the case lists it under emptyNamespaces', () => {
    const text = GOOD.replace('namespace: x', 'namespace: prod');
    const r = parseCaseFile('c.yaml', text, ctx);
    expect(r.cases).toEqual([]);
    expect(r.problems).toEqual([{ where: 'c.yaml:6:37', message: expect.stringMatching(/namespace 'prod' is not in the grid \(x, y, z/) }]);
    expect(parseCaseFile('c.yaml', `${text}emptyNamespaces: [prod]\n`, ctx).problems).toEqual([]);
  });

  it('reports all four problems of one policy, and a bad probes.from next to a bad port', () => {
    const text = `name: many
description: four problems in one policy
policies:
  - apiVersion: networking.k8s.io/v1
    kind: NetworkPolicy
    metadata: { name: p, namespace: x }
    spec:
      podSelector: {}
      ingress:
        - ports:
            - { protocol: ICMP, port: 80 }
  - apiVersion: networking.k8s.io/v1
    kind: NetworkPolicy
    metadata: { name: q, namespace: nowhere }
    spec:
      podSelector:
        matchLabels: { "bad key!": a }
      ingress:
        - from:
            - ipBlock: { cidr: 10.0.0.0/8, except: [192.168.0.0/16] }
probes:
  from: [q/zz]
  ports: [TCP80]
`;
    const r = parseCaseFile('c.yaml', text, ctx);
    const messages = r.problems.map((p) => p.message).join('\n');
    expect(messages).toMatch(/protocol: must be "TCP" or "UDP" or "SCTP"/);
    expect(messages).toMatch(/label key 'bad key!'/);
    expect(messages).toMatch(/probes.ports.0: must look like TCP\/80/);
    expect(messages).toMatch(/'q\/zz' matches no grid endpoint/);
    expect(r.problems.length).toBeGreaterThanOrEqual(4);
  });

  it('checks the second policy\'s semantics even when the first is malformed', () => {
    const text = `name: two
description: d
policies:
  - apiVersion: networking.k8s.io/v1
    kind: NetworkPolicy
    metadata: { name: p, namespace: x }
    spec: { podSelector: {}, ingres: [] }
  - apiVersion: networking.k8s.io/v1
    kind: NetworkPolicy
    metadata: { name: q, namespace: nowhere }
    spec: { podSelector: {} }
`;
    const messages = parseCaseFile('c.yaml', text, ctx).problems.map((p) => p.message);
    expect(messages).toEqual([expect.stringMatching(/unknown key 'ingres'/), expect.stringMatching(/namespace 'nowhere' is not in the grid/)]);
  });

  it('rejects label keys and values the API server rejects, in every selector and in metadata', () => {
    const bad = (labelsYaml: string) => parseCaseFile('c.yaml', GOOD.replace('podSelector: {}', `podSelector:\n        matchLabels: ${labelsYaml}`), ctx).problems;
    expect(bad('{ app: a, "example.com/tier": web }')).toEqual([]);
    expect(bad('{ "-app": a }')[0]?.message).toMatch(/label key '-app'/);
    expect(bad('{ "Example.com/app": a }')[0]?.message).toMatch(/prefix before '\/' must be a DNS subdomain/);
    expect(bad(`{ ${'k'.repeat(64)}: a }`)[0]?.message).toMatch(/1-63/);
    expect(bad('{ app: "a b" }')[0]?.message).toMatch(/label value/);
    const expr = parseCaseFile('c.yaml', GOOD.replace('podSelector: {}', 'podSelector:\n        matchExpressions: [{ key: "a/b/c", operator: Exists }]'), ctx).problems;
    expect(expr[0]?.message).toMatch(/label key 'a\/b\/c'/);
  });
});
