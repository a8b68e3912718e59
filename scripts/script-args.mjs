// The argument preamble of a developer script: node:util parseArgs (strict: an unknown flag or a missing value
// is an error), `--help` printing the script's usage, and a bad flag answered with the script's name, what was
// wrong and the usage, exit 2. Positive-integer and count-list flags are checked here, where they are read.
import { parseArgs } from 'node:util';

export class ScriptUsageError extends Error {}

/**
 * Parses `argv` against `options` (parseArgs' table; `help` is added). Returns the values, or throws
 * ScriptUsageError; `{ help: true }` when --help was asked.
 */
export function parseScriptArgs(argv, options) {
  try {
    return parseArgs({ args: argv, options: { ...options, help: { type: 'boolean', short: 'h' } }, allowPositionals: false, strict: true }).values;
  } catch (e) {
    throw new ScriptUsageError(e.message);
  }
}

/** A flag's value as an integer ≥ min. */
export function intFlag(values, name, min = 1) {
  const v = values[name];
  const n = Number(v);
  if (!/^[0-9]+$/.test(String(v)) || !Number.isSafeInteger(n) || n < min) throw new ScriptUsageError(`--${name} must be an integer ≥ ${min}, got '${v}'`);
  return n;
}

/** A comma-separated list of integers ≥ 0 (policy or Service counts). */
export function countsFlag(values, name) {
  const parts = String(values[name]).split(',');
  if (!parts.every((p) => /^[0-9]+$/.test(p))) throw new ScriptUsageError(`--${name} must be comma-separated integers ≥ 0 (e.g. 0,1000,5000), got '${values[name]}'`);
  return parts.map(Number);
}

/**
 * The whole preamble for a script's main: parse, print `usage` and exit 0 on --help, or print the problem and the
 * usage and exit 2 on a bad flag; `read` turns the values into the script's settings (and may throw a usage error).
 */
export function scriptArgs(name, usage, options, read, argv = process.argv.slice(2)) {
  try {
    const values = parseScriptArgs(argv, options);
    if (values.help) {
      process.stdout.write(`${usage.trim()}\n`);
      process.exit(0);
    }
    return read(values);
  } catch (e) {
    if (!(e instanceof ScriptUsageError)) throw e;
    process.stderr.write(`${name}: ${e.message}\n${usage.trim()}\n`);
    process.exit(2);
  }
}
