// Every manifest the kind/cluster backends generate is validated before it is planned, dry run included.
// Kubernetes' own kinds go through kubernetes-models (JSON schemas generated from the Kubernetes OpenAPI, v4
// because v5 requires Node 22); the kind config, Calico's Installation and Cilium's helm values have no model
// package usable on Node 20, so they get strict zod schemas written from their upstream definitions for the
// fields this tool sets (kind: pkg/apis/config/v1alpha4/types.go; Calico: the operator.tigera.io/v1 API
// reference; Cilium: the chart's values.yaml) — strict, so a misspelt key is an error rather than ignored.
import { ConfigMap } from 'kubernetes-models/v1/ConfigMap';
import { Namespace } from 'kubernetes-models/v1/Namespace';
import { Pod } from 'kubernetes-models/v1/Pod';
import { Service } from 'kubernetes-models/v1/Service';
import { EndpointSlice } from 'kubernetes-models/discovery.k8s.io/v1/EndpointSlice';
import { Deployment } from 'kubernetes-models/apps/v1/Deployment';
import { NetworkPolicy } from 'kubernetes-models/networking.k8s.io/v1/NetworkPolicy';
import { z } from 'zod';
import { BenchError } from '../../errors.js';

const cidr = z.string().regex(/^\d{1,3}(\.\d{1,3}){3}\/\d{1,2}$/, 'must be an IPv4 CIDR');

export const kindClusterSchema = z
  .object({
    kind: z.literal('Cluster'),
    apiVersion: z.literal('kind.x-k8s.io/v1alpha4'),
    name: z.string().optional(),
    // kind v1alpha4 Cluster.KubeadmConfigPatches: YAML strings merged into kubeadm's config documents.
    kubeadmConfigPatches: z.array(z.string().regex(/^kind: [A-Za-z]+\n/, 'must start with the kind of the kubeadm/kubelet document it patches')).optional(),
    networking: z
      .object({
        disableDefaultCNI: z.boolean().optional(),
        podSubnet: cidr.optional(),
        serviceSubnet: cidr.optional(),
        kubeProxyMode: z.enum(['iptables', 'ipvs', 'nftables', 'none']).optional(),
        ipFamily: z.enum(['ipv4', 'ipv6', 'dual']).optional(),
      })
      .strict()
      .optional(),
    nodes: z
      .array(
        z
          .object({
            role: z.enum(['control-plane', 'worker']),
            image: z.string().optional(),
            labels: z.record(z.string(), z.string()).optional(),
            // kind v1alpha4 Mount (pkg/apis/config/v1alpha4/types.go): containerPath, hostPath, readOnly, selinuxRelabel, propagation.
            extraMounts: z
              .array(
                z
                  .object({
                    hostPath: z.string().startsWith('/', 'must be an absolute path'),
                    containerPath: z.string().startsWith('/', 'must be an absolute path'),
                    readOnly: z.boolean().optional(),
                    selinuxRelabel: z.boolean().optional(),
                    propagation: z.enum(['None', 'HostToContainer', 'Bidirectional']).optional(),
                  })
                  .strict(),
              )
              .optional(),
          })
          .strict(),
      )
      .min(1)
      .refine((n) => n.some((x) => x.role === 'control-plane'), 'needs a control-plane node'),
  })
  .strict();

const ipPool = z
  .object({
    name: z.string().optional(),
    cidr,
    blockSize: z.number().int().min(20).max(32).optional(),
    encapsulation: z.enum(['IPIPCrossSubnet', 'IPIP', 'VXLAN', 'VXLANCrossSubnet', 'None']).optional(),
    natOutgoing: z.enum(['Enabled', 'Disabled']).optional(),
    nodeSelector: z.string().optional(),
  })
  .strict();

export const calicoInstallationSchema = z
  .object({
    apiVersion: z.literal('operator.tigera.io/v1'),
    kind: z.literal('Installation'),
    // The operator reconciles only the Installation named "default".
    metadata: z.object({ name: z.literal('default'), labels: z.record(z.string(), z.string()).optional() }).strict(),
    spec: z
      .object({
        variant: z.enum(['Calico', 'TigeraSecureEnterprise']).optional(),
        calicoNetwork: z
          .object({
            linuxDataplane: z.enum(['Iptables', 'BPF', 'VPP', 'Nftables']).optional(),
            bgp: z.enum(['Enabled', 'Disabled']).optional(),
            ipPools: z.array(ipPool).optional(),
          })
          .strict()
          .optional(),
      })
      .strict(),
  })
  .strict();

