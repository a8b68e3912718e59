// What a person needs after a failed cluster run: events, node and pod descriptions, CNI agent logs, written
// as files into <outDir>/diagnostics/. Collection never throws: a diagnostic that fails is itself recorded.
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { CommandSpec, Runner } from '../../exec/runner.js';
import { shellQuote } from '../../exec/runner.js';
import type { AgentRef } from './cni.js';
import { kubectl, type KubeTarget } from './kubectl.js';

export interface DiagnosticItem {
  file: string;
  spec: CommandSpec;
}

export function planDiagnostics(t: KubeTarget, o: { namespaces: string[]; agents: AgentRef[] }): DiagnosticItem[] {
  const q = { allowFailure: true, timeoutMs: 60_000 };
  const items: DiagnosticItem[] = [
    { file: 'events.txt', spec: kubectl(t, ['get', 'events', '-A', '--sort-by=.lastTimestamp'], 'diagnostics: events', q) },
    { file: 'pods.txt', spec: kubectl(t, ['get', 'pods', '-A', '-o', 'wide'], 'diagnostics: pods', q) },
    { file: 'nodes.txt', spec: kubectl(t, ['describe', 'nodes'], 'diagnostics: nodes', q) },
  ];
  for (const ns of [...new Set(o.namespaces)]) {
    items.push({ file: `describe-pods-${ns}.txt`, spec: kubectl(t, ['-n', ns, 'describe', 'pods'], `diagnostics: pods in ${ns}`, q) });
  }
  for (const a of o.agents) {
    items.push({
      file: `logs-${a.namespace}-${a.container}.txt`,
      spec: kubectl(t, ['-n', a.namespace, 'logs', '-l', a.selector, '-c', a.container, '--tail=500', '--prefix', '--max-log-requests=20'], `diagnostics: ${a.container} logs`, q),
    });
  }
  return items;
}

/** Runs the items and writes each output to <dir>/<file> (dry run: nothing is written). Returns the directory. */
export async function collectDiagnostics(runner: Runner, dir: string, items: DiagnosticItem[]): Promise<string> {
  if (!runner.dryRun) mkdirSync(dir, { recursive: true });
  for (const it of items) {
    let text: string;
    try {
      const r = await runner.run(it.spec);
      text = `$ ${shellQuote(r.argv)}\n# exit ${r.exitCode}\n${r.stdout}${r.stderr ? `\n# stderr\n${r.stderr}` : ''}`;
    } catch (e) {
      text = `$ ${shellQuote(it.spec.argv)}\n# could not run: ${(e as Error).message}\n`;
    }
    if (!runner.dryRun) writeFileSync(join(dir, it.file), text);
  }
  return dir;
}
