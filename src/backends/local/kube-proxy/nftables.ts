// kube-proxy's nftables mode as pkg/proxy/nftables/proxier.go writes it (v1.31–v1.33 setupNFTables and
// syncProxyRules), rendered from a Service set as the one `nft -f` transaction a sync runs (knftables hands its
// transaction to `nft -f -`). Pure: text and counts; kube-proxy/plane.ts runs it.
//
// The path of a new connection to a ClusterIP: nat-prerouting / nat-output (hook, priority dstnat) → services:
// ONE rule, `ip daddr . meta l4proto . th dport vmap @service-ips` — a map lookup whatever the Service count →
// service-<hash>-<ns>/<name>/<proto>/<port>: mark off-cluster sources for masquerade, then
// `numgen random mod N vmap { 0 : goto endpoint-…, … }` → endpoint-<hash>-…__<ip>/<port>: mark hairpin
// traffic, `dnat to ip:port`. nat-postrouting → masquerading: masquerade what was marked.
import type { Service, ServicePort, ServiceSet } from '../../../services/types.js';
import { servicePortName } from '../../../services/types.js';
import { masqueradeMark, type KubeProxyOptions } from './iptables.js';
import { nftEndpointChainBase, nftServiceChainBase } from './names.js';

export const NFT_TABLE = 'ip kube-proxy';

/**
 * nftablesBaseChains. Upstream names the priorities ("dstnat-10"); knftables writes them as numbers (dstnat =
 * -100, srcnat = 100), which every nft accepts on every hook.
 */
const BASE_CHAINS: [string, string, string, number][] = [
  // We want our filtering rules to operate on pre-DNAT dest IPs, so the filter chains run before DNAT.
  ['filter-prerouting', 'filter', 'prerouting', -110],
  ['filter-input', 'filter', 'input', -110],
  ['filter-forward', 'filter', 'forward', -110],
  ['filter-output', 'filter', 'output', -110],
  ['filter-output-post-dnat', 'filter', 'output', -90],
  ['nat-prerouting', 'nat', 'prerouting', -100],
  ['nat-output', 'nat', 'output', -100],
  ['nat-postrouting', 'nat', 'postrouting', 100],
];

/** nftablesJumpChains: [destination, source, extra match]. */
const JUMP_CHAINS: [string, string, string][] = [
  ['nodeport-endpoints-check', 'filter-input', 'ct state new '],
  ['service-endpoints-check', 'filter-input', 'ct state new '],
  ['service-endpoints-check', 'filter-forward', 'ct state new '],
  ['service-endpoints-check', 'filter-output', 'ct state new '],
  ['firewall-check', 'filter-prerouting', 'ct state new '],
  ['firewall-check', 'filter-output', 'ct state new '],
  ['services', 'nat-output', ''],
  ['services', 'nat-prerouting', ''],
  ['masquerading', 'nat-postrouting', ''],
  ['cluster-ips-check', 'filter-forward', 'ct state new '],
  ['cluster-ips-check', 'filter-output-post-dnat', 'ct state new '],
];

const VMAP_KEY = 'ipv4_addr . inet_proto . inet_service : verdict';

