// Canal as the classic manifest sets it up (projectcalico/calico manifests/canal.yaml at v3.30.3): the Calico CNI
// plugin attaches pods (routed cali* veths, host-local IPAM from the node's pod CIDR, "policy": k8s), flanneld
// carries traffic between nodes over flannel.1 VXLAN (net-conf "Backend": vxlan), and calico-node runs Felix
// with CALICO_NETWORKING_BACKEND=none: policy only, no BGP. So: the Calico model's policy rendering on the
// flannel model's node-to-node path.
import { FELIX_LAYOUT_VERSION } from '../calico/compile.js';
import { felixIptablesModel } from '../calico/model.js';

export const canalModel = felixIptablesModel({
  cni: 'canal',
  name: 'Canal-style model (Calico policy on Flannel VXLAN)',
  description:
    `Canal-style model on the local kernel: Flannel's flannel.1 VXLAN between nodes (VNI 1, UDP 8472, static FDB/neighbour entries, ` +
    `MTU 1450) with pods attached by the Calico CNI plugin (routed cali* veths, /32 routes, proxy ARP, no cni0 bridge) and ` +
    `Felix ${FELIX_LAYOUT_VERSION}'s iptables policy rendering on the pod interfaces, exactly as in the calico model (raw/mangle ` +
    `PREROUTING, cali-FORWARD dispatch, group chains, ipsets). Left out: flanneld and calico-node processes (routes, FDB and ` +
    'rules are written directly), flannel\'s MASQUERADE rules for traffic leaving the pod network, kube-proxy and the nat table',
  attachment: 'routed-vxlan',
});
