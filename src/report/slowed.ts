// What runs on a slowed machine mean for the sweep at hand, for the CLI's end-of-sweep line and the report's
// machine section. An adaptive sweep's p50 verdicts adjust every run to the loopback reference it measured, as its
// looks did (stats/sequential.ts adjustToReference), so a slowed run is not taken for the data plane there; its
// point values, p99s and CPU stay the runs' own. A fixed sweep's verdicts take every run as measured.
import type { Analysis } from './analyze.js';
import { MACHINE_SLOWED_THRESHOLD } from './machine.js';

const P50_IDS = ['connect_p50', 'crr_p50', 'rr_p50'] as const;

export interface SlowedVerdicts {
  /** 'adaptive': every slowed run's data plane had its p50 verdicts judged adjusted; 'fixed': none; 'mixed': some. */
  kind: 'adaptive' | 'fixed' | 'mixed';
  /** The data planes (of those with a slowed run) whose p50 verdicts were adjusted to the reference. */
  adjusted: string[];
}

/** Which of the slowed runs' data planes had their p50 verdicts (policy curves or Services) adjusted to the reference. */
export function slowedVerdicts(a: Analysis): SlowedVerdicts {
  const planes = [...new Set(a.machine.slowedRuns.map((r) => r.cni))];
  const isAdjusted = (cni: string) => {
    const curve = a.cnis.find((x) => x.cni === cni);
    return (curve !== undefined && P50_IDS.some((id) => curve.metrics[id]?.adjustment !== undefined)) || (a.services ?? []).some((p) => p.cni === cni && p.alpha !== undefined);
  };
  const adjusted = planes.filter(isAdjusted);
  return { kind: adjusted.length === 0 ? 'fixed' : adjusted.length === planes.length ? 'adaptive' : 'mixed', adjusted };
}

const WHY = `their loopback reference more than ${MACHINE_SLOWED_THRESHOLD * 100}% above its usual, or their CPU share that much below`;

/** The end-of-sweep line: how many runs ran slowed, which, and what that means for this sweep's figures. */
export function slowedRunsLine(a: Analysis): string | null {
  const slowed = a.machine.slowedRuns;
  if (!slowed.length) return null;
  const which = `${slowed.slice(0, 5).map((r) => `${r.cni}@${r.policies}${r.repetition === null ? '' : ` r${r.repetition}`}`).join(', ')}${slowed.length > 5 ? ', …' : ''}`;
  const v = slowedVerdicts(a);
  const means =
    v.kind === 'fixed'
      ? "their figures are the machine's, not the data plane's, and this fixed sweep's verdicts count them as measured"
      : `the p50 verdicts${v.kind === 'mixed' ? ` of ${v.adjusted.join(', ')} (adaptive)` : ' above'} adjust every run to its reference, as the sweep's looks did; their point values, p99s and CPU${v.kind === 'mixed' ? ', and the other verdicts,' : ''} are the machine's, not the data plane's`;
  return `the machine slowed in ${slowed.length} of ${a.machine.measuredRuns} runs (${WHY}): ${which}; ${means} (bench report lists them)`;
}

/** The report's paragraph on the slowed runs (markdown), after its bold count. */
export function slowedRunsMarkdown(a: Analysis): string {
  const n = a.machine.slowedRuns.length;
  const head = `**The machine slowed in ${n} run${n === 1 ? '' : 's'}** (reference more than ${MACHINE_SLOWED_THRESHOLD * 100}% above its usual, or CPU share that much below)`;
  const v = slowedVerdicts(a);
  const tail = "a point whose runs differ for this reason differs because the machine did, not the data plane.";
  if (v.kind === 'fixed') return `${head}: their figures are kept in the point values and, as measured, in the verdicts (a fixed sweep does not adjust to the reference), and the run-to-run spread they add is in the CIs; ${tail}`;
  const whose = v.kind === 'mixed' ? `the p50 verdicts of ${v.adjusted.join(', ')} (an adaptive sweep)` : 'the p50 verdicts';
  return `${head}: ${whose} adjust every run to its reference, as the sweep's looks did (θ, or why a curve was not adjusted, in each verdict's reason; see the CI method); the point values, p99s and CPU${v.kind === 'mixed' ? ', and the other verdicts,' : ''} keep those runs as measured: ${tail}`;
}
