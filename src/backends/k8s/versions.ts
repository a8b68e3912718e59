// The pinned inputs of the kind and cluster backends (clusters/versions.yaml), validated on load so a typo in
// that file fails with the key that is wrong rather than as a failed download halfway through a run.
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { parse } from 'yaml';
import { z } from 'zod';
import { BenchError } from '../../errors.js';

const url = z.string().url();
const versionsSchema = z
  .object({
    kind: z.object({ version: z.string(), nodeImage: z.string().regex(/^kindest\/node:v[0-9.]+@sha256:[0-9a-f]{64}$/, 'must be kindest/node:vX.Y.Z@sha256:<digest>'), source: url }).strict(),
    tools: z.object({ kubectl: z.string(), helm: z.string() }).strict(),
    flannel: z
      .object({
        version: z.string(),
        manifest: url,
        source: url,
        cniPlugins: z.object({ version: z.string(), url: z.string().includes('{arch}'), source: url }).strict(),
      })
      .strict(),
    calico: z.object({ version: z.string(), operatorCrds: url, operator: url, canal: url, source: url, canalSource: url, ebpfSource: url, nftablesSource: url }).strict(),
    cilium: z.object({ version: z.string(), chartRepo: url, chart: z.string(), source: url }).strict(),
    load: z.object({ fortioImage: z.string(), statImage: z.string(), source: url }).strict(),
    verify: z.object({ agnhostImage: z.string().regex(/^registry\.k8s\.io\/e2e-test-images\/agnhost:[0-9.]+$/, 'must be registry.k8s.io/e2e-test-images/agnhost:<version>'), source: url }).strict(),
  })
  .strict();

export type Versions = z.output<typeof versionsSchema>;

/** clusters/versions.yaml, from src/backends/k8s or dist/backends/k8s alike (both three levels below the root). */
export const VERSIONS_PATH = fileURLToPath(new URL('../../../clusters/versions.yaml', import.meta.url));
export const CLUSTERS_DIR = fileURLToPath(new URL('../../../clusters/', import.meta.url));

let cached: Versions | undefined;

export function parseVersions(text: string, where = VERSIONS_PATH): Versions {
  const r = versionsSchema.safeParse(parse(text));
  if (!r.success) {
    throw new BenchError('usage', `${where}: ${r.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`).join('; ')} (the pinned versions: fix the file, or restore it with git checkout -- clusters/versions.yaml)`);
  }
  return r.data;
}

export function loadVersions(): Versions {
  cached ??= parseVersions(readFileSync(VERSIONS_PATH, 'utf8'));
  return cached;
}
