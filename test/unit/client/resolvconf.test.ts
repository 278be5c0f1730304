import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { parseResolvConf, systemNameserver } from '../../../src/client/resolvconf.js';

describe('parseResolvConf', () => {
  const cases: Array<[string, string, { host: string; port: number } | null]> = [
    ['plain IPv4', 'nameserver 192.0.2.53\n', { host: '192.0.2.53', port: 53 }],
    ['first of several', 'nameserver 192.0.2.1\nnameserver 192.0.2.2\n', { host: '192.0.2.1', port: 53 }],
    ['IPv6', 'nameserver 2001:DB8::53\n', { host: '2001:db8::53', port: 53 }],
    ['bracketed IPv6', 'nameserver [2001:db8::53]\n', { host: '2001:db8::53', port: 53 }],
    ['IPv6 with zone index', 'nameserver fe80::1%eth0\n', { host: 'fe80::1%eth0', port: 53 }],
    ['bracketed IPv6 with zone index', 'nameserver [fe80::1%wlan0]\n', { host: 'fe80::1%wlan0', port: 53 }],
    ['# comment lines', '# nameserver 192.0.2.9\nnameserver 192.0.2.10\n', { host: '192.0.2.10', port: 53 }],
    ['; comment lines', '; nameserver 192.0.2.9\nnameserver 192.0.2.10\n', { host: '192.0.2.10', port: 53 }],
    ['trailing comment', 'nameserver 192.0.2.11 # office\n', { host: '192.0.2.11', port: 53 }],
    ['tabs, other keywords, CRLF', 'search example.org\r\noptions edns0\r\nnameserver\t192.0.2.12\r\n', { host: '192.0.2.12', port: 53 }],
    ['leading blanks', '   nameserver 192.0.2.13\n', { host: '192.0.2.13', port: 53 }],
    ['skips unusable entries', 'nameserver not-an-ip\nnameserver 192.0.2.14\n', { host: '192.0.2.14', port: 53 }],
    ['zone index on IPv4 is not an address', 'nameserver 192.0.2.1%eth0\n', null],
    ['keyword only', 'nameserver\n', null],
    ['no nameserver', 'search example.org\n', null],
    ['empty', '', null],
  ];
  for (const [label, text, want] of cases) {
    it(label, () => {
      assert.deepEqual(parseResolvConf(text), want);
    });
  }
});

describe('systemNameserver', () => {
  let dir: string;
  before(async () => {
    dir = await mkdtemp(path.join(tmpdir(), 'nsregc-resolv-'));
  });
  after(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it('reads the file', async () => {
    const f = path.join(dir, 'resolv.conf');
    await writeFile(f, 'nameserver ::1\n');
    assert.deepEqual(await systemNameserver(f), { host: '::1', port: 53 });
  });

  it('reports a missing file and a file without nameserver', async () => {
    await assert.rejects(systemNameserver(path.join(dir, 'absent')), { code: 'ERR_NSREGC_RESOLV_CONF', reason: 'unreadable' });
    const f = path.join(dir, 'empty.conf');
    await writeFile(f, '# nothing\n');
    await assert.rejects(systemNameserver(f), { code: 'ERR_NSREGC_RESOLV_CONF', reason: 'no-nameserver' });
  });
});
