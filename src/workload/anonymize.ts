// Anonymizes a snapshot (a kubectl List the importer accepted) so it can be shared: every name — namespaces,
// pods, nodes, policies, controllers — and every label value goes through one keyed hash (HMAC-SHA256 with a salt
// that is never written out), so equal strings stay equal and different ones stay different. Selectors therefore
// still select the same pods, `kubernetes.io/metadata.name` still names its namespace, and named ports (hashed by
// a second keyed hash, as IANA service names) still resolve: every verdict of the reference evaluator is the
// same up to renaming. Kept as they are: label keys (a prefix of the user's own domain is hashed), pod
// addresses, ipBlock CIDRs, port numbers and protocols — the structure and the addresses ipBlocks depend on —
// and the names of Kubernetes' own namespaces and of kube-dns, which carry nothing private. Everything the
// importer does not read (annotations, images, commands, env, status conditions) is dropped, not hashed.
import { createHmac } from 'node:crypto';
import { BenchError } from '../errors.js';
import { ITEM_SCHEMAS, readKindOf, type ContainerObject, type ControllerObject, type NamespaceObject, type NetworkPolicyObject, type NodeObject, type PodObject } from './k8s-objects.js';
import type { KubeList } from './list.js';
import { isUnreplayedPolicy } from './snapshot-policies.js';
import type { LabelSelector, NetworkPolicyPeer, NetworkPolicyPort } from '../policy/types.js';

/** Strings that name Kubernetes itself, not the user: kept so the anonymized file still reads as a cluster. */
const KEPT = new Set(['default', 'kube-system', 'kube-public', 'kube-node-lease', 'kube-dns']);
/** Label key prefixes of Kubernetes' own: kept (a selector on kubernetes.io/metadata.name must stay one). */
const isKubernetesPrefix = (prefix: string) => /(^|\.)(kubernetes\.io|k8s\.io)$/.test(prefix);

const BASE32 = 'abcdefghijklmnopqrstuvwxyz234567';
function base32(bytes: Buffer, chars: number): string {
  let out = '';
  for (let i = 0; i < chars; i++) {
    const bit = i * 5;
    const byte = bit >> 3;
    const v = ((bytes[byte]! << 8) | (bytes[byte + 1] ?? 0)) >> (11 - (bit & 7));
    out += BASE32[v & 31];
  }
  return out;
}

export interface Renamer {
  /** A name or label value; '' stays ''. */
  name(s: string): string;
  /** A named port (an IANA service name: 'p' and ten base32 characters). */
  portName(s: string): string;
  labelKey(k: string): string;
}

/** The keyed hash. A collision (two strings, one output) is refused rather than merging them. */
export function renamer(salt: string | Buffer): Renamer {
  const seen = new Map<string, string>();
  const done = new Map<string, string>();
  const hash = (domain: string, s: string, prefix: string, chars: number) => {
    const input = `${domain}\u0000${s}`;
    const hit = done.get(input);
    if (hit !== undefined) return hit;
    const out = prefix + base32(createHmac('sha256', salt).update(input).digest(), chars);
    const key = `${domain}\u0000${out}`;
    const before = seen.get(key);
    if (before !== undefined && before !== s) throw new BenchError('usage', `anonymize: hash collision between two strings; run again with another salt`);
    seen.set(key, s);
    done.set(input, out);
    return out;
  };
  const name = (s: string) => (s === '' || KEPT.has(s) ? s : hash('name', s, 'a', 12));
  return {
    name,
    portName: (s) => hash('port', s, 'p', 10),
    labelKey: (k) => {
      const slash = k.lastIndexOf('/');
      if (slash < 0) return k;
      const prefix = k.slice(0, slash);
      return isKubernetesPrefix(prefix) ? k : `${hash('prefix', prefix, 'k', 10)}.anon${k.slice(slash)}`;
    },
  };
}

