// The Kubernetes objects a cluster snapshot holds, as the API server returns them (`kubectl get … -o json`):
// only the fields a workload reads are checked, everything else (uid, managedFields, status conditions…) is
// accepted and dropped. NetworkPolicy specs are checked strictly: an unknown field there could change what the
// policy means. Label and name rules are the API server's (apimachinery validation).
import { z } from 'zod';

const LABEL_NAME = /^[A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?$/;
const DNS_SUBDOMAIN = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/;
const DNS_LABEL = /^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$/;
const LABEL_VALUE = /^(([A-Za-z0-9][-A-Za-z0-9_.]{0,61})?[A-Za-z0-9])?$/;
/** IANA_SVC_NAME: 1-15 of a-z, 0-9, '-', at least one letter, no leading, trailing or double '-'. */
const SVC_NAME = /^(?=.{1,15}$)(?=.*[a-z])[a-z0-9]+(-[a-z0-9]+)*$/;

export function labelKeyProblem(key: string): string | undefined {
  const slash = key.lastIndexOf('/');
  const prefix = slash >= 0 ? key.slice(0, slash) : undefined;
  const name = slash >= 0 ? key.slice(slash + 1) : key;
  if (prefix !== undefined && (prefix.length > 253 || !DNS_SUBDOMAIN.test(prefix))) return `label key '${key}': the prefix before '/' must be a DNS subdomain`;
  if (!LABEL_NAME.test(name)) return `label key '${key}': the name must be 1-63 letters, digits, '-', '_' or '.', starting and ending with a letter or digit`;
  return undefined;
}

export const isLabelValue = (v: string): boolean => LABEL_VALUE.test(v);
export const isServiceName = (v: string): boolean => SVC_NAME.test(v);
export const isDnsLabel = (v: string): boolean => DNS_LABEL.test(v);

const labelKey = z.string().superRefine((k, ctx) => {
  const p = labelKeyProblem(k);
  if (p) ctx.addIssue({ code: 'custom', message: p });
});
const labelValue = z.string().regex(LABEL_VALUE, "a label value must be at most 63 letters, digits, '-', '_' or '.', starting and ending with a letter or digit (or empty)");
const labels = z.record(labelKey, labelValue);
const dnsLabel = z.string().regex(DNS_LABEL, 'must be a DNS label: at most 63 lowercase letters, digits and -, starting and ending with a letter or digit');
const dnsSubdomain = z.string().max(253).regex(DNS_SUBDOMAIN, "must be a DNS subdomain: lowercase letters, digits, '-' and '.'");
const protocol = z.enum(['TCP', 'UDP', 'SCTP']);
const portName = z.string().regex(SVC_NAME, "must be an IANA service name: 1-15 of a-z, 0-9 and '-', with a letter");

export const selectorSchema = z
  .object({
    matchLabels: labels.optional(),
    matchExpressions: z.array(z.object({ key: labelKey, operator: z.enum(['In', 'NotIn', 'Exists', 'DoesNotExist']), values: z.array(labelValue).optional() }).strict()).optional(),
  })
  .strict();

const peer = z
  .object({
    podSelector: selectorSchema.optional(),
    namespaceSelector: selectorSchema.optional(),
    ipBlock: z.object({ cidr: z.string().min(1), except: z.array(z.string().min(1)).optional() }).strict().optional(),
  })
  .strict();
const policyPort = z
  .object({ protocol: protocol.optional(), port: z.union([z.number().int(), z.string().min(1)]).optional(), endPort: z.number().int().optional() })
  .strict();

const objectMeta = z.object({ name: dnsSubdomain, namespace: dnsLabel, labels: labels.optional() });

export const namespaceSchema = z.object({
  apiVersion: z.literal('v1'),
  kind: z.literal('Namespace'),
  metadata: z.object({ name: dnsLabel, labels: labels.optional() }),
});

const containerPort = z.object({ name: portName.optional(), containerPort: z.number().int().min(1).max(65535), protocol: protocol.optional() });
const container = z.object({ ports: z.array(containerPort).optional() });
/** An init container; `restartPolicy: Always` makes it a native sidecar, running beside the containers (1.28+). */
const initContainer = container.extend({ restartPolicy: z.string().optional() });
const podSpec = z.object({
  nodeName: z.string().min(1).optional(),
  hostNetwork: z.boolean().optional(),
  containers: z.array(container).min(1),
  initContainers: z.array(initContainer).optional(),
});

export const podSchema = z.object({
  apiVersion: z.literal('v1'),
  kind: z.literal('Pod'),
  metadata: objectMeta,
  spec: podSpec,
  status: z.object({ phase: z.string().optional(), podIP: z.string().optional(), podIPs: z.array(z.object({ ip: z.string() })).optional() }).optional(),
});

export const networkPolicySchema = z.object({
  apiVersion: z.literal('networking.k8s.io/v1'),
  kind: z.literal('NetworkPolicy'),
  metadata: objectMeta,
  spec: z
    .object({
      podSelector: selectorSchema,
      policyTypes: z.array(z.enum(['Ingress', 'Egress'])).optional(),
      ingress: z.array(z.object({ from: z.array(peer).optional(), ports: z.array(policyPort).optional() }).strict()).optional(),
      egress: z.array(z.object({ to: z.array(peer).optional(), ports: z.array(policyPort).optional() }).strict()).optional(),
    })
    .strict(),
});

/** A Node: only its pod CIDRs are read (the local replay routes them); every other field is left alone. */
export const nodeSchema = z.object({
  apiVersion: z.literal('v1'),
  kind: z.literal('Node'),
  metadata: z.object({ name: dnsSubdomain }),
  spec: z.object({ podCIDR: z.string().optional(), podCIDRs: z.array(z.string()).optional() }).optional(),
});

const template = z.object({ metadata: z.object({ labels: labels.optional() }).optional(), spec: podSpec });
const controllerSpec = z.object({ replicas: z.number().int().min(0).optional(), selector: selectorSchema.optional(), template });

export const CONTROLLER_KINDS = ['Deployment', 'StatefulSet', 'DaemonSet'] as const;
export type ControllerKind = (typeof CONTROLLER_KINDS)[number];

export const controllerSchema = z.object({
  // apps/v1; the beta versions are what clusters before 1.16 return for `kubectl get deployments`.
  apiVersion: z.enum(['apps/v1', 'apps/v1beta2', 'apps/v1beta1', 'extensions/v1beta1']),
  kind: z.enum(CONTROLLER_KINDS),
  metadata: objectMeta,
  spec: controllerSpec,
});

export type NamespaceObject = z.output<typeof namespaceSchema>;
export type PodObject = z.output<typeof podSchema>;
export type NetworkPolicyObject = z.output<typeof networkPolicySchema>;
export type ControllerObject = z.output<typeof controllerSchema>;
export type NodeObject = z.output<typeof nodeSchema>;
export type ContainerObject = z.output<typeof container>;
export type InitContainerObject = z.output<typeof initContainer>;

/** The schema for each kind a workload reads, by kind. */
export const ITEM_SCHEMAS = {
  Namespace: namespaceSchema,
  Pod: podSchema,
  NetworkPolicy: networkPolicySchema,
  Deployment: controllerSchema,
  StatefulSet: controllerSchema,
  DaemonSet: controllerSchema,
  Node: nodeSchema,
} as const;
export type ReadKind = keyof typeof ITEM_SCHEMAS;
export const isReadKind = (k: unknown): k is ReadKind => typeof k === 'string' && Object.hasOwn(ITEM_SCHEMAS, k);

/** The API groups of the kinds a workload reads ('' the core group): a kind of the same name in another group (Calico's projectcalico.org/v3 NetworkPolicy) is another object. */
const READ_GROUPS: Record<ReadKind, readonly string[]> = { Namespace: [''], Pod: [''], Node: [''], NetworkPolicy: ['networking.k8s.io'], Deployment: ['apps', 'extensions'], StatefulSet: ['apps'], DaemonSet: ['apps', 'extensions'] };

/** The group of an apiVersion: `networking.k8s.io/v1` -> networking.k8s.io, `v1` -> ''. */
export const apiGroup = (apiVersion: unknown): string => (typeof apiVersion === 'string' && apiVersion.includes('/') ? apiVersion.slice(0, apiVersion.lastIndexOf('/')) : '');

/** The API groups of policy engines other than NetworkPolicy, and whose they are. */
export const POLICY_ENGINE_GROUPS: Readonly<Record<string, string>> = {
  'cilium.io': 'Cilium',
  'projectcalico.org': 'Calico',
  'crd.projectcalico.org': 'Calico',
  'policy.networking.k8s.io': 'AdminNetworkPolicy API (sig-network)',
  'crd.antrea.io': 'Antrea',
};

/**
 * The kind a workload reads this item as, or undefined: another policy engine's kind of the same name (Calico's
 * NetworkPolicy) is not read. Any other apiVersion is read, and its schema names the field (a NetworkPolicy of
 * extensions/v1beta1 is refused, never silently left out).
 */
export function readKindOf(kind: unknown, apiVersion: unknown): ReadKind | undefined {
  if (!isReadKind(kind)) return undefined;
  const group = apiGroup(apiVersion);
  return READ_GROUPS[kind].includes(group) || !Object.hasOwn(POLICY_ENGINE_GROUPS, group) ? kind : undefined;
}

/** What a zod issue says, in the words of the bad-input table. */
export function describeIssue(issue: z.core.$ZodIssue): string {
  const got = 'input' in issue && issue.input !== undefined ? `, got ${JSON.stringify(issue.input)?.slice(0, 60)}` : '';
  if (issue.code === 'invalid_value' && 'values' in issue) return `must be ${(issue.values as unknown[]).map((v) => JSON.stringify(v)).join(' or ')}${got}`;
  if (issue.code === 'invalid_type') return issue.input === undefined ? `required (${issue.expected})` : `expected ${issue.expected}${got}`;
  if (issue.code === 'too_small' && 'minimum' in issue) return issue.origin === 'array' ? `must list at least ${String(issue.minimum)}` : `must be at least ${String(issue.minimum)}${got}`;
  if (issue.code === 'too_big' && 'maximum' in issue) return issue.origin === 'string' ? `must be at most ${String(issue.maximum)} characters` : `must be at most ${String(issue.maximum)}${got}`;
  if (issue.code === 'invalid_key') return issue.issues.map((i) => i.message).join('; ');
  if (issue.code === 'invalid_format' || issue.code === 'custom') return `${issue.message}${got}`;
  return issue.message;
}
