// Verification cases: YAML files holding real NetworkPolicy objects and, optionally, the subset of the grid to
// probe. A file holds one case per YAML document (`---` between them). Every problem is reported at once, with
// file:line:column, the way the scenario loader does it.
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { LineCounter, parseAllDocuments } from 'yaml';
import { z } from 'zod';
import type { Problem } from '../errors.js';
import { yamlErrorLocation, yamlLocation } from '../config/yaml-location.js';
import { validatePolicy } from '../policy/resolve.js';
import type { NetworkPolicy } from '../policy/types.js';
import { endpointIds, instantiatePolicies, matchesPattern, type GridLayout, type ProbeFilter } from './grid.js';

// This file sits two levels below the package root both as src/verify/cases.ts and as dist/verify/cases.js.
export const BUILTIN_CASES_DIR = join(dirname(fileURLToPath(import.meta.url)), '..', '..', 'scenarios', 'verify');

export interface VerifyCase {
  name: string;
  description: string;
  /** As written: ipBlocks may hold `{{ endpoint }}` templates, substituted per grid placement. */
  policies: NetworkPolicy[];
  probes?: ProbeFilter;
  /** Namespaces without grid pods that the policies may name on purpose. */
  emptyNamespaces?: string[];
  /** file:line of the case, for messages and JUnit. */
  source: string;
}

// ---- schema: NetworkPolicy v1 as the API server accepts it (unknown keys are typos, so rejected) ----

