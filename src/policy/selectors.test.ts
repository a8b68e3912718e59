import { describe, expect, it } from 'vitest';
import { SelectorCache, compileSelector, matchesSelector, selectorKey, validateSelector } from './selectors.js';
import type { LabelSelector } from './types.js';

describe('matchesSelector', () => {
  const labels = { app: 'web', tier: 'front', env: 'prod' };
  const cases: Array<[string, LabelSelector, Record<string, string>, boolean]> = [
    ['empty selector matches everything', {}, labels, true],
    ['empty selector matches no labels', {}, {}, true],
    ['empty matchLabels and expressions', { matchLabels: {}, matchExpressions: [] }, labels, true],
    ['matchLabels hit', { matchLabels: { app: 'web' } }, labels, true],
    ['matchLabels wrong value', { matchLabels: { app: 'db' } }, labels, false],
    ['matchLabels missing key', { matchLabels: { zone: 'a' } }, labels, false],
    ['matchLabels all must hold', { matchLabels: { app: 'web', tier: 'back' } }, labels, false],
    ['In hit', { matchExpressions: [{ key: 'env', operator: 'In', values: ['dev', 'prod'] }] }, labels, true],
    ['In miss', { matchExpressions: [{ key: 'env', operator: 'In', values: ['dev'] }] }, labels, false],
    ['In absent key', { matchExpressions: [{ key: 'zone', operator: 'In', values: ['a'] }] }, labels, false],
    ['NotIn hit', { matchExpressions: [{ key: 'env', operator: 'NotIn', values: ['dev'] }] }, labels, true],
    ['NotIn miss', { matchExpressions: [{ key: 'env', operator: 'NotIn', values: ['prod'] }] }, labels, false],
    ['NotIn absent key matches', { matchExpressions: [{ key: 'zone', operator: 'NotIn', values: ['a'] }] }, labels, true],
    ['Exists', { matchExpressions: [{ key: 'tier', operator: 'Exists' }] }, labels, true],
    ['Exists absent', { matchExpressions: [{ key: 'zone', operator: 'Exists' }] }, labels, false],
    ['DoesNotExist', { matchExpressions: [{ key: 'zone', operator: 'DoesNotExist' }] }, labels, true],
    ['DoesNotExist present', { matchExpressions: [{ key: 'app', operator: 'DoesNotExist' }] }, labels, false],
    ['inherited property names are not labels', { matchExpressions: [{ key: 'constructor', operator: 'Exists' }] }, labels, false],
    [
      'matchLabels AND expressions: both hold',
      { matchLabels: { app: 'web' }, matchExpressions: [{ key: 'env', operator: 'In', values: ['prod'] }] },
      labels,
      true,
    ],
    [
      'matchLabels AND expressions: expression fails',
      { matchLabels: { app: 'web' }, matchExpressions: [{ key: 'env', operator: 'In', values: ['dev'] }] },
      labels,
      false,
    ],
    [
      'matchLabels AND expressions: label fails',
      { matchLabels: { app: 'db' }, matchExpressions: [{ key: 'env', operator: 'Exists' }] },
      labels,
      false,
    ],
    ['unknown operator selects nothing', { matchExpressions: [{ key: 'app', operator: 'Like' as 'In', values: ['web'] }] }, labels, false],
  ];
  it.each(cases)('%s', (_name, sel, l, want) => {
    expect(matchesSelector(sel, l)).toBe(want);
    expect(compileSelector(sel)(l)).toBe(want);
  });
});

describe('validateSelector', () => {
  it.each<[string, LabelSelector, string[]]>([
    ['valid', { matchLabels: { a: 'b' }, matchExpressions: [{ key: 'a', operator: 'In', values: ['x'] }] }, []],
    ['In without values', { matchExpressions: [{ key: 'a', operator: 'In' }] }, ['sel.matchExpressions[0].values']],
    ['NotIn with empty values', { matchExpressions: [{ key: 'a', operator: 'Exists' }, { key: 'a', operator: 'NotIn', values: [] }] }, ['sel.matchExpressions[1].values']],
    ['Exists with values', { matchExpressions: [{ key: 'a', operator: 'Exists', values: ['x'] }] }, ['sel.matchExpressions[0].values']],
    ['DoesNotExist with values', { matchExpressions: [{ key: 'a', operator: 'DoesNotExist', values: ['x'] }] }, ['sel.matchExpressions[0].values']],
    ['empty key', { matchExpressions: [{ key: '', operator: 'Exists' }] }, ['sel.matchExpressions[0].key']],
    ['unknown operator', { matchExpressions: [{ key: 'a', operator: 'Gt' as 'In', values: ['1'] }] }, ['sel.matchExpressions[0].operator']],
    [
      'reports every problem',
      { matchExpressions: [{ key: 'a', operator: 'In' }, { key: 'b', operator: 'Exists', values: ['v'] }] },
      ['sel.matchExpressions[0].values', 'sel.matchExpressions[1].values'],
    ],
  ])('%s', (_name, sel, paths) => {
    expect(validateSelector(sel, 'sel').map((i) => i.path)).toEqual(paths);
  });
});

describe('selectorKey and SelectorCache', () => {
  it('ignores matchLabels key order and tells different selectors apart', () => {
    expect(selectorKey({ matchLabels: { a: '1', b: '2' } })).toBe(selectorKey({ matchLabels: { b: '2', a: '1' } }));
    expect(selectorKey({ matchLabels: { a: '1' } })).not.toBe(selectorKey({ matchLabels: { a: '2' } }));
    expect(selectorKey({})).toBe(selectorKey({ matchLabels: {}, matchExpressions: [] }));
    expect(selectorKey({ matchExpressions: [{ key: 'a', operator: 'In', values: ['x'] }] })).not.toBe(
      selectorKey({ matchExpressions: [{ key: 'a', operator: 'NotIn', values: ['x'] }] }),
    );
    // A value containing separator characters must not collide with a two-label selector.
    expect(selectorKey({ matchLabels: { a: '1","b":"2' } })).not.toBe(selectorKey({ matchLabels: { a: '1', b: '2' } }));
  });
  it('returns the same compiled matcher for equal selectors', () => {
    const cache = new SelectorCache();
    expect(cache.matcher({ matchLabels: { a: '1', b: '2' } })).toBe(cache.matcher({ matchLabels: { b: '2', a: '1' } }));
    expect(cache.matcher({ matchLabels: { a: '1' } })).not.toBe(cache.matcher({ matchLabels: { a: '2' } }));
  });
});
