// The PRE-3.28 Felix layout (kept for scripts/calico-layout-slope.mjs, which measures old vs new side by side):
// renders one node's cali-* filter chains and ipsets from the
// resolved endpoint policies, laid out the way Felix lays them out (see DESIGN.md, "Fidelity notes"):
//
//   FORWARD ─► cali-FORWARD ─► cali-from-wl-dispatch ─goto─► cali-fw-<iface> ─► cali-po-<policy>…
//                           ─► cali-to-wl-dispatch   ─goto─► cali-tw-<iface> ─► cali-pi-<policy>…
//                           ─► ACCEPT if the accept mark (0x10000) is set
//
// Pure: returns restore-file text and counts; install.ts turns them into commands.
import { createHash } from 'node:crypto';
import type { EndpointDirection, EndpointPolicy, PeerMatch, PodInfo, PortMatch, ResolvedPolicy, ResolvedRule } from '../../../policy/types.js';
import { BenchError } from '../../../errors.js';

/** Felix's default mark bits: a policy allowed the packet / a policy passed it to the next tier. */
export const MARK_ACCEPT = 0x10000;
export const MARK_PASS = 0x20000;

export const MAX_CHAIN_NAME = 28;
export const MAX_IPSET_NAME = 31;
export const MAX_IFACE_NAME = 15;
/** Felix's default InterfacePrefixes: the dispatch chains are only entered for `cali+` interfaces. */
export const WORKLOAD_IFACE_PREFIX = 'cali';

export const CHAIN_FORWARD = 'cali-FORWARD';
export const CHAIN_FROM_WL_DISPATCH = 'cali-from-wl-dispatch';
export const CHAIN_TO_WL_DISPATCH = 'cali-to-wl-dispatch';
const IPSET_PREFIX = 'cali40s:';
/** multiport takes at most 15 ports, a range counting as two. */
const MULTIPORT_MAX_SLOTS = 15;

const hex = (n: number): string => `0x${n.toString(16)}`;
const SET_ACCEPT = `-j MARK --set-xmark ${hex(MARK_ACCEPT)}/${hex(MARK_ACCEPT)}`;
const IF_ACCEPT = `-m mark --mark ${hex(MARK_ACCEPT)}/${hex(MARK_ACCEPT)}`;
const IF_NOT_PASS = `-m mark --mark 0x0/${hex(MARK_PASS)}`;
const CLEAR_VERDICT = `-j MARK --set-xmark 0x0/${hex(MARK_ACCEPT | MARK_PASS)}`;
const CLEAR_PASS = `-j MARK --set-xmark 0x0/${hex(MARK_PASS)}`;

export interface CalicoNodeCounts {
  /** `-A`/`-I` lines in the iptables transaction (FORWARD hook included). */
  rules: number;
  /** cali-* chains declared. */
  chains: number;
  ipsets: number;
  /** Entries over all ipsets. */
  ipsetMembers: number;
}

export interface CalicoNodeRules {
  node: string;
  /** Input for `ipset restore`: content-addressed sets, so re-running it is always safe. */
  ipsetRestore: string;
  /** Input for `iptables-restore --noflush`: one `*filter … COMMIT` transaction (hook included). */
  iptablesRestore: string;
  /** The exact line of iptablesRestore that hooks cali-FORWARD into FORWARD (left out on updates). */
  forwardHook: string;
  /** Every cali-* chain the transaction declares, in order. */
  chains: string[];
  /** Every ipset name ipsetRestore creates, sorted. */
  ipsets: string[];
  counts: CalicoNodeCounts;
}

export class CalicoCompileError extends BenchError {
  constructor(message: string) {
    super('internal', message);
  }
}

function shortHash(text: string, length: number): string {
  return createHash('sha256').update(text).digest('base64url').slice(0, length);
}

/** Felix names policy chains after the policy; ours hash namespace/name to fit 28 characters. */
export function policyChainName(direction: 'ingress' | 'egress', policyId: string): string {
  const prefix = direction === 'ingress' ? 'cali-pi-' : 'cali-po-';
  return prefix + shortHash(policyId, MAX_CHAIN_NAME - prefix.length);
}

