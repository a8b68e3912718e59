// Calico-eBPF-style data plane model, the pure part: compiles each local endpoint's resolved policies into BPF
// policy programs the way Felix's polprog builder does (projectcalico/calico felix/bpf/polprog), and the IP sets
// they look up into entries of one LPM trie keyed like Felix's (felix/bpf/ipsets):
//
//   header: r6 = ctx, r9 = &state (per-CPU map, filled by the fixed tc program from the packet)
//   for each policy of the default tier, for each rule (rules.ts): match criteria → [rule-id record] → "allow"
//   end of tier: "deny"   allow/deny: write state->pol_rc and tail-call the fixed allow/deny program
//
// The verifier caps the jumps on one path (8192) and Felix counts every jump-class instruction — conditional and
// unconditional jumps, calls, exits — against 8192 − 200 headroom: at the start of a rule whose count has reached
// that, the program tail-calls the next sub-program of its chain (maybeSplitProgram). A jump's offset is 16 bits,
// so every ~32667 instructions a trampoline relays the jumps still pointing ahead (asm.ts). Felix keeps at most
// MaxSubPrograms = 24 programs per chain: a chain that needs more is loaded with its first 24 live and the 24th's
// tail call to the next one failing, so a packet no live rule allows is dropped (recorded as an overflow).
import { createHash } from 'node:crypto';
import type { EndpointDirection, EndpointPolicy, PodInfo } from '../../../policy/types.js';
import { Block, encodeInsns, HELPER_MAP_LOOKUP_ELEM, HELPER_TAIL_CALL, JEQ, MAP_JUMP_POLICY, MAP_JUMP_STATIC, MAP_STATE, R0, R1, R10, R2, R3, R6, R9, TRAMPOLINE_INTERVAL, type SymInsn } from './asm.js';
import { MAX_JUMPS_PER_PROGRAM, MAX_PROGRAMS_PER_CHAIN, OFF_STATE_KEY, POL_ALLOW, POL_DENY, ST_POL_RC, STATIC_ALLOW, STATIC_DENY, TC_ACT_SHOT } from './layout.js';
import { IpSetTable, policyRules, writeRule, type IpSet } from './rules.js';

export { MAX_JUMPS_PER_PROGRAM, MAX_PROGRAMS_PER_CHAIN } from './layout.js';
export type { IpSet } from './rules.js';

/** Felix's state.PolicyTailCallFailed, written when the tail call to "allow" fails. */
const POL_TAIL_CALL_FAILED = 10;

export interface CompileOptions {
  /**
   * Felix's BPFPolicyDebugEnabled (default true, felix/config/config_params.go): every rule that matches records
   * its id in the state before jumping to its action — 11 more instructions and 1 more jump per rule.
   */
  policyDebug: boolean;
}

export const DEFAULT_COMPILE_OPTIONS: CompileOptions = { policyDebug: true };

/** One endpoint-direction's policy as a chain of programs (empty when no policy selects that direction). */
export interface PolicyChain {
  pod: string;
  direction: 'ingress' | 'egress';
  /**
   * The live programs (at most MAX_PROGRAMS_PER_CHAIN); program k > 0 is reached by tail call from program k−1
   * (placeholder subProgram: k). With an overflow the last one's tail call names sub-program MAX_PROGRAMS_PER_CHAIN.
   */
  programs: SymInsn[][];
  /** Content hash of the whole chain (independent of where it is placed in the jump map): changed ⇔ must reload. */
  hash: string;
  policies: number;
  /** Rules a packet walks when none allows it (all of them). */
  rules: number;
  /** Set when the chain needs more programs than Felix keeps: the rules past the live programs are never reached. */
  overflow?: { programsNeeded: number; rulesLive: number };
}

export interface CalicoEbpfEndpoint {
  pod: string;
  podInfo: PodInfo;
  ingress: PolicyChain | undefined;
  egress: PolicyChain | undefined;
}

export interface CalicoEbpfCounts {
  endpoints: number;
  programs: number;
  instructions: number;
  ipSets: number;
  ipSetEntries: number;
  maxProgramsPerChain: number;
  maxRulesPerChain: number;
  /** Rules walked per policy on the endpoint-direction with the most policies (0 without policies). */
  rulesTraversedPerPolicy: number;
}

