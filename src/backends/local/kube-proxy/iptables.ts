// kube-proxy's iptables mode as pkg/proxy/iptables/proxier.go writes it (v1.31–v1.33 syncProxyRules), rendered
// from a Service set as the one iptables-restore input a sync hands to iptables-nft-restore. Pure: text and
// counts; kube-proxy/plane.ts runs it.
//
// The path of a new connection to a ClusterIP (nat table, first packet only; conntrack carries the rest):
//   PREROUTING/OUTPUT → KUBE-SERVICES: one rule per Service port, tested in order (-d clusterIP -p tcp --dport),
//   then the "kubernetes service nodeports" jump, always last → KUBE-SVC-<hash>: mark for masquerade what does
//   not come from the cluster CIDR, then one rule per endpoint, `-m statistic --mode random --probability 1/(n-i)`
//   except the last → KUBE-SEP-<hash>: mark hairpin traffic, DNAT to ip:port. POSTROUTING → KUBE-POSTROUTING
//   masquerades what was marked. A packet that matches no Service (every pod-to-pod connection) walks all of
//   KUBE-SERVICES on every node it enters.
// Filter table: the jumps of iptablesJumpChains (KUBE-FORWARD accepts marked and established forwarding, drops
// INVALID; KUBE-SERVICES/KUBE-EXTERNAL-SERVICES reject Services without endpoints, empty here).
import type { Service, ServicePort, ServiceSet } from '../../../services/types.js';
import { servicePortName } from '../../../services/types.js';
import { kubeSepChain, kubeSvcChain } from './names.js';

export interface KubeProxyOptions {
  /** ClusterCIDR local-traffic detector (kind sets it to the pod subnet). */
  clusterCidr: string;
  /** --iptables-masquerade-bit, default 14. */
  masqueradeBit?: number;
  /** iptables-nft supports MASQUERADE --random-fully (utiliptables HasRandomFully). */
  randomFully?: boolean;
}

/** More endpoint chains than this and kube-proxy drops per-endpoint comments (largeClusterEndpointsThreshold). */
export const LARGE_CLUSTER_ENDPOINTS = 1000;
const NODEPORTS_COMMENT = `"kubernetes service nodeports; NOTE: this must be the last rule in this chain"`;

export function masqueradeMark(bit = 14): string {
  return `0x${(1 << bit).toString(16)}`;
}

/** computeProbability: 1/n with 10 decimals. */
export function probability(n: number): string {
  return (1 / n).toFixed(10);
}

/** One Service port's nat chains: its KUBE-SERVICES rule, its KUBE-SVC chain and its KUBE-SEP chains. */
export interface IptablesServiceRules {
  key: string;
  dispatch: string;
  /** [chain, rules] in the order written: KUBE-SVC first, then each KUBE-SEP. */
  chains: [string, string[]][];
}

export function renderIptablesServicePort(svc: Service, port: ServicePort, o: KubeProxyOptions & { largeCluster: boolean }): IptablesServiceRules {
  const proto = port.protocol.toLowerCase();
  const spn = servicePortName(svc, port);
  const svcChain = kubeSvcChain(spn, proto);
  const capture = `-m comment --comment "${spn} cluster IP" -m ${proto} -p ${proto} -d ${svc.clusterIP} --dport ${port.port}`;
  const dispatch = `-A KUBE-SERVICES ${capture} -j ${svcChain}`;
  // Not modelled: Services without endpoints (a filter-table REJECT instead), externalIPs, LoadBalancer,
  // NodePorts, Local traffic policies, session affinity: the benchmark's Services are plain ClusterIPs.
  const svcRules = [`-A ${svcChain} ${capture} ! -s ${o.clusterCidr} -j KUBE-MARK-MASQ`];
  const sepChains: [string, string[]][] = [];
  const n = svc.endpoints.length;
  svc.endpoints.forEach((ep, i) => {
    const endpoint = `${ep.ip}:${port.targetPort}`;
    const sep = kubeSepChain(spn, proto, endpoint);
    const comment = (text: string) => (o.largeCluster ? '' : ` -m comment --comment ${text}`);
    const stat = i < n - 1 ? ` -m statistic --mode random --probability ${probability(n - i)}` : '';
    svcRules.push(`-A ${svcChain}${comment(`"${spn} -> ${endpoint}"`)}${stat} -j ${sep}`);
    sepChains.push([sep, [`-A ${sep}${comment(spn)} -s ${ep.ip} -j KUBE-MARK-MASQ`, `-A ${sep}${comment(spn)} -m ${proto} -p ${proto} -j DNAT --to-destination ${endpoint}`]]);
  });
  return { key: `${spn}/${proto}`, dispatch, chains: [[svcChain, svcRules], ...sepChains] };
}

