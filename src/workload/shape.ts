// A cluster shape: what scenarios/workloads/*.yaml describe — namespaces × apps × replicas over nodes, a call
// graph between the apps, and the policy habits of real clusters — for generate-shape.ts to turn into a workload.
// Validated like scenario files: every problem at once, each at file:line:column; defaults live here.
import { readFileSync } from 'node:fs';
import { LineCounter, parseDocument } from 'yaml';
import { z } from 'zod';
import { InputError, type Problem } from '../errors.js';
import { yamlErrorLocation, yamlLocation } from '../config/yaml-location.js';
import { MAX_ADDRESSED_NODES, MAX_PODS_PER_NODE } from './cluster.js';
import { describeIssue } from './k8s-objects.js';

const int = (min: number, max: number) => z.number().int('must be a whole number').min(min).max(max);
const share = z.number().min(0).max(1);

export const shapeSchema = z
  .object({
    name: z.string().regex(/^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$/, 'must be lowercase letters, digits and -'),
    description: z.string().optional(),
    seed: int(0, 2 ** 31 - 1).default(1),
    /** Multiplies the application namespaces: the same habits, a bigger cluster. */
    scale: int(1, 100).default(1),
    nodes: int(1, MAX_ADDRESSED_NODES),
    /** Application namespaces before `scale` (kube-system and monitoring come on top). */
    namespaces: int(1, 500),
    appsPerNamespace: int(1, 50),
    replicas: z.object({ min: int(1, 100), max: int(1, 100) }).strict().default({ min: 1, max: 3 }),
    calls: z
      .object({
        /** Apps each app calls. */
        perApp: int(0, 20).default(2),
        /** Share of calls that go to an app in another namespace. */
        crossNamespace: share.default(0.2),
      })
      .strict()
      .default({ perApp: 2, crossNamespace: 0.2 }),
    ports: z
      .object({
        /** Share of apps whose service port is named (and referenced by name in policies). */
        named: share.default(0.5),
        /** Share of apps that serve a UDP port range (allowed with port + endPort). */
        ranges: share.default(0.05),
      })
      .strict()
      .default({ named: 0.5, ranges: 0.05 }),
    policies: z
      .object({
        /** Share of application namespaces with a default-deny policy (ingress and egress). */
        defaultDeny: share.default(1),
        /** Share of default-deny namespaces that allow DNS egress to kube-system/kube-dns. */
        allowDns: share.default(1),
        /** Ingress allows from each app's callers, egress allows to its callees. */
        callGraph: z.boolean().default(true),
        /** The monitoring namespace's Prometheus scrapes every app on its named metrics port. */
        metrics: z.boolean().default(true),
        /** Share of apps with an egress ipBlock rule (TCP 443 to an external range). */
        egressIpBlocks: share.default(0.2),
        /** Of those, the share written as 0.0.0.0/0 except the metadata address: it covers pod addresses too. */
        internetWide: share.default(0.3),
      })
      .strict()
      .default({ defaultDeny: 1, allowDns: 1, callGraph: true, metrics: true, egressIpBlocks: 0.2, internetWide: 0.3 }),
    mistakes: z
      .object({
        /** Share of cross-namespace ingress peers written as two peers (the OR form) where one (AND) was meant. */
        orPeers: share.default(0),
      })
      .strict()
      .default({ orPeers: 0 }),
  })
  .strict();

export type Shape = z.output<typeof shapeSchema>;

/** Pods every shape has besides its apps, on the pod network: two CoreDNS replicas and Prometheus. */
export const SYSTEM_PODS = 3;

/** Parses and validates a shape file's text; problems carry file:line:col. */
export function parseShape(file: string, text: string): { shape?: Shape; problems: Problem[] } {
  const lines = new LineCounter();
  const doc = parseDocument(text, { lineCounter: lines, prettyErrors: false });
  const problems: Problem[] = doc.errors.map((e) => ({
    where: yamlErrorLocation(file, e, lines),
    message: e.code === 'MULTIPLE_DOCS' ? 'a workload shape file holds one YAML document' : `YAML syntax: ${e.message.split('\n')[0]}`,
  }));
  if (problems.length) return { problems };
  let data: unknown;
  try {
    data = doc.toJS() ?? {};
  } catch (e) {
    return { problems: [{ where: file, message: `YAML: ${(e as Error).message.includes('alias') ? 'too many alias (*name) expansions' : (e as Error).message}` }] };
  }
  if (typeof data !== 'object' || data === null || Array.isArray(data)) return { problems: [{ where: file, message: 'a workload shape is a mapping of settings (key: value)' }] };
  const parsed = shapeSchema.safeParse(data, { reportInput: true });
  if (!parsed.success) {
    for (const issue of parsed.error.issues) {
      const path = issue.path as Array<string | number>;
      if (issue.code === 'unrecognized_keys') {
        for (const key of issue.keys) problems.push({ where: yamlLocation(file, doc, lines, path, key), message: `unknown key '${key}'${path.length ? ` in ${path.join('.')}` : ''}` });
      } else problems.push({ where: yamlLocation(file, doc, lines, path), message: `${path.join('.')}: ${describeIssue(issue)}` });
    }
    return { problems };
  }
  const shape = parsed.data;
  if (shape.replicas.min > shape.replicas.max) problems.push({ where: yamlLocation(file, doc, lines, ['replicas', 'min']), message: `replicas.min (${shape.replicas.min}) is above replicas.max (${shape.replicas.max})` });
  // Pods are dealt to the nodes in turn, so a node holds at most ceil(pods / nodes) of them.
  const maxPods = shape.namespaces * shape.scale * shape.appsPerNamespace * shape.replicas.max + SYSTEM_PODS;
  if (Math.ceil(maxPods / shape.nodes) > MAX_PODS_PER_NODE) {
    problems.push({ where: yamlLocation(file, doc, lines, ['nodes']), message: `up to ${maxPods} pods over ${shape.nodes} nodes is up to ${Math.ceil(maxPods / shape.nodes)} a node, but a node's pod CIDR (10.244.<node>.0/24) holds ${MAX_PODS_PER_NODE}: set nodes to at least ${Math.ceil(maxPods / MAX_PODS_PER_NODE)}` });
  }
  if (shape.namespaces * shape.scale > 1000) problems.push({ where: yamlLocation(file, doc, lines, ['scale']), message: `namespaces × scale is ${shape.namespaces * shape.scale}; at most 1000` });
  return problems.length ? { problems } : { shape, problems };
}

export function loadShape(file: string): Shape {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    throw new InputError([{ where: file, message: code === 'ENOENT' ? 'workload shape file not found' : `cannot read the workload shape file (${code})` }]);
  }
  const { shape, problems } = parseShape(file, text);
  if (!shape) throw new InputError(problems);
  return shape;
}
