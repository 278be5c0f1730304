import assert from 'node:assert/strict';
import { describe, it } from 'node:test';

import type { AddrRecord } from '../../../../src/daemon/records.js';
import { foreignDataLines, formatCommand, isErrorReply, parseStatus, planChange, recordLines, restartedBetween, type UnboundStatus } from '../../../../src/daemon/upstreams/unbound.js';

describe('unbound command formatting', () => {
  it('prefixes UBCT1 and ends with a newline', () => {
    assert.equal(formatCommand('local_zone dyn.example. static'), 'UBCT1 local_zone dyn.example. static\n');
  });

  it('sends data lines then the end-of-transmission line for bulk commands', () => {
    assert.equal(
      formatCommand('local_datas', ['a.dyn.example. 60 IN A 192.0.2.1', 'b.dyn.example. 60 IN A 192.0.2.2']),
      'UBCT1 local_datas\na.dyn.example. 60 IN A 192.0.2.1\nb.dyn.example. 60 IN A 192.0.2.2\n\x04\n',
    );
    assert.equal(formatCommand('local_datas_remove', []), 'UBCT1 local_datas_remove\n\x04\n');
  });

  it('refuses lines that would break the framing', () => {
    assert.throws(() => formatCommand('local_datas', ['a\nUBCT1 stop']), RangeError);
    assert.throws(() => formatCommand('local_datas', ['\x04']), RangeError);
    assert.throws(() => formatCommand(`local_data ${'a'.repeat(3000)}`), RangeError);
  });

  it('recognises error replies anywhere in the reply', () => {
    assert.equal(isErrorReply('ok\n'), false);
    assert.equal(isErrorReply('added 3 datas\n'), false);
    assert.equal(isErrorReply('error cannot parse name\n'), true);
    assert.equal(isErrorReply('error in syntax or out of memory, x\nerror for input line: x\nadded 1 datas\n'), true);
  });
});

describe('planChange', () => {
  const zones = ['2.0.192.in-addr.arpa.'];
  const r = (name: string, address: string, ttl = 60): AddrRecord => ({ name, type: address.includes(':') ? 'AAAA' : 'A', address, ttl });
  const h = 'h.dyn.example.';

  it('re-adds every live record of a touched name, not only the new one', () => {
    const live = [r(h, '192.0.2.1'), r(h, '2001:db8::1')];
    const plan = planChange({ add: [r(h, '192.0.2.2')], remove: [], removeNames: [] }, (n) => (n === h ? live : []), zones);
    assert.deepEqual(plan.removeNames.sort(), [h, '1.2.0.192.in-addr.arpa.', '2.2.0.192.in-addr.arpa.'].sort());
    assert.deepEqual(plan.addLines.sort(), [
      `${h} 60 IN A 192.0.2.1`,
      `${h} 60 IN A 192.0.2.2`,
      `${h} 60 IN AAAA 2001:db8::1`,
      `1.2.0.192.in-addr.arpa. 60 IN PTR ${h}`,
      `2.2.0.192.in-addr.arpa. 60 IN PTR ${h}`,
    ].sort());
  });

  it('leaves removed records out and still clears their PTR names', () => {
    const live = [r(h, '192.0.2.1'), r(h, '192.0.2.2')];
    const plan = planChange({ add: [], remove: [r(h, '192.0.2.1', 0)], removeNames: [] }, () => live, zones);
    assert.ok(plan.removeNames.includes('1.2.0.192.in-addr.arpa.'));
    assert.deepEqual(plan.addLines.sort(), [`${h} 60 IN A 192.0.2.2`, `2.2.0.192.in-addr.arpa. 60 IN PTR ${h}`].sort());
  });

  it('replaces a live record re-added with a new TTL', () => {
    const plan = planChange({ add: [r(h, '192.0.2.1', 30)], remove: [], removeNames: [] }, () => [r(h, '192.0.2.1', 60)], []);
    assert.deepEqual(plan.addLines, [`${h} 30 IN A 192.0.2.1`]);
  });

  it('wipes a removed name and its PTRs without re-adding anything', () => {
    const live = [r(h, '192.0.2.1')];
    const plan = planChange({ add: [], remove: [], removeNames: [{ name: h, addresses: live }] }, () => live, zones);
    assert.deepEqual(plan.removeNames, [h, '1.2.0.192.in-addr.arpa.']);
    assert.deepEqual(plan.addLines, []);
  });
});