/** An endpoint-direction whose chain did not fit: what it needed and what is live. */
export interface ChainOverflow {
  pod: string;
  direction: 'ingress' | 'egress';
  rules: number;
  rulesLive: number;
  programsNeeded: number;
}

export interface CalicoEbpfNode {
  node: string;
  endpoints: CalicoEbpfEndpoint[];
  sets: Map<string, IpSet>;
  counts: CalicoEbpfCounts;
  overflows: ChainOverflow[];
}

const SHARED_LABELS = new Set(['allow', 'deny', 'exit']);

/** Felix's writeProgramHeader; a sub-program then reads and resets the trampoline index its caller left in pol_rc. */
function writeHeader(b: Block, sub: boolean): void {
  b.mov64(R6, R1);
  b.movImm64(R1, 0).store32(R10, R1, OFF_STATE_KEY);
  b.mov64(R2, R10).addImm64(R2, OFF_STATE_KEY);
  b.loadMapFd(R1, MAP_STATE).call(HELPER_MAP_LOOKUP_ELEM);
  b.jumpImm(JEQ, R0, 0, 'exit');
  b.mov64(R9, R0);
  // A split at a rule boundary leaves no dangling labels, so no trampoline jumps follow (maybeSplitProgram).
  if (sub) b.load32(R0, R9, ST_POL_RC).movImm32(R1, 0).store32(R9, R1, ST_POL_RC);
}

function writeTailCall(b: Block, map: number, index: number | { subProgram: number }): void {
  b.mov64(R1, R6).loadMapFd(R2, map);
  if (typeof index === 'number') b.movImm32(R3, index);
  else b.movSubProgramIndex(R3, index.subProgram);
  b.call(HELPER_TAIL_CALL);
}

/** exit, then allow where a rule jumps to it (the verifier rejects unreachable code; Felix's assembler drops it). */
function writeExitAndAllow(b: Block): void {
  b.label('exit');
  b.movImm64(R0, TC_ACT_SHOT).exit();
  if (b.insns.some((i) => i.target === 'allow')) {
    b.label('allow');
    b.movImm32(R1, POL_ALLOW).store32(R9, R1, ST_POL_RC);
    writeTailCall(b, MAP_JUMP_STATIC, STATIC_ALLOW);
    b.movImm32(R1, POL_TAIL_CALL_FAILED).store32(R9, R1, ST_POL_RC);
    b.movImm64(R0, TC_ACT_SHOT).exit(); // tail call failed: fail closed
  }
}

/** The end of the last program: falling off the last rule is the end of the tier, "deny". */
function writeFooter(b: Block): void {
  b.label('deny');
  b.movImm32(R1, POL_DENY).store32(R9, R1, ST_POL_RC);
  writeTailCall(b, MAP_JUMP_STATIC, STATIC_DENY);
  writeExitAndAllow(b);
}

/** Felix's split at a rule boundary: the walk goes on in sub-program `next`; a failed tail call drops the packet. */
function writeSplit(b: Block, next: number): void {
  b.movImm64(R0, 0).jump('next-program');
  writeExitAndAllow(b);
  b.label('next-program');
  b.store32(R9, R0, ST_POL_RC);
  writeTailCall(b, MAP_JUMP_POLICY, { subProgram: next });
  b.movImm64(R0, TC_ACT_SHOT).exit();
}

/** Instructions a footer or split adds at most: a trampoline goes in first when they would cross the interval. */
const FOOTER_INSNS = 40;

function maybeTrampoline(b: Block, next: number): void {
  if (b.insns.length + next - b.lastTrampoline > TRAMPOLINE_INTERVAL) b.writeTrampoline();
}

