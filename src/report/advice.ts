// "CNI selection": measured results turned into the advice engineers weigh when choosing a CNI — is
// NetworkPolicy enforced at all, how new-connection cost scales with policies, CPU, capacity limits, kernel
// requirements, and when a managed cloud's own CNI is the better default. Pure: analysis in, paragraphs out.
import { uniqueInOrder } from '../collections.js';
import { CNI_ENTRIES, cniEntry, type KernelNeeds } from '../config/cnis.js';
import type { Analysis, CniAnalysis } from './analyze.js';
import { capacityOverflowOf } from '../results/capacity-overflow.js';

export interface AdviceItem {
  title: string;
  /** Markdown (inline formatting only). */
  text: string;
}

/** How the report's prose names each data plane (the CNI catalogue's report names; unknown names as they are). */
const reportName = (cni: string) => cniEntry(cni).reportName;
/** What bounds Calico-eBPF's chain of policy programs: Felix's MaxSubPrograms as the model state records it (results written before it was recorded: the model's old 32, the kernel's tail-call limit). */
function chainLimitOf(state: Record<string, number | string | boolean> | null | undefined): { limit: number; by: string } {
  const recorded = state?.chainProgramLimit;
  return typeof recorded === 'number' ? { limit: recorded, by: "Felix's MaxSubPrograms allows" } : { limit: 32, by: "the kernel's tail-call limit allows" };
}
const us = (ns: number) => `${(ns / 1000).toFixed(1)} µs`;

export function parseKernel(release: string): [number, number] | null {
  const m = /^(\d+)\.(\d+)/.exec(release);
  return m ? [Number(m[1]), Number(m[2])] : null;
}

const atLeast = (v: [number, number], w: readonly [number, number]) => v[0] > w[0] || (v[0] === w[0] && v[1] >= w[1]);

/** Does kernel `k` (parsed: `v`) meet what a CNI needs? */
function kernelLine(k: string, v: [number, number], name: string, needs: KernelNeeds): string {
  if (atLeast(v, needs.full)) return `Kernel ${k} meets ${name}'s needs, including features that want ${needs.full.join('.')} or newer (${needs.fullFeatures}).`;
  if (atLeast(v, needs.minimum)) return `Kernel ${k} meets ${name}'s minimum (${needs.minimum.join('.')}), but some eBPF features want ${needs.full.join('.')}+.`;
  return `Kernel ${k} is older than ${name}'s documented minimum (${needs.minimum.join('.')}; ${needs.minimumNote}): ${name} is not an option on these nodes without an upgrade.`;
}

function scalingLine(c: CniAnalysis, maxCount: number): string {
  const m = c.metrics.connect_p50;
  if (!m.fit) return `${reportName(c.cni)}: not enough policy counts to fit.`;
  const [lo, hi] = m.fit.slopeCi95;
  const name = reportName(c.cni);
  if (m.verdict.headline === 'segments' && m.fit.segments.length) {
    const segs = m.fit.segments.map((s) => `${s.nsPerPolicy.toFixed(0)} ns/policy at ${s.from}–${s.to}`).join(', ');
    const e = m.fit.exponent;
    const last = m.fit.levels[m.fit.levels.length - 1]!;
    const added = last.mean - m.fit.baseline;
    return `**${name}** (${c.model.name}): ${m.verdict.complexity} — marginal cost per policy ${segs}${e ? `; added cost grows like n^${e.k.toFixed(2)}` : ''}; about ${us(added)} added to each new connection at ${last.x} policies on a ${us(m.fit.baseline)} baseline.`;
  }
  return `**${name}** (${c.model.name}): ${m.verdict.complexity} — ${m.fit.slope.toFixed(2)} ns per policy (95% CI ${lo.toFixed(2)}…${hi.toFixed(2)}), about ${us(m.fit.slope * maxCount)} added to each new connection at ${maxCount} policies on a ${us(m.fit.baseline)} baseline.`;
}

