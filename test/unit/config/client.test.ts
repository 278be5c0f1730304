import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, mkdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import {
  CLIENT_DEFAULTS,
  loadClientConfig,
  mergeClientFlags,
  parseClientConfig,
  parseDnsServer,
} from '../../../src/config/client.js';
import { COMMAND_LINE } from '../../../src/config/errors.js';

describe('client config: search order', () => {
  let root: string;
  let etcFile: string;
  let home: string;
  let homeFile: string;

  before(async () => {
    root = await mkdtemp(path.join(tmpdir(), 'nsregc-config-'));
    etcFile = path.join(root, 'etc', 'nsregc', 'nsregc.yaml');
    home = path.join(root, 'home');
    homeFile = path.join(home, '.nsregc', 'nsregc.yaml');
    await mkdir(path.dirname(etcFile), { recursive: true });
    await mkdir(path.dirname(homeFile), { recursive: true });
  });
  after(async () => {
    await rm(root, { recursive: true, force: true });
  });

  const search = (): string[] => [etcFile, homeFile];

  it('runs on defaults when no file exists, keys under ~/.nsregc', async () => {
    const { config, usedDefaults, warnings } = await loadClientConfig({ home, searchPaths: search(), hostname: 'MyHost' });
    assert.equal(usedDefaults, true);
    assert.deepEqual(warnings, []);
    assert.equal(config.file, null);
    assert.equal(config.configDir, path.join(home, '.nsregc'));
    assert.equal(config.name, 'myhost');
    assert.equal(config.keyFile, path.join(home, '.nsregc', 'nsregc.key'));
    assert.equal(config.privateKeyFile, path.join(home, '.nsregc', 'nsregc.private'));
    assert.deepEqual(config.zones, []);
    assert.equal(config.discoverZones, true);
    assert.deepEqual(config.interfaces, []);
    assert.deepEqual(config.excludeSubnets.map(String), ['127.0.0.0/8', '::1/128', 'fe80::/10', '169.254.0.0/16']);
    assert.deepEqual(config.extraAddresses, []);
    assert.equal(config.keepRecords, false);
    assert.equal(config.genKey, true);
    assert.equal(config.keyTtl, 720 * 3_600_000);
    assert.equal(config.addrTtl, 3_600_000);
    assert.equal(config.dnsServer, null);
    assert.equal(config.dnsTcp, false);
    assert.equal(config.dnsTimeout, CLIENT_DEFAULTS['dns-timeout']);
    assert.ok(Object.isFrozen(config) && Object.isFrozen(config.excludeSubnets));
  });

  it('prefers ~/.nsregc/nsregc.yaml when /etc has none, resolving key paths there', async () => {
    await writeFile(homeFile, 'name: fromhome\nkey-file: keys/k.key\nprivate-key-file: /abs/k.private\n');
    const { config, usedDefaults } = await loadClientConfig({ home, searchPaths: search() });
    assert.equal(usedDefaults, false);
    assert.equal(config.file, homeFile);
    assert.equal(config.name, 'fromhome');
    assert.equal(config.keyFile, path.join(home, '.nsregc', 'keys', 'k.key'));
    assert.equal(config.privateKeyFile, '/abs/k.private');
  });

  it('prefers /etc over ~/.nsregc', async () => {
    await writeFile(etcFile, 'name: frometc\n');
    const { config } = await loadClientConfig({ home, searchPaths: search() });
    assert.equal(config.file, etcFile);
    assert.equal(config.name, 'frometc');
    assert.equal(config.keyFile, path.join(path.dirname(etcFile), 'nsregc.key'));
  });

  it('-c FILE wins over the search path, and must exist', async () => {
    const own = path.join(root, 'own.yml');
    await writeFile(own, 'name: fromflag\n');
    const { config } = await loadClientConfig({ file: own, home, searchPaths: search() });
    assert.equal(config.name, 'fromflag');
    await assert.rejects(loadClientConfig({ file: path.join(root, 'missing.yaml'), home, searchPaths: search() }), {
      code: 'ERR_CONFIG',
      reason: 'read',
    });
  });

  it('refuses a directory where a config file should be', async () => {
    const dir = path.join(root, 'dir.yaml');
    await mkdir(dir);
    await assert.rejects(loadClientConfig({ home, searchPaths: [dir] }), { code: 'ERR_CONFIG', reason: 'read' });
  });
});

