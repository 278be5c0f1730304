import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import * as path from 'node:path';
import { parseDaemonConfig, loadDaemonConfig, DAEMON_DEFAULTS } from '../../../src/config/daemon.js';
import { ConfigError } from '../../../src/config/errors.js';

const FILE = '/etc/nsregd/nsregd.yaml';

type Tree = Record<string, unknown>;

function nsupdate(): Tree {
  return {
    type: 'nsupdate',
    hostname: '127.0.0.1',
    port: 53,
    timeout: '10s',
    zone: 'Example.org',
    'record-ttl': '60s',
    'tsig-name': 'nsregd',
    'tsig-secret': 'c2VjcmV0LWZvci10aGUtZXhhbXBsZS1vbmx5IQ==',
  };
}

function unbound(): Tree {
  return {
    type: 'unbound',
    hostname: 'localhost',
    'client-cert': 'certs/unbound_control.pem',
    'client-key': '/etc/unbound/unbound_control.key',
    'server-cert': '/etc/unbound/unbound_server.pem',
    'server-name': 'unbound',
    'zone-type': 'typetransparent',
    timeout: '1s',
    'record-ttl': '60s',
  };
}

function base(): Tree {
  return {
    zones: {
      'dynamic.example.org': {
        'max-key-ttl': '4320h',
        'max-addr-ttl': '1h',
        'allowed-nets': ['127.0.0.0/8', '::1/128'],
        upstreams: [nsupdate()],
      },
    },
  };
}

function zoneOf(t: Tree): Tree {
  return (t.zones as Tree)['dynamic.example.org'] as Tree;
}
function upstreamOf(t: Tree, i = 0): Tree {
  return (zoneOf(t).upstreams as Tree[])[i];
}

function parse(t: Tree): ReturnType<typeof parseDaemonConfig> {
  return parseDaemonConfig(JSON.stringify(t), FILE);
}

