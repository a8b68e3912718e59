// What a CNI data-plane model of the local backend is, and what it is handed. The models import this file and
// nothing of the registry (models.ts), which imports the models: the dependency runs one way.
import type { CniName, IptablesBackendName, NftSelectorSets } from '../../config/schema.js';
import { DEFAULT_IPTABLES_BACKEND, DEFAULT_NFT_SELECTOR_SETS, DEFAULT_POLICY_MAP_CAPACITY, type BpfPolicyDebug } from '../../config/schema.js';
import type { Runner } from '../../exec/runner.js';
import type { AgentReport, Progress } from '../types.js';
import type { EndpointPolicy, Inventory } from '../../policy/types.js';
import type { Attachment, Topology } from './topology.js';
import type { ServiceDataPlaneName } from './service-types.js';

/** Every setting a run can give a model; each model declares the part it reads (FelixIptablesSettings, CiliumSettings). */
export interface ModelSettings {
  /** Felix-iptables models (calico, canal): which iptables binaries write the rules. */
  iptablesBackend: IptablesBackendName;
  /** calico-nftables: selector sets declared with Felix's interval flag, or as plain hash sets. */
  nftSelectorSets: NftSelectorSets;
  /** Cilium: policy-map entries per endpoint (bpf.policyMapMax). */
  policyMapCapacity: number;
  /** Cilium: an endpoint whose policy map overflows denies all its traffic instead of keeping a stale policy. */
  endpointLockdownOnPolicyOverflow: boolean;
  /** Calico-eBPF: Felix's BPFPolicyDebugEnabled (a rule-id record per rule). */
  bpfPolicyDebug: BpfPolicyDebug;
}

/** The model settings of a run config or of a partial set of flags, defaults filled in as the run config's schema does. */
export function modelSettings(from: Partial<ModelSettings> = {}): ModelSettings {
  return {
    iptablesBackend: from.iptablesBackend ?? DEFAULT_IPTABLES_BACKEND,
    nftSelectorSets: from.nftSelectorSets ?? DEFAULT_NFT_SELECTOR_SETS,
    policyMapCapacity: from.policyMapCapacity ?? DEFAULT_POLICY_MAP_CAPACITY,
    endpointLockdownOnPolicyOverflow: from.endpointLockdownOnPolicyOverflow ?? false,
    bpfPolicyDebug: from.bpfPolicyDebug ?? 'on',
  };
}

export interface ModelContext<S = ModelSettings> {
  runner: Runner;
  /** Not cancellable: for cleanup after Ctrl-C. */
  cleanupRunner: Runner;
  topology: Topology;
  inventory: Inventory;
  /** Policies resolved per pod of the inventory that runs on a node of the topology. */
  endpoints: EndpointPolicy[];
  settings: S;
  /** Steps of a long install or update (writes that take seconds to minutes), when the caller reports them. */
  progress?: Progress;
}

/**
 * What a model reports about its data plane. A policy that does not fit an endpoint is no failure when the real
 * agent keeps the pod running with part of it: the model records it with results/capacity-overflow.ts's keys.
 */
export type ModelState = Record<string, number | string | boolean>;

/**
 * What an incremental policy change cost the model's "agent" (issue 15): only what differs between the installed
 * state and the new one is written, as Felix and the Cilium agent do it.
 */
export type ModelUpdateReport = AgentReport;

/** `S`: the settings this model reads (a part of ModelSettings); the data plane hands every model all of them. */
export interface LocalModel<S = ModelSettings> {
  cni: CniName;
  /** Short name used in results and reports; says it is a model. */
  name: string;
  description: string;
  enforcesPolicy: boolean;
  attachment: Attachment;
  hostIfPrefix: 'cali' | 'lxc' | 'veth';
  /** The model's own service data plane where the CNI replaces kube-proxy (the catalogue's serviceProxy says which do). */
  serviceDataPlane?: Extract<ServiceDataPlaneName, 'cilium-socket-lb' | 'calico-ctlb'>;
  /** Its data plane is BPF programs pinned under /sys/fs/bpf/cb-<run id>/, whose run time is counted as its CPU. */
  bpfPrograms?: boolean;
  /** Compile and install a policy set (called again to replace it). Absent: policies are accepted and ignored. */
  install?(ctx: ModelContext<S>): Promise<ModelState>;
  /**
   * Incremental change to the state `ctx` now describes (ctx.endpoints/inventory/topology are the NEW desired
   * state; the model remembers what it installed, keyed by ctx.topology). Must write only what changed and must
   * handle pods that appeared in the topology after install (attach what a new interface needs).
   */
  update?(ctx: ModelContext<S>): Promise<ModelUpdateReport>;
  /** Cleanup beyond deleting the namespaces (BPF pins live outside them). */
  cleanup?(ctx: Pick<ModelContext<S>, 'cleanupRunner' | 'topology'>): Promise<void>;
}
