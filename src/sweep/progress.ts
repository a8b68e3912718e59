// The sweep's progress on stderr: on a terminal, one status line redrawn in place (point, step, ETA) above which
// finished points scroll; elsewhere (CI logs, pipes), one plain line per point.
import type { RunResult } from '../results/schema.js';
import type { SweepPoint } from './manifest.js';
import { describeLook } from './adaptive.js';
import type { Left, SweepProgress } from './sweep.js';

export interface ProgressStream {
  write(s: string): unknown;
  isTTY?: boolean;
  columns?: number;
}

export function formatDuration(ms: number | null): string {
  if (ms === null || !Number.isFinite(ms)) return '?';
  const s = Math.round(ms / 1000);
  if (s < 60) return `${s}s`;
  const m = Math.floor(s / 60);
  if (m < 60) return `${m}m${String(s % 60).padStart(2, '0')}s`;
  return `${Math.floor(m / 60)}h${String(m % 60).padStart(2, '0')}m`;
}

const describe = (p: SweepPoint) => `${p.cni} · ${p.policies} policies${p.services === undefined ? '' : ` · ${p.services} Services`} · rep ${p.repetition}`;

function outcomeLine(p: SweepPoint, r: RunResult | null): string {
  const wall = formatDuration(p.wallMs);
  if (p.status === 'ok' && r) {
    const c = r.metrics.connect?.summary.p50;
    const e = r.metrics.enforce_allow_added?.summary.p50;
    if (c == null && e != null) return `ok      ${p.key.padEnd(22)} enforce allow-added p50 ${(e / 1e6).toFixed(1)} ms  (${wall})`;
    return `ok      ${p.key.padEnd(22)} connect p50 ${c == null ? '–' : `${(c / 1000).toFixed(1)} µs`}  (${wall})`;
  }
  return `${p.status.padEnd(7)} ${p.key.padEnd(22)} ${p.error ? `${p.error.stage}${p.error.kind ? ` (${p.error.kind})` : ''}: ${p.error.message.split('\n')[0]}` : ''}  (${wall})`;
}

/**
 * What is left: the planned points' ETA; in an adaptive sweep whose verdicts are not all decided, also the most the
 * later looks can add (every open data plane to the maximum), since the end is not known before the last look.
 */
export function leftText(l: Left): string {
  const planned = `${l.planned} point${l.planned === 1 ? '' : 's'} left, ETA ${formatDuration(l.etaMs)}`;
  return l.atMost > l.planned ? `${planned} (at most ${l.atMost}, ${formatDuration(l.etaMaxMs)}, if every open verdict needs the maximum)` : planned;
}

export function progressPrinter(stream: ProgressStream, opts: { tty?: boolean } = {}): SweepProgress {
  const tty = opts.tty ?? Boolean(stream.isTTY);
  const t0 = performance.now();
  let head = '';
  let step = '';
  const redraw = () => {
    if (!tty) return;
    const line = `${head}${step ? ` · ${step}` : ''}`;
    const width = stream.columns ?? 120;
    stream.write(`\r\x1b[K${line.length > width - 1 ? `${line.slice(0, width - 2)}…` : line}`);
  };
  const permanent = (s: string) => stream.write(tty ? `\r\x1b[K${s}\n` : `${s}\n`);
  return {
    step(message: string) {
      step = message;
      redraw();
    },
    pointStarted(p, index, total, left) {
      head = `[${index + 1}/${total}] ${describe(p)} · elapsed ${formatDuration(performance.now() - t0)} · ${leftText(left)}`;
      step = '';
      if (tty) redraw();
      else permanent(head);
    },
    pointFinished(p, index, total, r) {
      permanent(`[${index + 1}/${total}] ${outcomeLine(p, r)}`);
      head = '';
      step = '';
    },
    verifyStarted(cni, runId) {
      head = `[verify] ${cni} (run ${runId}): probing the workload's flows · elapsed ${formatDuration(performance.now() - t0)}`;
      step = '';
      if (tty) redraw();
      else permanent(head);
    },
    verifyFinished(cni, outcome) {
      permanent(`[verify] ${cni}: ${outcome}`);
      head = '';
      step = '';
    },
    looked(look, index, m) {
      if (m.matrix.adaptive) permanent(describeLook(look, index, m.matrix.adaptive));
    },
  };
}