describe('daemon config: good input', () => {
  it('fills defaults from the table', () => {
    const { config, warnings } = parse(base());
    assert.equal(config.listenAddr, DAEMON_DEFAULTS['listen-addr']);
    assert.equal(config.listenPort, 8053);
    assert.equal(config.dataDir, '/var/lib/nsregd');
    assert.equal(config.debug, false);
    assert.equal(config.file, FILE);
    const zone = config.zones['dynamic.example.org.'];
    assert.ok(zone);
    assert.equal(zone.name, 'dynamic.example.org.');
    assert.equal(zone.maxKeyTtl, 4320 * 3_600_000);
    assert.equal(zone.maxAddrTtl, 3_600_000);
    assert.deepEqual(zone.reservedNames, []);
    assert.equal(zone.allowAnyAddr, false);
    assert.deepEqual(zone.allowedNets.map(String), ['127.0.0.0/8', '::1/128']);
    const up = zone.upstreams[0];
    assert.ok(up && up.type === 'nsupdate');
    assert.equal(up.zone, 'example.org.');
    assert.equal(up.tsigName, 'nsregd.');
    assert.equal(up.tsigAlgorithm, 'hmac-sha256');
    assert.equal(up.tcp, false);
    assert.equal(up.keepRecords, false);
    assert.deepEqual(up.reverseZones, []);
    assert.deepEqual(up.excludeNets, []);
    assert.equal(up.timeout, 10_000);
    assert.equal(up.recordTtl, 60_000);
    assert.deepEqual(warnings, []);
  });

  it('returns a deeply frozen object', () => {
    const { config } = parse(base());
    assert.ok(Object.isFrozen(config));
    assert.ok(Object.isFrozen(config.zones));
    const zone = config.zones['dynamic.example.org.'];
    assert.ok(zone && Object.isFrozen(zone) && Object.isFrozen(zone.upstreams) && Object.isFrozen(zone.allowedNets));
    assert.ok(Object.isFrozen(zone.upstreams[0]));
    assert.throws(() => {
      (config as { listenPort: number }).listenPort = 1;
    }, TypeError);
  });

  it('normalises zone names, reverse zones and labels; resolves paths against the file', () => {
    const t = base();
    t['data-dir'] = 'data';
    t['Listen-Port'] = '5353'; // case-insensitive keys, numeric string port (viper compatible)
    const z = zoneOf(t);
    z['reserved-names'] = ['LocalHost', 'www'];
    z['allow-any-addr'] = 'yes';
    const ub = unbound();
    ub['reverse-zones'] = ['2.0.192.IN-ADDR.ARPA.'];
    z.upstreams = [{ ...nsupdate(), 'tsig-algorithm': 'HMAC-SHA512.', tcp: true }, ub, { type: 'disabled', junk: 1 }];
    const renamed: Tree = { zones: { 'Dynamic.Example.ORG.': z }, 'data-dir': 'data', 'Listen-Port': '5353' };
    const { config } = parse(renamed);
    assert.equal(config.dataDir, path.join(path.dirname(FILE), 'data'));
    assert.equal(config.listenPort, 5353);
    const zone = config.zones['dynamic.example.org.'];
    assert.ok(zone);
    assert.deepEqual(zone.reservedNames, ['localhost', 'www']);
    assert.equal(zone.allowAnyAddr, true);
    assert.equal(zone.upstreams.length, 2);
    assert.equal(zone.disabledUpstreams, 1);
    const [ns, u] = zone.upstreams;
    assert.ok(ns?.type === 'nsupdate' && u?.type === 'unbound');
    assert.equal(ns.tsigAlgorithm, 'hmac-sha512');
    assert.equal(ns.tcp, true);
    assert.equal(u.port, 8953);
    assert.equal(u.clientCert, '/etc/nsregd/certs/unbound_control.pem');
    assert.equal(u.clientKey, '/etc/unbound/unbound_control.key');
    assert.deepEqual(u.reverseZones, ['2.0.192.in-addr.arpa.']);
  });

  it('allows an nsupdate upstream without zone when reverse-zones is set', () => {
    const t = base();
    const u = upstreamOf(t);
    delete u.zone;
    u['reverse-zones'] = ['42.10.in-addr.arpa'];
    const up = parse(t).config.zones['dynamic.example.org.']?.upstreams[0];
    assert.ok(up?.type === 'nsupdate');
    assert.equal(up.zone, null);
    assert.deepEqual(up.reverseZones, ['42.10.in-addr.arpa.']);
  });

  it('warns (does not fail) on unknown top-level, zone and upstream keys', () => {
    const t = base();
    t.colour = 'blue';
    zoneOf(t)['max-ttl'] = '1h';
    upstreamOf(t).flavour = 'x';
    const { warnings } = parse(t);
    assert.equal(warnings.length, 3);
    assert.ok(warnings.some((w) => w.includes(': colour: ')));
    assert.ok(warnings.some((w) => w.includes('zones."dynamic.example.org".max-ttl')));
    assert.ok(warnings.some((w) => w.includes('zones."dynamic.example.org".upstreams[0].flavour')));
  });

  it('accepts a YAML file with comments and an empty zones map (with a warning)', () => {
    const { config, warnings } = parseDaemonConfig('# nothing yet\nzones:\n', FILE);
    assert.deepEqual(Object.keys(config.zones), []);
    assert.equal(warnings.length, 1);
  });
});

