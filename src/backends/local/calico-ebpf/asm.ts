// A small eBPF assembler: the instructions Felix's polprog builder emits (loads from the state, compares,
// map lookups, tail calls, the rule-id record), with named jump targets resolved per program and Felix's
// trampolines for targets beyond a 16-bit offset (felix/bpf/asm/asm.go). Pure; encoding is struct bpf_insn,
// little-endian, as BPF_PROG_LOAD takes it.
import { BenchError } from '../../../errors.js';

export const R0 = 0;
export const R1 = 1;
export const R2 = 2;
export const R3 = 3;
export const R6 = 6;
export const R9 = 9;
export const R10 = 10;

/** Map references in ld_imm64 (src_reg = BPF_PSEUDO_MAP_FD): the loader swaps the index for the map's fd. */
export const MAP_STATE = 0;
export const MAP_IP_SETS = 1;
export const MAP_JUMP_STATIC = 2;
export const MAP_JUMP_POLICY = 3;

export const HELPER_MAP_LOOKUP_ELEM = 1;
export const HELPER_TAIL_CALL = 12;

// Opcodes (linux/bpf.h, linux/bpf_common.h).
const LD_DW_IMM = 0x18;
const LDX_W = 0x61;
const LDX_H = 0x69;
const LDX_B = 0x71;
const STX_DW = 0x7b;
const STX_W = 0x63;
const STX_H = 0x6b;
const STX_B = 0x73;
const ALU64_MOV_K = 0xb7;
const ALU64_MOV_X = 0xbf;
const ALU64_ADD_K = 0x07;
const ALU64_ADD_X = 0x0f;
const ALU64_LSH_K = 0x67;
const ALU32_MOV_K = 0xb4;
const ALU32_AND_X = 0x5c;
const JA = 0x05;
const CALL = 0x85;
const EXIT = 0x95;
export const JEQ = 0x15;
export const JNE = 0x55;
export const JLT = 0xa5;
export const JLE = 0xb5;
export const JGE = 0x35;
/** BPF_JMP32 | BPF_JEQ | BPF_K: compares the low 32 bits, so an address immediate needs no sign games. */
export const JEQ32 = 0x16;
const PSEUDO_MAP_FD = 1;
/** Instruction classes BPF_JMP and BPF_JMP32: every jump, call and exit, as Felix counts them (Block.NumJumps). */
const CLASS_JMP = 0x05;
const CLASS_JMP32 = 0x06;

export interface Insn {
  code: number;
  dst: number;
  src: number;
  off: number;
  imm: number;
}

/** An instruction before assembly: a jump names its target; a tail call to a sub-program names its number. */
export interface SymInsn extends Insn {
  target?: string;
  /** imm is the policy-jump-map index of sub-program `subProgram` of this chain, filled in at encoding. */
  subProgram?: number;
}

export class AsmError extends BenchError {
  constructor(message: string) {
    super('internal', message);
  }
}

/** Felix's trampolineInterval: math.MaxInt16 − trampolineHeadroom (100). */
export const TRAMPOLINE_INTERVAL = 32_767 - 100;

export function isJumpClass(code: number): boolean {
  const cls = code & 0x07;
  return cls === CLASS_JMP || cls === CLASS_JMP32;
}

/**
 * A straight run of instructions with labels; `jumps` counts every instruction of the jump classes (conditional
 * and unconditional jumps, calls, exits), as Felix's NumJumps does against the verifier's limit.
 */
export class Block {
  readonly insns: SymInsn[] = [];
  readonly labels = new Map<string, number>();
  jumps = 0;
  /** Where the last trampoline starts (0: none yet). */
  lastTrampoline = 0;
  private trampolines = 0;

  private push(code: number, dst: number, src: number, off: number, imm: number, target?: string): this {
    this.insns.push(target === undefined ? { code, dst, src, off, imm } : { code, dst, src, off, imm, target });
    if (isJumpClass(code)) this.jumps++;
    return this;
  }

  label(name: string): this {
    if (this.labels.has(name)) throw new AsmError(`label ${name} defined twice`);
    this.labels.set(name, this.insns.length);
    return this;
  }