function chainFor(pod: string, dir: EndpointDirection, direction: 'ingress' | 'egress', sets: IpSetTable, opts: CompileOptions): PolicyChain | undefined {
  if (!dir.isolated) return undefined;
  const ingress = direction === 'ingress';
  const blocks: Block[] = [];
  const rulesIn: number[] = [];
  let b = new Block();
  writeHeader(b, false);
  let inProgram = 0;
  let rules = 0;
  let n = 0;
  for (const policy of dir.policies) {
    for (const spec of policyRules(policy, direction, sets)) {
      // maybeSplitProgram, at the start of each rule: split once the jumps written reach the limit.
      if (b.jumps >= MAX_JUMPS_PER_PROGRAM) {
        maybeTrampoline(b, FOOTER_INSNS);
        writeSplit(b, blocks.length + 1);
        blocks.push(b);
        rulesIn.push(inProgram);
        b = new Block();
        writeHeader(b, true);
        inProgram = 0;
      }
      const r = new Block();
      writeRule(r, spec, ingress, opts.policyDebug);
      maybeTrampoline(b, r.insns.length);
      b.append(r, `r${n++}_`, SHARED_LABELS);
      rules++;
      inProgram++;
    }
  }
  maybeTrampoline(b, FOOTER_INSNS);
  writeFooter(b);
  blocks.push(b);
  rulesIn.push(inProgram);
  const programs = blocks.map((blk) => blk.assemble());
  // Over the encoding with sub-programs numbered 0..n-1: the same code wherever the chain is placed.
  const h = createHash('sha256');
  for (const p of programs) h.update(encodeInsns(p, (k) => k)).update('|');
  const hash = h.digest('hex').slice(0, 20);
  const chain: PolicyChain = { pod, direction, programs, hash, policies: dir.policies.length, rules };
  if (programs.length <= MAX_PROGRAMS_PER_CHAIN) return chain;
  const rulesLive = rulesIn.slice(0, MAX_PROGRAMS_PER_CHAIN).reduce((s, x) => s + x, 0);
  return { ...chain, programs: programs.slice(0, MAX_PROGRAMS_PER_CHAIN), overflow: { programsNeeded: programs.length, rulesLive } };
}

/**
 * Felix's default-deny policy program (felix/bpf-gpl/policy_default.c calico_tc_deny), which it puts in a new
 * workload's policy jump-map slot when it attaches the tc programs, before the real policy is compiled: the
 * same header and footer as a real chain, with no rule between them.
 */
export function defaultDenyChain(pod: string, direction: 'ingress' | 'egress'): PolicyChain {
  return chainFor(pod, { isolated: true, policies: [] }, direction, new IpSetTable(), DEFAULT_COMPILE_OPTIONS)!;
}

/**
 * Compiles the policy programs and IP sets of one node from the endpoint policies of its pods. Endpoints on
 * other nodes and hostNetwork pods (no workload interface) are ignored.
 */
export function compileCalicoEbpfNode(node: string, endpoints: EndpointPolicy[], opts: CompileOptions = DEFAULT_COMPILE_OPTIONS): CalicoEbpfNode {
  const sets = new IpSetTable();
  const out: CalicoEbpfEndpoint[] = [];
  const local = endpoints.filter((e) => e.pod.node === node && !e.pod.hostNetwork).sort((a, b) => (key(a.pod) < key(b.pod) ? -1 : 1));
  for (const e of local) {
    const pod = key(e.pod);
    out.push({ pod, podInfo: e.pod, ingress: chainFor(pod, e.ingress, 'ingress', sets, opts), egress: chainFor(pod, e.egress, 'egress', sets, opts) });
  }
  const chains = out.flatMap((e) => [e.ingress, e.egress]).filter((c): c is PolicyChain => c !== undefined);
  // Only the sets some program here looks up are written to this node's map.
  const widest = chains.reduce<PolicyChain | undefined>((w, c) => (!w || c.policies > w.policies ? c : w), undefined);
  const setList = [...sets.sets.values()];
  return {
    node,
    endpoints: out,
    sets: sets.sets,
    counts: {
      endpoints: out.length,
      programs: chains.reduce((s, c) => s + c.programs.length, 0),
      instructions: chains.reduce((s, c) => s + c.programs.reduce((t, p) => t + p.length, 0), 0),
      ipSets: setList.length,
      ipSetEntries: setList.reduce((s, x) => s + x.members.length, 0),
      maxProgramsPerChain: chains.reduce((m, c) => Math.max(m, c.programs.length), 0),
      maxRulesPerChain: chains.reduce((m, c) => Math.max(m, c.rules), 0),
      rulesTraversedPerPolicy: widest && widest.policies > 0 ? Math.round((widest.rules / widest.policies) * 100) / 100 : 0,
    },
    overflows: chains.flatMap((c) => (c.overflow ? [{ pod: c.pod, direction: c.direction, rules: c.rules, rulesLive: c.overflow.rulesLive, programsNeeded: c.overflow.programsNeeded }] : [])),
  };
}

function key(p: Pick<PodInfo, 'namespace' | 'name'>): string {
  return `${p.namespace}/${p.name}`;
}
