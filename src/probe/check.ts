// One reachability attempt (cb-probe check): the verify grid's unit.
import { z } from 'zod';
import { shellQuote, type CommandResult, type CommandSpec } from '../exec/runner.js';
import { NativeProbeError, PROBE_BIN, ipSchema, portSchema, validate } from './spec.js';

/** One reachability attempt (TCP connect, or UDP send + echo); exit 1 means blocked, so failure is data here. */
export function planCheck(opts: { netns: string; target: string; port: number; udp?: boolean; timeoutMs: number }): CommandSpec {
  validate(ipSchema, opts.target, 'check target');
  validate(portSchema, opts.port, 'check port');
  validate(z.number().int().min(1).max(3_600_000), opts.timeoutMs, 'check timeoutMs');
  const argv = [PROBE_BIN, 'check', '--target', opts.target, '--port', String(opts.port)];
  if (opts.udp) argv.push('--udp');
  argv.push('--timeout-ms', String(opts.timeoutMs));
  return {
    argv,
    netns: opts.netns,
    allowFailure: true,
    timeoutMs: opts.timeoutMs + 10_000,
    purpose: `check ${opts.udp ? 'udp' : 'tcp'} ${opts.target}:${opts.port}`,
  };
}

export interface CheckOutcome {
  open: boolean;
  /** 'open', or what stopped it: 'refused ECONNREFUSED', 'timeout ETIMEDOUT', 'failed EHOSTUNREACH'… */
  reason: string;
}

export function parseCheckResult(result: CommandResult): CheckOutcome {
  const reason = result.stdout.trim();
  if (result.exitCode === 0 && reason === 'open') return { open: true, reason };
  if (result.exitCode === 1 && reason !== '' && !result.timedOut) return { open: false, reason };
  throw new NativeProbeError(
    `cb-probe check gave no verdict: ${shellQuote(result.argv)} exited ${result.exitCode}${result.timedOut ? ' (timed out)' : ''}` +
      (result.stderr.trim() ? `: ${result.stderr.trim()}` : ''),
  );
}