/** Named by a hash of the members, as Felix names selector sets by a hash of the selector. */
export function ipsetName(members: readonly string[]): string {
  return IPSET_PREFIX + shortHash(members.join(','), MAX_IPSET_NAME - IPSET_PREFIX.length);
}

export function validateIfaceName(iface: string, pod: string): void {
  if (iface.length === 0 || iface.length > MAX_IFACE_NAME) {
    throw new CalicoCompileError(`interface name "${iface}" of pod ${pod} must be 1-${MAX_IFACE_NAME} characters (Linux IFNAMSIZ)`);
  }
  if (!/^[A-Za-z0-9_.-]+$/.test(iface)) {
    throw new CalicoCompileError(`interface name "${iface}" of pod ${pod} may only contain letters, digits, '_', '.', '-'`);
  }
  if (!iface.startsWith(WORKLOAD_IFACE_PREFIX)) {
    throw new CalicoCompileError(`interface name "${iface}" of pod ${pod} must start with "${WORKLOAD_IFACE_PREFIX}" (the cali+ dispatch only sees those)`);
  }
}

function validateChainName(name: string): void {
  if (name.length > MAX_CHAIN_NAME) throw new CalicoCompileError(`chain name "${name}" is longer than ${MAX_CHAIN_NAME} characters`);
}

const IPV4_CIDR = /^(\d{1,3})\.(\d{1,3})\.(\d{1,3})\.(\d{1,3})(?:\/(\d{1,2}))?$/;

/** Canonical IPv4 network (host bits cleared), or undefined for IPv6; throws on garbage. */
function ipv4Net(text: string, what: string): string | undefined {
  if (text.includes(':')) return undefined;
  const m = IPV4_CIDR.exec(text.trim());
  const octets = m ? [m[1], m[2], m[3], m[4]].map(Number) : [];
  const prefix = m?.[5] === undefined ? 32 : Number(m[5]);
  if (!m || octets.some((o) => o > 255) || prefix > 32) throw new CalicoCompileError(`${what}: "${text}" is not an IPv4 address or CIDR`);
  const addr = octets.reduce((acc, o) => acc * 256 + o, 0);
  const size = 2 ** (32 - prefix);
  const net = addr - (addr % size);
  const dotted = [24, 16, 8, 0].map((s) => Math.floor(net / 2 ** s) % 256).join('.');
  return `${dotted}/${prefix}`;
}

function validatePort(n: number, what: string): void {
  if (!Number.isInteger(n) || n < 1 || n > 65535) throw new CalicoCompileError(`${what}: port ${n} is not in 1-65535`);
}

/**
 * Destination-port matches (`-p tcp -m tcp --dport 80`, `-m multiport --dports …`): one per protocol,
 * split further only when multiport's 15-slot limit forces it. `['']` matches every packet; `[]` none.
 */
export function renderPorts(ports: PortMatch[] | 'all', what: string): string[] {
  if (ports === 'all') return [''];
  const byProto = new Map<string, { all: boolean; ranges: Array<[number, number]> }>();
  for (const p of ports) {
    const proto = p.protocol.toLowerCase();
    const entry = byProto.get(proto) ?? { all: false, ranges: [] };
    byProto.set(proto, entry);
    if (p.from === undefined) {
      entry.all = true;
      continue;
    }
    const to = p.to ?? p.from;
    validatePort(p.from, what);
    validatePort(to, what);
    if (to < p.from) throw new CalicoCompileError(`${what}: port range ${p.from}-${to} ends before it starts`);
    entry.ranges.push([p.from, to]);
  }
  const out: string[] = [];
  for (const proto of [...byProto.keys()].sort()) {
    const entry = byProto.get(proto)!;
    if (entry.all) {
      out.push(`-p ${proto}`);
      continue;
    }
    const unique = [...new Map(entry.ranges.map((r) => [`${r[0]}:${r[1]}`, r] as const)).values()].sort((a, b) => a[0] - b[0] || a[1] - b[1]);
    const text = (r: [number, number]): string => (r[0] === r[1] ? String(r[0]) : `${r[0]}:${r[1]}`);
    if (unique.length === 1) {
      out.push(`-p ${proto} -m ${proto} --dport ${text(unique[0]!)}`);
      continue;
    }
    let chunk: string[] = [];
    let slots = 0;
    for (const r of unique) {
      const need = r[0] === r[1] ? 1 : 2;
      if (slots + need > MULTIPORT_MAX_SLOTS) {
        out.push(`-p ${proto} -m multiport --dports ${chunk.join(',')}`);
        chunk = [];
        slots = 0;
      }
      chunk.push(text(r));
      slots += need;
    }
    out.push(`-p ${proto} -m multiport --dports ${chunk.join(',')}`);
  }
  return out;
}