/** setupNFTables, as a full sync writes it on a node where the table is new. */
function setupLines(set: ServiceSet, o: KubeProxyOptions): string[] {
  const T = NFT_TABLE;
  const mark = masqueradeMark(o.masqueradeBit);
  const L = [`add table ${T} { comment "rules for kube-proxy" ; }`];
  for (const [name, type, hook, prio] of BASE_CHAINS) L.push(`add chain ${T} ${name} { type ${type} hook ${hook} priority ${prio} ; }`, `flush chain ${T} ${name}`);
  const created = new Set<string>();
  const ensure = (c: string) => {
    if (created.has(c)) return;
    created.add(c);
    L.push(`add chain ${T} ${c}`, `flush chain ${T} ${c}`);
  };
  for (const [dst, src, extra] of JUMP_CHAINS) {
    ensure(dst);
    L.push(`add rule ${T} ${src} ${extra}jump ${dst}`);
  }
  for (const c of ['services', 'cluster-ips-check', 'masquerading', 'mark-for-masquerade']) ensure(c);
  L.push(
    `add rule ${T} mark-for-masquerade mark set mark or ${mark}`,
    `add rule ${T} masquerading mark and ${mark} == 0 return`,
    `add rule ${T} masquerading mark set mark xor ${mark}`,
    `add rule ${T} masquerading masquerade fully-random`,
    `add set ${T} cluster-ips { type ipv4_addr ; comment "Active ClusterIPs" ; }`,
    `add rule ${T} cluster-ips-check ip daddr @cluster-ips reject comment "Reject traffic to invalid ports of ClusterIPs"`,
    `add rule ${T} cluster-ips-check ip daddr { ${set.serviceCidr} } drop comment "Drop traffic to unallocated ClusterIPs"`,
    // nodeport-ips exists only with --nodeport-addresses; the default matches every local address.
    `add map ${T} no-endpoint-services { type ${VMAP_KEY} ; comment "vmap to drop or reject packets to services with no endpoints" ; }`,
    `add map ${T} no-endpoint-nodeports { type inet_proto . inet_service : verdict ; comment "vmap to drop or reject packets to service nodeports with no endpoints" ; }`,
    `add chain ${T} reject-chain { comment "helper for @no-endpoint-services / @no-endpoint-nodeports" ; }`,
    `flush chain ${T} reject-chain`,
    `add rule ${T} reject-chain reject`,
    `add rule ${T} service-endpoints-check ip daddr . meta l4proto . th dport vmap @no-endpoint-services`,
    `add rule ${T} nodeport-endpoints-check ip daddr != 127.0.0.0/8 meta l4proto . th dport vmap @no-endpoint-nodeports`,
    `add map ${T} firewall-ips { type ${VMAP_KEY} ; comment "destinations that are subject to LoadBalancerSourceRanges" ; }`,
  );
  ensure('firewall-check');
  L.push(
    `add rule ${T} firewall-check ip daddr . meta l4proto . th dport vmap @firewall-ips`,
    `add map ${T} service-ips { type ${VMAP_KEY} ; comment "ClusterIP, ExternalIP and LoadBalancer IP traffic" ; }`,
    `add map ${T} service-nodeports { type inet_proto . inet_service : verdict ; comment "NodePort traffic" ; }`,
    `add rule ${T} services ip daddr . meta l4proto . th dport vmap @service-ips`,
    `add rule ${T} services fib daddr type local ip daddr != 127.0.0.0/8 meta l4proto . th dport vmap @service-nodeports`,
  );
  for (const c of ['cluster-ips', 'service-ips', 'firewall-ips', 'no-endpoint-services', 'no-endpoint-nodeports', 'service-nodeports']) {
    L.push(`flush ${c === 'cluster-ips' ? 'set' : 'map'} ${T} ${c}`);
  }
  return L;
}

/** One Service port, as syncProxyRules writes it: its chains, its map elements, and its rules. */
export interface NftServiceRules {
  key: string;
  /** Chains in the order ensureChain adds them: endpoint chains, then the service chain. */
  chains: string[];
  /** [set or map, element] */
  elements: [string, string][];
  rules: [string, string][];
}

/**
 * Upstream's one later change to this layout that matters at scale: a Service with a single endpoint does without
 * the numgen map (kubernetes/kubernetes PR #140723, merged 2026-07, for issue #139513 "sync time grows
 * super-linearly with Service count": every anonymous map makes adding rules slower, so a cold start with tens of
 * thousands of one-endpoint Services took minutes). Here: the service chain jumps straight to its endpoint chain.
 * Off reproduces the v1.33 ruleset exactly, and its slow cold start.
 */
export interface NftLayoutOptions {
  singleEndpointWithoutMap?: boolean;
}

export function renderNftServicePort(svc: Service, port: ServicePort, o: KubeProxyOptions & NftLayoutOptions): NftServiceRules {
  const proto = port.protocol.toLowerCase();
  const svcChain = `service-${nftServiceChainBase(svc.namespace, svc.name, proto, port.name)}`;
  const key = `${svc.clusterIP} . ${proto} . ${port.port}`;
  const out: NftServiceRules = { key: `${servicePortName(svc, port)}/${proto}`, chains: [], elements: [['cluster-ips', svc.clusterIP]], rules: [] };
  if (!svc.endpoints.length) {
    out.elements.push(['no-endpoint-services', `${key} comment "${servicePortName(svc, port)}" : goto reject-chain`]);
    return out;
  }
  const eps = svc.endpoints.map((ep) => ({ ep, chain: `endpoint-${nftEndpointChainBase(svc.namespace, svc.name, proto, port.name, ep.ip, port.targetPort)}` }));
  out.chains.push(...eps.map((e) => e.chain), svcChain);
  out.elements.push(['service-ips', `${key} : goto ${svcChain}`]);
  out.rules.push([svcChain, `ip daddr ${svc.clusterIP} ${proto} dport ${port.port} ip saddr != ${o.clusterCidr} jump mark-for-masquerade`]);
  if (eps.length === 1 && o.singleEndpointWithoutMap !== false) out.rules.push([svcChain, `goto ${eps[0]!.chain}`]);
  else out.rules.push([svcChain, `numgen random mod ${eps.length} vmap { ${eps.map((e, i) => `${i} : goto ${e.chain}`).join(' , ')} }`]);
  for (const { ep, chain } of eps) {
    out.rules.push([chain, `ip saddr ${ep.ip} jump mark-for-masquerade`], [chain, `meta l4proto ${proto} dnat to ${ep.ip}:${port.targetPort}`]);
  }
  return out;
}

