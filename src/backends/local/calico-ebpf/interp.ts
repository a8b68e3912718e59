// A reference interpreter for the instructions compile.ts emits, for unit tests: runs a policy chain against one
// packet's state the way the kernel would (state map, IP set LPM lookups, tail calls into the chain and into the
// static allow/deny programs; a tail call to a sub-program that is not loaded fails and execution goes on after
// it, as in the kernel). Only the opcodes the compiler uses; anything else is an error, so a compiler change that
// emits something new is noticed here before the verifier sees it.
import type { SymInsn } from './asm.js';
import { MAP_IP_SETS, MAP_JUMP_POLICY, MAP_JUMP_STATIC, MAP_STATE } from './asm.js';
import { BenchError } from '../../../errors.js';
import { MAX_RULE_IDS, ST_RULE_IDS, ST_RULES_HIT, STATE_SIZE } from './layout.js';
import type { IpSet } from './rules.js';

class InterpError extends BenchError {
  constructor(message: string) {
    super('internal', `calico-ebpf interpreter: ${message}`);
  }
}

export interface PacketState {
  src: string;
  dst: string;
  sport: number;
  dport: number;
  proto: number;
}

export interface InterpResult {
  verdict: 'allow' | 'deny' | 'drop';
  /** Programs of the chain that ran. */
  programsRun: number;
  ipSetLookups: number;
  instructions: number;
  /** Rule ids the walk recorded in the state (policy debug), 16 hex digits each. */
  ruleIds: string[];
}

type Ptr = { region: 'stack' | 'state'; off: number };
type Val = bigint | Ptr | { map: number };

const ipBytes = (ip: string): number[] => ip.split('.').map(Number);

export function runChain(programs: SymInsn[][], sets: Iterable<IpSet>, pkt: PacketState): InterpResult {
  const state = new Uint8Array(STATE_SIZE);
  state.set(ipBytes(pkt.src), 0);
  state.set(ipBytes(pkt.dst), 4);
  new DataView(state.buffer).setUint16(8, pkt.sport, true);
  new DataView(state.buffer).setUint16(10, pkt.dport, true);
  state[12] = pkt.proto;
  const members = new Map<string, Array<{ net: number[]; prefix: number }>>();
  for (const s of sets) {
    members.set(
      s.id,
      s.members.map((m) => {
        const [ip, len] = m.split('/');
        return { net: ipBytes(ip!), prefix: Number(len) };
      }),
    );
  }
  const res: InterpResult = { verdict: 'drop', programsRun: 0, ipSetLookups: 0, instructions: 0, ruleIds: [] };
  let prog = 0;
  for (let tail = 0; tail < 33; tail++) {
    res.programsRun++;
    const next = runProgram(programs[prog]!, state, members, res, programs.length);
    if (next === 'allow' || next === 'deny' || next === 'drop') {
      res.verdict = next;
      const hits = Math.min(state[ST_RULES_HIT]!, MAX_RULE_IDS);
      for (let i = 0; i < hits; i++) res.ruleIds.push(Buffer.from(state.slice(ST_RULE_IDS + 8 * i, ST_RULE_IDS + 8 * i + 8)).reverse().toString('hex'));
      return res;
    }
    prog = next;
  }
  throw new InterpError('more than 33 tail calls');
}

