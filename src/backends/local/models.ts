// The CNI data-plane models of the local backend, declared as data: how pods attach, and (for the models with
// a policy engine) how a resolved policy set is compiled and installed on each node.
import type { CniName, RunConfig } from '../../config/schema.js';
import type { Runner } from '../../exec/runner.js';
import type { EndpointPolicy, Inventory } from '../../policy/types.js';
import type { Attachment, Topology } from './topology.js';
import { calicoModel } from './calico/model.js';
import { canalModel } from './canal/model.js';
import { ciliumModel } from './cilium/model.js';
import { calicoNftablesModel } from './calico-nftables/model.js';
import { calicoEbpfModel } from './calico-ebpf/model.js';

export interface ModelContext {
  runner: Runner;
  /** Not cancellable: for cleanup after Ctrl-C. */
  cleanupRunner: Runner;
  topology: Topology;
  inventory: Inventory;
  /** Policies resolved per pod of the inventory that runs on a node of the topology. */
  endpoints: EndpointPolicy[];
  config: RunConfig;
}

export type ModelState = Record<string, number | string | boolean>;

/**
 * What an incremental policy change cost the model's "agent" (issue 15): only what differs between the
 * installed state and the new one is written, as Felix and the Cilium agent do it.
 */
export interface ModelUpdateReport {
  /** Agent-side time: compile + apply, ms. */
  agentMs: number;
  compileMs: number;
  applyMs: number;
  /** What was rewritten: chainsRewritten, setMembersChanged, mapEntriesChanged, … (never a full reinstall). */
  changed: Record<string, number>;
  /** Model state after the change (same keys as install's). */
  state: ModelState;
}

export interface LocalModel {
  cni: CniName;
  /** Short name used in results and reports; says it is a model. */
  name: string;
  description: string;
  enforcesPolicy: boolean;
  attachment: Attachment;
  hostIfPrefix: 'cali' | 'lxc' | 'veth';
  /** Compile and install a policy set (called again to replace it). Absent: policies are accepted and ignored. */
  install?(ctx: ModelContext): Promise<ModelState>;
  /**
   * Incremental change to the state `ctx` now describes (ctx.endpoints/inventory/topology are the NEW desired
   * state; the model remembers what it installed, keyed by ctx.topology). Must write only what changed and must
   * handle pods that appeared in the topology after install (attach what a new interface needs).
   */
  update?(ctx: ModelContext): Promise<ModelUpdateReport>;
  /** Cleanup beyond deleting the namespaces (BPF pins live outside them). */
  cleanup?(ctx: Pick<ModelContext, 'cleanupRunner' | 'topology'>): Promise<void>;
}

const none: LocalModel = {
  cni: 'none',
  name: 'no-CNI routing floor',
  description: 'No policy engine: pods on routed veths, routes between nodes; the floor other results are read against',
  enforcesPolicy: false,
  attachment: 'routed',
  hostIfPrefix: 'veth',
};

const flannel: LocalModel = {
  cni: 'flannel',
  name: 'Flannel-style VXLAN model',
  description:
    'Flannel-style VXLAN model on the local kernel: cni0 bridge per node, flannel.1 VXLAN (VNI 1, UDP 8472) with static FDB/neighbour entries; no policy engine (policies accepted and ignored)',
  enforcesPolicy: false,
  attachment: 'bridge-vxlan',
  hostIfPrefix: 'veth',
};

const models = new Map<CniName, LocalModel>([
  ['none', none],
  ['flannel', flannel],
  ['calico', calicoModel],
  ['canal', canalModel],
  ['cilium', ciliumModel],
  ['calico-nftables', calicoNftablesModel],
  ['calico-ebpf', calicoEbpfModel],
]);

export function localModel(cni: CniName): LocalModel {
  const m = models.get(cni);
  if (!m) throw new Error(`${cni} is not available yet on the local backend`);
  return m;
}

export function localModelNames(): CniName[] {
  return [...models.keys()];
}
