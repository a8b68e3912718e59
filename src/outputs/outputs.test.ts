import { readFileSync, existsSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { Outputs, fileOutput, jsonText, summaryOutput, type Output } from './outputs.js';
import { tempDir } from '../test-support/temp.js';

/** An output that records what happens to it. */
function recorder(name: string, events: string[], o: { failStart?: boolean; failStop?: boolean } = {}): Output<number, string> {
  return {
    description: name,
    start: () => {
      if (o.failStart) throw new Error(`${name} refused`);
      events.push(`${name} start`);
    },
    add: (p) => void events.push(`${name} add ${p}`),
    stop: (r) => {
      if (o.failStop) throw new Error(`${name} failed`);
      events.push(`${name} stop ${r}`);
    },
    abort: () => void events.push(`${name} abort`),
  };
}

const buffer = () => {
  let text = '';
  return { write: (s: string) => (text += s), text: () => text };
};

describe('Outputs', () => {
  it('starts in order, streams pieces to the started ones, and hands every one the result', async () => {
    const events: string[] = [];
    const outputs = new Outputs([recorder('a', events), recorder('b', events)]);
    await outputs.start();
    outputs.add('x');
    await outputs.stop(7);
    expect(events).toEqual(['a start', 'b start', 'a add x', 'b add x', 'a stop 7', 'b stop 7']);
  });

  it('one that refuses to start stops the ones already started, and nothing is written', async () => {
    const events: string[] = [];
    const outputs = new Outputs([recorder('a', events), recorder('b', events), recorder('c', events, { failStart: true }), recorder('d', events)]);
    await expect(outputs.start()).rejects.toThrow('c refused');
    expect(events).toEqual(['a start', 'b start', 'b abort', 'a abort']);
    await outputs.stop(1);
    expect(events).not.toContain('a stop 1');
  });

  it('one that fails to write does not keep the others from writing; its error is thrown after', async () => {
    const events: string[] = [];
    const outputs = new Outputs([recorder('a', events, { failStop: true }), recorder('b', events)]);
    await outputs.start();
    await expect(outputs.stop(3)).rejects.toThrow('a failed');
    expect(events).toContain('b stop 3');
  });
});

describe('summaryOutput: the one place --json is decided', () => {
  const o = { header: () => 'header\n', piece: (p: string) => `piece ${p}\n`, summary: (r: number) => `summary ${r}\n`, document: (r: number) => ({ value: r, ratio: r / 0 }) };

  it('the terminal gets the header, the pieces as they come, and the summary', async () => {
    const out = buffer();
    const outputs = new Outputs<number, string>([summaryOutput(false, out, o)]);
    await outputs.start();
    outputs.add('one');
    await outputs.stop(2);
    expect(out.text()).toBe('header\npiece one\nsummary 2\n');
  });

  it('--json: one JSON document and nothing else on the stream; non-finite numbers become null', async () => {
    const out = buffer();
    const outputs = new Outputs<number, string>([summaryOutput(true, out, o)]);
    await outputs.start();
    outputs.add('one');
    await outputs.stop(2);
    expect(JSON.parse(out.text())).toEqual({ value: 2, ratio: null });
    expect(out.text()).toBe(jsonText({ value: 2, ratio: null }));
  });

  it('a file output writes the whole result when it is complete', async () => {
    const path = join(tempDir('cb-outputs-'), 'junit.xml');
    const outputs = new Outputs<number>([fileOutput<number>(path, 'JUnit', (r) => `<r>${r}</r>\n`)]);
    await outputs.start();
    expect(existsSync(path)).toBe(false);
    await outputs.stop(5);
    expect(readFileSync(path, 'utf8')).toBe('<r>5</r>\n');
  });
});