describe('daemon config: bad input', () => {
  const Z = 'zones."dynamic.example.org"';
  const U = `${Z}.upstreams[0]`;
  const cases: { name: string; edit: (t: Tree) => void; reason: string; keyPath: string }[] = [
    { name: 'missing max-key-ttl', edit: (t) => delete zoneOf(t)['max-key-ttl'], reason: 'missing', keyPath: `${Z}.max-key-ttl` },
    { name: 'null max-addr-ttl', edit: (t) => (zoneOf(t)['max-addr-ttl'] = null), reason: 'missing', keyPath: `${Z}.max-addr-ttl` },
    { name: 'bare number duration', edit: (t) => (zoneOf(t)['max-addr-ttl'] = 3600), reason: 'duration', keyPath: `${Z}.max-addr-ttl` },
    { name: 'bad duration', edit: (t) => (zoneOf(t)['max-key-ttl'] = '6 months'), reason: 'duration', keyPath: `${Z}.max-key-ttl` },
    { name: 'zero duration', edit: (t) => (upstreamOf(t).timeout = '0s'), reason: 'range', keyPath: `${U}.timeout` },
    { name: 'bad CIDR', edit: (t) => (zoneOf(t)['allowed-nets'] = ['127.0.0.0/8', '10.0.0.0/33']), reason: 'cidr', keyPath: `${Z}.allowed-nets[1]` },
    { name: 'bad exclude-nets', edit: (t) => (upstreamOf(t)['exclude-nets'] = ['nope']), reason: 'cidr', keyPath: `${U}.exclude-nets[0]` },
    { name: 'reserved name with a dot', edit: (t) => (zoneOf(t)['reserved-names'] = ['a.b']), reason: 'name', keyPath: `${Z}.reserved-names[0]` },
    { name: 'unknown upstream type', edit: (t) => (upstreamOf(t).type = 'powerdns'), reason: 'unknown-type', keyPath: `${U}.type` },
    { name: 'missing upstream type', edit: (t) => delete upstreamOf(t).type, reason: 'missing', keyPath: `${U}.type` },
    { name: 'upstream not a mapping', edit: (t) => (zoneOf(t).upstreams = ['nsupdate']), reason: 'type', keyPath: `${U}` },
    { name: 'upstreams not a list', edit: (t) => (zoneOf(t).upstreams = nsupdate()), reason: 'type', keyPath: `${Z}.upstreams` },
    { name: 'missing hostname', edit: (t) => delete upstreamOf(t).hostname, reason: 'missing', keyPath: `${U}.hostname` },
    { name: 'missing port', edit: (t) => delete upstreamOf(t).port, reason: 'missing', keyPath: `${U}.port` },
    { name: 'port out of range', edit: (t) => (upstreamOf(t).port = 70000), reason: 'range', keyPath: `${U}.port` },
    { name: 'port zero', edit: (t) => (upstreamOf(t).port = 0), reason: 'range', keyPath: `${U}.port` },
    { name: 'port not a number', edit: (t) => (upstreamOf(t).port = 'domain'), reason: 'type', keyPath: `${U}.port` },
    { name: 'missing timeout', edit: (t) => delete upstreamOf(t).timeout, reason: 'missing', keyPath: `${U}.timeout` },
    { name: 'missing record-ttl', edit: (t) => delete upstreamOf(t)['record-ttl'], reason: 'missing', keyPath: `${U}.record-ttl` },
    { name: 'missing tsig-name', edit: (t) => delete upstreamOf(t)['tsig-name'], reason: 'missing', keyPath: `${U}.tsig-name` },
    { name: 'missing tsig-secret', edit: (t) => delete upstreamOf(t)['tsig-secret'], reason: 'missing', keyPath: `${U}.tsig-secret` },
    { name: 'non-base64 secret', edit: (t) => (upstreamOf(t)['tsig-secret'] = 'not base64!'), reason: 'base64', keyPath: `${U}.tsig-secret` },
    { name: 'unknown TSIG algorithm', edit: (t) => (upstreamOf(t)['tsig-algorithm'] = 'hmac-md5'), reason: 'invalid', keyPath: `${U}.tsig-algorithm` },
    { name: 'missing zone without reverse-zones', edit: (t) => delete upstreamOf(t).zone, reason: 'missing', keyPath: `${U}.zone` },
    { name: 'bad bool', edit: (t) => (upstreamOf(t).tcp = 'maybe'), reason: 'type', keyPath: `${U}.tcp` },
    { name: 'bad reverse zone', edit: (t) => (upstreamOf(t)['reverse-zones'] = ['a..b']), reason: 'name', keyPath: `${U}.reverse-zones[0]` },
    { name: 'unbound missing server-cert', edit: (t) => { const u = unbound(); delete u['server-cert']; zoneOf(t).upstreams = [u]; }, reason: 'missing', keyPath: `${U}.server-cert` },
    { name: 'unbound missing zone-type', edit: (t) => { const u = unbound(); delete u['zone-type']; zoneOf(t).upstreams = [u]; }, reason: 'missing', keyPath: `${U}.zone-type` },
    { name: 'bad zone name', edit: (t) => ((t.zones as Tree)['bad..zone'] = zoneOf(t)), reason: 'name', keyPath: 'zones."bad..zone"' },
    { name: 'zone configured twice', edit: (t) => ((t.zones as Tree)['dynamic.example.org.'] = zoneOf(t)), reason: 'duplicate', keyPath: 'zones."dynamic.example.org."' },
    { name: 'zone not a mapping', edit: (t) => ((t.zones as Tree)['dynamic.example.org'] = ['x']), reason: 'type', keyPath: Z },
    { name: 'zones not a mapping', edit: (t) => (t.zones = ['dynamic.example.org']), reason: 'type', keyPath: 'zones' },
    { name: 'listen-port out of range', edit: (t) => (t['listen-port'] = 65536), reason: 'range', keyPath: 'listen-port' },
    { name: 'listen-addr a list', edit: (t) => (t['listen-addr'] = ['a']), reason: 'type', keyPath: 'listen-addr' },
    { name: 'duplicate key after case folding', edit: (t) => (t.Debug = true, t.debug = false), reason: 'duplicate', keyPath: 'debug' },
  ];
  for (const c of cases) {
    it(`${c.name} → ${c.reason} at ${c.keyPath}`, () => {
      const t = base();
      c.edit(t);
      assert.throws(
        () => parse(t),
        (err: unknown) => {
          assert.ok(err instanceof ConfigError, String(err));
          assert.equal(err.code, 'ERR_CONFIG');
          assert.equal(err.reason, c.reason);
          assert.equal(err.keyPath, c.keyPath);
          assert.equal(err.file, FILE);
          assert.ok(err.message.startsWith(`${FILE}: ${c.keyPath}: `));
          assert.ok(!err.message.includes('\n'));
          return true;
        },
      );
    });
  }

  it('reports YAML syntax errors and multiple documents', () => {
    assert.throws(() => parseDaemonConfig('zones: [unclosed', FILE), { code: 'ERR_CONFIG', reason: 'syntax', keyPath: '' });
    assert.throws(() => parseDaemonConfig('a: 1\n---\nb: 2\n', FILE), { code: 'ERR_CONFIG', reason: 'syntax' });
    assert.throws(() => parseDaemonConfig('- just\n- a list\n', FILE), { code: 'ERR_CONFIG', reason: 'type', keyPath: '' });
  });

  it('reports an unreadable file', async () => {
    await assert.rejects(loadDaemonConfig('/nonexistent/nsregd.yaml'), {
      code: 'ERR_CONFIG',
      reason: 'read',
      file: '/nonexistent/nsregd.yaml',
    });
  });
});