/** Collects ipsets by content so identical member lists share one set. */
class IpsetTable {
  readonly byName = new Map<string, string[]>();
  private readonly byKey = new Map<string, string>();

  setFor(entries: readonly string[]): string {
    const members = [...new Set(entries)].sort();
    const key = members.join(',');
    let name = this.byKey.get(key);
    if (name === undefined) {
      name = ipsetName(members);
      if (name.length > MAX_IPSET_NAME) throw new CalicoCompileError(`ipset name "${name}" is longer than ${MAX_IPSET_NAME} characters`);
      this.byKey.set(key, name);
      this.byName.set(name, members);
    }
    return name;
  }
}

/** The address half of a policy rule, or undefined when the peer cannot match IPv4 traffic. */
function renderPeer(peer: PeerMatch, dir: 'src' | 'dst', ipsets: IpsetTable, what: string): string | undefined {
  switch (peer.kind) {
    case 'any':
      return '';
    case 'pods': {
      const ips: string[] = [];
      for (const pod of peer.pods) {
        const net = pod.ip ? ipv4Net(pod.ip, `${what}: pod ${pod.namespace}/${pod.name}`) : undefined;
        if (net) ips.push(net.slice(0, -3)); // plain address: hash:net stores it as a /32
      }
      // An empty set still costs a rule evaluation, as Felix's set for a selector matching nothing does.
      return `-m set --match-set ${ipsets.setFor(ips)} ${dir}`;
    }
    case 'cidr': {
      const net = ipv4Net(peer.cidr, `${what}: ipBlock`);
      if (net === undefined) return undefined; // an IPv6 block never matches IPv4 packets
      const flag = dir === 'src' ? '-s' : '-d';
      const except = peer.except.map((e) => ipv4Net(e, `${what}: ipBlock except`)).filter((e): e is string => e !== undefined);
      if (except.length === 0) return `${flag} ${net}`;
      if (except.some((e) => e.endsWith('/0'))) throw new CalicoCompileError(`${what}: ipBlock except may not be a /0 (${peer.except.join(', ')})`);
      // except as a negated set match inside the same rule: an excepted address is not matched by this
      // peer, yet a later peer or rule of the policy can still allow it (a RETURN would end the policy).
      return `${flag} ${net} -m set ! --match-set ${ipsets.setFor(except)} ${dir}`;
    }
  }
}

/** Rule lines of a policy chain without the `-A <chain> ` head, so one body can serve several names. */
function renderPolicyBody(policy: ResolvedPolicy, direction: 'ingress' | 'egress', ipsets: IpsetTable): string[] {
  const dir = direction === 'ingress' ? 'src' : 'dst';
  const body: string[] = [];
  policy.rules.forEach((rule: ResolvedRule, i: number) => {
    const what = `policy ${policy.policy} ${direction} rule ${i}`;
    const ports = renderPorts(rule.ports, what);
    const peers = rule.peers.map((p) => renderPeer(p, dir, ipsets, what)).filter((p): p is string => p !== undefined);
    if (ports.length === 0 || peers.length === 0) return; // matches nothing
    for (const peer of peers) {
      for (const port of ports) body.push([peer, port, SET_ACCEPT].filter(Boolean).join(' '));
    }
    body.push(`${IF_ACCEPT} -j RETURN`);
  });
  return body;
}