// Label keys and values as the API server validates them: an optional DNS-subdomain prefix and '/', then a name
// of at most 63 characters; values at most 63 characters, possibly empty.
const LABEL_NAME = /^[A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?$/;
const DNS_SUBDOMAIN = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/;
export function labelKeyProblem(key: string): string | undefined {
  const slash = key.lastIndexOf('/');
  const prefix = slash >= 0 ? key.slice(0, slash) : undefined;
  const name = slash >= 0 ? key.slice(slash + 1) : key;
  if (prefix !== undefined && (prefix.length > 253 || !DNS_SUBDOMAIN.test(prefix))) return `label key '${key}': the prefix before '/' must be a DNS subdomain (lowercase letters, digits, '-' and '.', at most 253 characters)`;
  if (!LABEL_NAME.test(name)) return `label key '${key}': the name must be 1-63 letters, digits, '-', '_' or '.', starting and ending with a letter or digit`;
  return undefined;
}
const LABEL_VALUE = /^(([A-Za-z0-9][-A-Za-z0-9_.]{0,61})?[A-Za-z0-9])?$/;
const labelKey = z.string().superRefine((k, ctx) => {
  const p = labelKeyProblem(k);
  if (p) ctx.addIssue({ code: 'custom', message: p });
});
const labelValue = z.string().regex(LABEL_VALUE, "a label value must be at most 63 letters, digits, '-', '_' or '.', starting and ending with a letter or digit (or empty)");
const labels = z.record(labelKey, labelValue);
const annotations = z.record(labelKey, z.string());
const selector = z
  .object({
    matchLabels: labels.optional(),
    matchExpressions: z
      .array(z.object({ key: labelKey, operator: z.enum(['In', 'NotIn', 'Exists', 'DoesNotExist']), values: z.array(labelValue).optional() }).strict())
      .optional(),
  })
  .strict();
const peer = z
  .object({
    podSelector: selector.optional(),
    namespaceSelector: selector.optional(),
    ipBlock: z.object({ cidr: z.string().min(1), except: z.array(z.string().min(1)).optional() }).strict().optional(),
  })
  .strict();
const port = z
  .object({
    protocol: z.enum(['TCP', 'UDP', 'SCTP']).optional(),
    port: z.union([z.number().int(), z.string().min(1)]).optional(),
    endPort: z.number().int().optional(),
  })
  .strict();
const policySchema = z
  .object({
    apiVersion: z.literal('networking.k8s.io/v1'),
    kind: z.literal('NetworkPolicy'),
    metadata: z.object({ name: z.string().min(1), namespace: z.string().min(1), labels: labels.optional(), annotations: annotations.optional() }).strict(),
    spec: z
      .object({
        podSelector: selector,
        policyTypes: z.array(z.enum(['Ingress', 'Egress'])).optional(),
        ingress: z.array(z.object({ from: z.array(peer).optional(), ports: z.array(port).optional() }).strict()).optional(),
        egress: z.array(z.object({ to: z.array(peer).optional(), ports: z.array(port).optional() }).strict()).optional(),
      })
      .strict(),
  })
  .strict();

export { policySchema };
const probesSchema = z
  .object({
    from: z.array(z.string().min(1)).min(1).optional(),
    to: z.array(z.string().min(1)).min(1).optional(),
    ports: z.array(z.string().regex(/^(TCP|UDP)\/\d{1,5}$/, 'must look like TCP/80 or UDP/53')).min(1).optional(),
  })
  .strict();

const CASE_NAME = /^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$/;
export const caseSchema = z
  .object({
    name: z.string().regex(CASE_NAME, 'must be lowercase letters, digits and -, at most 63 characters'),
    description: z.string().min(1),
    policies: z.array(policySchema),
    probes: probesSchema.optional(),
    /** Namespaces the case's policies may name although no grid pod lives there (a deliberate no-op policy). */
    emptyNamespaces: z.array(z.string().regex(CASE_NAME, 'must be a namespace name')).min(1).optional(),
  })
  .strict();

// ---- locating a path in the YAML source ----

type Seg = string | number;

/** `policies[0].spec.ingress[1].from[0]` -> ['policies', 0, 'spec', 'ingress', 1, 'from', 0]. */
function parsePath(text: string): Seg[] {
  return [...text.matchAll(/([^.[\]]+)|\[(\d+)\]/g)].map((m) => (m[2] !== undefined ? Number(m[2]) : m[1]!));
}

function describeIssue(issue: z.core.$ZodIssue): string {
  if (issue.code === 'invalid_value' && 'values' in issue) return `must be ${(issue.values as unknown[]).map((v) => JSON.stringify(v)).join(' or ')}`;
  if (issue.code === 'invalid_type') return `expected ${issue.expected}`;
  if (issue.code === 'too_small' && 'minimum' in issue) return `must have at least ${String(issue.minimum)}`;
  if (issue.code === 'invalid_key') return issue.issues.map((i) => i.message).join('; ');
  return issue.message;
}

// ---- parsing ----

export interface CaseCheckContext {
  layout: GridLayout;
  /** Addresses used to check templated ipBlocks at load time (the local grid's). */
  ips: Record<string, string>;
}

/** Parses one file's text; problems carry path:line:col. */
export function parseCaseFile(path: string, text: string, ctx: CaseCheckContext): { cases: VerifyCase[]; problems: Problem[] } {
  const lines = new LineCounter();
  const docs = parseAllDocuments(text, { lineCounter: lines, prettyErrors: false });
  const problems: Problem[] = [];
  const cases: VerifyCase[] = [];
  const list = Array.isArray(docs) ? docs : [docs];
  for (const doc of list) {
    for (const e of doc.errors) {
      problems.push({ where: yamlErrorLocation(path, e, lines), message: `YAML syntax: ${e.message.split('\n')[0]}` });
    }
  }
  if (problems.length) return { cases, problems };
  const ids = endpointIds(ctx.layout);
  let documents = 0;
  for (const doc of list) {
    let data: unknown;
    try {
      data = doc.toJS();
    } catch (e) {
      problems.push({ where: path, message: `YAML: ${(e as Error).message.includes('alias') ? 'too many alias (*name) expansions' : (e as Error).message}` });
      continue;
    }
    if (data === null || data === undefined) continue; // an empty document (e.g. a trailing ---)
    documents++;
    const where = (p: readonly Seg[], key?: string) => yamlLocation(path, doc, lines, p, key);
    if (typeof data !== 'object' || Array.isArray(data)) {
      problems.push({ where: where([]), message: 'a case must be a mapping with name, description, policies (and optionally probes)' });
      continue;
    }
    const before = problems.length;
    const parsed = caseSchema.safeParse(data);
    if (!parsed.success) {
      for (const issue of parsed.error.issues) {
        const p = issue.path as Seg[];
        if (issue.code === 'unrecognized_keys') {
          for (const key of issue.keys) problems.push({ where: where(p, key), message: `unknown key '${key}'${p.length ? ` in ${p.join('.')}` : ''}` });
        } else {
          problems.push({ where: where(p), message: `${p.join('.') || '(case)'}: ${describeIssue(issue)}` });
        }
      }
    }
    // The checks below run on every part that is well-formed on its own, so one bad field hides nothing else.
    const raw = data as Record<string, unknown>;
    const rawPolicies = Array.isArray(raw.policies) ? (raw.policies as unknown[]) : [];
    const gridNamespaces = ctx.layout.namespaces.map((n) => n.name);
    const declaredEmpty = Array.isArray(raw.emptyNamespaces) ? (raw.emptyNamespaces as unknown[]).filter((n): n is string => typeof n === 'string') : [];
    const seenPolicies = new Set<string>();
    rawPolicies.forEach((rawPolicy, i) => {
      const one = policySchema.safeParse(rawPolicy);
      if (!one.success) return;
      const pol = one.data as NetworkPolicy;
      if (JSON.stringify(pol.metadata).includes('{{')) {
        problems.push({ where: where(['policies', i, 'metadata']), message: 'templates ({{ … }}) are only allowed in ipBlock cidr/except' });
        return;
      }
      if (!gridNamespaces.includes(pol.metadata.namespace) && !declaredEmpty.includes(pol.metadata.namespace)) {
        problems.push({
          where: where(['policies', i, 'metadata', 'namespace']),
          message: `namespace '${pol.metadata.namespace}' is not in the grid (${gridNamespaces.join(', ')}): the policy would select no pod and the case would check nothing (if that is the point, list it under emptyNamespaces)`,
        });
      }
      // Templates and policy semantics are checked on the policies as the local grid would receive them.
      const inst = instantiatePolicies([pol], ctx.ips);
      for (const tp of inst.problems) problems.push({ where: where(['policies', i, ...tp.path.slice(1)]), message: tp.message.replace(/policies\[0\]/g, `policies[${i}]`) });
      if (inst.problems.length) return;
      const instantiated = inst.policies[0]!;
      const key = `${instantiated.metadata.namespace}/${instantiated.metadata.name}`;
      if (seenPolicies.has(key)) problems.push({ where: where(['policies', i, 'metadata', 'name']), message: `duplicate policy ${key} in this case` });
      seenPolicies.add(key);
      for (const issue of validatePolicy(instantiated, `policies[${i}]`)) problems.push({ where: where(parsePath(issue.path)), message: `${issue.path}: ${issue.message}` });
    });
    const rawProbes = raw.probes as Record<string, unknown> | undefined;
    for (const field of ['from', 'to'] as const) {
      const list = rawProbes && typeof rawProbes === 'object' ? rawProbes[field] : undefined;
      if (!Array.isArray(list)) continue;
      list.forEach((pattern, i) => {
        if (typeof pattern === 'string' && pattern && !ids.some((id) => matchesPattern(pattern, id))) {
          problems.push({ where: where(['probes', field, i]), message: `'${pattern}' matches no grid endpoint (${ids.join(', ')})` });
        }
      });
    }
    if (!parsed.success) continue;
    const c = parsed.data as Omit<VerifyCase, 'source'>;
    if (problems.length === before) cases.push({ ...c, source: where([]) });
  }
  if (documents === 0) problems.push({ where: path, message: 'holds no cases (the file is empty); a case needs name, description and policies' });
  return { cases, problems };
}

function caseFilesIn(dir: string): string[] {
  return readdirSync(dir)
    .filter((f) => f.endsWith('.yaml') || f.endsWith('.yml'))
    .sort()
    .map((f) => join(dir, f));
}

/** Loads cases from files and directories (a directory: its *.yaml/*.yml files, sorted). */
export function loadCases(paths: readonly string[], ctx: CaseCheckContext): { cases: VerifyCase[]; problems: Problem[] } {
  const problems: Problem[] = [];
  const cases: VerifyCase[] = [];
  for (const p of paths) {
    let files: string[];
    try {
      files = statSync(p).isDirectory() ? caseFilesIn(p) : [p];
    } catch (e) {
      const code = (e as NodeJS.ErrnoException).code;
      problems.push({ where: p, message: code === 'ENOENT' ? 'no such file or directory' : `cannot read (${code})` });
      continue;
    }
    if (files.length === 0) problems.push({ where: p, message: 'no .yaml case files in this directory' });
    for (const f of files) {
      let text: string;
      try {
        text = readFileSync(f, 'utf8');
      } catch (e) {
        problems.push({ where: f, message: `cannot read (${(e as NodeJS.ErrnoException).code})` });
        continue;
      }
      const r = parseCaseFile(f, text, ctx);
      problems.push(...r.problems);
      cases.push(...r.cases);
    }
  }
  if (cases.length === 0 && problems.length === 0) problems.push({ where: paths.join(', ') || '--cases', message: 'no cases to run' });
  const seen = new Map<string, string>();
  for (const c of cases) {
    const first = seen.get(c.name);
    if (first) problems.push({ where: c.source, message: `duplicate case name '${c.name}' (also at ${first})` });
    else seen.set(c.name, c.source);
  }
  return { cases, problems };
}
