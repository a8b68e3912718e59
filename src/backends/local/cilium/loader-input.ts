// What the BPF loader (cb-bpf.c) is handed: the `fill` input, the complete desired state one entry per line, and
// the `delta` input, the lines that turn one realized state into the next (an incremental update). Pure.
import { policyEntryKey, type CiliumEndpoint, type CiliumState, type PolicyMapEntry } from './compile.js';

const policyLine = (endpointId: number, p: PolicyMapEntry): string =>
  `policy ${endpointId} ${p.identity} ${p.direction} ${p.protocol} ${p.port} ${p.portPrefixBits}`;

/** The loader's `fill` input (see cb-bpf.c): the complete desired state, one entry per line. */
export function renderFillInput(state: CiliumState): string {
  const lines: string[] = [];
  for (const e of state.ipcache) lines.push(`ipcache ${e.prefix} ${e.identity}`);
  for (const e of state.endpoints) lines.push(`endpoint ${e.ifindex} ${e.endpointId} ${e.ingressEnforced ? 1 : 0} ${e.egressEnforced ? 1 : 0}`);
  for (const m of state.policyMaps) {
    for (const p of m.entries) lines.push(policyLine(m.endpointId, p) + (p.deny ? ' deny' : ''));
  }
  return lines.join('\n') + '\n';
}

export interface CiliumDelta {
  lines: string[];
  counts: { policyAdded: number; policyDeleted: number; ipcacheAdded: number; ipcacheDeleted: number; endpointsAdded: number; endpointsDeleted: number; endpointsTouched: number };
}

/**
 * The difference between two realized states as delta lines: ipcache entries by prefix, endpoints by ifindex,
 * policy entries by (endpoint, key). A changed value is an add (BPF_ANY replaces it).
 */
export function diffCiliumState(prev: CiliumState, next: CiliumState): CiliumDelta {
  const lines: string[] = [];
  const counts = { policyAdded: 0, policyDeleted: 0, ipcacheAdded: 0, ipcacheDeleted: 0, endpointsAdded: 0, endpointsDeleted: 0, endpointsTouched: 0 };
  const prevIpc = new Map(prev.ipcache.map((e) => [e.prefix, e.identity]));
  const nextIpc = new Map(next.ipcache.map((e) => [e.prefix, e.identity]));
  for (const [prefix, id] of nextIpc) {
    if (prevIpc.get(prefix) !== id) {
      lines.push(`+ipcache ${prefix} ${id}`);
      counts.ipcacheAdded++;
    }
  }
  for (const prefix of prevIpc.keys()) {
    if (!nextIpc.has(prefix)) {
      lines.push(`-ipcache ${prefix}`);
      counts.ipcacheDeleted++;
    }
  }
  const epLine = (e: CiliumEndpoint): string => `endpoint ${e.ifindex} ${e.endpointId} ${e.ingressEnforced ? 1 : 0} ${e.egressEnforced ? 1 : 0}`;
  const prevEps = new Map(prev.endpoints.map((e) => [e.ifindex, e]));
  const nextEps = new Map(next.endpoints.map((e) => [e.ifindex, e]));
  for (const [ifindex, e] of nextEps) {
    const p = prevEps.get(ifindex);
    if (!p || epLine(p) !== epLine(e)) {
      lines.push(`+${epLine(e)}`);
      counts.endpointsAdded++;
    }
  }
  for (const [ifindex, e] of prevEps) {
    if (!nextEps.has(ifindex)) {
      lines.push(`-endpoint ${ifindex} ${e.endpointId}`);
      counts.endpointsDeleted++;
    }
  }
  const prevMaps = new Map(prev.policyMaps.map((m) => [m.endpointId, m]));
  const nextIds = new Set(next.policyMaps.map((m) => m.endpointId));
  for (const m of next.policyMaps) {
    const before = new Map((prevMaps.get(m.endpointId)?.entries ?? []).map((e) => [policyEntryKey(e), e]));
    const after = new Set<string>();
    let touched = false;
    for (const e of m.entries) {
      const k = policyEntryKey(e);
      after.add(k);
      const b = before.get(k);
      if (!b || Boolean(b.deny) !== Boolean(e.deny)) {
        lines.push(`+${policyLine(m.endpointId, e)}${e.deny ? ' deny' : ''}`);
        counts.policyAdded++;
        touched = true;
      }
    }
    for (const [k, e] of before) {
      if (!after.has(k)) {
        lines.push(`-${policyLine(m.endpointId, e)}`);
        counts.policyDeleted++;
        touched = true;
      }
    }
    if (touched) counts.endpointsTouched++;
  }
  // Endpoints that left: their maps go with '-endpoint'; entries of a map without an endpoint line are deleted.
  for (const m of prev.policyMaps) {
    if (nextIds.has(m.endpointId) || prev.endpoints.some((e) => e.endpointId === m.endpointId)) continue;
    for (const e of m.entries) {
      lines.push(`-${policyLine(m.endpointId, e)}`);
      counts.policyDeleted++;
    }
  }
  return { lines, counts };
}
