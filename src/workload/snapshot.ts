// A cluster's own objects as a workload: the output of `kubectl get namespaces,nodes,pods,networkpolicies -A -o json`
// (a v1 List, JSON or YAML), unmodified; Deployments, StatefulSets and DaemonSets may stand in for their pods.
// Every problem in the file is reported at once, each naming the item and the field — a JSON pointer
// (`cluster.json#/items/3/spec/containers/0/ports/0/containerPort`) or the YAML line and column — before any work.
//
// What is kept: namespaces with their labels; pods with labels, node (spec.nodeName), IPv4 address
// (status.podIP / podIPs), hostNetwork and the ports of containers and native sidecars (./expand.ts podPorts);
// NetworkPolicies of networking.k8s.io as written, less IPv6 ipBlock peers (./snapshot-policies.ts). Pods no data
// plane holds are left out and listed: finished ones (phase Succeeded/Failed: their address is free again, as
// Calico's IsFinished in libcalico-go/lib/backend/k8s/conversion/conversion.go treats them), pods not yet
// scheduled or without an address, and IPv6-only pods (the local models are IPv4). Other engines' policies
// (CiliumNetworkPolicy, Calico's, AdminNetworkPolicy…) are counted per kind for the not-replayed finding.
import { readFileSync } from 'node:fs';
import { basename, extname } from 'node:path';
import { loadAll } from 'js-yaml';
import { LineCounter, parseAllDocuments, parseDocument, type Document } from 'yaml';
import { InputError, type Problem } from '../errors.js';
import { yamlErrorLocation, yamlLocation } from '../config/yaml-location.js';
import { normalizeCidr, parseIpv4 } from '../policy/cidr.js';
import { validatePolicy } from '../policy/resolve.js';
import { NAMESPACE_NAME_LABEL } from '../policy/selectors.js';
import type { NamespaceInfo, NetworkPolicy } from '../policy/types.js';
import { naturalCompare, type ClusterWorkload, type SnapshotSource, type UnreplayedPolicies } from './cluster.js';
import { expandControllers, placePods, podPorts, type Controller, type PodDraft } from './expand.js';
import { describeIssue, ITEM_SCHEMAS, readKindOf, type NamespaceObject, type NodeObject, type PodObject } from './k8s-objects.js';
import { inCidrs } from './pod-cidrs.js';
import { countUnreplayed, ipv4View, ipv6CidrProblem, ipv6PeerPaths, isUnreplayedPolicy } from './snapshot-policies.js';

type Seg = string | number;

/** One parsed document and how to name a place in it. */
interface SourceDoc {
  data: unknown;
  where(path: readonly Seg[], key?: string): string;
}

export interface SnapshotOptions {
  /** Nodes to spread controllers' pods over when no pod in the file names a node (default 2: node-0, node-1). */
  defaultNodes?: number;
  /** The workload's name (default: the file's base name without extension). */
  name?: string;
}

/** RFC 6901: `/items/3/metadata/name`, with `~` and `/` escaped. */
export const jsonPointer = (path: readonly Seg[]): string => path.map((s) => `/${String(s).replace(/~/g, '~0').replace(/\//g, '~1')}`).join('');

function lineCol(text: string, offset: number): string {
  const before = text.slice(0, offset);
  const line = before.split('\n').length;
  return `${line}:${offset - before.lastIndexOf('\n')}`;
}

