// What the kind provider does to and reads from its nodes, as plain CommandSpecs and parsers: which container
// engine drives them, kernel modules, images, the control plane's address, the iptables flavour Felix chose.
import { isIP } from 'node:net';
import { join } from 'node:path';
import type { CommandSpec } from '../../exec/runner.js';
import { BenchError } from '../../errors.js';
import { kubectl, type KubeTarget } from '../k8s/kubectl.js';

/**
 * The container engine kind drives, by kind's own switch KIND_EXPERIMENTAL_PROVIDER (kind v0.30.0
 * pkg/internal/runtime/runtime.go: docker, podman, nerdctl, finch, nerdctl.lima). Node commands and image saves go
 * through it, never through a hard-coded `docker`. Unset, kind itself probes for docker, then nerdctl, then podman
 * (pkg/cluster/provider.go DetectNodeProvider); this tool assumes docker then, so a host without docker sets the
 * variable for both.
 */
export function kindProvider(env: NodeJS.ProcessEnv = process.env): string {
  const p = env.KIND_EXPERIMENTAL_PROVIDER?.trim();
  return p && /^(docker|podman|nerdctl|finch|nerdctl\.lima)$/.test(p) ? p : 'docker';
}

/**
 * Loads br_netfilter before flannel starts (see CniProfile.needsBrNetfilter). Every kind node shares the host's
 * kernel, so one modprobe in one node (privileged, /lib/modules mounted by kind) loads it for all; the test
 * afterwards is what flanneld itself checks.
 */
export function planBrNetfilter(engine: string, node: string): CommandSpec[] {
  return [
    { argv: [engine, 'exec', node, 'modprobe', 'br_netfilter'], purpose: 'load br_netfilter (flanneld exits without /proc/sys/net/bridge; Docker >= 27.3 no longer loads it)' },
    { argv: [engine, 'exec', node, 'test', '-e', '/proc/sys/net/bridge/bridge-nf-call-iptables'], purpose: 'check bridge-nf-call-iptables exists, as flanneld does at start' },
  ];
}

/**
 * Images from the host's engine into every node. `kind load docker-image` always runs `docker save` (kind v0.30.0
 * pkg/cmd/kind/load/docker-image: exec.Command("docker", "save", …)), which fails under podman or nerdctl; so the
 * engine kind drives saves each image to an archive and `kind load image-archive` imports them. One archive per
 * image: `podman save` takes further names as tags of the first image unless -m (podman-save(1)).
 */
export function planImageLoad(engine: string, images: readonly string[], dir: string, cluster: string): { archives: string[]; commands: CommandSpec[] } {
  const archives = images.map((_, i) => join(dir, `image-${i}.tar`));
  return {
    archives,
    commands: [
      ...images.map((image, i) => ({ argv: [engine, 'save', '-o', archives[i]!, image], purpose: `save ${image} from the host's ${engine} to an archive`, timeoutMs: 300_000 })),
      { argv: ['kind', 'load', 'image-archive', ...archives, '--name', cluster], purpose: 'load the images into every node (no registry pull per point)', timeoutMs: 600_000 },
    ],
  };
}

/** Shown in a dry run where the control plane's address will be: it exists only once the cluster does. */
export const controlPlaneAddressPlaceholder = (node: string) => `<InternalIP of ${node}, looked up at run time>`;

/** The control plane node's InternalIP: the kubelet reports it at registration, before any CNI runs. */
export function planControlPlaneAddress(t: KubeTarget, node: string): CommandSpec {
  return kubectl(t, ['get', 'node', node, '-o', 'jsonpath={.status.addresses[?(@.type=="InternalIP")].address}'], `look up ${node}'s InternalIP (the API server address for agents that start before DNS)`);
}

/** The first IPv4 InternalIP in the lookup's output (a dual-stack node lists both families), else the first IPv6. */
export function controlPlaneAddressFrom(stdout: string, node: string): string {
  const ips = stdout.split(/\s+/).filter((a) => isIP(a) !== 0);
  const ip = ips.find((a) => isIP(a) === 4) ?? ips[0];
  if (!ip) throw new BenchError('k8s-step', `node ${node} reports no InternalIP (got '${stdout.trim()}'); check \`kubectl get node ${node} -o wide\``);
  return ip;
}

/** Felix's chains as each iptables flavour shows them on a node (the binaries of both are in kindest/node). */
export function planFelixIptablesRead(engine: string, node: string): CommandSpec[] {
  return (['nft', 'legacy'] as const).map((flavour) => ({
    argv: [engine, 'exec', node, `iptables-${flavour}-save`, '-t', 'filter'],
    purpose: `which iptables flavour did Felix write its chains with on ${node}? (${flavour})`,
    allowFailure: true,
  }));
}

export interface IptablesFlavour {
  iptablesBackend: 'nft' | 'legacy' | 'unknown';
  iptablesBackendSource: string;
}

/**
 * Which flavour Felix chose: it auto-detects from kube-proxy's chains (felix/environment/feature_detect_linux.go
 * DetectBackend), and kind's node entrypoint picks the node's own by counting rules (select_iptables), so either can
 * happen depending on the host. Seen as the flavour holding its `prefix` chains.
 */
export function felixIptablesFlavour(nftSave: string, legacySave: string, prefix: string, node: string): IptablesFlavour {
  const count = (s: string) => s.split('\n').filter((l) => l.startsWith(`:${prefix}`)).length;
  const nft = count(nftSave);
  const legacy = count(legacySave);
  const seen = `${nft} ${prefix} chains in iptables-nft, ${legacy} in iptables-legacy (filter table of ${node}, after the CNI was ready)`;
  if (nft > 0 && legacy === 0) return { iptablesBackend: 'nft', iptablesBackendSource: `detected by Felix; ${seen}` };
  if (legacy > 0 && nft === 0) return { iptablesBackend: 'legacy', iptablesBackendSource: `detected by Felix; ${seen}` };
  return { iptablesBackend: 'unknown', iptablesBackendSource: seen };
}