function anonymizer(r: Renamer) {
  const labels = (l: Record<string, string> | undefined) => (l ? Object.fromEntries(Object.entries(l).map(([k, v]) => [r.labelKey(k), r.name(v)])) : undefined);
  const selector = (s: LabelSelector): LabelSelector => ({
    ...(s.matchLabels ? { matchLabels: labels(s.matchLabels) } : {}),
    ...(s.matchExpressions ? { matchExpressions: s.matchExpressions.map((e) => ({ key: r.labelKey(e.key), operator: e.operator, ...(e.values ? { values: e.values.map(r.name) } : {}) })) } : {}),
  });
  const peer = (p: NetworkPolicyPeer): NetworkPolicyPeer => ({
    ...(p.podSelector ? { podSelector: selector(p.podSelector) } : {}),
    ...(p.namespaceSelector ? { namespaceSelector: selector(p.namespaceSelector) } : {}),
    ...(p.ipBlock ? { ipBlock: structuredClone(p.ipBlock) } : {}),
  });
  const port = (p: NetworkPolicyPort): NetworkPolicyPort => ({ ...p, ...(typeof p.port === 'string' ? { port: r.portName(p.port) } : {}) });
  const containers = (cs: ReadonlyArray<ContainerObject & { restartPolicy?: string }>) =>
    cs.map((c, i) => ({ name: `c${i}`, ...(c.restartPolicy ? { restartPolicy: c.restartPolicy } : {}), ...(c.ports ? { ports: c.ports.map((p) => ({ ...(p.name ? { name: r.portName(p.name) } : {}), containerPort: p.containerPort, ...(p.protocol ? { protocol: p.protocol } : {}) })) } : {}) }));
  const podSpec = (s: PodObject['spec']) => ({
    ...(s.nodeName ? { nodeName: r.name(s.nodeName) } : {}),
    ...(s.hostNetwork !== undefined ? { hostNetwork: s.hostNetwork } : {}),
    containers: containers(s.containers),
    // Native sidecars (restartPolicy Always) serve their ports; a plain init container's ports are not read.
    ...(s.initContainers?.some((c) => c.ports?.length && c.restartPolicy === 'Always') ? { initContainers: containers(s.initContainers.filter((c) => c.ports?.length && c.restartPolicy === 'Always')) } : {}),
  });
  const meta = (m: { name: string; namespace: string; labels?: Record<string, string> }) => ({ name: r.name(m.name), namespace: r.name(m.namespace), ...(m.labels ? { labels: labels(m.labels) } : {}) });
  return {
    Namespace: (o: NamespaceObject) => ({ apiVersion: o.apiVersion, kind: o.kind, metadata: { name: r.name(o.metadata.name), ...(o.metadata.labels ? { labels: labels(o.metadata.labels) } : {}) } }),
    Pod: (o: PodObject) => ({ apiVersion: o.apiVersion, kind: o.kind, metadata: meta(o.metadata), spec: podSpec(o.spec), ...(o.status ? { status: structuredClone(o.status) } : {}) }),
    NetworkPolicy: (o: NetworkPolicyObject) => ({
      apiVersion: o.apiVersion,
      kind: o.kind,
      metadata: { name: r.name(o.metadata.name), namespace: r.name(o.metadata.namespace) },
      spec: {
        podSelector: selector(o.spec.podSelector),
        ...(o.spec.policyTypes ? { policyTypes: [...o.spec.policyTypes] } : {}),
        ...(o.spec.ingress ? { ingress: o.spec.ingress.map((rule) => ({ ...(rule.from ? { from: rule.from.map(peer) } : {}), ...(rule.ports ? { ports: rule.ports.map(port) } : {}) })) } : {}),
        ...(o.spec.egress ? { egress: o.spec.egress.map((rule) => ({ ...(rule.to ? { to: rule.to.map(peer) } : {}), ...(rule.ports ? { ports: rule.ports.map(port) } : {}) })) } : {}),
      },
    }),
    // A Node keeps only its name (hashed as pods' nodeName is) and its pod CIDRs (addresses are kept).
    Node: (o: NodeObject) => ({
      apiVersion: o.apiVersion,
      kind: o.kind,
      metadata: { name: r.name(o.metadata.name) },
      ...(o.spec ? { spec: { ...(o.spec.podCIDR ? { podCIDR: o.spec.podCIDR } : {}), ...(o.spec.podCIDRs ? { podCIDRs: [...o.spec.podCIDRs] } : {}) } } : {}),
    }),
    Controller: (o: ControllerObject) => ({
      apiVersion: o.apiVersion,
      kind: o.kind,
      metadata: meta(o.metadata),
      spec: {
        ...(o.spec.replicas !== undefined ? { replicas: o.spec.replicas } : {}),
        ...(o.spec.selector ? { selector: selector(o.spec.selector) } : {}),
        template: { metadata: { labels: labels(o.spec.template.metadata?.labels ?? {}) }, spec: podSpec(o.spec.template.spec) },
      },
    }),
  };
}

/**
 * The anonymized List of a snapshot the importer accepted (pass the parsed file, a List or one object): only the
 * items and fields the importer reads, every name and label value hashed with `salt`.
 */
export function anonymizeList(input: unknown, salt: string | Buffer): KubeList {
  const r = renamer(salt);
  const a = anonymizer(r);
  const raw = input as { items?: unknown[] };
  const items = Array.isArray(raw.items) ? raw.items : [input];
  const out: KubeList = { apiVersion: 'v1', kind: 'List', items: [] };
  for (const item of items) {
    const { kind: rawKind, apiVersion, metadata } = item as { kind?: unknown; apiVersion?: unknown; metadata?: { name?: unknown; namespace?: unknown } };
    const kind = readKindOf(rawKind, apiVersion);
    if (!kind) {
      // Other engines' policies keep their kind and hashed name only: the finding that counts them survives.
      if (typeof rawKind === 'string' && isUnreplayedPolicy(rawKind, apiVersion) && typeof metadata?.name === 'string') {
        const ns = typeof metadata.namespace === 'string' ? { namespace: r.name(metadata.namespace) } : {};
        out.items.push({ apiVersion: String(apiVersion), kind: rawKind, metadata: { name: r.name(metadata.name), ...ns } });
      }
      continue;
    }
    const parsed = ITEM_SCHEMAS[kind].safeParse(item);
    if (!parsed.success) throw new BenchError('usage', `anonymize: a ${kind} the importer did not accept; import the file first`);
    const o = parsed.data;
    if (o.kind === 'Namespace') out.items.push(a.Namespace(o));
    else if (o.kind === 'Pod') out.items.push(a.Pod(o));
    else if (o.kind === 'NetworkPolicy') out.items.push(a.NetworkPolicy(o));
    else if (o.kind === 'Node') out.items.push(a.Node(o));
    else out.items.push(a.Controller(o));
  }
  return out;
}