export function renderIptablesServices(set: ServiceSet, o: KubeProxyOptions): IptablesServiceRules[] {
  const endpoints = set.services.reduce((n, s) => n + s.endpoints.length * s.ports.length, 0);
  const largeCluster = endpoints > LARGE_CLUSTER_ENDPOINTS;
  return set.services.flatMap((s) => (s.endpoints.length ? s.ports.map((p) => renderIptablesServicePort(s, p, { ...o, largeCluster })) : []));
}

/** iptablesJumpChains (+ kubelet's KUBE-FIREWALL), each written with EnsureRule(Prepend): listed in order, applied in order. */
const JUMPS: { table: 'filter' | 'nat'; src: string; dst: string; comment: string; extra: string }[] = [
  { table: 'filter', src: 'INPUT', dst: 'KUBE-EXTERNAL-SERVICES', comment: 'kubernetes externally-visible service portals', extra: '-m conntrack --ctstate NEW ' },
  { table: 'filter', src: 'FORWARD', dst: 'KUBE-EXTERNAL-SERVICES', comment: 'kubernetes externally-visible service portals', extra: '-m conntrack --ctstate NEW ' },
  { table: 'filter', src: 'INPUT', dst: 'KUBE-NODEPORTS', comment: 'kubernetes health check service ports', extra: '' },
  { table: 'filter', src: 'FORWARD', dst: 'KUBE-SERVICES', comment: 'kubernetes service portals', extra: '-m conntrack --ctstate NEW ' },
  { table: 'filter', src: 'OUTPUT', dst: 'KUBE-SERVICES', comment: 'kubernetes service portals', extra: '-m conntrack --ctstate NEW ' },
  { table: 'filter', src: 'FORWARD', dst: 'KUBE-FORWARD', comment: 'kubernetes forwarding rules', extra: '' },
  { table: 'filter', src: 'INPUT', dst: 'KUBE-PROXY-FIREWALL', comment: 'kubernetes load balancer firewall', extra: '-m conntrack --ctstate NEW ' },
  { table: 'filter', src: 'OUTPUT', dst: 'KUBE-PROXY-FIREWALL', comment: 'kubernetes load balancer firewall', extra: '-m conntrack --ctstate NEW ' },
  { table: 'filter', src: 'FORWARD', dst: 'KUBE-PROXY-FIREWALL', comment: 'kubernetes load balancer firewall', extra: '-m conntrack --ctstate NEW ' },
  { table: 'nat', src: 'OUTPUT', dst: 'KUBE-SERVICES', comment: 'kubernetes service portals', extra: '' },
  { table: 'nat', src: 'PREROUTING', dst: 'KUBE-SERVICES', comment: 'kubernetes service portals', extra: '' },
  { table: 'nat', src: 'POSTROUTING', dst: 'KUBE-POSTROUTING', comment: 'kubernetes postrouting rules', extra: '' },
  { table: 'filter', src: 'INPUT', dst: 'KUBE-FIREWALL', comment: '', extra: '' },
  { table: 'filter', src: 'OUTPUT', dst: 'KUBE-FIREWALL', comment: '', extra: '' },
];

