// What the generated policy programs share with the fixed C part (bpf/calico_ebpf.bpf.c) and with Felix's
// limits: the per-CPU state's field offsets, the stack frame, the IP set key, the jump-map conventions, and the
// sizes Felix caps a chain at. One place, so the compiler, the interpreter and the installer cannot disagree.

/** Felix: verifierMaxJumpsLimit (8192) − maxJumpsHeadroom (200) (felix/bpf/polprog/pol_prog_builder.go). */
export const MAX_JUMPS_PER_PROGRAM = 8192 - 200;
/**
 * Felix's MaxSubPrograms (felix/bpf/jump/map.go): a chain holds at most 24 programs; "BPF allows a maximum of 32
 * tail calls ... but we reserve some for our own use". Program 24 would sit beyond the jump map, so the last
 * live program's tail call to it fails.
 */
export const MAX_PROGRAMS_PER_CHAIN = 24;
/** Rule ids one walk records with policy debug on (felix/bpf/state/map.go MaxRuleIDs). */
export const MAX_RULE_IDS = 32;

// struct cali_state offsets.
export const ST_IP_SRC = 0;
export const ST_IP_DST = 4;
export const ST_SPORT = 8;
export const ST_DPORT = 10;
export const ST_PROTO = 12;
export const ST_POL_RC = 16;
export const ST_RULES_HIT = 32;
export const ST_RULE_IDS = 40;
export const STATE_SIZE = ST_RULE_IDS + 8 * MAX_RULE_IDS;

/** state->pol_rc values (felix/bpf/state: PolicyAllow, PolicyDeny). */
export const POL_ALLOW = 1;
export const POL_DENY = 2;
/** Indexes of the fixed allow and deny programs in the static jump map. */
export const STATIC_ALLOW = 0;
export const STATIC_DENY = 1;
export const TC_ACT_SHOT = 2;

// Stack: the state map key at -4, the IP set key (20 bytes) below it, as Felix lays out its frame.
export const OFF_STATE_KEY = -4;
export const OFF_IPSET_KEY = -36;
// struct ip4_set_key offsets.
export const KEY_PREFIX = 0;
export const KEY_ID = 4;
export const KEY_ADDR = 12;
export const KEY_PORT = 16;
export const KEY_PROTO = 18;
export const KEY_PAD = 19;
/** A lookup key covers id, address, port and protocol: 64 + 32 + 16 + 8 (+ pad) bits, as Felix sets it. */
export const LOOKUP_PREFIXLEN = 128;
