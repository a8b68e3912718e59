// What Cilium 1.18 leaves in an endpoint's policy map when its desired map does not fit (pkg/endpoint/bpf.go
// syncPolicyMap): by default the map keeps what it held (stale), with --enable-endpoint-lockdown-on-policy-overflow
// it is replaced by deny-all entries. Pure: desired state in, realized state out.
import { agentEntries, ANY_IDENTITY, PROTOCOL_NUMBER, type CiliumState, type PolicyMapEntry, type PolicyMapOverflow } from './compile.js';

/**
 * The endpoint lockdown map (pkg/endpoint/bpf.go endpointPolicyLockdown, allTrafficKeys): a deny entry for
 * every L4 protocol of policy api SupportedProtocols (TCP, UDP, SCTP) in both directions, identity 0, all ports;
 * every other entry is deleted.
 */
export function lockdownEntries(): PolicyMapEntry[] {
  const out: PolicyMapEntry[] = [];
  for (const protocol of [PROTOCOL_NUMBER.TCP, PROTOCOL_NUMBER.UDP, PROTOCOL_NUMBER.SCTP]) {
    for (const direction of ['ingress', 'egress'] as const) out.push({ identity: ANY_IDENTITY, direction, protocol, port: 0, portPrefixBits: 0, deny: true });
  }
  return out;
}

export interface RealizedOverflow extends PolicyMapOverflow {
  /** 'stale': the map sync was skipped and the map keeps what it held; 'lockdown': deny-all entries only. */
  outcome: 'stale' | 'lockdown';
  /** Entries the endpoint's map holds after the change. */
  realizedEntries: number;
}

/**
 * Turns the desired per-endpoint maps into what the agent realizes. An endpoint whose desired map exceeds the
 * capacity is handled as pkg/endpoint/bpf.go syncPolicyMap does (Cilium 1.18): shouldLockdownLocked is true,
 * and startLockdownLocked returns without writing anything unless --enable-endpoint-lockdown-on-policy-overflow
 * (default false) is set, in which case the map is replaced by the lockdown deny entries. Regeneration does not
 * fail and the pod keeps running either way. `previous` is the map each endpoint held before; an endpoint that
 * had none held the no-policy state Cilium writes for a pod that no policy selects (agentEntries(false, false)),
 * which is what a pod created before its policies holds.
 */
export function realizeOverflow(
  state: CiliumState,
  opts: { lockdown: boolean; previous?: Map<string, PolicyMapEntry[]> },
): { state: CiliumState; overflows: RealizedOverflow[] } {
  const overflows: RealizedOverflow[] = [];
  const policyMaps = state.policyMaps.map((m) => {
    const o = state.overflows.find((x) => x.endpointId === m.endpointId);
    if (!o) return m;
    // A map created for a new endpoint that never synced is empty: it denies everything.
    const entries = opts.lockdown ? lockdownEntries() : opts.previous ? (opts.previous.get(m.pod) ?? []) : agentEntries(false, false);
    overflows.push({ ...o, outcome: opts.lockdown ? 'lockdown' : 'stale', realizedEntries: entries.length });
    return { ...m, entries };
  });
  return { state: { ...state, policyMaps }, overflows };
}

export function overflowSummary(o: RealizedOverflow): string {
  const what =
    o.outcome === 'lockdown'
      ? 'endpoint locked down (deny-all entries, --enable-endpoint-lockdown-on-policy-overflow)'
      : `map sync skipped, the map keeps the ${o.realizedEntries} entries it held before (stale; Cilium 1.18 default)`;
  return `${o.pod} needs ${o.needed} policy-map entries, capacity ${o.capacity}: ${what}`;
}
