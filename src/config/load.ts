// Turns CLI flags and an optional scenario file into a validated config, reporting every problem at once with
// the flag or the file:line:column it came from. Pure apart from reading the scenario file.
import { readFileSync } from 'node:fs';
import { cpus } from 'node:os';
import { LineCounter, parseDocument } from 'yaml';
import { z } from 'zod';
import type { Problem } from '../errors.js';
// Kept for importers outside this change (src/backends/registry.ts); the type lives in src/errors.ts.
import { CNIS, runConfigSchema, scenarioSchema, type RunConfig, type Scenario } from './schema.js';
import { yamlErrorLocation, yamlLocation } from './yaml-location.js';

/** Drops "required" problems when the scenario file was invalid (it may well set what they ask for). */
export const unlessScenarioFailed = (problems: Problem[], scenarioFailed: boolean) => (scenarioFailed ? problems.filter((p) => !p.missing) : problems);

export interface LoadedScenario {
  path: string;
  scenario: Scenario;
}

/** Flags as commander hands them over: strings, booleans, or undefined when not given. */
export type RawFlags = Record<string, string | boolean | string[] | undefined>;

/** The flag of a setting: `timeoutMs` → `--timeout-ms`. */
export const flagName = (key: string) => `--${key.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`)}`;

const got = (input: unknown) => (input === undefined ? '' : `, got ${JSON.stringify(input)}`);

function describeIssue(issue: z.core.$ZodIssue): string {
  if (issue.code === 'invalid_value' && 'values' in issue) {
    return `must be one of ${(issue.values as unknown[]).map(String).join(', ')}`;
  }
  if (issue.code === 'too_small' && 'minimum' in issue) return issue.origin === 'string' && Number(issue.minimum) === 1 ? 'must not be empty' : issue.origin === 'array' ? `must list at least ${String(issue.minimum)}` : `must be at least ${String(issue.minimum)}`;
  if (issue.code === 'too_big' && 'maximum' in issue) return `must be at most ${String(issue.maximum)}`;
  if (issue.code === 'invalid_type') return `expected ${issue.expected}`;
  if (issue.code === 'invalid_union') {
    // Scenario settings are "a value or a list of values": explain the branch that matches the input's shape.
    const branches = issue.errors;
    const isList = Array.isArray(issue.input);
    const branch = isList ? (branches.find((b) => b[0] && b[0].path.length > 0) ?? branches.find((b) => b[0]?.code === 'too_small')) : branches.find((b) => b[0] && !(b[0].code === 'invalid_type' && b[0].expected === 'array'));
    const first = branch?.[0];
    if (first) {
      const at = first.path.length ? `[${first.path.map(String).join('][')}] ` : '';
      return `${at}${describeIssue(first)}${isList ? '' : ' (or a list of such values)'}${got(first.input)}`;
    }
  }
  return issue.message;
}

const describeUnionKey = (issue: z.core.$ZodIssue) => {
  const d = describeIssue(issue);
  return d.startsWith('[') ? d : `: ${d}`;
};

/** Parses and validates a scenario file; problems carry file:line:col. */
export function parseScenario(path: string, text: string): { scenario?: Scenario; problems: Problem[] } {
  const lines = new LineCounter();
  const doc = parseDocument(text, { lineCounter: lines, prettyErrors: false });
  const problems: Problem[] = [];
  for (const e of doc.errors) {
    const message = e.code === 'MULTIPLE_DOCS' ? "a scenario file holds one YAML document; this one has a second after '---' (put each scenario in its own file)" : `YAML syntax: ${e.message.split('\n')[0]!.replace(/ at line \d+, column \d+:?$/, '')}`;
    problems.push({ where: yamlErrorLocation(path, e, lines), message });
  }
  if (problems.length) return { problems };
  let data: unknown;
  try {
    data = doc.toJS() ?? {};
  } catch (e) {
    // yaml refuses documents whose aliases expand exponentially ("billion laughs").
    return { problems: [{ where: path, message: `YAML: ${(e as Error).message.includes('alias') ? 'too many alias (*name) expansions; a scenario needs no aliases' : (e as Error).message}` }] };
  }
  if (typeof data !== 'object' || Array.isArray(data)) {
    return { problems: [{ where: path, message: 'a scenario must be a mapping of settings (key: value)' }] };
  }
  const parsed = scenarioSchema.safeParse(data, { reportInput: true });
  if (parsed.success) return { scenario: parsed.data, problems };
  for (const issue of parsed.error.issues) {
    if (issue.code === 'unrecognized_keys') {
      for (const key of issue.keys) {
        problems.push({
          where: yamlLocation(path, doc, lines, issue.path, key),
          message: `unknown key '${key}' (known keys: ${Object.keys(scenarioSchema.shape).join(', ')})`,
        });
      }
    } else {
      const key = issue.path.map(String).join('.');
      problems.push({ where: yamlLocation(path, doc, lines, issue.path), message: `${key}${issue.code === 'invalid_union' ? '' : ': '}${issue.code === 'invalid_union' ? describeUnionKey(issue) : `${describeIssue(issue)}${got(issue.input)}`}` });
    }
  }
  return { problems };
}

export function loadScenarioFile(path: string): { scenario?: Scenario; problems: Problem[] } {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    return { problems: [{ where: path, message: code === 'ENOENT' ? 'scenario file not found' : `cannot read scenario file (${code})` }] };
  }
  return parseScenario(path, text);
}

const unwrap = (schema: z.ZodType): z.ZodType => (schema instanceof z.ZodDefault || schema instanceof z.ZodOptional ? (schema.unwrap() as z.ZodType) : schema);

/** The words a number setting takes instead of a number (pinCpu: auto, off); undefined for a setting that takes no number. */
function numberWords(schema: z.ZodType): string[] | undefined {
  const inner = unwrap(schema);
  if (inner instanceof z.ZodNumber) return [];
  if (inner instanceof z.ZodUnion && inner.options.some((o) => o instanceof z.ZodNumber)) return inner.options.flatMap((o) => (o instanceof z.ZodEnum ? (o.options as string[]) : []));
  return undefined;
}

/** Settings that take a whole number, read off the run config schema, with the words they take instead. */
const NUMBER_SETTINGS = new Map(Object.entries(runConfigSchema.shape).flatMap(([key, schema]) => {
  const words = numberWords(schema as z.ZodType);
  return words ? [[key, words] as const] : [];
}));
/** Settings that take a list (a flag gives it comma-separated). */
const LIST_SETTINGS = new Set(Object.entries(runConfigSchema.shape).filter(([, schema]) => unwrap(schema as z.ZodType) instanceof z.ZodArray).map(([key]) => key));

/** One wording for a whole number that is not one: the flag, what was given, what is allowed. */
export function notAWholeNumber(value: string, words: readonly string[] = []): string {
  const quoted = words.map((w) => `'${w}'`);
  const alternatives = quoted.length === 0 ? '' : quoted.length === 1 ? ` or ${quoted[0]}` : `, ${quoted.slice(0, -1).join(', ')} or ${quoted.at(-1)}`;
  return `expected a whole number${alternatives}, got '${value}'`;
}

/**
 * A whole-number flag that is not a setting (a command's own: --repetitions, --retries), read with the settings'
 * wording. Absent: the fallback.
 */
export function wholeNumberFlag(flag: string, value: unknown, range: { min: number; max: number }, fallback: number, problems: Problem[]): number {
  if (value === undefined) return fallback;
  const text = String(value).trim();
  if (!/^[-+]?\d+$/.test(text)) {
    problems.push({ where: flag, message: notAWholeNumber(String(value)) });
    return fallback;
  }
  const n = Number(text);
  if (n < range.min || n > range.max) {
    problems.push({ where: flag, message: `${n < range.min ? `must be at least ${range.min}` : `must be at most ${range.max}`}, got ${n}` });
    return fallback;
  }
  return n;
}

/** Converts commander's strings to typed values, reporting unparsable ones (`flagOf` names a setting's flag). */
export function coerceFlags(flags: RawFlags, problems: Problem[], flagOf: (key: string) => string = flagName): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [key, value] of Object.entries(flags)) {
    if (value === undefined) continue;
    const words = NUMBER_SETTINGS.get(key);
    if (words?.includes(String(value))) out[key] = value;
    else if (words && typeof value === 'string') {
      if (!/^[-+]?\d+$/.test(value.trim())) {
        problems.push({ where: flagOf(key), message: notAWholeNumber(value, words) });
        continue;
      }
      out[key] = Number(value);
    } else if (LIST_SETTINGS.has(key) && typeof value === 'string') {
      out[key] = value.split(',').map((x) => x.trim()).filter(Boolean);
    } else {
      out[key] = value;
    }
  }
  return out;
}

/** One value of a setting checked by the schema's own rule, in the settings' words (a sweep's list items). */
export function checkSettingValue(key: keyof typeof runConfigSchema.shape, value: string, flag = flagName(key)): { value?: unknown; problem?: Problem } {
  const problems: Problem[] = [];
  const coerced = coerceFlags({ [key]: value }, problems, () => flag);
  if (problems.length) return { problem: problems[0] };
  const r = (runConfigSchema.shape[key] as z.ZodType).safeParse(coerced[key], { reportInput: true });
  if (r.success) return { value: r.data };
  const issue = r.error.issues[0]!;
  return { problem: { where: flag, message: `${describeIssue(issue)}${issue.input !== undefined ? `, got ${JSON.stringify(issue.input)}` : ''}` } };
}

export interface ResolveOptions {
  /** The command's defaults where they are not the schema's (src/cli/settings-flags.ts). */
  defaults?: Record<string, unknown>;
  /** The flag that set a key, where it is not the key's own (enforce's --repetitions). */
  flagOf?: (key: string) => string;
}

/**
 * Single-run configuration: scenario values first, CLI flags override. A scenario with lists of CNIs or
 * policy counts belongs to `bench sweep`; here it is an error that says so.
 */
export function resolveRunConfig(flags: RawFlags, scenario?: LoadedScenario, o: ResolveOptions = {}): { config?: RunConfig; problems: Problem[] } {
  const problems: Problem[] = [];
  const flagOf = o.flagOf ?? flagName;
  const merged: Record<string, unknown> = { ...o.defaults };
  if (scenario) {
    const { name: _n, description: _d, repetitions: _r, maxRepetitions: _m, ...rest } = scenario.scenario;
    for (const [k, v] of Object.entries(rest)) {
      if (Array.isArray(v) && flags[k] === undefined) {
        problems.push({ where: scenario.path, message: `'${k}' lists ${v.length} values; bench run takes one (use bench sweep for a matrix, or --${k} to pick one)` });
      } else merged[k] = v;
    }
  }
  Object.assign(merged, coerceFlags(flags, problems, flagOf));
  if (merged.cni === undefined) problems.push({ where: '--cni', message: `required: one of ${CNIS.join(', ')}`, missing: true });
  const parsed = runConfigSchema.safeParse(merged, { reportInput: true });
  if (!parsed.success) {
    for (const issue of parsed.error.issues) {
      if (issue.code === 'unrecognized_keys') {
        for (const k of issue.keys) problems.push({ where: flagOf(k), message: 'unknown option' });
      } else {
        const key = String(issue.path[0] ?? '');
        if (key === 'cni' && merged.cni === undefined) continue; // already reported as required
        const fromScenario = scenario && flags[key] === undefined && key in scenario.scenario;
        problems.push({ where: fromScenario ? `${scenario.path} (${key})` : flagOf(key), message: `${describeIssue(issue)}${issue.input !== undefined ? `, got ${JSON.stringify(issue.input)}` : ''}` });
      }
    }
  }
  if (problems.length || !parsed.success) return { problems };
  if (typeof parsed.data.pinCpu === 'number' && parsed.data.pinCpu >= cpus().length) {
    problems.push({ where: '--pin-cpu', message: `this machine has CPUs 0..${cpus().length - 1}, got ${parsed.data.pinCpu}` });
  }
  if (parsed.data.concurrency > parsed.data.samples) {
    problems.push({ where: '--concurrency', message: `concurrency (${parsed.data.concurrency}) exceeds samples (${parsed.data.samples})` });
  }
  return problems.length ? { problems } : { config: parsed.data, problems };
}