export const ciliumValuesSchema = z
  .object({
    image: z.object({ pullPolicy: z.enum(['Always', 'IfNotPresent', 'Never']) }).strict().optional(),
    ipam: z.object({ mode: z.enum(['kubernetes', 'cluster-pool', 'multi-pool']) }).strict().optional(),
    kubeProxyReplacement: z.boolean().optional(),
    k8sServiceHost: z.string().min(1).optional(),
    k8sServicePort: z.number().int().min(1).max(65535).optional(),
    routingMode: z.enum(['tunnel', 'native']).optional(),
    tunnelProtocol: z.enum(['vxlan', 'geneve']).optional(),
    operator: z.object({ replicas: z.number().int().min(1) }).strict().optional(),
    hubble: z.object({ enabled: z.boolean() }).strict().optional(),
    bpf: z.object({ policyMapMax: z.number().int().min(1).max(1 << 24) }).strict().optional(),
  })
  .strict()
  .refine((v) => !v.kubeProxyReplacement || (v.k8sServiceHost && v.k8sServicePort), 'kubeProxyReplacement needs k8sServiceHost and k8sServicePort (no kube-proxy to reach the API server through)');

export class ManifestError extends BenchError {
  constructor(readonly problems: string[]) {
    super('manifest', `invalid generated manifest${problems.length > 1 ? 's' : ''}:\n  ${problems.join('\n  ')}`);
  }
}

type Obj = { apiVersion?: unknown; kind?: unknown; metadata?: { name?: unknown; namespace?: unknown } };

function label(o: Obj): string {
  const ns = typeof o.metadata?.namespace === 'string' ? `${o.metadata.namespace}/` : '';
  return `${String(o.kind)} ${ns}${String(o.metadata?.name ?? '')}`.trim();
}

const zodProblems = (r: { success: boolean; error?: z.ZodError }): string[] =>
  r.success ? [] : (r.error?.issues ?? []).map((i) => `${i.path.join('.') || '(root)'}: ${i.message}`);

const MODELS: Record<string, (o: object) => { validate(): void }> = {
  'v1/Namespace': (o) => new Namespace(o as never),
  'v1/ConfigMap': (o) => new ConfigMap(o as never),
  'v1/Pod': (o) => new Pod(o as never),
  'v1/Service': (o) => new Service(o as never),
  'discovery.k8s.io/v1/EndpointSlice': (o) => new EndpointSlice(o as never),
  'apps/v1/Deployment': (o) => new Deployment(o as never),
  'networking.k8s.io/v1/NetworkPolicy': (o) => new NetworkPolicy(o as never),
};

/** Problems with one object, [] when valid. */
export function manifestProblems(o: Obj): string[] {
  const key = `${String(o.apiVersion)}/${String(o.kind)}`;
  const model = MODELS[key];
  if (model) {
    try {
      model(o).validate();
      return [];
    } catch (e) {
      return [(e as Error).message];
    }
  }
  if (key === 'kind.x-k8s.io/v1alpha4/Cluster') return zodProblems(kindClusterSchema.safeParse(o));
  if (key === 'operator.tigera.io/v1/Installation') return zodProblems(calicoInstallationSchema.safeParse(o));
  return [`no schema for ${key}: every generated manifest must be validated`];
}

/** Throws ManifestError naming every invalid object and why (all problems at once). */
export function validateManifests(objs: readonly object[]): void {
  const problems: string[] = [];
  for (const o of objs) for (const p of manifestProblems(o as Obj)) problems.push(`${label(o as Obj)}: ${p}`);
  if (problems.length) throw new ManifestError(problems);
}

export function validateCiliumValues(values: unknown): void {
  const p = zodProblems(ciliumValuesSchema.safeParse(values));
  if (p.length) throw new ManifestError(p.map((x) => `cilium helm values: ${x}`));
}
