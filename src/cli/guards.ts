// Checks that apply to every command and every flag, installed once on the program: a flag given twice (the
// last one silently winning hides a typo or a pasted command line) and output paths that cannot be written.
// Both run before the command's action, so nothing is created when they fail.
import type { Command, Option } from 'commander';
import { InputError, type Problem } from '../errors.js';
import { outputProblems } from './output-paths.js';

/** Flags meant to be given several times say so in their help ("repeatable"), or are variadic. */
export const isRepeatable = (o: Option) => o.variadic || /\brepeatable\b/i.test(o.description);

function allCommands(cmd: Command): Command[] {
  return [cmd, ...cmd.commands.flatMap(allCommands)];
}

/** Installs the guards on `program` and every command registered so far (call after registering them). */
export function installGuards(program: Command): void {
  const seen = new WeakMap<Command, Map<Option, number>>();
  for (const cmd of allCommands(program)) {
    const counts = new Map<Option, number>();
    seen.set(cmd, counts);
    for (const o of cmd.options as readonly Option[]) {
      cmd.on(`option:${o.name()}`, () => counts.set(o, (counts.get(o) ?? 0) + 1));
    }
  }
  program.hook('preAction', (_this, action) => {
    const problems: Problem[] = [];
    for (const [o, n] of seen.get(action) ?? []) {
      if (n > 1 && !isRepeatable(o)) problems.push({ where: o.long ?? o.flags, message: `given ${n} times; give it once (the command would silently use the last value)` });
    }
    // Defaults are the command's business (it knows whether it will write there); given paths are checked here.
    const given = Object.fromEntries(Object.entries(action.opts()).filter(([k]) => action.getOptionValueSource(k) !== 'default'));
    problems.push(...outputProblems(action.options as readonly Option[], given));
    if (problems.length) throw new InputError(problems);
  });
}