/** What one more policy costs a new connection at the top of the measured range: the headline slope, or the last segment. */
function marginalCost(c: CniAnalysis): { ns: number; ci: [number, number]; where: string } | null {
  const m = c.metrics.connect_p50;
  if (!m.fit) return null;
  if (m.verdict.headline === 'slope') return { ns: m.fit.slope, ci: m.fit.slopeCi95, where: 'slope of the line' };
  const last = m.fit.segments[m.fit.segments.length - 1];
  return last ? { ns: last.nsPerPolicy, ci: last.ci95, where: `between ${last.from} and ${last.to} policies` } : null;
}

const nsText = (x: number) => (Math.abs(x) >= 100 ? x.toFixed(0) : x.toFixed(1));

/** Calico's iptables, nftables and eBPF data planes side by side, from the measured costs. */
function dataPlaneChoice(a: Analysis): AdviceItem | null {
  const planes = a.cnis.filter((c) => cniEntry(c.cni).calicoDataPlane && c.metrics.connect_p50.fit);
  if (planes.length < 2) return null;
  const costs = planes.map((c) => ({ c, cost: marginalCost(c) })).filter((x): x is { c: CniAnalysis; cost: NonNullable<ReturnType<typeof marginalCost>> } => x.cost !== null);
  costs.sort((x, y) => x.cost.ns - y.cost.ns);
  const lines = costs.map(({ c, cost }) => {
    const m = c.metrics.connect_p50;
    const pr = m.perRule;
    const rule = pr ? `, ${nsText(pr.nsPerRule)} ns per rule walked (${pr.rulesTraversedPerPolicy} rules per policy; ${pr.comparison} the ${pr.referenceBandNs[0]}–${pr.referenceBandNs[1]} ns published for a simple iptables rule)` : '';
    return `**${reportName(c.cni)}**: ${m.verdict.complexity}, ${nsText(cost.ns)} ns per policy per new connection (95% CI ${nsText(cost.ci[0])}…${nsText(cost.ci[1])}, ${cost.where})${rule}.`;
  });
  const cheapest = costs[0];
  const dearest = costs[costs.length - 1];
  if (cheapest && dearest && cheapest !== dearest && cheapest.cost.ns > 0) {
    lines.push(`At the top of the measured range one more policy costs a new connection ${(dearest.cost.ns / cheapest.cost.ns).toFixed(1)}× as much on ${reportName(dearest.c.cni)} as on ${reportName(cheapest.c.cni)}.`);
  }
  const ebpf = planes.find((c) => cniEntry(c.cni).policyLookup === 'ordered-ebpf');
  const flatEbpf = a.cnis.find((c) => cniEntry(c.cni).policyLookup === 'hash-map' && c.metrics.connect_p50.verdict.complexity === 'O(1)');
  if (ebpf && ebpf.metrics.connect_p50.verdict.complexity !== 'O(1)') {
    lines.push(`"eBPF" alone does not mean O(1): Calico's eBPF data plane compiles the policies into a program that still walks them in order, so its cost grows with every policy that selects the pod${flatEbpf ? `, where Cilium's hash-map lookup stayed flat (${flatEbpf.metrics.connect_p50.verdict.complexity})` : ''}.`);
  }
  const chain = ebpf?.stateAtMax?.maxProgramsPerChain;
  if (typeof chain === 'number' && chain > 0) {
    const { limit, by } = chainLimitOf(ebpf?.stateAtMax);
    lines.push(`Limit: at ${a.policyCounts[a.policyCounts.length - 1]} policies the eBPF walk took ${chain} chained program${chain === 1 ? '' : 's'} per endpoint; ${by} ${limit}, so about ${Math.floor((a.policyCounts[a.policyCounts.length - 1]! * limit) / chain)} policies on one pod is where this layout stops.`);
  }
  return { title: "Choosing between Calico's data planes", text: lines.join('\n\n') };
}

/** Canal: Flannel's network with Calico's policy engine, read against plain Flannel. */
function canalAdvice(a: Analysis): AdviceItem | null {
  const canal = a.cnis.find((c) => cniEntry(c.cni).policyEngineOver !== undefined);
  const flannel = canal && a.cnis.find((c) => c.cni === cniEntry(canal.cni).policyEngineOver);
  if (!canal || !flannel) return null;
  const base = (c: CniAnalysis) => c.metrics.connect_p50.counts[0];
  const cb = base(canal);
  const fb = base(flannel);
  const cost = marginalCost(canal);
  const parts = [`Moving from Flannel to Canal keeps Flannel's VXLAN network and adds Calico's policy engine on the pod interfaces: policies ${canal.policiesEnforced ? 'were enforced' : 'were NOT enforced'} on Canal where Flannel ignored them.`];
  if (cb && fb && cb.policies === fb.policies) parts.push(`With ${cb.policies} policies a new connection costs ${us(cb.value)} on Canal against ${us(fb.value)} on Flannel.`);
  if (cost) parts.push(`Each policy that selects a pod then adds about ${nsText(cost.ns)} ns per new connection (${cost.where}), as on Calico's iptables data plane.`);
  return { title: 'Canal: policy for a Flannel cluster', text: parts.join(' ') };
}

export function cniAdvice(a: Analysis): AdviceItem[] {
  const out: AdviceItem[] = [];
  const maxCount = a.policyCounts[a.policyCounts.length - 1] ?? 0;
  const enforcing = a.cnis.filter((c) => c.policiesEnforced);
  const ignoring = a.cnis.filter((c) => !c.policiesEnforced && !cniEntry(c.cni).floor);

  if (ignoring.length || enforcing.length) {
    const lines: string[] = [];
    for (const c of ignoring) {
      lines.push(
        `**${reportName(c.cni)} does not enforce NetworkPolicy**: the policies were accepted by the API and ignored by the data plane, so its flat curve is the cost of doing nothing. Choose it only where NetworkPolicy is not required, or pair it with a policy engine (Calico in policy-only mode — the "Canal" combination).`,
      );
    }
    for (const c of enforcing) lines.push(`**${reportName(c.cni)}** enforced the policies in every run (${c.model.name}).`);
    out.push({ title: 'Is NetworkPolicy enforced at all?', text: lines.join('\n\n') });
  }

  if (enforcing.length && maxCount > 0) {
    const lines = enforcing.map((c) => scalingLine(c, maxCount));
    const xs = a.crossovers.filter((x) => x.metric === 'connect_p50' && enforcing.some((c) => c.cni === x.lowerBefore) && enforcing.some((c) => c.cni === x.lowerAfter));
    for (const x of xs) lines.push(`${reportName(x.lowerBefore)} is cheaper per new connection below ≈${x.atPolicies} policies (between the measured ${x.between[0]} and ${x.between[1]}); above that, ${reportName(x.lowerAfter)} is.`);
    const linear = enforcing.filter((c) => c.metrics.connect_p50.verdict.complexity === 'O(n)' && c.metrics.connect_p50.verdict.headline === 'slope');
    const flat = enforcing.filter((c) => c.metrics.connect_p50.verdict.complexity === 'O(1)');
    if (linear.length && flat.length) {
      const small = a.policyCounts.find((n) => n > 0) ?? maxCount;
      const tax = linear.map((c) => `${reportName(c.cni)} +${us(c.metrics.connect_p50.fit!.slope * small)} at ${small}, +${us(c.metrics.connect_p50.fit!.slope * maxCount)} at ${maxCount}`).join('; ');
      lines.push(
        `Rule of thumb from these numbers: count the policies that select your busiest pods and read the added cost off the fit (${tax} per new connection). Where that count is in the thousands (multi-tenant clusters, per-service allow-lists generated by tools), a data plane whose cost stays flat (${flat.map((c) => reportName(c.cni)).join(', ')}) avoids a per-connection tax that grows with every policy.`,
      );
    }
    const rr = a.cnis.map((c) => c.metrics.rr_p50.verdict.complexity);
    if (rr.length && rr.every((v) => v === 'O(1)')) lines.push('Established connections (RR) stayed flat for every CNI: policies cost on the first packet of a connection only; long-lived connections (gRPC, pooled HTTP) barely notice them.');
    out.push({ title: 'How the cost of a new connection scales with policies', text: lines.join('\n\n') });
  }

  const choice = dataPlaneChoice(a);
  if (choice) out.push(choice);
  const canal = canalAdvice(a);
  if (canal) out.push(canal);

  const none = a.cnis.find((c) => cniEntry(c.cni).floor);
  const cpuLines = a.cnis
    .filter((c) => c.metrics.cpu_per_conn.fit)
    .map((c) => {
      const f = c.metrics.cpu_per_conn.fit!;
      const atMax = f.levels[f.levels.length - 1]!;
      return `${reportName(c.cni)}: ${us(atMax.median)} of CPU per connection at ${atMax.x} policies (${c.metrics.cpu_per_conn.verdict.complexity}).`;
    });
  if (cpuLines.length) {
    out.push({
      title: 'CPU',
      text: `${cpuLines.join(' ')}${none ? ' Read them against the no-CNI floor: the difference is what the data plane spends.' : ''} On a node serving many short connections, multiply by the connection rate to get the cores a data plane costs. (Resolution and parts: the CPU section.)`,
    });
  }

  // Runs that failed on a data plane's capacity (the error's kind, whatever the model that raised it).
  const capacity = a.failures.filter((f) => f.kind === 'capacity');
  for (const cni of uniqueInOrder(capacity.map((f) => f.cni))) {
    const mine = capacity.filter((f) => f.cni === cni);
    out.push({
      title: 'Capacity limits',
      text: `${reportName(cni)} failed with a capacity error at ${Math.min(...mine.map((f) => f.policies))} policies: ${mine[0]!.message.replace(/\.$/, '')}. ${cniEntry(cni).capacityAdvice ?? 'Write fewer, broader policies selecting the pod.'}`,
    });
  }

  // Runs that completed over capacity (the real agents keep the pod running with part of its policy): the model
  // state records the overflow, what the data plane then does and the fix, whatever the model.
  for (const c of a.cnis) {
    const o = capacityOverflowOf(c.stateAtMax);
    if (!o) continue;
    out.push({
      title: 'Capacity limits: overflow',
      text: `${reportName(c.cni)} ran over its capacity at ${maxCount} policies: ${o.summary}.${o.clientVerdict ? ` Afterwards the probe client was **${o.clientVerdict}**.` : ''} ${o.advice ?? 'Write fewer, broader policies selecting the pod.'}`,
    });
  }

  const kernels = uniqueInOrder(a.machines.map((m) => m.kernel));
  const kernelLines = kernels.flatMap((k) => {
    const v = parseKernel(k);
    if (!v) return [`Kernel ${k}: version not recognised.`];
    return CNI_ENTRIES.flatMap((e) => (e.kernel ? [kernelLine(k, v, e.displayName, e.kernel)] : []));
  });
  out.push({
    title: 'Kernel requirements',
    text: `${kernelLines.join(' ')} Calico's iptables data plane and Flannel run on any kernel Kubernetes supports; Calico's own eBPF data plane has its own, newer kernel requirements.`,
  });

  out.push({
    title: 'Managed clouds',
    text: 'On EKS, GKE and AKS the provider\'s own CNI (Amazon VPC CNI, GKE Dataplane V2, Azure CNI) is usually the better default: pod IPs native to the VPC, support and upgrades from the provider. GKE Dataplane V2 and Azure CNI Powered by Cilium are Cilium-based, so the eBPF results here are the relevant ones for them; on EKS, NetworkPolicy is enforced only once the VPC CNI\'s network-policy agent (or Calico in policy-only mode) is enabled. Bring your own CNI when you need what the provider\'s does not offer, and check the provider\'s current documentation.',
  });

  if (a.backends.includes('local')) {
    out.push({
      title: 'What these numbers are',
      text: 'Results from the `local` backend come from models of each data plane built on this machine\'s kernel (the same mechanisms: VXLAN and bridge, iptables and ipsets, tc eBPF and BPF maps), not from the CNIs themselves. They show how each mechanism scales; confirm absolute numbers on a real cluster (`--backend kind` or `cluster`) before committing.',
    });
  }
  return out;
}
