// kube-proxy's chain names, hashed as upstream hashes them, so the rules read like a real node's.
import { createHash } from 'node:crypto';

/** RFC 4648 base32 (Go's base32.StdEncoding) of a byte string. */
export function base32(bytes: Uint8Array): string {
  const alphabet = 'ABCDEFGHIJKLMNOPQRSTUVWXYZ234567';
  let out = '';
  let bits = 0;
  let value = 0;
  for (const b of bytes) {
    value = (value << 8) | b;
    bits += 8;
    while (bits >= 5) {
      out += alphabet[(value >>> (bits - 5)) & 31];
      bits -= 5;
    }
  }
  if (bits > 0) out += alphabet[(value << (5 - bits)) & 31];
  while (out.length % 8 !== 0) out += '=';
  return out;
}

const sha256 = (s: string): Uint8Array => createHash('sha256').update(s).digest();

/** pkg/proxy/iptables/proxier.go portProtoHash: base32(sha256(servicePortName + protocol))[:16]. */
export function portProtoHash(servicePortName: string, protocol: string): string {
  return base32(sha256(servicePortName + protocol)).slice(0, 16);
}

/** KUBE-SVC-<hash>: the Service port's "Cluster" traffic-policy chain (servicePortPolicyClusterChain). */
export function kubeSvcChain(servicePortName: string, protocol: string): string {
  return `KUBE-SVC-${portProtoHash(servicePortName, protocol)}`;
}

/** KUBE-SEP-<hash>: one endpoint's DNAT chain (servicePortEndpointChainName; endpoint is "ip:port"). */
export function kubeSepChain(servicePortName: string, protocol: string, endpoint: string): string {
  return `KUBE-SEP-${base32(sha256(servicePortName + protocol + endpoint)).slice(0, 16)}`;
}

/** nftables: knftables.NameLengthMax (256) minus the longest prefix (16). */
const NFT_CHAIN_BASE_MAX = 256 - 16;

/** pkg/proxy/nftables/proxier.go hashAndTruncate: an 8-character hash of the name, then the name itself. */
export function hashAndTruncate(name: string): string {
  let out = `${base32(sha256(name)).slice(0, 8)}-${name}`;
  if (out.length > NFT_CHAIN_BASE_MAX) out = out.slice(0, NFT_CHAIN_BASE_MAX - 3) + '...';
  return out;
}

/** servicePortChainNameBase: "HASH-namespace/name/protocol/portName". */
export function nftServiceChainBase(ns: string, name: string, protocol: string, portName: string): string {
  return hashAndTruncate(`${ns}/${name}/${protocol}/${portName}`);
}

/** servicePortEndpointChainNameBase: "HASH-namespace/name/protocol/portName__ip/port". */
export function nftEndpointChainBase(ns: string, name: string, protocol: string, portName: string, ip: string, port: number): string {
  return hashAndTruncate(`${ns}/${name}/${protocol}/${portName}__${ip}/${port}`);
}
