import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { formatDuration, parseDuration, parseDurationNs, parseDurationValue } from '../../../src/config/duration.js';

describe('parseDuration (Go time.ParseDuration syntax)', () => {
  const good: [string, number][] = [
    ['0', 0],
    ['+0', 0],
    ['-0', 0],
    ['4320h', 4320 * 3_600_000],
    ['90s', 90_000],
    ['1h30m', 5_400_000],
    ['1.5h', 5_400_000],
    ['300ms', 300],
    ['10us', 0.01],
    ['10µs', 0.01],
    ['10μs', 0.01],
    ['1500ns', 0.0015],
    ['-1m', -60_000],
    ['+2s', 2_000],
    ['.5s', 500],
    ['1.s', 1_000],
    ['1h1m1s1ms', 3_661_001],
    ['0s', 0],
    ['720h', 2_592_000_000],
  ];
  for (const [input, ms] of good) {
    it(`accepts ${JSON.stringify(input)}`, () => {
      assert.equal(parseDuration(input), ms);
    });
  }

  const bad: [string, string][] = [
    ['', 'syntax'],
    ['-', 'syntax'],
    ['10', 'unit'],
    ['1', 'unit'],
    ['s', 'syntax'],
    ['.s', 'syntax'],
    ['1d', 'unit'],
    ['1H', 'unit'],
    ['1h 30m', 'unit'],
    [' 1h', 'syntax'],
    ['1h-30m', 'unit'],
    ['1e3s', 'unit'],
    ['3000000h', 'overflow'],
  ];
  for (const [input, reason] of bad) {
    it(`rejects ${JSON.stringify(input)} (${reason})`, () => {
      assert.throws(() => parseDuration(input), { code: 'ERR_DURATION', reason });
    });
  }

  it('keeps nanosecond precision in parseDurationNs', () => {
    assert.equal(parseDurationNs('1.000000001s'), 1_000_000_001n);
    assert.equal(parseDurationNs('2562047h47m16.854775807s'), (1n << 63n) - 1n);
  });

  it('refuses a bare YAML number (Go would read nanoseconds)', () => {
    assert.throws(() => parseDurationValue(3600), { code: 'ERR_DURATION', reason: 'bare-number' });
    assert.equal(parseDurationValue('3600s'), 3_600_000);
  });
});

describe('formatDuration (Go Duration.String)', () => {
  const cases: [number, string][] = [
    [0, '0s'],
    [5_400_000, '1h30m0s'],
    [1_500, '1.5s'],
    [300, '300ms'],
    [1.5, '1.5ms'],
    [0.01, '10µs'],
    [0.0005, '500ns'],
    [60_000, '1m0s'],
    [2_592_000_000, '720h0m0s'],
    [-90_000, '-1m30s'],
  ];
  for (const [ms, text] of cases) {
    it(`${ms} ms → ${text}`, () => {
      assert.equal(formatDuration(ms), text);
      if (ms !== 0) assert.equal(parseDuration(text), ms);
    });
  }
});
