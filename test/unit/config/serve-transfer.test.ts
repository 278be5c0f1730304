import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { chmod, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { loadDaemonConfig, parseDaemonConfig } from '../../../src/config/daemon.js';
import { ConfigError } from '../../../src/config/errors.js';
import type { ServeUpstreamConfig } from '../../../src/config/upstreams/serve.js';
import { zoneYaml } from '../../helpers/config-yaml.js';

const FILE = '/etc/nsregd/nsregd.yaml';
const U = 'zones."dyn.example.org".upstreams[0]';
const SECRET = Buffer.alloc(32, 3).toString('base64');

/** A daemon configuration with one zone served by the built-in zone server with `extra` set. */
function text(extra: Record<string, unknown>): string {
  const zone = { 'max-key-ttl': '1h', 'max-addr-ttl': '1h', 'allowed-nets': ['127.0.0.0/8'], upstreams: [{ type: 'serve', 'listen-port': 5353, ...extra }] };
  return `zones:\n${zoneYaml('dyn.example.org', zone)}`;
}

function parse(extra: Record<string, unknown>): { upstream: ServeUpstreamConfig; warnings: string[] } {
  const { config, warnings } = parseDaemonConfig(text(extra), FILE);
  const u = config.zones['dyn.example.org.']?.upstreams[0];
  if (u?.type !== 'serve') throw new Error('expected a serve upstream');
  return { upstream: u, warnings: warnings.map(String) };
}

const serve = (extra: Record<string, unknown>): ServeUpstreamConfig => parse(extra).upstream;

describe('serve upstream: zone transfers and SOA timers', () => {
  it('by default nothing may transfer; SOA timers 1m/1m/1w, minimum from negative-ttl', () => {
    const d = serve({});
    assert.deepEqual([d.transferKeys, d.allowTransfer], [[], []]);
    assert.deepEqual([d.soaRefresh, d.soaRetry, d.soaExpire, d.soaMinimum], [60_000, 60_000, 604_800_000, null]);
  });

  it('reads transfer-keys (algorithm as the nsupdate upstream: default hmac-sha256, trailing dot allowed), allow-transfer and the SOA timers', () => {
    const s = serve({
      'transfer-keys': [
        { name: 'xfr.example.org', secret: SECRET },
        { name: 'other.example.org.', algorithm: 'HMAC-SHA512.', secret: SECRET },
      ],
      'allow-transfer': ['192.0.2.0/24', '2001:db8::/32'],
      'soa-refresh': '5m',
      'soa-retry': '30s',
      'soa-expire': '672h',
      'soa-minimum': '10s',
    });
    assert.deepEqual(s.transferKeys, [
      { name: 'xfr.example.org.', algorithm: 'hmac-sha256', secret: SECRET },
      { name: 'other.example.org.', algorithm: 'hmac-sha512', secret: SECRET },
    ]);
    assert.deepEqual(s.allowTransfer.map(String), ['192.0.2.0/24', '2001:db8::/32']);
    assert.deepEqual([s.soaRefresh, s.soaRetry, s.soaExpire, s.soaMinimum], [300_000, 30_000, 672 * 3_600_000, 10_000]);
  });

  it('reads notify targets (port 53 when left out) and notify-key, which must name a transfer key', () => {
    assert.deepEqual([serve({}).notify, serve({}).notifyKey], [[], null]);
    const s = serve({
      'transfer-keys': [{ name: 'xfr.example.org', secret: SECRET }],
      notify: ['192.0.2.53@5353', '2001:db8::53', ' 192.0.2.54 '],
      'notify-key': 'XFR.example.org',
    });
    assert.deepEqual(s.notify, [
      { address: '192.0.2.53', port: 5353 },
      { address: '2001:db8::53', port: 53 },
      { address: '192.0.2.54', port: 53 },
    ]);
    assert.equal(s.notifyKey, 'xfr.example.org.');
  });

  it('warns about a short secret and an unknown key in a transfer key, as for the nsupdate upstream', () => {
    const { warnings } = parse({ 'transfer-keys': [{ name: 'k.example.', secret: Buffer.alloc(8).toString('base64'), colour: 'red' }] });
    assert.ok(warnings.some((w) => /transfer-keys\[0\]\.secret.*only 8 bytes/.test(w)), warnings.join('\n'));
    assert.ok(warnings.some((w) => /transfer-keys\[0\]\.colour.*unknown/.test(w)), warnings.join('\n'));
  });

  it('a file holding transfer-keys that others can read gets the tsig-secret mode warning', async () => {
    const dir = await mkdtemp(path.join(tmpdir(), 'nsregd-xfr-secret-'));
    try {
      const file = path.join(dir, 'nsregd.yaml');
      await writeFile(file, text({ 'transfer-keys': [{ name: 'k.example.', secret: SECRET }] }));
      await chmod(file, 0o644);
      const { warnings } = await loadDaemonConfig(file);
      assert.deepEqual(warnings.filter((w) => w.includes('mode')), [`${file}: holds a tsig-secret but its mode is 0644, readable by its group and other users; chmod 600 it`]);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  const bad: Array<[string, Record<string, unknown>, string]> = [
    ['transfer-keys[0].name', { 'transfer-keys': [{ secret: SECRET }] }, 'missing'],
    ['transfer-keys[0].secret', { 'transfer-keys': [{ name: 'k.example.' }] }, 'missing'],
    ['transfer-keys[0].secret', { 'transfer-keys': [{ name: 'k.example.', secret: 'not base64!' }] }, 'base64'],
    ['transfer-keys[0].algorithm', { 'transfer-keys': [{ name: 'k.example.', algorithm: 'hmac-md5', secret: SECRET }] }, 'invalid'],
    ['transfer-keys', { 'transfer-keys': [{ name: 'k.example', secret: SECRET }, { name: 'K.example.', secret: SECRET }] }, 'duplicate'],
    ['transfer-keys', { 'transfer-keys': 'k.example.' }, 'type'],
    ['allow-transfer[1]', { 'allow-transfer': ['192.0.2.0/24', 'nowhere'] }, 'cidr'],
    ['soa-refresh', { 'soa-refresh': 'soon' }, 'duration'],
    ['notify[0]', { notify: ['192.0.2.1@70000'] }, 'invalid'],
    ['notify[0]', { notify: ['ns.example.org@53'] }, 'address'],
    ['notify-key', { notify: ['192.0.2.1'], 'notify-key': 'nokey.example.' }, 'invalid'],
    ['soa-expire', { 'soa-expire': '0s' }, 'range'],
    ['soa-retry', { 'soa-retry': '500ms' }, 'range'],
  ];
  it('refuses bad transfer keys, networks and SOA timers, naming the key path', () => {
    for (const [key, extra, reason] of bad) {
      const err = (() => {
        try {
          serve(extra);
        } catch (e) {
          return e;
        }
        return undefined;
      })();
      assert.ok(err instanceof ConfigError, `${JSON.stringify(extra)} is refused`);
      assert.deepEqual([err.keyPath, err.reason], [`${U}.${key}`, reason], JSON.stringify(extra));
    }
  });
});