describe('daemon config: files written for the original', () => {
  it('loads the original example layout, YAML 1.1 booleans and scalar lists included', () => {
    const text = `
listen-addr: localhost
listen-port: 8053
data-dir: /var/lib/nsregd
zones:
  dynamic.example.org:
    max-key-ttl: 4320h
    max-addr-ttl: 1h
    reserved-names:
      - localhost
    allowed-nets: 127.0.0.0/8 ::1/128
    allow-any-addr: yes
    upstreams:
      -
        type: nsupdate
        hostname: ns.example.org
        port: 53
        tcp: on
        timeout: 10s
        zone: example.org
        reverse-zones:
          - 42.10.in-addr.arpa
        record-ttl: 60s
        keep-records: false
        tsig-name: nsregd.example.org.
        tsig-secret: "wDRVYeYdtAzirOCfaAIieAFwQJ1WiNYZ3Ykr3R/T85M="
        exclude-nets:
          - 10.0.0.0/8
          - fd00::/8
      -
        type: unbound
        hostname: localhost
        port: 8953
        client-cert: /etc/unbound/unbound_control.pem
        client-key: /etc/unbound/unbound_control.key
        server-cert: /etc/unbound/unbound_server.pem
        server-name: unbound
        zone-type: typetransparent
        timeout: 1s
        record-ttl: 60s
        keep-records: false
        reverse-zones:
          - 42.10.in-addr.arpa
        exclude-nets:
          - 2000::/4
          - fd00::/8
`;
    const { config, warnings } = parseDaemonConfig(text, FILE);
    assert.deepEqual(warnings, []);
    const zone = config.zones['dynamic.example.org.'];
    assert.ok(zone);
    assert.equal(zone.allowAnyAddr, true);
    assert.deepEqual(zone.allowedNets.map(String), ['127.0.0.0/8', '::1/128']);
    assert.deepEqual(zone.upstreams.map((u) => u.type), ['nsupdate', 'unbound']);
    const ns = zone.upstreams[0];
    assert.ok(ns?.type === 'nsupdate');
    assert.equal(ns.tcp, true);
    assert.deepEqual(ns.reverseZones, ['42.10.in-addr.arpa.']);
    assert.equal(ns.tsigName, 'nsregd.example.org.');
  });
});
