// The service data planes of the local backend, by name: the one place a name picks one. A local model declares
// the name it runs beside (kube-proxy's iptables or nftables mode next to none/flannel/canal/calico/
// calico-nftables; its own eBPF load balancer for cilium and calico-ebpf) — one field per model.
import type { ServiceDataPlaneKind, ServiceDataPlaneName } from './service-types.js';
import { kubeProxyIptables, kubeProxyNftables } from './kube-proxy/plane.js';
import { ciliumSocketLb } from './cilium/sock-lb.js';
import { calicoCtlb } from './calico-ebpf/ctlb.js';
import { BenchError } from '../../errors.js';

const planes = new Map<ServiceDataPlaneName, ServiceDataPlaneKind>([
  ['kube-proxy-iptables', kubeProxyIptables],
  ['kube-proxy-nftables', kubeProxyNftables],
  ['cilium-socket-lb', ciliumSocketLb],
  ['calico-ctlb', calicoCtlb],
]);

export function serviceDataPlane(name: ServiceDataPlaneName): ServiceDataPlaneKind {
  const p = planes.get(name);
  if (!p) throw new BenchError('internal', `no service data plane '${name}' on the local backend`);
  return p;
}