  mov64(dst: number, src: number): this {
    return this.push(ALU64_MOV_X, dst, src, 0, 0);
  }
  movImm64(dst: number, imm: number): this {
    return this.push(ALU64_MOV_K, dst, 0, 0, imm | 0);
  }
  movImm32(dst: number, imm: number): this {
    return this.push(ALU32_MOV_K, dst, 0, 0, imm | 0);
  }
  addImm64(dst: number, imm: number): this {
    return this.push(ALU64_ADD_K, dst, 0, 0, imm | 0);
  }
  add64(dst: number, src: number): this {
    return this.push(ALU64_ADD_X, dst, src, 0, 0);
  }
  lshImm64(dst: number, imm: number): this {
    return this.push(ALU64_LSH_K, dst, 0, 0, imm);
  }
  and32(dst: number, src: number): this {
    return this.push(ALU32_AND_X, dst, src, 0, 0);
  }
  load8(dst: number, base: number, off: number): this {
    return this.push(LDX_B, dst, base, off, 0);
  }
  load16(dst: number, base: number, off: number): this {
    return this.push(LDX_H, dst, base, off, 0);
  }
  load32(dst: number, base: number, off: number): this {
    return this.push(LDX_W, dst, base, off, 0);
  }
  store8(base: number, src: number, off: number): this {
    return this.push(STX_B, base, src, off, 0);
  }
  store16(base: number, src: number, off: number): this {
    return this.push(STX_H, base, src, off, 0);
  }
  store32(base: number, src: number, off: number): this {
    return this.push(STX_W, base, src, off, 0);
  }
  store64(base: number, src: number, off: number): this {
    return this.push(STX_DW, base, src, off, 0);
  }
  /** Two instruction slots: ld_imm64 dst, a 64-bit constant given as 16 hex digits. */
  loadImm64(dst: number, hex16: string): this {
    const v = Buffer.from(hex16.padStart(16, '0'), 'hex');
    this.push(LD_DW_IMM, dst, 0, 0, v.readInt32BE(4));
    return this.push(0, 0, 0, 0, v.readInt32BE(0));
  }
  /** Two instruction slots: ld_imm64 dst, map. */
  loadMapFd(dst: number, map: number): this {
    this.push(LD_DW_IMM, dst, PSEUDO_MAP_FD, 0, map);
    return this.push(0, 0, 0, 0, 0);
  }
  jumpImm(code: number, reg: number, imm: number, target: string): this {
    return this.push(code, reg, 0, 0, imm | 0, target);
  }
  jump(target: string): this {
    return this.push(JA, 0, 0, 0, 0, target);
  }
  call(helper: number): this {
    return this.push(CALL, 0, 0, 0, helper);
  }
  exit(): this {
    return this.push(EXIT, 0, 0, 0, 0);
  }
  /** mov r3, <index of sub-program k> (resolved at encoding). */
  movSubProgramIndex(dst: number, k: number): this {
    this.insns.push({ code: ALU64_MOV_K, dst, src: 0, off: 0, imm: 0, subProgram: k });
    return this;
  }

  /**
   * Felix's trampoline (asm.go writeTrampoline): every jump since the last trampoline whose target is not yet
   * placed lands here instead, on a jump to that target, so no offset outgrows 16 bits however long the program.
   * The main flow jumps over it. Targets are sorted, as Felix sorts them.
   */
  writeTrampoline(): void {
    const k = this.trampolines++;
    // Jumps before the last trampoline already land on it; its own relays are after it.
    const from = this.lastTrampoline;
    const start = this.insns.length;
    const pending = new Set<string>();
    for (let i = from; i < start; i++) {
      const t = this.insns[i]!.target;
      if (t !== undefined && !this.labels.has(t)) pending.add(t);
    }
    this.lastTrampoline = start;
    if (pending.size === 0) return;
    const via = (t: string): string => `${t}~t${k}`;
    for (let i = from; i < start; i++) {
      const insn = this.insns[i]!;
      if (insn.target !== undefined && pending.has(insn.target)) this.insns[i] = { ...insn, target: via(insn.target) };
    }
    this.jump(`skip~t${k}`);
    for (const t of [...pending].sort()) this.label(via(t)).jump(t);
    this.label(`skip~t${k}`);
  }

  /** Appends another block, its labels renamed with `prefix` except the shared ones. */
  append(other: Block, prefix: string, shared: ReadonlySet<string>): void {
    const base = this.insns.length;
    const rename = (l: string): string => (shared.has(l) ? l : `${prefix}${l}`);
    for (const [name, at] of other.labels) {
      const l = rename(name);
      if (this.labels.has(l)) throw new AsmError(`label ${l} defined twice`);
      this.labels.set(l, base + at);
    }
    for (const i of other.insns) this.insns.push(i.target === undefined || shared.has(i.target) ? i : { ...i, target: rename(i.target) });
    this.jumps += other.jumps;
  }

  /** Resolves jump targets into offsets; the result still carries sub-program placeholders. */
  assemble(): SymInsn[] {
    return this.insns.map((insn, i) => {
      if (insn.target === undefined) return insn;
      const at = this.labels.get(insn.target);
      if (at === undefined) throw new AsmError(`jump to undefined label ${insn.target}`);
      const off = at - (i + 1);
      if (off < -32768 || off > 32767) throw new AsmError(`jump from ${i} to ${insn.target} (${off}) does not fit in 16 bits`);
      const { target: _t, ...rest } = insn;
      return { ...rest, off };
    });
  }
}

/** Hex of struct bpf_insn {u8 code; u8 dst:4, src:4; s16 off; s32 imm} (little-endian), 16 digits each. */
export function encodeInsns(insns: readonly SymInsn[], subProgramIndex: (k: number) => number): string {
  const buf = Buffer.alloc(insns.length * 8);
  insns.forEach((insn, i) => {
    if (insn.target !== undefined) throw new AsmError(`instruction ${i} still names label ${insn.target}: assemble first`);
    const imm = insn.subProgram === undefined ? insn.imm : subProgramIndex(insn.subProgram);
    buf.writeUInt8(insn.code, i * 8);
    buf.writeUInt8(((insn.src & 0xf) << 4) | (insn.dst & 0xf), i * 8 + 1);
    buf.writeInt16LE(insn.off, i * 8 + 2);
    buf.writeInt32LE(imm | 0, i * 8 + 4);
  });
  return buf.toString('hex');
}
