// IPv4 addresses as the 4 bytes a BPF map key holds (network order), for the encoders of the eBPF service maps.
import { BenchError } from '../errors.js';

export function ipv4ToBytes(ip: string): Buffer {
  const parts = ip.split('.').map(Number);
  if (parts.length !== 4 || parts.some((p) => !Number.isInteger(p) || p < 0 || p > 255)) throw new BenchError('internal', `not an IPv4 address: '${ip}'`);
  return Buffer.from(parts);
}
