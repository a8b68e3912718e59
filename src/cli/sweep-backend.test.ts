// `bench sweep --backend auto` chooses with every CNI of the matrix in view, as `bench run` does with its one CNI:
// a sweep that includes `none` (modelled only on the local backend) must not pick kind and then refuse itself.
import { describe, expect, it } from 'vitest';
import { cmdSweep } from './commands/sweep.js';
import { bufferIo, tempDir } from './test-support/cli.js';

const withDockerAndKind = { dockerEngine: true, kind: true };

describe('bench sweep --backend auto', () => {
  it('with Docker and kind present, a matrix that includes none is planned on the local backend, not refused', async () => {
    const io = bufferIo();
    const code = await cmdSweep({ cni: 'none,calico', policies: '0,10', repetitions: '1', backend: 'auto', dryRun: true, out: tempDir() }, io, { environment: withDockerAndKind });
    expect(io.err()).toContain('backend: local (auto: none runs only on the local backend');
    expect(code).toBe(0);
    expect(io.out()).toMatch(/backend local/);
  });

  it('a matrix kind runs whole still goes to kind', async () => {
    const io = bufferIo();
    const code = await cmdSweep({ cni: 'calico,cilium', policies: '0', repetitions: '1', backend: 'auto', dryRun: true, out: tempDir() }, io, { environment: withDockerAndKind });
    expect(code).toBe(0);
    expect(io.err()).toContain('backend: kind (auto: a Docker engine and kind were found)');
    expect(io.out()).toMatch(/backend kind/);
  });
});