describe('foreignDataLines', () => {
  const zone = 'dyn.example.';
  const listing = [
    'h.dyn.example.\t300\tIN\tA\t192.0.2.1',
    'h.dyn.example.\t300\tIN\tAAAA\t2001:db8::1',
    'h.dyn.example.\t300\tIN\tTXT\t"v=spf1 -all"',
    'H.Dyn.Example.\t300\tIN\tMX\t10 mail.example.',
    'other.dyn.example.\t300\tIN\tTXT\t"not touched"',
    '1.2.0.192.in-addr.arpa.\t300\tIN\tPTR\th.dyn.example.',
    '1.2.0.192.in-addr.arpa.\t300\tIN\tPTR\tprinter.example.',
    'garbage',
    '',
  ].join('\n');

  it('keeps what nsregd does not manage at the touched names, as Unbound printed it', () => {
    const kept = foreignDataLines(listing, ['h.dyn.example.', '1.2.0.192.in-addr.arpa.'], zone);
    assert.deepEqual(kept, [
      'h.dyn.example.\t300\tIN\tTXT\t"v=spf1 -all"',
      'H.Dyn.Example.\t300\tIN\tMX\t10 mail.example.',
      '1.2.0.192.in-addr.arpa.\t300\tIN\tPTR\tprinter.example.',
    ]);
  });

  it('nothing for names that are not touched, or an empty listing', () => {
    assert.deepEqual(foreignDataLines(listing, ['x.dyn.example.'], zone), []);
    assert.deepEqual(foreignDataLines('', ['h.dyn.example.'], zone), []);
  });
});

describe('unbound status', () => {
  const reply = 'version: 1.17.1\nverbosity: 1\nthreads: 1\nmodules: 1 [ iterator ]\nuptime: 42 seconds\noptions: control(ssl)\nunbound (pid 1234) is running...\n';

  it('reads pid and uptime', () => {
    assert.deepEqual(parseStatus(reply), { pid: 1234, uptime: 42 });
    assert.deepEqual(parseStatus('garbage'), { pid: undefined, uptime: undefined });
  });

  it('tells a restart from time passing', () => {
    const t0 = 1_000_000;
    const s = (pid: number | undefined, uptime: number | undefined): UnboundStatus => ({ pid, uptime });
    // Ten seconds later, ten seconds more uptime: the same process.
    assert.equal(restartedBetween(s(1, 100), t0, s(1, 110), t0 + 10_000), false);
    // Rounding of whole seconds is no restart.
    assert.equal(restartedBetween(s(1, 100), t0, s(1, 110), t0 + 10_999), false);
    // Another pid, an uptime going backwards, or a later start time (restarted between two polls).
    assert.equal(restartedBetween(s(1, 100), t0, s(2, 200), t0 + 100_000), true);
    assert.equal(restartedBetween(s(1, 100), t0, s(1, 3), t0 + 10_000), true);
    assert.equal(restartedBetween(s(undefined, 5), t0, s(undefined, 15), t0 + 60_000), true);
    // Nothing to compare.
    assert.equal(restartedBetween(s(undefined, undefined), t0, s(undefined, 3), t0 + 10_000), false);
  });
});

describe('recordLines', () => {
  it('gives each address and, inside a reverse zone, its PTR', () => {
    const h = 'h.dyn.example.';
    const records: AddrRecord[] = [
      { name: h, type: 'A', address: '192.0.2.1', ttl: 60 },
      { name: h, type: 'A', address: '198.51.100.1', ttl: 60 },
    ];
    assert.deepEqual(recordLines(records, ['2.0.192.in-addr.arpa.']), [
      `${h} 60 IN A 192.0.2.1`,
      `1.2.0.192.in-addr.arpa. 60 IN PTR ${h}`,
      `${h} 60 IN A 198.51.100.1`,
    ]);
  });
});