function runProgram(insns: SymInsn[], state: Uint8Array, members: Map<string, Array<{ net: number[]; prefix: number }>>, res: InterpResult, loaded: number): number | 'allow' | 'deny' | 'drop' {
  const stack = new Uint8Array(512);
  const regs: Val[] = new Array(11).fill(0n);
  regs[1] = 0n; // ctx: opaque
  regs[10] = { region: 'stack', off: 512 };
  const mem = (p: Val, off: number): [Uint8Array, number] => {
    if (typeof p !== 'object' || !('region' in p)) throw new InterpError(`memory access through a non-pointer ${String(p)}`);
    const at = p.off + off;
    const buf = p.region === 'stack' ? stack : state;
    if (at < 0 || at >= buf.length) throw new InterpError(`access at ${at} outside the ${p.region} (${buf.length} bytes)`);
    return [buf, at];
  };
  const num = (v: Val): bigint => {
    if (typeof v !== 'bigint') throw new InterpError('arithmetic on a pointer');
    return v;
  };
  const load = (buf: Uint8Array, at: number, size: number): bigint => {
    let v = 0n;
    for (let i = size - 1; i >= 0; i--) v = (v << 8n) | BigInt(buf[at + i]!);
    return v;
  };
  const store = (buf: Uint8Array, at: number, size: number, v: bigint): void => {
    for (let i = 0; i < size; i++) buf[at + i] = Number((v >> BigInt(8 * i)) & 0xffn);
  };
  const sext = (imm: number): bigint => BigInt.asUintN(64, BigInt(imm));
  /** A pointer compares as non-null (the program only ever tests pointers against 0). */
  const cmp = (v: Val): bigint => (typeof v === 'bigint' ? v : 1n);
  for (let pc = 0; pc < insns.length; pc++) {
    const i = insns[pc]!;
    res.instructions++;
    const jumpIf = (cond: boolean): void => {
      if (cond) pc += i.off;
    };
    const imm = i.subProgram !== undefined ? i.subProgram : i.imm;
    switch (i.code) {
      case 0xbf: regs[i.dst] = regs[i.src]!; break;
      case 0xb7: regs[i.dst] = sext(imm); break;
      case 0xb4: regs[i.dst] = BigInt(imm >>> 0); break;
      case 0x07: {
        const r = regs[i.dst]!;
        regs[i.dst] = typeof r === 'object' && 'region' in r ? { region: r.region, off: r.off + imm } : BigInt.asUintN(64, num(r) + sext(imm));
        break;
      }
      case 0x0f: {
        // scalar += pointer gives a pointer (the rule-id record's address into the state).
        const [a, b] = [regs[i.dst]!, regs[i.src]!];
        if (typeof b === 'object' && 'region' in b) regs[i.dst] = { region: b.region, off: b.off + Number(num(a)) };
        else if (typeof a === 'object' && 'region' in a) regs[i.dst] = { region: a.region, off: a.off + Number(num(b)) };
        else regs[i.dst] = BigInt.asUintN(64, num(a) + num(b));
        break;
      }
      case 0x67: regs[i.dst] = BigInt.asUintN(64, num(regs[i.dst]!) << BigInt(imm)); break;
      case 0x5c: regs[i.dst] = (num(regs[i.dst]!) & num(regs[i.src]!)) & 0xffffffffn; break;
      case 0x71: case 0x69: case 0x61: {
        const size = i.code === 0x71 ? 1 : i.code === 0x69 ? 2 : 4;
        const [buf, at] = mem(regs[i.src]!, i.off);
        regs[i.dst] = load(buf, at, size);
        break;
      }
      case 0x73: case 0x6b: case 0x63: case 0x7b: {
        const size = i.code === 0x73 ? 1 : i.code === 0x6b ? 2 : i.code === 0x63 ? 4 : 8;
        const [buf, at] = mem(regs[i.dst]!, i.off);
        store(buf, at, size, num(regs[i.src]!));
        break;
      }
      case 0x18:
        // ld_imm64: a map (src_reg 1) or a 64-bit constant (low word here, high word in the next slot).
        regs[i.dst] = i.src === 1 ? { map: i.imm } : (BigInt(insns[pc + 1]!.imm >>> 0) << 32n) | BigInt(i.imm >>> 0);
        pc++;
        break;
      case 0x05: pc += i.off; break;
      case 0x15: jumpIf(cmp(regs[i.dst]!) === sext(imm)); break;
      case 0x55: jumpIf(cmp(regs[i.dst]!) !== sext(imm)); break;
      case 0xa5: jumpIf(num(regs[i.dst]!) < sext(imm)); break;
      case 0xb5: jumpIf(num(regs[i.dst]!) <= sext(imm)); break;
      case 0x35: jumpIf(num(regs[i.dst]!) >= sext(imm)); break;
      case 0x16: jumpIf((num(regs[i.dst]!) & 0xffffffffn) === BigInt(imm >>> 0)); break;
      case 0x85: {
        // map_lookup_elem(map, key) takes the map in r1; tail_call(ctx, map, index) in r2.
        const map = (i.imm === 12 ? regs[2] : regs[1]) as { map: number };
        if (i.imm === 1) {
          if (map.map === MAP_STATE) regs[0] = { region: 'state', off: 0 };
          else if (map.map === MAP_IP_SETS) {
            res.ipSetLookups++;
            const [buf, at] = mem(regs[2]!, 0);
            const key = buf.slice(at, at + 20);
            const prefixlen = new DataView(key.buffer).getUint32(0, true);
            if (prefixlen !== 128) throw new InterpError(`lookup key prefixlen ${prefixlen}`);
            const id = Buffer.from(key.slice(4, 12)).toString('hex');
            const addr = [...key.slice(12, 16)];
            const hit = (members.get(id) ?? []).some((m) => prefixMatch(m.net, addr, m.prefix));
            regs[0] = hit ? { region: 'state', off: 0 } : 0n;
          } else throw new InterpError(`lookup in map ${map.map}`);
        } else if (i.imm === 12) {
          const index = Number(num(regs[3]!));
          if (map.map === MAP_JUMP_STATIC) return index === 0 ? 'allow' : 'deny';
          if (map.map !== MAP_JUMP_POLICY) throw new InterpError(`tail call through map ${map.map}`);
          if (index < loaded) return index;
          regs[0] = 0n; // no program there: the tail call fails and the program goes on
        } else throw new InterpError(`helper ${i.imm}`);
        for (const r of [1, 2, 3, 4, 5]) regs[r] = 0n;
        break;
      }
      case 0x95: return 'drop';
      default:
        throw new InterpError(`opcode 0x${i.code.toString(16)} at ${pc}`);
    }
  }
  throw new InterpError('fell off the end of the program');
}

function prefixMatch(net: number[], addr: number[], prefix: number): boolean {
  for (let bit = 0; bit < prefix; bit++) {
    const byte = bit >> 3;
    const mask = 0x80 >> (bit & 7);
    if ((net[byte]! & mask) !== (addr[byte]! & mask)) return false;
  }
  return true;
}
