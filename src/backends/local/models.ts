// The CNI data-plane models of the local backend, declared as data: how pods attach, and (for the models with
// a policy engine) how a resolved policy set is compiled and installed on each node. This table is the one
// place a CNI name picks anything on the local backend; the data plane (plane.ts) and its users only read
// what the chosen model declares (attachment, interface prefix, install/update/cleanup).
import type { CniName } from '../../config/schema.js';
import type { LocalModel } from './types.js';
import { calicoModel } from './calico/model.js';
import { canalModel } from './canal/model.js';
import { ciliumModel } from './cilium/model.js';
import { calicoNftablesModel } from './calico-nftables/model.js';
import { calicoEbpfModel } from './calico-ebpf/model.js';

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

/** Every CNI's model on the local backend (the order `bench run` lists them in when one is missing). */
export const LOCAL_MODELS: Readonly<Record<CniName, LocalModel>> = {
  none,
  flannel,
  calico: calicoModel,
  canal: canalModel,
  cilium: ciliumModel,
  'calico-nftables': calicoNftablesModel,
  'calico-ebpf': calicoEbpfModel,
};

export function localModel(cni: CniName): LocalModel {
  return LOCAL_MODELS[cni];
}

export function localModelNames(): CniName[] {
  return Object.keys(LOCAL_MODELS) as CniName[];
}