const looksLikeJson = (text: string): boolean => /^\s*[[{]/.test(text);

function parseDocs(file: string, text: string, problems: Problem[]): { docs: SourceDoc[]; format: 'json' | 'yaml' } {
  if (looksLikeJson(text)) {
    try {
      const data: unknown = JSON.parse(text);
      return { docs: [{ data, where: (path) => `${file}#${jsonPointer(path)}` }], format: 'json' };
    } catch (e) {
      const msg = (e as Error).message;
      const pos = /position (\d+)/.exec(msg);
      // V8 names no position for an unexpected token: the YAML parser (JSON is flow YAML) finds it.
      const yamlPos = pos ? undefined : parseDocument(text, { prettyErrors: false }).errors[0]?.pos[0];
      const offset = pos ? Number(pos[1]) : yamlPos;
      problems.push({ where: offset === undefined ? file : `${file}:${lineCol(text, offset)}`, message: `JSON syntax: ${msg.replace(/ in JSON at position \d+.*$/s, '').replace(/, ".*" is not valid JSON$/s, '')}` });
      return { docs: [], format: 'json' };
    }
  }
  // js-yaml reads a large List several times faster than yaml; yaml's positions are needed only to name a
  // problem's line, so it parses the text again only then (and for syntax errors, which it locates).
  let fast: unknown[] | undefined;
  let fastError: { message: string; mark?: { line: number; column: number } } | undefined;
  try {
    fast = loadAll(text, { maxAliases: 100 });
  } catch (e) {
    fastError = e as typeof fastError;
  }
  let located: { docs: Document[]; lines: LineCounter } | undefined;
  const locate = () => {
    if (!located) {
      const lines = new LineCounter();
      const parsed = parseAllDocuments(text, { lineCounter: lines, prettyErrors: false });
      located = { docs: Array.isArray(parsed) ? parsed : [parsed], lines };
    }
    return located;
  };
  if (!fast) {
    const { docs: list, lines } = locate();
    for (const doc of list) for (const e of doc.errors) problems.push({ where: yamlErrorLocation(file, e, lines), message: `YAML syntax: ${e.message.split('\n')[0]}` });
    const mark = fastError?.mark;
    if (!problems.length) problems.push({ where: mark ? `${file}:${mark.line + 1}:${mark.column + 1}` : file, message: `YAML: ${fastError?.message.split('\n')[0]?.replace(/ \(\d+:\d+\)$/, '') ?? 'unreadable'}` });
    return { docs: [], format: 'yaml' };
  }
  const docs: SourceDoc[] = [];
  fast.forEach((data, i) => {
    if (data !== null && data !== undefined) docs.push({ data, where: (path, key) => yamlLocation(file, locate().docs[i]!, locate().lines, path, key) });
  });
  return { docs, format: 'yaml' };
}

interface Item {
  raw: Record<string, unknown>;
  path: Seg[];
  doc: SourceDoc;
}

const isObject = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);

/** The items of every document: a List's items, or a document that is one object. */
function collectItems(docs: readonly SourceDoc[], problems: Problem[]): Item[] {
  const items: Item[] = [];
  for (const doc of docs) {
    const d = doc.data;
    if (isObject(d) && Array.isArray(d.items) && typeof d.kind === 'string' && d.kind.endsWith('List')) {
      d.items.forEach((it, i) => {
        if (isObject(it)) items.push({ raw: it, path: ['items', i], doc });
        else problems.push({ where: doc.where(['items', i]), message: `items[${i}] is not an object` });
      });
    } else if (isObject(d) && typeof d.kind === 'string' && !Array.isArray(d.items)) {
      items.push({ raw: d, path: [], doc });
    } else {
      problems.push({ where: doc.where([]), message: 'expected a Kubernetes List (kind: List, items: […]) as `kubectl get namespaces,nodes,pods,networkpolicies -A -o json` writes it, or one object with a kind' });
    }
  }
  return items;
}

/** `Pod shop/cart-0`, or `items[3] (Pod)` when the item has no usable name. */
function itemName(it: Item): string {
  const m = isObject(it.raw.metadata) ? it.raw.metadata : {};
  const kind = String(it.raw.kind);
  if (typeof m.name !== 'string') return `${it.path.length ? `items[${it.path[1]}]` : 'the object'} (${kind})`;
  return `${kind} ${typeof m.namespace === 'string' ? `${m.namespace}/` : ''}${m.name}`;
}

/** `P.spec.ingress[0].from[1]` (validatePolicy's paths) -> ['spec', 'ingress', 0, 'from', 1]. */
function issuePath(path: string): Seg[] {
  return [...path.replace(/^P\.?/, '').matchAll(/([^.[\]]+)|\[(\d+)\]/g)].map((m) => (m[2] !== undefined ? Number(m[2]) : m[1]!));
}

interface Parsed {
  namespaces: Array<{ obj: NamespaceObject; it: Item }>;
  pods: Array<{ obj: PodObject; it: Item }>;
  nodes: Array<{ obj: NodeObject; it: Item }>;
  policies: Array<{ obj: NetworkPolicy; it: Item }>;
  controllers: Controller[];
  items: Record<string, number>;
  ignoredKinds: Record<string, number>;
  unreplayed: UnreplayedPolicies[];
  ipv6Peers: string[];
}

function readItems(items: readonly Item[], problems: Problem[]): Parsed {
  const out: Parsed = { namespaces: [], pods: [], nodes: [], policies: [], controllers: [], items: {}, ignoredKinds: {}, unreplayed: [], ipv6Peers: [] };
  for (const it of items) {
    const { kind, apiVersion } = it.raw;
    const where = (p: readonly Seg[], key?: string) => it.doc.where([...it.path, ...p], key);
    const readAs = readKindOf(kind, apiVersion);
    if (!readAs) {
      if (typeof kind === 'string' && kind) {
        // A kind of the same name from another group (Calico's NetworkPolicy) is counted under its apiVersion.
        const label = readKindOf(kind, undefined) ? `${kind} (${String(apiVersion)})` : kind;
        out.ignoredKinds[label] = (out.ignoredKinds[label] ?? 0) + 1;
        if (isUnreplayedPolicy(kind, apiVersion)) {
          const m = isObject(it.raw.metadata) ? it.raw.metadata : {};
          countUnreplayed(out.unreplayed, kind, String(apiVersion), `${typeof m.namespace === 'string' ? `${m.namespace}/` : ''}${typeof m.name === 'string' ? m.name : '?'}`);
        }
      } else problems.push({ where: where(['kind']), message: `${it.path.length ? `items[${it.path[1]}]` : 'the object'}: has no kind (Namespace, Pod, NetworkPolicy, Deployment, StatefulSet, DaemonSet, Node are read)` });
      continue;
    }
    const parsed = ITEM_SCHEMAS[readAs].safeParse(it.raw, { reportInput: true });
    if (!parsed.success) {
      for (const issue of parsed.error.issues) {
        const p = issue.path as Seg[];
        if (issue.code === 'unrecognized_keys') {
          for (const key of issue.keys) problems.push({ where: where(p, key), message: `${itemName(it)}: unknown field '${key}' in ${p.join('.')} (an unknown field could change what the policy means)` });
        } else problems.push({ where: where(p), message: `${itemName(it)}: ${p.join('.') || '(item)'}: ${describeIssue(issue)}` });
      }
      continue;
    }
    out.items[readAs] = (out.items[readAs] ?? 0) + 1;
    const obj = parsed.data;
    if (obj.kind === 'Namespace') out.namespaces.push({ obj, it });
    else if (obj.kind === 'Pod') out.pods.push({ obj, it });
    else if (obj.kind === 'Node') out.nodes.push({ obj, it });
    else if (obj.kind === 'NetworkPolicy') {
      const policy = obj as NetworkPolicy;
      // IPv6 ipBlocks (dual-stack clusters) are checked here and left out of the IPv4 replay (./snapshot-policies.ts).
      const v6 = ipv6PeerPaths(policy);
      for (const issue of validatePolicy(policy, 'P')) {
        const path = issue.path.replace(/^P\.?/, '');
        if (!v6.some((peer) => path.startsWith(`${peer}.ipBlock`))) problems.push({ where: where(issuePath(issue.path)), message: `${itemName(it)}: ${path}: ${issue.message}` });
      }
      for (const peer of v6) {
        const block = issuePath(peer).reduce<unknown>((o, k) => (o as Record<string | number, unknown>)[k], policy) as { ipBlock: { cidr: string; except?: string[] } };
        [block.ipBlock.cidr, ...(block.ipBlock.except ?? [])].forEach((c, i) => {
          const bad = ipv6CidrProblem(c);
          const field = i === 0 ? 'cidr' : `except[${i - 1}]`;
          if (bad) problems.push({ where: where([...issuePath(peer), 'ipBlock', ...issuePath(field)]), message: `${itemName(it)}: ${peer}.ipBlock.${field}: ${bad}` });
        });
        out.ipv6Peers.push(`${policy.metadata.namespace}/${policy.metadata.name} ${peer}`);
      }
      out.policies.push({ obj: v6.length ? ipv4View(policy) : policy, it });
    } else out.controllers.push({ object: obj, where: () => where([]) });
  }
  return out;
}

/** The pod's IPv4 address (podIPs first, as dual-stack clusters list both families), if any. */
function ipv4Of(pod: PodObject): string | undefined {
  const all = [...(pod.status?.podIPs ?? []).map((p) => p.ip), ...(pod.status?.podIP ? [pod.status.podIP] : [])];
  return all.find((ip) => parseIpv4(ip) !== undefined);
}

/** The pods a data plane holds; the others with the reason. */
function podDrafts(parsed: Parsed, skipped: SnapshotSource['skippedPods'], problems: Problem[]): PodDraft[] {
  const drafts: PodDraft[] = [];
  for (const { obj, it } of parsed.pods) {
    const key = `${obj.metadata.namespace}/${obj.metadata.name}`;
    const phase = obj.status?.phase;
    const ip = ipv4Of(obj);
    const hostNetwork = obj.spec.hostNetwork === true;
    const where = () => it.doc.where([...it.path, 'status', 'podIP']);
    const bad = [obj.status?.podIP, ...(obj.status?.podIPs ?? []).map((p) => p.ip)].find((a) => a !== undefined && parseIpv4(a) === undefined && !/^[0-9a-fA-F:.]+$/.test(a));
    if (bad !== undefined) problems.push({ where: where(), message: `Pod ${key}: ${JSON.stringify(bad)} is not an IP address` });
    else if (phase === 'Succeeded' || phase === 'Failed') skipped.push({ pod: key, labels: obj.metadata.labels ?? {}, reason: `finished (phase ${phase}): its address is free again, no data plane holds it` });
    else if (!obj.spec.nodeName) skipped.push({ pod: key, labels: obj.metadata.labels ?? {}, reason: 'not scheduled (no spec.nodeName): no node holds it yet' });
    else if (!ip && (obj.status?.podIP || obj.status?.podIPs?.length)) skipped.push({ pod: key, labels: obj.metadata.labels ?? {}, reason: 'IPv6 only: the local models are IPv4' });
    else if (!ip) skipped.push({ pod: key, labels: obj.metadata.labels ?? {}, reason: 'no address yet (status.podIP): the CNI has not set it up' });
    else drafts.push({ name: obj.metadata.name, namespace: obj.metadata.namespace, labels: obj.metadata.labels ?? {}, node: obj.spec.nodeName, ip, hostNetwork, ports: podPorts(obj.spec), where });
  }
  return drafts;
}

/** Names that must be unique, addresses two running pods cannot share, namespaces the file must list. */
function crossChecks(parsed: Parsed, pods: readonly PodDraft[], problems: Problem[]): void {
  const unique = (kind: string, entries: Array<{ key: string; it: Item }>) => {
    const first = new Map<string, Item>();
    for (const { key, it } of entries) {
      const prev = first.get(key);
      if (prev) problems.push({ where: it.doc.where([...it.path, 'metadata', 'name']), message: `${kind} ${key} is in the file twice (also at ${prev.doc.where([...prev.path, 'metadata', 'name'])})` });
      else first.set(key, it);
    }
  };
  unique('Namespace', parsed.namespaces.map(({ obj, it }) => ({ key: obj.metadata.name, it })));
  unique('Pod', parsed.pods.map(({ obj, it }) => ({ key: `${obj.metadata.namespace}/${obj.metadata.name}`, it })));
  unique('NetworkPolicy', parsed.policies.map(({ obj, it }) => ({ key: `${obj.metadata.namespace}/${obj.metadata.name}`, it })));
  const byIp = new Map<string, PodDraft>();
  for (const p of pods) {
    if (!p.ip || p.hostNetwork) continue;
    const other = byIp.get(p.ip);
    if (other) problems.push({ where: p.where(), message: `Pod ${p.namespace}/${p.name} has address ${p.ip}, as does running pod ${other.namespace}/${other.name}: two running pods cannot share an address` });
    else byIp.set(p.ip, p);
  }
  if (parsed.namespaces.length === 0) return;
  const listed = new Set(parsed.namespaces.map((n) => n.obj.metadata.name));
  const reported = new Set<string>();
  const need = (ns: string, where: () => string) => {
    if (listed.has(ns) || reported.has(ns)) return;
    reported.add(ns);
    problems.push({ where: where(), message: `namespace ${ns} has pods or policies but no Namespace item: its labels decide which namespaceSelectors select it; add it (kubectl get namespace ${ns} -o json) or remove its items` });
  };
  for (const { obj, it } of [...parsed.pods, ...parsed.policies]) need(obj.metadata.namespace, () => it.doc.where([...it.path, 'metadata', 'namespace']));
  for (const c of parsed.controllers) need(c.object.metadata.namespace, c.where);
}

/** The IPv4 pod CIDRs of each Node in the file (spec.podCIDRs, else spec.podCIDR), by node name. */
function readNodeCidrs(parsed: Parsed, problems: Problem[]): Record<string, string[]> {
  const out: Record<string, string[]> = {};
  for (const { obj, it } of parsed.nodes) {
    const listed = obj.spec?.podCIDRs?.length ? obj.spec.podCIDRs.map((c, i) => ({ c, path: ['spec', 'podCIDRs', i] })) : obj.spec?.podCIDR ? [{ c: obj.spec.podCIDR, path: ['spec', 'podCIDR'] }] : [];
    const v4: string[] = [];
    for (const { c, path } of listed) {
      if (c.includes(':')) continue; // the local models are IPv4
      try {
        v4.push(normalizeCidr(c));
      } catch (e) {
        problems.push({ where: it.doc.where([...it.path, ...path]), message: `Node ${obj.metadata.name}: ${(e as Error).message}` });
      }
    }
    if (v4.length) out[obj.metadata.name] = v4;
  }
  return out;
}

/** Parses a snapshot's text; a workload only when there are no problems. */
export function parseSnapshot(file: string, raw: string, opts: SnapshotOptions = {}): { workload?: ClusterWorkload; problems: Problem[] } {
  const problems: Problem[] = [];
  const text = raw.charCodeAt(0) === 0xfeff ? raw.slice(1) : raw; // a UTF-8 byte order mark (Windows editors, PowerShell 7's utf8BOM)
  const { docs, format } = parseDocs(file, text, problems);
  if (problems.length) return { problems };
  if (docs.length === 0) return { problems: [{ where: file, message: 'holds no objects; expected the output of kubectl get namespaces,nodes,pods,networkpolicies -A -o json' }] };
  const parsed = readItems(collectItems(docs, problems), problems);
  const skippedPods: SnapshotSource['skippedPods'] = [];
  const filePods = podDrafts(parsed, skippedPods, problems);
  const knownNodes = [...new Set(filePods.map((p) => p.node as string))].sort(naturalCompare);
  // Controllers' pods go on the nodes pods name, else on the file's Nodes, else on made-up ones.
  const fileNodes = parsed.nodes.map((n) => n.obj.metadata.name).sort(naturalCompare);
  const nodes = knownNodes.length ? knownNodes : fileNodes.length ? fileNodes : Array.from({ length: opts.defaultNodes ?? 2 }, (_, i) => `node-${i}`);
  // A controller whose pods are in the file is not expanded, also when they are all left out (pending, finished).
  const allFilePods = parsed.pods.map(({ obj }) => ({ namespace: obj.metadata.namespace, labels: obj.metadata.labels ?? {} }));
  const { pods: madePods, expanded, represented } = expandControllers(parsed.controllers, allFilePods, nodes, problems);
  const drafts = [...filePods, ...madePods];
  crossChecks(parsed, drafts, problems);
  const seen = new Set(parsed.pods.map(({ obj }) => `${obj.metadata.namespace}/${obj.metadata.name}`));
  for (const p of madePods) {
    const key = `${p.namespace}/${p.name}`;
    if (seen.has(key)) problems.push({ where: p.where(), message: `the pods made up for this controller include ${key}, a name another pod in the file has; rename one of them` });
    seen.add(key);
  }
  if (!problems.length && drafts.length === 0) {
    const why = skippedPods.length ? ` (all ${skippedPods.length} pods are left out: ${skippedPods[0]!.reason})` : '';
    problems.push({ where: file, message: `holds no pod a data plane would hold${why}; a workload needs pods (or Deployments, StatefulSets, DaemonSets standing in for them)` });
  }
  if (problems.length) return { problems };
  const declaredCidrs = readNodeCidrs(parsed, problems);
  // Many CNIs do not number pods from the Node's spec.podCIDR (Calico IPAM blocks, Cilium cluster-pool, cloud
  // VPC addresses): where the file's pods lie outside their node's, the Nodes' CIDRs are not the routes, and the
  // replay derives them from the pods' addresses instead (./pod-cidrs.ts).
  const outside = filePods.find((p) => p.ip && !p.hostNetwork && declaredCidrs[p.node as string] && !inCidrs(p.ip, declaredCidrs[p.node as string]!));
  const nodePodCidrs = outside ? {} : declaredCidrs;
  const placed = placePods(drafts, problems, nodePodCidrs);
  if (problems.length) return { problems };

  const namespaces: NamespaceInfo[] = parsed.namespaces.map(({ obj }) => ({ name: obj.metadata.name, labels: { ...obj.metadata.labels, [NAMESPACE_NAME_LABEL]: obj.metadata.name } }));
  const derivedNamespaces: string[] = [];
  // A cluster before 1.21 does not label its namespaces with their name: the replay does (see the finding).
  const withoutNameLabel = parsed.namespaces.filter(({ obj }) => obj.metadata.labels?.[NAMESPACE_NAME_LABEL] !== obj.metadata.name).map(({ obj }) => obj.metadata.name);
  if (namespaces.length === 0) {
    const names = new Set([...placed.pods.map((p) => p.namespace), ...parsed.policies.map((p) => p.obj.metadata.namespace)]);
    for (const name of [...names].sort()) {
      namespaces.push({ name, labels: { [NAMESPACE_NAME_LABEL]: name } });
      derivedNamespaces.push(name);
    }
  }
  const workload: ClusterWorkload = {
    name: opts.name ?? basename(file, extname(file)),
    inventory: { namespaces, pods: placed.pods },
    policies: parsed.policies.map((p) => p.obj),
    nodes: placed.nodes,
    ...(Object.keys(nodePodCidrs).length ? { nodePodCidrs } : {}),
    assignedAddresses: placed.assigned,
    source: { kind: 'snapshot', file, format, items: parsed.items, ignoredKinds: parsed.ignoredKinds, skippedPods, expanded, representedByPods: represented, derivedNamespaces, unreplayedPolicies: parsed.unreplayed, ipv6Peers: parsed.ipv6Peers, namespacesWithoutNameLabel: withoutNameLabel, ...(outside ? { nodeCidrsNotUsed: `pod ${outside.namespace}/${outside.name} (${outside.ip}) is outside its node ${outside.node}'s spec.podCIDR ${declaredCidrs[outside.node as string]!.join(', ')}: the CNI numbers pods from its own pools, so the routes are derived from the pods' addresses` } : {}) },
  };
  return { workload, problems };
}

/**
 * A workload file's bytes as text: UTF-8, or UTF-16 when it starts with a UTF-16 byte order mark (Windows
 * PowerShell 5's `kubectl get … > file` writes UTF-16LE). A UTF-8 byte order mark is kept for the parser to drop.
 */
export function decodeWorkloadText(bytes: Buffer): string {
  if (bytes[0] === 0xff && bytes[1] === 0xfe) return bytes.subarray(2).toString('utf16le');
  if (bytes[0] === 0xfe && bytes[1] === 0xff) {
    const swapped = Buffer.from(bytes.subarray(2));
    return swapped.swap16().toString('utf16le');
  }
  return bytes.toString('utf8');
}

/** Reads and parses a snapshot file; every problem at once as an InputError (exit 2 in the CLI). */
export function loadSnapshot(file: string, opts: SnapshotOptions = {}): ClusterWorkload {
  let text: string;
  try {
    text = decodeWorkloadText(readFileSync(file));
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    throw new InputError([{ where: file, message: code === 'ENOENT' ? 'workload file not found' : code === 'EISDIR' ? 'is a directory; give the file kubectl wrote' : `cannot read the workload file (${code})` }]);
  }
  const { workload, problems } = parseSnapshot(file, text, opts);
  if (!workload) throw new InputError(problems);
  return workload;
}
