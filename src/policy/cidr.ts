// IPv4 address and CIDR helpers for ipBlock peers. The local backend is IPv4-only; an IPv6 ipBlock can never
// contain an IPv4 address, so mixed families simply do not match instead of failing.
import { BenchError } from '../errors.js';

export interface Ipv4Cidr {
  /** Network address as an unsigned 32-bit integer (host bits cleared). */
  network: number;
  prefix: number;
  /** First and last address covered, unsigned. */
  first: number;
  last: number;
}

export class CidrError extends BenchError {
  constructor(readonly input: string, reason: string) {
    super('usage', `invalid IPv4 CIDR or address ${JSON.stringify(input)}: ${reason}`);
  }
}

const OCTET = /^(0|[1-9][0-9]{0,2})$/;

/** Dotted-quad to an unsigned 32-bit integer, or undefined when it is not an IPv4 address. */
export function parseIpv4(ip: string): number | undefined {
  const parts = ip.split('.');
  if (parts.length !== 4) return undefined;
  let n = 0;
  for (const part of parts) {
    if (!OCTET.test(part)) return undefined;
    const v = Number(part);
    if (v > 255) return undefined;
    n = n * 256 + v;
  }
  return n;
}

export function formatIpv4(n: number): string {
  return [n >>> 24, (n >>> 16) & 255, (n >>> 8) & 255, n & 255].join('.');
}

export function isIpv6(s: string): boolean {
  return s.includes(':');
}

function maskOf(prefix: number): number {
  return prefix === 0 ? 0 : (0xffffffff << (32 - prefix)) >>> 0;
}

/** Parses `a.b.c.d/len`. Host bits are allowed (Kubernetes accepts them) and cleared. Throws CidrError. */
export function parseCidr(cidr: string): Ipv4Cidr {
  const slash = cidr.indexOf('/');
  if (slash < 0) throw new CidrError(cidr, 'missing "/prefix"');
  const addr = parseIpv4(cidr.slice(0, slash));
  if (addr === undefined) throw new CidrError(cidr, 'address is not dotted-quad IPv4');
  const prefixText = cidr.slice(slash + 1);
  if (!/^(0|[1-9][0-9]?)$/.test(prefixText) || Number(prefixText) > 32) {
    throw new CidrError(cidr, 'prefix length must be 0..32');
  }
  const prefix = Number(prefixText);
  const network = (addr & maskOf(prefix)) >>> 0;
  const last = (network | (~maskOf(prefix) >>> 0)) >>> 0;
  return { network, prefix, first: network, last };
}

/** The canonical text of a CIDR (host bits cleared), e.g. 10.1.2.3/16 -> 10.1.0.0/16. */
export function normalizeCidr(cidr: string): string {
  const c = parseCidr(cidr);
  return `${formatIpv4(c.network)}/${c.prefix}`;
}

/** Is `ip` inside `cidr`? Mixed families (IPv6 CIDR, IPv4 address or the reverse) never match. */
export function cidrContains(cidr: string | Ipv4Cidr, ip: string): boolean {
  if (typeof cidr === 'string' && isIpv6(cidr)) return false;
  if (isIpv6(ip)) return false;
  const c = typeof cidr === 'string' ? parseCidr(cidr) : cidr;
  const a = parseIpv4(ip);
  if (a === undefined) throw new CidrError(ip, 'not an IPv4 address');
  return a >= c.first && a <= c.last;
}

/** ipBlock semantics: inside cidr and outside every except. */
export function ipBlockContains(block: { cidr: string; except?: string[] }, ip: string): boolean {
  if (!cidrContains(block.cidr, ip)) return false;
  return !(block.except ?? []).some((e) => cidrContains(e, ip));
}

/** Is `inner` a strict subset of `outer`? Kubernetes validation requires this of every ipBlock except. */
export function cidrStrictlyWithin(inner: string, outer: string): boolean {
  const i = parseCidr(inner);
  const o = parseCidr(outer);
  return i.prefix > o.prefix && i.first >= o.first && i.last <= o.last;
}