export function renderNftServices(set: ServiceSet, o: KubeProxyOptions & NftLayoutOptions): NftServiceRules[] {
  return set.services.flatMap((s) => s.ports.map((p) => renderNftServicePort(s, p, o)));
}

export interface NftScript {
  /** `nft -f -` input: one transaction. */
  text: string;
  chains: number;
  rules: number;
  mapElements: number;
  setElements: number;
}

function serviceLines(r: NftServiceRules, withChains: boolean): string[] {
  const T = NFT_TABLE;
  return [
    ...(withChains ? r.chains.flatMap((c) => [`add chain ${T} ${c}`, `flush chain ${T} ${c}`]) : []),
    ...r.elements.map(([m, e]) => `add element ${T} ${m} { ${e} }`),
    ...(withChains ? r.rules.map(([c, rule]) => `add rule ${T} ${c} ${rule}`) : []),
  ];
}

function tally(rendered: NftServiceRules[]): Omit<NftScript, 'text'> {
  let chains = 0, rules = 0, mapElements = 0, setElements = 0;
  for (const r of rendered) {
    chains += r.chains.length;
    rules += r.rules.length;
    for (const [m] of r.elements) m === 'cluster-ips' ? setElements++ : mapElements++;
  }
  return { chains, rules, mapElements, setElements };
}

/** A full sync on a fresh node: the table, its base and top-level chains, sets and maps, every Service. */
export function renderKubeProxyNftables(set: ServiceSet, o: KubeProxyOptions & NftLayoutOptions): NftScript {
  const rendered = renderNftServices(set, o);
  const lines = setupLines(set, o);
  for (const r of rendered) lines.push(...serviceLines(r, true));
  return { text: lines.join('\n') + '\n', ...tally(rendered) };
}

/**
 * A partial sync: elements are added or deleted one by one (nftElementStorage.ensureElem / cleanupLeftoverKeys),
 * and only the chains of Services that changed are flushed and refilled; a chain no Service uses is flushed now
 * and deleted by a later transaction (kernels before 6.2 free a map's reference to a chain only after a delay).
 */
export function renderKubeProxyNftablesPartial(prev: ServiceSet, next: ServiceSet, o: KubeProxyOptions & NftLayoutOptions): NftScript & { chainsWritten: number; elementsAdded: number; elementsDeleted: number; staleChains: string[] } {
  const T = NFT_TABLE;
  const before = new Map(renderNftServices(prev, o).map((r) => [r.key, r]));
  const after = renderNftServices(next, o);
  const lines: string[] = [];
  let chainsWritten = 0, elementsAdded = 0, elementsDeleted = 0;
  const oldElements = new Map<string, string>(); // "map key" → full element
  const elemKey = (m: string, e: string) => `${m} ${e.split(/ comment | : /)[0]}`;
  for (const r of before.values()) for (const [m, e] of r.elements) oldElements.set(elemKey(m, e), `${m}\u0000${e}`);
  const liveChains = new Set<string>();
  for (const r of after) {
    const old = before.get(r.key);
    const changed = !old || JSON.stringify(old) !== JSON.stringify(r);
    r.chains.forEach((c) => liveChains.add(c));
    // As syncProxyRules orders a Service: its chains (ensureChain) before the elements that jump to them.
    if (changed) lines.push(...r.chains.flatMap((c) => [`add chain ${T} ${c}`, `flush chain ${T} ${c}`]));
    for (const [m, e] of r.elements) {
      const k = elemKey(m, e);
      const prevElem = oldElements.get(k);
      oldElements.delete(k);
      if (prevElem === `${m}\u0000${e}`) continue;
      if (prevElem) {
        lines.push(`delete element ${T} ${m} { ${e.split(/ comment | : /)[0]} }`);
        elementsDeleted++;
      }
      lines.push(`add element ${T} ${m} { ${e} }`);
      elementsAdded++;
    }
    if (changed && r.chains.length) {
      lines.push(...r.rules.map(([c, rule]) => `add rule ${T} ${c} ${rule}`));
      chainsWritten += r.chains.length;
    }
  }
  for (const v of oldElements.values()) {
    const [m, e] = v.split('\u0000') as [string, string];
    lines.push(`delete element ${T} ${m} { ${e.split(/ comment | : /)[0]} }`);
    elementsDeleted++;
  }
  const staleChains = [...before.values()].flatMap((r) => r.chains).filter((c) => !liveChains.has(c));
  for (const c of staleChains) lines.push(`flush chain ${T} ${c}`);
  return { text: lines.join('\n') + (lines.length ? '\n' : ''), ...tally(after), chainsWritten, elementsAdded, elementsDeleted, staleChains };
}

/** The later transaction that deletes chains a partial sync left flushed. */
export function renderNftDeleteChains(chains: string[]): string {
  return chains.map((c) => `delete chain ${NFT_TABLE} ${c}`).join('\n') + (chains.length ? '\n' : '');
}