const FILTER_CHAINS = ['KUBE-SERVICES', 'KUBE-EXTERNAL-SERVICES', 'KUBE-FORWARD', 'KUBE-NODEPORTS', 'KUBE-PROXY-FIREWALL', 'KUBE-FIREWALL'];
const NAT_CHAINS = ['KUBE-SERVICES', 'KUBE-NODEPORTS', 'KUBE-POSTROUTING', 'KUBE-MARK-MASQ'];

const chainLine = (c: string) => `:${c} - [0:0]`;
const jumpLine = (j: (typeof JUMPS)[number]) => `-I ${j.src} ${j.extra}${j.comment ? `-m comment --comment "${j.comment}" ` : ''}-j ${j.dst}`;

/** A Service port without endpoints: no nat rules, a REJECT in filter KUBE-SERVICES ("has no endpoints"). */
function rejectRules(set: ServiceSet): string[] {
  return set.services.flatMap((s) =>
    s.endpoints.length
      ? []
      : s.ports.map((p) => {
          const proto = p.protocol.toLowerCase();
          return `-A KUBE-SERVICES -m comment --comment "${servicePortName(s, p)} has no endpoints" -m ${proto} -p ${proto} -d ${s.clusterIP} --dport ${p.port} -j REJECT`;
        }),
  );
}

function filterTable(set: ServiceSet, o: KubeProxyOptions, withJumps: boolean): string[] {
  const mark = masqueradeMark(o.masqueradeBit);
  return [
    '*filter',
    ...FILTER_CHAINS.map(chainLine),
    ...(withJumps ? JUMPS.filter((j) => j.table === 'filter').map(jumpLine) : []),
    ...rejectRules(set),
    // kubelet's anti-martian rule, which kube-proxy duplicates when localhost NodePorts are on (the default).
    `-A KUBE-FIREWALL -m comment --comment "block incoming localnet connections" -d 127.0.0.0/8 ! -s 127.0.0.0/8 -m conntrack ! --ctstate RELATED,ESTABLISHED,DNAT -j DROP`,
    '-A KUBE-FORWARD -m conntrack --ctstate INVALID -j DROP',
    `-A KUBE-FORWARD -m comment --comment "kubernetes forwarding rules" -m mark --mark ${mark}/${mark} -j ACCEPT`,
    `-A KUBE-FORWARD -m comment --comment "kubernetes forwarding conntrack rule" -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT`,
    'COMMIT',
  ];
}

function natHead(o: KubeProxyOptions): string[] {
  const mark = masqueradeMark(o.masqueradeBit);
  return [
    `-A KUBE-POSTROUTING -m mark ! --mark ${mark}/${mark} -j RETURN`,
    `-A KUBE-POSTROUTING -j MARK --xor-mark ${mark}`,
    `-A KUBE-POSTROUTING -m comment --comment "kubernetes service traffic requiring SNAT" -j MASQUERADE${o.randomFully === false ? '' : ' --random-fully'}`,
    `-A KUBE-MARK-MASQ -j MARK --or-mark ${mark}`,
  ];
}

const NODEPORTS_JUMP = `-A KUBE-SERVICES -m comment --comment ${NODEPORTS_COMMENT} -m addrtype --dst-type LOCAL -j KUBE-NODEPORTS`;

export interface IptablesRestore {
  /** iptables-restore --noflush input. */
  text: string;
  /** Rules kube-proxy's own chains hold (its jump rules from the built-in chains not counted, as in its metrics). */
  natRules: number;
  natChains: number;
  filterRules: number;
  /** Rules in nat KUBE-SERVICES: one per Service port with endpoints, plus the nodeports jump. */
  kubeServicesRules: number;
}