interface PolicyChain {
  name: string;
  body: string[];
}

/** Shares one chain per policy; a policy that resolved differently for two endpoints gets two. */
class PolicyChains {
  readonly ordered: PolicyChain[] = [];
  private readonly byName = new Map<string, PolicyChain>();
  private readonly rendered = new WeakMap<ResolvedPolicy, string[]>();
  private readonly names = new Map<string, string>();

  constructor(
    private readonly direction: 'ingress' | 'egress',
    private readonly ipsets: IpsetTable,
  ) {}

  chainFor(policy: ResolvedPolicy): string {
    let body = this.rendered.get(policy);
    if (body === undefined) {
      body = renderPolicyBody(policy, this.direction, this.ipsets);
      this.rendered.set(policy, body);
    }
    let name = this.names.get(policy.policy);
    if (name === undefined) {
      name = policyChainName(this.direction, policy.policy);
      this.names.set(policy.policy, name);
    }
    const existing = this.byName.get(name);
    if (existing && existing.body !== body && existing.body.join('\n') !== body.join('\n')) {
      name = policyChainName(this.direction, `${policy.policy}\n${body.join('\n')}`);
    }
    if (!this.byName.has(name)) {
      validateChainName(name);
      const chain = { name, body };
      this.byName.set(name, chain);
      this.ordered.push(chain);
    }
    return name;
  }
}

function endpointChain(name: string, direction: EndpointDirection, policies: PolicyChains, out: string[]): void {
  const add = (rule: string): void => {
    out.push(`-A ${name} ${rule}`);
  };
  // Established/related packets never see policy: this is why only a connection's first packet pays.
  add('-m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT');
  add('-m conntrack --ctstate INVALID -j DROP');
  add(CLEAR_VERDICT);
  if (!direction.isolated) {
    // No policy selects this direction: allowed, as Kubernetes says. Felix gets there through the
    // namespace profile, which sets the accept mark and returns; a plain ACCEPT here would skip the
    // other endpoint's chain when both pods live on this node.
    add(`-m comment --comment "No policy selects endpoint: allow" ${SET_ACCEPT}`);
    add(`-m comment --comment "Return if profile accepted" ${IF_ACCEPT} -j RETURN`);
    return;
  }
  add(`-m comment --comment "Start of tier default" ${CLEAR_PASS}`);
  for (const policy of direction.policies) {
    add(`${IF_NOT_PASS} -j ${policies.chainFor(policy)}`);
    add(`-m comment --comment "Return if policy accepted" ${IF_ACCEPT} -j RETURN`);
  }
  add(`-m comment --comment "Drop if no policies passed packet" ${IF_NOT_PASS} -j DROP`);
}

/**
 * Compiles the cali-* filter chains and ipsets of one node from the endpoint policies of its pods.
 * Endpoints on other nodes and hostNetwork pods (no workload interface) are ignored.
 */
