// A capacity overflow, whatever the data plane: an endpoint whose policy does not fit (Cilium's policy map,
// Calico-eBPF's chain of 24 programs) does not fail the run, because the real agent does not fail the pod
// either: it keeps running with part of its policy (a stale or locked-down map; the first 24 programs live).
// A model records the overflow in its state under these keys; the local backend then probes the client and adds
// what it got; the run summary, --dry-run, verify's notes and the report's advice read it from here.

type State = Readonly<Record<string, number | string | boolean>>;

export const OVERFLOW_KEYS = {
  /** Endpoints (or endpoint-directions) over capacity; 0 when none. */
  endpoints: 'capacityOverflowEndpoints',
  /** Which endpoint, what it needs, what is live. */
  summary: 'capacityOverflow',
  /** What the data plane does with the endpoint now, and the fix (the model knows both). */
  advice: 'capacityOverflowAdvice',
  /** Written by the backend after probing: allowed | partly allowed | denied. */
  clientVerdict: 'overflowClientVerdict',
} as const;

export interface CapacityOverflow {
  endpoints: number;
  summary: string;
  advice?: string;
  clientVerdict?: string;
}

/** The state keys of an overflow (none but the count when nothing overflowed). */
export function overflowState(o: { endpoints: number; summary?: string; advice?: string }): Record<string, number | string> {
  return {
    [OVERFLOW_KEYS.endpoints]: o.endpoints,
    ...(o.endpoints > 0 && o.summary ? { [OVERFLOW_KEYS.summary]: o.summary } : {}),
    ...(o.endpoints > 0 && o.advice ? { [OVERFLOW_KEYS.advice]: o.advice } : {}),
  };
}

/** The overflow a model state records, if any (results written before these keys: Cilium's policyMapOverflow). */
export function capacityOverflowOf(state: State | null | undefined): CapacityOverflow | undefined {
  if (!state) return undefined;
  const summary = state[OVERFLOW_KEYS.summary] ?? state.policyMapOverflow;
  if (typeof summary !== 'string') return undefined;
  const endpoints = Number(state[OVERFLOW_KEYS.endpoints] ?? state.policyMapOverflowEndpoints ?? 1);
  const advice = state[OVERFLOW_KEYS.advice];
  const verdict = state[OVERFLOW_KEYS.clientVerdict];
  return { endpoints, summary, ...(typeof advice === 'string' ? { advice } : {}), ...(typeof verdict === 'string' ? { clientVerdict: verdict } : {}) };
}

/** How many endpoints a state says are over capacity (0 when it says nothing). */
export function overflowEndpoints(state: State): number {
  return Number(state[OVERFLOW_KEYS.endpoints] ?? state.policyMapOverflowEndpoints ?? 0);
}
