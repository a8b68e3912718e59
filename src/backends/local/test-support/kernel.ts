// Shared helpers for kernel tests: the skip-or-fail rule, and tiny TCP peers that need nothing but Node.
import { execa, type ResultPromise } from 'execa';
import { execFileSync } from 'node:child_process';
import { it } from 'vitest';
import type { Flow } from '../../../workload/workload.js';
import { benchmarkWorkload } from '../../../workload/benchmark.js';
import type { LocalBackend } from '../backend.js';

/** The local backend brought up with the benchmark workload of its config, as bench run does; its measured flow. */
export async function upBenchmark(backend: LocalBackend): Promise<Flow> {
  const workload = benchmarkWorkload(backend.config, backend.target);
  await backend.up(workload);
  return workload.flows.find((f) => f.measured)!;
}

function missingTools(): string[] {
  const missing: string[] = [];
  for (const tool of ['ip', 'iptables-restore', 'ipset', 'tc']) {
    try {
      execFileSync('sh', ['-c', `command -v ${tool}`], { stdio: 'ignore' });
    } catch {
      missing.push(tool);
    }
  }
  return missing;
}

/** Why kernel tests cannot run here, or undefined when they can. */
export function kernelUnavailable(): string | undefined {
  if (process.platform !== 'linux') return 'not Linux';
  if (process.getuid?.() !== 0) return 'not root';
  const missing = missingTools();
  return missing.length ? `missing tools: ${missing.join(', ')} (run bash scripts/setup.sh)` : undefined;
}

/**
 * `it` for kernel tests: runs when it can; skips when it cannot, except under CI=true, where it runs anyway
 * and so fails loudly instead of passing by skipping.
 */
export const itKernel: typeof it = (kernelUnavailable() === undefined || process.env.CI === 'true' ? it : it.skip) as typeof it;

/** A TCP echo server in a namespace, started with Node; resolves once listening. */
export async function startEchoServer(netns: string, port: number): Promise<{ stop(): Promise<void> }> {
  const script = `require('net').createServer(s=>{s.on('error',()=>{});s.pipe(s)}).listen(${port},()=>console.log('ready'))`;
  const child: ResultPromise = execa('ip', ['netns', 'exec', netns, process.execPath, '-e', script], { reject: false, cleanup: true });
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`echo server in ${netns} did not start`)), 10_000);
    child.stdout?.on('data', (d: Buffer) => {
      if (d.toString().includes('ready')) {
        clearTimeout(timer);
        resolve();
      }
    });
    void child.then((r) => {
      clearTimeout(timer);
      reject(new Error(`echo server in ${netns} exited: ${String(r.stderr)}`));
    });
  });
  return {
    async stop() {
      child.kill('SIGTERM');
      await child;
    },
  };
}

/** One TCP connection attempt from a namespace: 'connected', 'refused' or 'timeout'. */
export async function tryConnect(netns: string, ip: string, port: number, timeoutMs = 1000): Promise<'connected' | 'refused' | 'timeout'> {
  const script = `const s=require('net').connect(${port},'${ip}');s.setTimeout(${timeoutMs},()=>{console.log('timeout');process.exit(0)});s.on('connect',()=>{console.log('connected');s.destroy()});s.on('error',e=>{console.log(e.code==='ECONNREFUSED'?'refused':'timeout')})`;
  const r = await execa('ip', ['netns', 'exec', netns, process.execPath, '-e', script], { reject: false, timeout: timeoutMs + 10_000 });
  const out = String(r.stdout).trim();
  if (out === 'connected' || out === 'refused' || out === 'timeout') return out;
  throw new Error(`tryConnect from ${netns}: unexpected output '${out}' ${String(r.stderr)}`);
}

/** Names of the network namespaces on this machine that belong to the run. */
export function namespacesOfRun(runId: string): string[] {
  const out = execFileSync('ip', ['netns', 'list'], { encoding: 'utf8' });
  return out
    .split('\n')
    .map((l) => l.split(' ')[0] ?? '')
    .filter((n) => n.startsWith(`cb-${runId}-`));
}