function count(lines: string[]): { rules: number; chains: number } {
  let rules = 0;
  let chains = 0;
  for (const l of lines) {
    if (l.startsWith('-A ')) rules++;
    else if (l.startsWith(':')) chains++;
  }
  return { rules, chains };
}

function assemble(filter: string[], nat: string[], kubeServicesRules: number): IptablesRestore {
  const f = count(filter);
  const n = count(nat);
  return { text: [...filter, ...nat].join('\n') + '\n', natRules: n.rules, natChains: n.chains, filterRules: f.rules, kubeServicesRules };
}

/** A full sync on a fresh node: both tables, the jump rules from the built-in chains, every Service. */
export function renderKubeProxyIptables(set: ServiceSet, o: KubeProxyOptions): IptablesRestore {
  const rendered = renderIptablesServices(set, o);
  const nat = ['*nat', ...NAT_CHAINS.map(chainLine)];
  for (const r of rendered) for (const [c] of r.chains) nat.push(chainLine(c));
  nat.push(...JUMPS.filter((j) => j.table === 'nat').map(jumpLine), ...natHead(o));
  for (const r of rendered) {
    nat.push(r.dispatch);
    for (const [, rules] of r.chains) nat.push(...rules);
  }
  nat.push(NODEPORTS_JUMP, 'COMMIT');
  return assemble(filterTable(set, o, true), nat, rendered.length + 1);
}

/**
 * A partial sync (KEP-3453, minimizeIPTablesRestore, GA in v1.28): the top-level chains are rewritten whole —
 * KUBE-SERVICES with every Service's rule, so its cost still grows with the Service count — but only the
 * KUBE-SVC/KUBE-SEP chains of Services that changed are declared (flushed) and refilled; chains no Service uses
 * any more are flushed and deleted (-X) in the same COMMIT.
 */
export function renderKubeProxyIptablesPartial(prev: ServiceSet, next: ServiceSet, o: KubeProxyOptions): IptablesRestore & { chainsWritten: number; chainsDeleted: number } {
  const before = new Map(renderIptablesServices(prev, o).map((r) => [r.key, r]));
  const after = renderIptablesServices(next, o);
  const same = (a: IptablesServiceRules, b: IptablesServiceRules) => a.dispatch === b.dispatch && JSON.stringify(a.chains) === JSON.stringify(b.chains);
  const changed = after.filter((r) => !before.has(r.key) || !same(before.get(r.key)!, r));
  const live = new Set(after.flatMap((r) => r.chains.map(([c]) => c)));
  const stale = [...before.values()].flatMap((r) => r.chains.map(([c]) => c)).filter((c) => !live.has(c));
  const nat = ['*nat', ...NAT_CHAINS.map(chainLine)];
  for (const r of changed) for (const [c] of r.chains) nat.push(chainLine(c));
  for (const c of stale) nat.push(chainLine(c));
  nat.push(...natHead(o));
  const changedKeys = new Set(changed.map((r) => r.key));
  for (const r of after) {
    nat.push(r.dispatch);
    if (changedKeys.has(r.key)) for (const [, rules] of r.chains) nat.push(...rules);
  }
  nat.push(NODEPORTS_JUMP);
  for (const c of stale) nat.push(`-X ${c}`);
  nat.push('COMMIT');
  const chainsWritten = changed.reduce((n, r) => n + r.chains.length, 0);
  return { ...assemble(filterTable(next, o, false), nat, after.length + 1), chainsWritten, chainsDeleted: stale.length };
}

/** Rules and chains the full ruleset holds (what a node carries, not what one sync wrote). */
export function iptablesStateSize(set: ServiceSet, o: KubeProxyOptions): { natRules: number; natChains: number; filterRules: number; kubeServicesRules: number } {
  const r = renderKubeProxyIptables(set, o);
  return { natRules: r.natRules, natChains: r.natChains, filterRules: r.filterRules, kubeServicesRules: r.kubeServicesRules };
}
