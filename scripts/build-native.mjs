#!/usr/bin/env node
// Compiles the native helpers into dist/native/: the probe (C), the Cilium-model BPF object (clang -target bpf)
// and its libbpf loader, the Calico-eBPF model's fixed programs and its loader. Run by `npm run build` and by scripts/setup.sh. Skips a target whose source is absent.
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const out = join(root, 'dist', 'native');
mkdirSync(out, { recursive: true });

// What the two BPF models share (src/backends/local/bpf): the loaders' common C, compiled into both, and the
// tc programs' prelude header.
const shared = join(root, 'src', 'backends', 'local', 'bpf');
const loader = (s, o) => ['gcc', '-O2', '-Wall', '-I', shared, '-o', o, s, join(shared, 'loader.c'), '-lbpf', '-lelf', '-lz'];
const bpfObject = (s, o) => ['clang', '-O2', '-g', '-Wall', '-target', 'bpf', '-I', shared, '-c', s, '-o', o];

// The probe's CPU accounting (account.c) is compiled into both builds of it.
const probeAccount = join(root, 'src', 'probe', 'native', 'account.c');
const targets = [
  { src: 'src/probe/native/cb-probe.c', out: 'cb-probe', cmd: (s, o) => ['gcc', '-O2', '-Wall', '-Wextra', '-o', o, s, probeAccount, '-lpthread', '-lm'] },
  // The same probe linked statically, for the kind/cluster client pod (copied into a busybox container, whose libc
  // may differ): needs the static C library (Debian/Ubuntu libc6-dev, Fedora/RHEL glibc-static). Optional: only
  // `--backend kind|cluster` runs need it, and they say so when it is missing.
  { src: 'src/probe/native/cb-probe.c', out: 'cb-probe-static', optional: true, cmd: (s, o) => ['gcc', '-O2', '-Wall', '-Wextra', '-static', '-s', '-o', o, s, probeAccount, '-lpthread', '-lm'] },
  { src: 'src/probe/native/connect-loop.c', out: 'connect-loop', cmd: (s, o) => ['gcc', '-O2', '-Wall', '-o', o, s] },
  { src: 'src/backends/local/cilium/bpf/cilium_model.bpf.c', out: 'cilium_model.bpf.o', cmd: bpfObject },
  { src: 'src/backends/local/cilium/bpf/cb-bpf.c', out: 'cb-bpf', cmd: loader },
  { src: 'src/backends/local/calico-ebpf/bpf/calico_ebpf.bpf.c', out: 'calico_ebpf.bpf.o', cmd: bpfObject },
  { src: 'src/backends/local/calico-ebpf/bpf/cb-cebpf.c', out: 'cb-cebpf', cmd: loader },
  // The socket-level service load balancers (issue 24): Cilium's socket LB and Calico's connect-time LB models,
  // and the loader both use (it attaches them to the run's own cgroup).
  { src: 'src/backends/local/cilium/bpf/sock_lb.bpf.c', out: 'sock_lb.bpf.o', cmd: bpfObject },
  { src: 'src/backends/local/calico-ebpf/bpf/ctlb.bpf.c', out: 'ctlb.bpf.o', cmd: bpfObject },
  { src: 'src/backends/local/bpf/cb-sock.c', out: 'cb-sock', cmd: loader },
];

// `--only a,b` builds just those outputs (setup.sh --kind-only builds the static probe alone).
const onlyArg = process.argv.indexOf('--only');
const only = onlyArg > 0 ? new Set((process.argv[onlyArg + 1] ?? '').split(',')) : null;

let failed = false;
for (const t of targets) {
  if (only && !only.has(t.out)) continue;
  const src = join(root, t.src);
  if (!existsSync(src)) continue;
  const argv = t.cmd(src, join(out, t.out));
  try {
    execFileSync(argv[0], argv.slice(1), { stdio: 'inherit' });
    console.log(`built dist/native/${t.out}`);
  } catch (e) {
    if (t.optional) {
      console.warn(`skipped optional dist/native/${t.out}: ${argv.join(' ')} failed (install the static C library: libc6-dev or glibc-static)`);
      continue;
    }
    failed = true;
    console.error(`failed to build ${t.out}: ${argv.join(' ')}\n  (run 'bash scripts/setup.sh' to install gcc, clang and libbpf-dev)`);
  }
}
process.exit(failed ? 1 : 0);