export function compilePre328Node(node: string, endpoints: EndpointPolicy[], ifaceOf: (pod: PodInfo) => string): CalicoNodeRules {
  const local = endpoints
    .filter((e) => e.pod.node === node && !e.pod.hostNetwork)
    .map((e) => ({ endpoint: e, iface: ifaceOf(e.pod) }));
  const seen = new Map<string, string>();
  for (const { endpoint, iface } of local) {
    const pod = `${endpoint.pod.namespace}/${endpoint.pod.name}`;
    validateIfaceName(iface, pod);
    const other = seen.get(iface);
    if (other !== undefined) throw new CalicoCompileError(`pods ${other} and ${pod} on node ${node} share interface ${iface}`);
    seen.set(iface, pod);
  }
  local.sort((a, b) => (a.iface < b.iface ? -1 : a.iface > b.iface ? 1 : 0));

  const ipsets = new IpsetTable();
  const ingress = new PolicyChains('ingress', ipsets);
  const egress = new PolicyChains('egress', ipsets);

  const endpointRules: string[] = [];
  const endpointChains: string[] = [];
  const fromDispatch: string[] = [];
  const toDispatch: string[] = [];
  for (const { endpoint, iface } of local) {
    const tw = `cali-tw-${iface}`;
    const fw = `cali-fw-${iface}`;
    // goto, as Felix does: the endpoint chain's RETURN lands back in cali-FORWARD.
    toDispatch.push(`-A ${CHAIN_TO_WL_DISPATCH} -o ${iface} -g ${tw}`);
    fromDispatch.push(`-A ${CHAIN_FROM_WL_DISPATCH} -i ${iface} -g ${fw}`);
    endpointChains.push(tw, fw);
    endpointChain(tw, endpoint.ingress, ingress, endpointRules);
    endpointChain(fw, endpoint.egress, egress, endpointRules);
  }

  const forwardHook = `-I FORWARD 1 -m comment --comment "cali:forward-hook" -j ${CHAIN_FORWARD}`;
  const prefix = `${WORKLOAD_IFACE_PREFIX}+`;
  const forwardRules = [
    `-A ${CHAIN_FORWARD} ${CLEAR_VERDICT}`,
    `-A ${CHAIN_FORWARD} -i ${prefix} -j ${CHAIN_FROM_WL_DISPATCH}`,
    `-A ${CHAIN_FORWARD} -o ${prefix} -j ${CHAIN_TO_WL_DISPATCH}`,
    `-A ${CHAIN_FORWARD} -m comment --comment "Policy explicitly accepted packet." ${IF_ACCEPT} -j ACCEPT`,
  ];
  // Workload interfaces without an endpoint here fall through to FORWARD's own policy; Felix drops
  // them as "Unknown interface", but in the model such a pod is simply not managed by this compile.

  const policyChains = [...ingress.ordered, ...egress.ordered];
  const chains = [CHAIN_FORWARD, CHAIN_FROM_WL_DISPATCH, CHAIN_TO_WL_DISPATCH, ...endpointChains, ...policyChains.map((c) => c.name)];

  const lines: string[] = ['*filter'];
  for (const c of chains) lines.push(`:${c} - [0:0]`); // with --noflush, declaring a chain flushes it
  lines.push(forwardHook, ...forwardRules, ...fromDispatch, ...toDispatch, ...endpointRules);
  let policyRuleCount = 0;
  for (const chain of policyChains) {
    const head = `-A ${chain.name} `;
    for (const rule of chain.body) lines.push(head + rule);
    policyRuleCount += chain.body.length;
  }
  lines.push('COMMIT', '');

  const setNames = [...ipsets.byName.keys()].sort();
  const setLines: string[] = [];
  let members = 0;
  // Most selector sets hold a handful of members; the kernel's default 1024-bucket table makes creating
  // thousands of them slow (it grows on demand, so a small start costs nothing later): 5000 sets restore in
  // 0.3 s instead of 0.8 s here. Creates first, then adds, so the file reads as Felix's would.
  for (const name of setNames) setLines.push(`create ${name} hash:net family inet hashsize 64 -exist`);
  for (const name of setNames) {
    for (const m of ipsets.byName.get(name)!) setLines.push(`add ${name} ${m} -exist`);
    members += ipsets.byName.get(name)!.length;
  }
  setLines.push('');

  return {
    node,
    ipsetRestore: setLines.join('\n'),
    iptablesRestore: lines.join('\n'),
    forwardHook,
    chains,
    ipsets: setNames,
    counts: {
      rules: 1 + forwardRules.length + fromDispatch.length + toDispatch.length + endpointRules.length + policyRuleCount,
      chains: chains.length,
      ipsets: setNames.length,
      ipsetMembers: members,
    },
  };
}
