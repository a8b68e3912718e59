// Where the BPF models (Cilium-style, Calico-eBPF-style) keep their native parts: the loaders and objects that
// scripts/build-native.mjs writes to dist/native/, and the bpffs directory each node's maps and programs are
// pinned in (/sys/fs/bpf/cb-<runid>/…, so a run's pins are found, and removed, by its id).
import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { assertRunId } from '../../../identity/run-id.js';
import { BenchError } from '../../../errors.js';

export const BPFFS_ROOT = '/sys/fs/bpf';
const NODE_RE = /^[a-z0-9][a-z0-9-]{0,62}$/;

/** dist/native/NAME, found from this module's location (src/ under vitest, dist/ when built). */
export function nativeArtefact(name: string): string {
  let dir = dirname(fileURLToPath(import.meta.url));
  while (!existsSync(join(dir, 'package.json'))) {
    const up = dirname(dir);
    if (up === dir) throw new BenchError('internal', 'cannot find the project root (package.json) above ' + fileURLToPath(import.meta.url));
    dir = up;
  }
  return join(dir, 'dist', 'native', name);
}

/** Pin directory of one node's model: each node has its own maps, as each agent does. */
export function bpfPinDir(runId: string, node: string, prefix = ''): string {
  assertRunId(runId);
  if (!NODE_RE.test(node)) throw new BenchError('internal', `invalid node name '${node}' for a pin directory`);
  return `${BPFFS_ROOT}/cb-${runId}/${prefix}${node}`;
}
