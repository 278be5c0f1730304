/**
 * The `store:` section: the files store by default, every accepted form of
 * the etcd store, every refusal naming file, key path and value, and no
 * secret (password, TLS key) in any error, warning or `--check-config`
 * line.
 */
import { strict as assert } from 'node:assert';
import { chmodSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { after, describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { configSummary } from '../../../src/cli/nsregd.js';
import { loadDaemonConfig, parseDaemonConfig, type StoreConfig } from '../../../src/config/daemon.js';
import { ConfigError, type ConfigErrorReason } from '../../../src/config/errors.js';
import { ETCD_MAX_RECORDS_PER_NAME, STORE_DEFAULTS, storeEntries } from '../../../src/config/store.js';

const DIR = mkdtempSync(path.join(tmpdir(), 'nsregd-store-config-'));
after(() => rmSync(DIR, { recursive: true, force: true }));
const FILE = path.join(DIR, 'nsregd.yaml');

const SECRET = 'pa55-word-never-shown';
const KEY_BODY = 'MHcCAQEEIKEYMATERIALNEVERSHOWNxxxxxxxxxxxxxxxxxxxxxxx';
const CERT = '-----BEGIN CERTIFICATE-----\nMIIBcertificate\n-----END CERTIFICATE-----\n';
const KEY = `-----BEGIN EC PRIVATE KEY-----\n${KEY_BODY}\n-----END EC PRIVATE KEY-----\n`;

function write(name: string, text: string, mode = 0o600): string {
  const file = path.join(DIR, name);
  writeFileSync(file, text);
  chmodSync(file, mode);
  return file;
}
write('ca.pem', CERT, 0o644);
write('client.pem', CERT, 0o644);
write('client.key', KEY);
write('pkcs8.key', `-----BEGIN EC PARAMETERS-----\nBggqhkjOPQMBBw==\n-----END EC PARAMETERS-----\n${KEY.replaceAll('EC PRIVATE', 'PRIVATE')}`);
write('password', `${SECRET}\n`);
write('empty-password', '\n');
write('not-pem', `just text ${KEY_BODY}\n`);
write('encrypted.key', `-----BEGIN ENCRYPTED PRIVATE KEY-----\n${KEY_BODY}\n-----END ENCRYPTED PRIVATE KEY-----\n`);
write('big.pem', CERT + 'x'.repeat(1 << 20));
mkdirSync(path.join(DIR, 'a-directory'));

/** A zone that draws no warnings of its own. */
const ZONES = {
  'dyn.example.org': { 'max-key-ttl': '1h', 'max-addr-ttl': '1h', 'allowed-nets': ['127.0.0.0/8'], upstreams: [{ type: 'serve', 'listen-addr': '127.0.0.1' }] },
};

function parse(store: unknown): ReturnType<typeof parseDaemonConfig> {
  return parseDaemonConfig(JSON.stringify({ ...(store === undefined ? {} : { store }), zones: ZONES }), FILE);
}

function etcd(more: Record<string, unknown> = {}): Record<string, unknown> {
  return { type: 'etcd', endpoints: ['http://127.0.0.1:2379'], ...more };
}

const TLS = { ca: 'ca.pem', cert: 'client.pem', key: 'client.key' };

function refuses(store: unknown, keyPath: string, reason: ConfigErrorReason, problem?: RegExp): void {
  assert.throws(
    () => parse(store),
    (err: unknown) => {
      assert.ok(err instanceof ConfigError, String(err));
      assert.equal(err.reason, reason, err.message);
      assert.equal(err.keyPath, keyPath, err.message);
      assert.ok(err.message.startsWith(`${FILE}: ${keyPath}: `), err.message);
      if (problem !== undefined) assert.match(err.problem, problem);
      assert.ok(!err.message.includes(SECRET) && !err.message.includes(KEY_BODY), `a secret in: ${err.message}`);
      return true;
    },
  );
}

describe('daemon config: store', () => {
  it('is the files store when absent, empty or type: files (any case); frozen', () => {
    for (const store of [undefined, null, {}, { type: 'files' }, { Type: 'FILES' }]) {
      const { config, warnings } = parse(store);
      assert.deepEqual(config.store, { type: 'files' });
      assert.deepEqual(warnings, []);
      assert.ok(Object.isFrozen(config.store));
    }
    assert.deepEqual(parseDaemonConfig('store:\nzones: {}\n', FILE).config.store, { type: 'files' });
    assert.equal(STORE_DEFAULTS.type, 'files');
  });

  it('an etcd store with only endpoints takes every default', () => {
    const { config, warnings } = parse(etcd());
    assert.deepEqual(warnings, []);
    assert.deepEqual(config.store, { type: 'etcd', endpoints: ['http://127.0.0.1:2379'], prefix: '/nsregd', timeoutMs: 2000, leaseMs: 2000 });
    assert.ok(Object.isFrozen(config.store) && config.store.type === 'etcd' && Object.isFrozen(config.store.endpoints));
    assert.deepEqual([STORE_DEFAULTS.prefix, STORE_DEFAULTS.timeout, STORE_DEFAULTS.lease], ['/nsregd', 2000, 2000]);
  });

  it('reads every key: TLS files and password-file become their contents', () => {
    const { config, warnings } = parse({
      type: 'ETCD',
      endpoints: ['https://etcd1.example.org:2379', 'HTTPS://[2001:DB8::1]:2379/', 'https://192.0.2.7:12379'],
      prefix: '/site/a-b_c.d',
      tls: TLS,
      username: 'nsregd',
      'password-file': 'password',
      timeout: '500ms',
      lease: '5s',
    });
    assert.deepEqual(warnings, []);
    const expected: StoreConfig = {
      type: 'etcd',
      endpoints: ['https://etcd1.example.org:2379', 'https://[2001:db8::1]:2379', 'https://192.0.2.7:12379'],
      prefix: '/site/a-b_c.d',
      tls: { ca: CERT, cert: CERT, key: KEY },
      username: 'nsregd',
      password: SECRET,
      timeoutMs: 500,
      leaseMs: 5000,
    };
    assert.deepEqual(config.store, expected);
  });

  it('accepts: one endpoint as a string, a CA alone, cert and key alone, a PKCS#8 key with EC parameters, an inline password', () => {
    const a = parse(etcd({ endpoints: 'https://a.example:2379 https://b.example:2379', tls: { ca: 'ca.pem' } })).config.store;
    assert.ok(a.type === 'etcd');
    assert.deepEqual(a.endpoints, ['https://a.example:2379', 'https://b.example:2379']);
    assert.deepEqual(a.tls, { ca: CERT });
    const b = parse(etcd({ endpoints: ['https://localhost:2379'], tls: { cert: 'client.pem', key: 'pkcs8.key' } })).config.store;
    assert.ok(b.type === 'etcd' && b.tls?.key?.includes('BEGIN PRIVATE KEY') === true && b.tls.ca === undefined);
    const c = parse(etcd({ endpoints: ['https://localhost:2379'], username: 'u', password: SECRET })).config.store;
    assert.ok(c.type === 'etcd' && c.password === SECRET && c.username === 'u');
    // Bounds of timeout and lease.
    for (const [timeout, lease] of [['100ms', '1s'], ['60s', '30s'], ['1.5s', '2000ms']]) {
      const s = parse(etcd({ timeout, lease })).config.store;
      assert.ok(s.type === 'etcd');
    }
  });

  it('warns: etcd keys under type: files, a password over http://, unknown keys, a readable key or password file', () => {
    assert.deepEqual(parse({ type: 'files', endpoints: ['http://127.0.0.1:2379'], Prefix: '/x' }).warnings, [
      `${FILE}: store.endpoints: only type: etcd reads it; ignored`,
      `${FILE}: store.Prefix: only type: etcd reads it; ignored`,
    ]);
    assert.deepEqual(parse(etcd({ username: 'u', 'password-file': 'password' })).warnings, [
      `${FILE}: store.username: the password goes to etcd in clear over http://; use https://`,
    ]);
    assert.deepEqual(parse(etcd({ endpoint: 'x' })).warnings, [`${FILE}: store.endpoint: unknown store key, ignored`]);
    assert.deepEqual(parse(etcd({ endpoints: ['https://e:1'], tls: { ...TLS, bogus: 1 } })).warnings, [`${FILE}: store.tls.bogus: unknown tls key, ignored`]);
    const readableKey = write('readable.key', KEY, 0o640);
    const readablePassword = write('readable-password', SECRET, 0o604);
    const w = parse(etcd({ endpoints: ['https://e:1'], tls: { cert: 'client.pem', key: readableKey }, username: 'u', 'password-file': readablePassword })).warnings;
    assert.deepEqual(w, [
      `${FILE}: store.tls.key: ${readableKey} holds a secret but its mode is 0640, readable by its group; chmod 600 it`,
      `${FILE}: store.password-file: ${readablePassword} holds a secret but its mode is 0604, readable by other users; chmod 600 it`,
    ]);
  });

  it('a configuration file holding the store password that others can read gets a warning; a password-file does not count', async () => {
    const inline = write('inline.yaml', JSON.stringify({ store: etcd({ endpoints: ['https://e:1'], username: 'u', password: SECRET }), zones: ZONES }), 0o644);
    const { warnings } = await loadDaemonConfig(inline);
    assert.deepEqual(warnings, [`${inline}: holds the store password but its mode is 0644, readable by its group and other users; chmod 600 it`]);
    assert.ok(!warnings.join('\n').includes(SECRET));
    const ok = write('inline-600.yaml', JSON.stringify({ store: etcd({ endpoints: ['https://e:1'], username: 'u', password: SECRET }), zones: ZONES }), 0o600);
    assert.deepEqual((await loadDaemonConfig(ok)).warnings, []);
    const viaFile = write('via-file.yaml', JSON.stringify({ store: etcd({ endpoints: ['https://e:1'], username: 'u', 'password-file': 'password' }), zones: ZONES }), 0o644);
    assert.deepEqual((await loadDaemonConfig(viaFile)).warnings, []);
  });

  it('nsregd.example.yaml: the files store, and its commented etcd keys switched on load with their defaults', () => {
    const example = fileURLToPath(new URL('../../../../nsregd.example.yaml', import.meta.url));
    const text = readFileSync(example, 'utf8');
    assert.deepEqual(parseDaemonConfig(text, example).config.store, { type: 'files' });
    // Uncomment the one-line keys of the store block (tls and password-file name files that do not exist here).
    const etcdText = text
      .replace(/^store:\n {2}type: files$/m, 'store:\n  type: etcd')
      .replace(/^ {2}# (endpoints|prefix|username|timeout|lease): /gm, '  $1: ')
      .replace(/^( {2}username: .*)$/m, `$1\n  password: ${SECRET}`);
    const { config, warnings } = parseDaemonConfig(etcdText, example);
    assert.deepEqual(warnings, []);
    assert.deepEqual(config.store, {
      type: 'etcd',
      endpoints: ['https://etcd1.example.org:2379', 'https://etcd2.example.org:2379'],
      prefix: STORE_DEFAULTS.prefix,
      username: 'nsregd',
      password: SECRET,
      timeoutMs: STORE_DEFAULTS.timeout,
      leaseMs: STORE_DEFAULTS.lease,
    });
  });

  it('with etcd a name holds at most ETCD_MAX_RECORDS_PER_NAME records (one transaction each): a larger bound is refused at the key that set it', () => {
    const zone = ZONES['dyn.example.org'];
    const doc = (limits: Record<string, unknown>, zoneMore: Record<string, unknown>, store: unknown = etcd()): string =>
      JSON.stringify({ store, limits, zones: { 'dyn.example.org': { ...zone, ...zoneMore } } });
    const refusedAt = (text: string, keyPath: string): void =>
      assert.throws(
        () => parseDaemonConfig(text, FILE),
        (err: unknown) => err instanceof ConfigError && err.reason === 'range' && err.keyPath === keyPath && err.message.includes(String(ETCD_MAX_RECORDS_PER_NAME)),
      );
    const limit = ETCD_MAX_RECORDS_PER_NAME;
    assert.equal(parseDaemonConfig(doc({ 'records-per-name': limit }, {}), FILE).config.zones['dyn.example.org.'].maxRecordsPerName, limit);
    refusedAt(doc({ 'records-per-name': limit + 1 }, {}), 'limits.records-per-name');
    refusedAt(doc({}, { 'max-records-per-name': limit + 1 }), 'zones."dyn.example.org".max-records-per-name');
    // A zone of its own bound within it does not inherit the default's, and the files store has none of this bound.
    assert.equal(parseDaemonConfig(doc({ 'records-per-name': 4096 }, { 'max-records-per-name': 8 }), FILE).config.zones['dyn.example.org.'].maxRecordsPerName, 8);
    assert.equal(parseDaemonConfig(doc({}, { 'max-records-per-name': 4096 }, { type: 'files' }), FILE).config.zones['dyn.example.org.'].maxRecordsPerName, 4096);
  });

  it('--check-config shows the settings, never a secret', () => {
    assert.ok(configSummary(parse(undefined).config).split('\n').includes('store: type: files'));
    const { config } = parse(etcd({ endpoints: ['https://e1:2379', 'https://e2:2379'], tls: TLS, username: 'nsregd', password: SECRET, lease: '3s' }));
    const summary = configSummary(config);
    assert.ok(
      summary.split('\n').includes('store: type: etcd, endpoints: https://e1:2379 https://e2:2379, prefix: /nsregd, tls: ca+cert+key, username: nsregd, password: (set), timeout: 2s, lease: 3s'),
      summary,
    );
    assert.ok(!summary.includes(SECRET) && !summary.includes(KEY_BODY));
    assert.deepEqual(storeEntries({ type: 'etcd', endpoints: ['http://e:1'], prefix: '/p', tls: { ca: CERT }, timeoutMs: 150, leaseMs: 1000 }), [
      ['type', 'etcd'],
      ['endpoints', 'http://e:1'],
      ['prefix', '/p'],
      ['tls', 'ca'],
      ['timeout', '150ms'],
      ['lease', '1s'],
    ]);
  });

  describe('refusals', () => {
    it('type', () => {
      refuses({ type: 'consul' }, 'store.type', 'invalid', /one of files, etcd/);
      refuses({ endpoints: ['http://127.0.0.1:2379'] }, 'store.type', 'missing', /required with endpoints/);
      refuses('etcd', 'store', 'type');
      refuses(['etcd'], 'store', 'type');
    });

    it('endpoints: missing, empty, not a list of strings', () => {
      refuses({ type: 'etcd' }, 'store.endpoints', 'missing');
      refuses(etcd({ endpoints: [] }), 'store.endpoints', 'missing', /at least one/);
      refuses(etcd({ endpoints: [{ host: 'x' }] }), 'store.endpoints[0]', 'type');
      refuses(etcd({ endpoints: true }), 'store.endpoints', 'type');
    });

    const badEndpoints = [
      '127.0.0.1:2379',
      'etcd1:2379',
      'ftp://127.0.0.1:2379',
      'http://127.0.0.1',
      'http://127.0.0.1:',
      'http://127.0.0.1:0',
      'http://127.0.0.1:65536',
      'http://127.0.0.1:2379/v3',
      'http://127.0.0.1:2379/?x=1',
      'http://127.0.0.1:2379#f',
      'http://user:pw@127.0.0.1:2379',
      'http://::1:2379',
      'http://[::g]:2379',
      'http://[127.0.0.1]:2379',
      'http://:2379',
      'http://1.2.3:2379',
      'http://bad_host:2379',
      'http://-x.example:2379',
      'http:/127.0.0.1:2379',
    ];
    for (const ep of badEndpoints) {
      it(`endpoint ${JSON.stringify(ep)}`, () => {
        refuses(etcd({ endpoints: ['http://127.0.0.1:2379', ep] }), 'store.endpoints[1]', 'invalid', /http:\/\/HOST:PORT/);
      });
    }

    it('endpoints: twice (after normalising), mixed schemes', () => {
      refuses(etcd({ endpoints: ['http://E1:2379', 'http://e1:2379/'] }), 'store.endpoints[1]', 'duplicate');
      refuses(etcd({ endpoints: ['http://e1:2379', 'https://e2:2379'] }), 'store.endpoints[1]', 'invalid', /one scheme \(the first is http:\/\/\)/);
    });

    for (const prefix of ['nsregd', '/nsregd/', '/', '/a//b', '/with space', '/caf\u00e9', '/tab\there', `/${'x'.repeat(256)}`, '']) {
      it(`prefix ${JSON.stringify(prefix).slice(0, 30)}`, () => refuses(etcd({ prefix }), 'store.prefix', 'invalid'));
    }

    it('timeout and lease out of bounds, without a unit, not whole', () => {
      for (const timeout of ['99ms', '61s', '0s', '-1s']) refuses(etcd({ timeout }), 'store.timeout', 'range');
      refuses(etcd({ timeout: '100500us' }), 'store.timeout', 'range', /whole number of milliseconds/);
      refuses(etcd({ timeout: 2 }), 'store.timeout', 'duration');
      for (const lease of ['999ms', '31s', '0s']) refuses(etcd({ lease }), 'store.lease', 'range');
      refuses(etcd({ lease: '1500ms' }), 'store.lease', 'range', /whole number of seconds/);
      refuses(etcd({ lease: 'soon' }), 'store.lease', 'duration');
    });

    it('tls: with http:// endpoints, empty, cert without key and key without cert, not a mapping', () => {
      refuses(etcd({ tls: TLS }), 'store.tls', 'invalid', /needs https:\/\//);
      const https = { endpoints: ['https://127.0.0.1:2379'] };
      refuses(etcd({ ...https, tls: {} }), 'store.tls', 'missing');
      refuses(etcd({ ...https, tls: { ca: 'ca.pem', cert: 'client.pem' } }), 'store.tls.key', 'missing', /together/);
      refuses(etcd({ ...https, tls: { key: 'client.key' } }), 'store.tls.cert', 'missing', /together/);
      refuses(etcd({ ...https, tls: 'ca.pem' }), 'store.tls', 'type');
    });

    it('tls files: missing, a directory, too large, not PEM, the wrong kind, an encrypted key; contents never shown', () => {
      const https = { endpoints: ['https://127.0.0.1:2379'] };
      refuses(etcd({ ...https, tls: { ca: 'nope.pem' } }), 'store.tls.ca', 'read', /ENOENT/);
      refuses(etcd({ ...https, tls: { ca: 'a-directory' } }), 'store.tls.ca', 'read', /not a regular file/);
      refuses(etcd({ ...https, tls: { ca: 'big.pem' } }), 'store.tls.ca', 'range', /at most 1048576/);
      refuses(etcd({ ...https, tls: { ca: 'not-pem' } }), 'store.tls.ca', 'invalid', /does not hold a certificate in PEM form/);
      refuses(etcd({ ...https, tls: { ca: 'client.key' } }), 'store.tls.ca', 'invalid', /a certificate/);
      refuses(etcd({ ...https, tls: { cert: 'client.pem', key: 'not-pem' } }), 'store.tls.key', 'invalid', /unencrypted private key/);
      refuses(etcd({ ...https, tls: { cert: 'client.pem', key: 'encrypted.key' } }), 'store.tls.key', 'invalid', /unencrypted private key/);
      refuses(etcd({ ...https, tls: { cert: 'client.key', key: 'client.key' } }), 'store.tls.cert', 'invalid');
      refuses(etcd({ ...https, tls: { ca: '' } }), 'store.tls.ca', 'invalid');
    });

    it('username and password: one without the other, both password forms, bad values; the password never shown', () => {
      refuses(etcd({ username: 'u' }), 'store.password', 'missing', /password or password-file/);
      refuses(etcd({ password: SECRET }), 'store.username', 'missing');
      refuses(etcd({ 'password-file': 'password' }), 'store.username', 'missing');
      refuses(etcd({ username: 'u', password: SECRET, 'password-file': 'password' }), 'store.password-file', 'invalid', /not both/);
      refuses(etcd({ username: 'u', password: '' }), 'store.password', 'type');
      refuses(etcd({ username: 'u', password: 12345 }), 'store.password', 'type', /quote it/);
      refuses(etcd({ username: 'u', password: [SECRET] }), 'store.password', 'type');
      refuses(etcd({ username: ' ', password: SECRET }), 'store.username', 'invalid');
      refuses(etcd({ username: 'u', 'password-file': 'empty-password' }), 'store.password-file', 'invalid', /is empty/);
      refuses(etcd({ username: 'u', 'password-file': 'nope' }), 'store.password-file', 'read', /ENOENT/);
      refuses(etcd({ username: 'u', 'password-file': 'big.pem' }), 'store.password-file', 'range');
      refuses(etcd({ username: 'u', password: SECRET, timeout: 'x' }), 'store.timeout', 'duration');
    });
  });
});