describe('client config: values', () => {
  const FILE = '/home/u/.nsregc/nsregc.yaml';

  it('parses every key', () => {
    const text = [
      'name: laptop',
      'zones: [dynamic.example.org, Dynamic.Example.Org., other.example]',
      'discover-zones: no',
      'interfaces: [eth0, wlan0]',
      'exclude-subnets: [10.0.0.1/8]',
      'extra-addresses: ["2001:DB8::1", 192.0.2.7]',
      'keep-records: true',
      'gen-key: false',
      'key-ttl: 24h',
      'addr-ttl: 30m',
      'dns-server: "::1@5353"',
      'dns-tcp: true',
      'dns-timeout: 2s',
      'debug: true',
    ].join('\n');
    const { config, warnings } = parseClientConfig(text, FILE);
    assert.deepEqual(warnings, []);
    assert.equal(config.name, 'laptop');
    assert.deepEqual(config.zones, ['dynamic.example.org.', 'other.example.']);
    assert.equal(config.discoverZones, false);
    assert.deepEqual(config.interfaces, ['eth0', 'wlan0']);
    assert.deepEqual(config.excludeSubnets.map(String), ['10.0.0.0/8']);
    assert.deepEqual(config.extraAddresses, ['2001:db8::1', '192.0.2.7']);
    assert.equal(config.keepRecords, true);
    assert.equal(config.genKey, false);
    assert.equal(config.keyTtl, 86_400_000);
    assert.equal(config.addrTtl, 1_800_000);
    assert.deepEqual(config.dnsServer, { host: '::1', port: 5353 });
    assert.equal(config.dnsTcp, true);
    assert.equal(config.dnsTimeout, 2_000);
    assert.equal(config.debug, true);
  });

  it('accepts a file of comments only, and warns on unknown keys', () => {
    assert.equal(parseClientConfig('# all defaults\n', FILE, { hostname: 'h' }).config.name, 'h');
    const { warnings } = parseClientConfig('name: h\nzone: x.org\n', FILE);
    assert.equal(warnings.length, 1);
    assert.ok(warnings[0]?.includes(': zone: '));
  });

  const bad: [string, string, string][] = [
    ['exclude-subnets: [10.0.0.0/40]', 'cidr', 'exclude-subnets[0]'],
    ['extra-addresses: [10.0.0.0/8]', 'address', 'extra-addresses[0]'],
    ['key-ttl: 720', 'duration', 'key-ttl'],
    ['addr-ttl: 1 hour', 'duration', 'addr-ttl'],
    ['dns-server: "ns@99999"', 'address', 'dns-server'],
    ['dns-server: "::1:53:x"', 'address', 'dns-server'],
    ['dns-tcp: sometimes', 'type', 'dns-tcp'],
    ['zones: [a..b]', 'name', 'zones[0]'],
    ['name: "bad name"', 'name', 'name'],
    ['interfaces: {eth0: 1}', 'type', 'interfaces'],
  ];
  for (const [text, reason, keyPath] of bad) {
    it(`${text} → ${reason} at ${keyPath}`, () => {
      assert.throws(() => parseClientConfig(text, FILE, { hostname: 'h' }), { code: 'ERR_CONFIG', reason, keyPath, file: FILE });
    });
  }
});

describe('client config: dns-server forms', () => {
  const table: [string, { host: string; port: number } | null][] = [
    ['127.0.0.1', { host: '127.0.0.1', port: 53 }],
    ['127.0.0.1@5353', { host: '127.0.0.1', port: 5353 }],
    ['::1@5353', { host: '::1', port: 5353 }],
    ['::1', { host: '::1', port: 53 }],
    ['[::1]@5353', { host: '::1', port: 5353 }],
    ['[::1]:5300', { host: '::1', port: 5300 }],
    ['[::1]', { host: '::1', port: 53 }],
    ['192.0.2.1:5353', { host: '192.0.2.1', port: 5353 }],
    ['ns.Example.org.@54', { host: 'ns.example.org', port: 54 }],
    ['ns.example.org@', { host: 'ns.example.org', port: 53 }],
    ['::1@0', null],
    ['::1@x', null],
    ['[192.0.2.1]', null],
    ['host name', null],
    ['', null],
  ];
  for (const [text, expect] of table) {
    it(`${JSON.stringify(text)}`, () => {
      assert.deepEqual(parseDnsServer(text), expect);
    });
  }
});

describe('client config: command-line flags', () => {
  const FILE = '/etc/nsregc/nsregc.yaml';
  const base = parseClientConfig(
    'name: filehost\nzones: [a.example]\ninterfaces: [eth0]\nextra-addresses: [192.0.2.1]\ndns-server: 10.0.0.1\n',
    FILE,
  ).config;

  it('leaves everything alone when no flag is given', () => {
    assert.deepEqual(mergeClientFlags(base, {}), base);
  });

  it('overrides file values and adds zones without duplicates', () => {
    const merged = mergeClientFlags(base, {
      name: 'FlagHost',
      zones: ['b.example', 'A.example.'],
      interfaces: ['wlan0,eth1'],
      addresses: ['2001:db8::5'],
      dnsServer: '[::1]@5353',
      dnsTcp: true,
      keepRecords: true,
      debug: true,
    });
    assert.equal(merged.name, 'flaghost');
    assert.deepEqual(merged.zones, ['a.example.', 'b.example.']);
    assert.deepEqual(merged.interfaces, ['wlan0', 'eth1']);
    assert.deepEqual(merged.extraAddresses, ['2001:db8::5']);
    assert.deepEqual(merged.dnsServer, { host: '::1', port: 5353 });
    assert.equal(merged.dnsTcp, true);
    assert.equal(merged.keepRecords, true);
    assert.equal(merged.debug, true);
    assert.equal(merged.keyFile, base.keyFile);
    assert.ok(Object.isFrozen(merged));
    // the input is untouched
    assert.equal(base.name, 'filehost');
  });

  const bad: [Parameters<typeof mergeClientFlags>[1], string, string][] = [
    [{ addresses: ['192.0.2.1', 'nope'] }, 'address', '--address[1]'],
    [{ dnsServer: 'a@b@c' }, 'address', '--dns-server'],
    [{ name: 'a b' }, 'name', '--name'],
    [{ zones: ['ok.example', '..'] }, 'name', 'zone[1]'],
  ];
  for (const [flags, reason, keyPath] of bad) {
    it(`${JSON.stringify(flags)} → ${reason} at ${keyPath}`, () => {
      assert.throws(() => mergeClientFlags(base, flags), { code: 'ERR_CONFIG', reason, keyPath, file: COMMAND_LINE });
    });
  }
});
