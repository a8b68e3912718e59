import { describe, expect, it } from 'vitest';
import { CidrError, cidrContains, cidrStrictlyWithin, ipBlockContains, normalizeCidr, parseCidr, parseIpv4 } from './cidr.js';

describe('parseIpv4', () => {
  it.each<[string, number | undefined]>([
    ['0.0.0.0', 0],
    ['255.255.255.255', 0xffffffff],
    ['10.0.1.2', 0x0a000102],
    ['256.0.0.1', undefined],
    ['1.2.3', undefined],
    ['01.2.3.4', undefined],
    ['a.b.c.d', undefined],
    ['::1', undefined],
  ])('%s', (ip, want) => expect(parseIpv4(ip)).toBe(want));
});

describe('parseCidr / normalizeCidr', () => {
  it('clears host bits', () => {
    expect(normalizeCidr('10.1.2.3/16')).toBe('10.1.0.0/16');
    expect(normalizeCidr('10.1.2.3/32')).toBe('10.1.2.3/32');
    expect(normalizeCidr('10.1.2.3/0')).toBe('0.0.0.0/0');
  });
  it('covers the whole block', () => {
    const c = parseCidr('192.168.4.0/22');
    expect([c.first, c.last]).toEqual([parseIpv4('192.168.4.0'), parseIpv4('192.168.7.255')]);
  });
  it.each(['10.0.0.0', '10.0.0.0/33', '10.0.0/8', '10.0.0.0/-1', '10.0.0.0/08'])('rejects %s', (c) => {
    expect(() => parseCidr(c)).toThrow(CidrError);
  });
});

describe('containment', () => {
  it.each<[string, string, boolean]>([
    ['10.0.0.0/8', '10.255.255.255', true],
    ['10.0.0.0/8', '11.0.0.0', false],
    ['10.0.1.0/24', '10.0.1.0', true],
    ['10.0.1.0/24', '10.0.2.0', false],
    ['0.0.0.0/0', '203.0.113.9', true],
    ['10.0.1.5/32', '10.0.1.5', true],
    ['10.0.1.5/32', '10.0.1.6', false],
    ['fd00::/8', '10.0.0.1', false],
    ['10.0.0.0/8', 'fd00::1', false],
  ])('%s contains %s: %s', (cidr, ip, want) => expect(cidrContains(cidr, ip)).toBe(want));

  it('ipBlock except carves addresses out', () => {
    const block = { cidr: '10.0.0.0/16', except: ['10.0.2.0/24', '10.0.3.7/32'] };
    expect(ipBlockContains(block, '10.0.1.1')).toBe(true);
    expect(ipBlockContains(block, '10.0.2.1')).toBe(false);
    expect(ipBlockContains(block, '10.0.3.7')).toBe(false);
    expect(ipBlockContains(block, '10.0.3.8')).toBe(true);
    expect(ipBlockContains(block, '10.1.0.1')).toBe(false);
  });

  it('strict subset', () => {
    expect(cidrStrictlyWithin('10.0.2.0/24', '10.0.0.0/16')).toBe(true);
    expect(cidrStrictlyWithin('10.0.0.0/16', '10.0.0.0/16')).toBe(false);
    expect(cidrStrictlyWithin('10.1.0.0/24', '10.0.0.0/16')).toBe(false);
    expect(cidrStrictlyWithin('10.0.0.0/8', '10.0.0.0/16')).toBe(false);
  });
});
