/**
 * nsregc's command line run in-process: flags → ClientFlags → merged
 * configuration (a table), and bad values → one line on stderr, exit 1.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { PassThrough } from 'node:stream';
import { main, parseCommandLine, type MainIO } from '../../../src/cli/nsregc.js';
import { loadClientSetup } from '../../../src/client/client.js';
import { defaultClientConfig, mergeClientFlags, type ClientConfig, type ClientFlags } from '../../../src/config/client.js';
import { ConfigError } from '../../../src/config/errors.js';

interface Captured {
  io: MainIO;
  stdout(): string;
  stderr(): string;
}

function capture(home: string): Captured {
  const out = new PassThrough();
  const err = new PassThrough();
  let o = '';
  let e = '';
  out.on('data', (c: Buffer) => (o += c.toString('utf8')));
  err.on('data', (c: Buffer) => (e += c.toString('utf8')));
  return {
    io: { stdout: out, stderr: err, home, hostname: 'testhost', searchPaths: [] },
    stdout: () => o,
    stderr: () => e,
  };
}

const argv = (...args: string[]): string[] => ['node', 'nsregc', ...args];

describe('nsregc command line → configuration', () => {
  const base = defaultClientConfig('/nonexistent-home', { hostname: 'testhost' });
  const io = capture('/nonexistent-home').io;

  const table: Array<{ args: string[]; flags: ClientFlags; expect: Partial<ClientConfig> }> = [
    { args: [], flags: {}, expect: { zones: [], name: 'testhost', dnsServer: null, dnsTcp: false, keepRecords: false } },
    { args: ['myzone.example.org'], flags: { zones: ['myzone.example.org'] }, expect: { zones: ['myzone.example.org.'] } },
    {
      args: ['-n', 'Laptop', '-k', '--debug', 'a.example', 'B.example.'],
      flags: { name: 'Laptop', keepRecords: true, debug: true, zones: ['a.example', 'B.example.'] },
      expect: { name: 'laptop', keepRecords: true, debug: true, zones: ['a.example.', 'b.example.'] },
    },
    {
      args: ['-i', 'eth0', '--interface', 'wlan0,eth1', '-a', '192.0.2.1', '--address', '2001:DB8::1'],
      flags: { interfaces: ['eth0', 'wlan0,eth1'], addresses: ['192.0.2.1', '2001:DB8::1'] },
      expect: { interfaces: ['eth0', 'wlan0', 'eth1'], extraAddresses: ['192.0.2.1', '2001:db8::1'] },
    },
    {
      args: ['--dns-server', '127.0.0.1@5353', '--dns-tcp'],
      flags: { dnsServer: '127.0.0.1@5353', dnsTcp: true },
      expect: { dnsServer: { host: '127.0.0.1', port: 5353 }, dnsTcp: true },
    },
    {
      args: ['-s', '::1@5300', '-t'],
      flags: { dnsServer: '::1@5300', dnsTcp: true },
      expect: { dnsServer: { host: '::1', port: 5300 }, dnsTcp: true },
    },
    {
      // Aliases are one option: the last spelling given wins.
      args: ['--dns-server', '192.0.2.53', '--server', '[2001:db8::53]@53'],
      flags: { dnsServer: '[2001:db8::53]@53' },
      expect: { dnsServer: { host: '2001:db8::53', port: 53 } },
    },
    {
      args: ['--server', '192.0.2.53', '--dns-server', '192.0.2.54@54', '--tcp'],
      flags: { dnsServer: '192.0.2.54@54', dnsTcp: true },
      expect: { dnsServer: { host: '192.0.2.54', port: 54 }, dnsTcp: true },
    },
  ];

  // The original's Go flag syntax: -flag and --flag alike, =value for every option, booleans as Go's ParseBool reads them.
  const goTable: Array<{ args: string[]; flags: ClientFlags; expect: Partial<ClientConfig> }> = [
    { args: ['--keep=false'], flags: { keepRecords: false }, expect: { keepRecords: false } },
    { args: ['--keep=true'], flags: { keepRecords: true }, expect: { keepRecords: true } },
    { args: ['-keep'], flags: { keepRecords: true }, expect: { keepRecords: true } },
    { args: ['-k=0'], flags: { keepRecords: false }, expect: { keepRecords: false } },
    { args: ['--tcp=true'], flags: { dnsTcp: true }, expect: { dnsTcp: true } },
    { args: ['-tcp=FALSE'], flags: { dnsTcp: false }, expect: { dnsTcp: false } },
    { args: ['-t=T', '--dns-tcp=f'], flags: { dnsTcp: false }, expect: { dnsTcp: false } },
    { args: ['--dns-tcp=False', '-dns-tcp=1'], flags: { dnsTcp: true }, expect: { dnsTcp: true } },
    { args: ['-debug=True', '--keep=F'], flags: { debug: true, keepRecords: false }, expect: { debug: true, keepRecords: false } },
    { args: ['--debug=t', '-k=TRUE'], flags: { debug: true, keepRecords: true }, expect: { debug: true, keepRecords: true } },
    { args: ['-name', 'gohost', '-server', '192.0.2.9@5353'], flags: { name: 'gohost', dnsServer: '192.0.2.9@5353' }, expect: { name: 'gohost' } },
    { args: ['-name=gohost', '--server=::1'], flags: { name: 'gohost', dnsServer: '::1' }, expect: { dnsServer: { host: '::1', port: 53 } } },
    { args: ['-n=x1', '-s=192.0.2.1', '-a=192.0.2.7', '-i=eth0'], flags: { name: 'x1', dnsServer: '192.0.2.1', addresses: ['192.0.2.7'], interfaces: ['eth0'] }, expect: { extraAddresses: ['192.0.2.7'] } },
    { args: ['-dns-server', '127.0.0.1@53', '-interface', 'eth1', '-address', '2001:db8::9'], flags: { dnsServer: '127.0.0.1@53', interfaces: ['eth1'], addresses: ['2001:db8::9'] }, expect: { interfaces: ['eth1'] } },
    { args: ['-name', '-weird-', '--', '-zone.example'], flags: { name: '-weird-', zones: ['-zone.example'] }, expect: {} },
  ];

  for (const row of goTable) {
    it(`Go flag syntax: nsregc ${row.args.join(' ')}`, () => {
      const parsed = parseCommandLine(argv(...row.args), io);
      assert.ok(!('exitCode' in parsed), 'parsed');
      assert.deepEqual(parsed.flags, row.flags);
      if (row.flags.name?.startsWith('-') === true) return;
      const merged = mergeClientFlags(base, parsed.flags);
      for (const [k, v] of Object.entries(row.expect)) assert.deepEqual(merged[k as keyof ClientConfig], v, k);
    });
  }

  it('--print=false and -print=1', () => {
    for (const [arg, print] of [['--print=false', false], ['-print=1', true], ['-print', true]] as const) {
      const parsed = parseCommandLine(argv(arg), io);
      assert.ok(!('exitCode' in parsed));
      assert.equal(parsed.print, print, arg);
    }
  });

  it('a boolean value Go would refuse: one line on stderr naming the flag, exit 1', () => {
    for (const bad of ['--keep=yes', '-tcp=', '-k=2']) {
      const cap = capture('/nonexistent-home');
      const parsed = parseCommandLine(argv(bad), cap.io);
      assert.deepEqual(parsed, { exitCode: 1 }, bad);
      assert.match(cap.stderr(), new RegExp(`^nsregc: invalid boolean value .* for ${bad.split('=')[0]}\n$`));
    }
  });

  for (const row of table) {
    it(`nsregc ${row.args.join(' ') || '(no arguments)'}`, () => {
      const parsed = parseCommandLine(argv(...row.args), io);
      assert.ok(!('exitCode' in parsed), 'parsed');
      assert.deepEqual(parsed.flags, row.flags);
      const merged = mergeClientFlags(base, parsed.flags);
      for (const [k, v] of Object.entries(row.expect)) {
        assert.deepEqual(merged[k as keyof ClientConfig], v, k);
      }
    });
  }

  it('-c and --print are read; the rest keeps the defaults', () => {
    const parsed = parseCommandLine(argv('-c', '/etc/x.yaml', '--print'), io);
    assert.ok(!('exitCode' in parsed));
    assert.equal(parsed.conffile, '/etc/x.yaml');
    assert.equal(parsed.print, true);
    assert.deepEqual(parsed.flags, {});
  });

  it('zones on the command line are added to the file\'s', async () => {
    const dir = await mkdtemp(path.join(tmpdir(), 'nsregc-cli-'));
    try {
      const file = path.join(dir, 'nsregc.yaml');
      await writeFile(file, 'zones: [file.example]\ndns-server: 192.0.2.1\n');
      const parsed = parseCommandLine(argv('-c', file, 'cli.example', 'file.example'), io);
      assert.ok(!('exitCode' in parsed));
      const setup = await loadClientSetup({ conffile: file, home: dir, flags: parsed.flags });
      assert.deepEqual(setup.config.zones, ['file.example.', 'cli.example.']);
      assert.deepEqual(setup.config.dnsServer, { host: '192.0.2.1', port: 53 });
      assert.equal(setup.usedDefaults, false);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});

describe('nsregc exit codes for bad values', () => {
  let dir: string;
  const files: Record<string, string> = {};

  before(async () => {
    dir = await mkdtemp(path.join(tmpdir(), 'nsregc-cli-'));
    const write = async (name: string, text: string): Promise<string> => {
      const p = path.join(dir, name);
      await writeFile(p, text);
      return p;
    };
    files['duration'] = await write('duration.yaml', 'addr-ttl: 10\n');
    files['cidr'] = await write('cidr.yaml', 'exclude-subnets: [10.0.0.0/33]\n');
    files['port'] = await write('port.yaml', 'dns-server: 192.0.2.1@0\n');
    await write('garbage.key', 'this is not a key\n');
    await write('garbage.private', 'Private-key-format: v1.3\n');
    files['key'] = await write(
      'key.yaml',
      'dns-server: 127.0.0.1@9\nkey-file: garbage.key\nprivate-key-file: garbage.private\nzones: [z.example]\n',
    );
    await mkdir(path.join(dir, 'keydir.key'));
    await write('lonely.private', 'Private-key-format: v1.3\n');
    files['keydir'] = await write(
      'keydir.yaml',
      'dns-server: 127.0.0.1@9\nkey-file: keydir.key\nprivate-key-file: lonely.private\nzones: [z.example]\n',
    );
  });
  after(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  const cases: Array<{ what: string; args: () => string[]; mentions: string }> = [
    { what: 'a DNS server port out of range', args: () => ['--dns-server', '127.0.0.1@70000', 'z.example'], mentions: '--dns-server' },
    { what: 'a DNS server that is not HOST[@PORT]', args: () => ['-s', '127.0.0.1@abc', 'z.example'], mentions: '--dns-server' },
    { what: 'a bad extra address', args: () => ['-a', '192.0.2.300', 'z.example'], mentions: '--address' },
    { what: 'a bad zone name', args: () => ['bad..zone'], mentions: 'zone' },
    { what: 'a bad name', args: () => ['-n', 'a b', 'z.example'], mentions: '--name' },
    { what: 'a duration without unit in the file', args: () => ['-c', files['duration']], mentions: 'addr-ttl' },
    { what: 'a bad CIDR in the file', args: () => ['-c', files['cidr']], mentions: 'exclude-subnets' },
    { what: 'port 0 in the file', args: () => ['-c', files['port']], mentions: 'dns-server' },
    { what: 'a missing -c file', args: () => ['-c', path.join(dir, 'absent.yaml')], mentions: 'absent.yaml' },
    { what: 'an unreadable key file', args: () => ['-c', files['key']], mentions: 'garbage.key' },
    { what: 'a key path that is a directory', args: () => ['-c', files['keydir']], mentions: 'keydir.key' },
  ];

  for (const c of cases) {
    it(`${c.what}: one line on stderr, exit 1`, async () => {
      const cap = capture(dir);
      const code = await main(argv(...c.args()), cap.io);
      assert.equal(code, 1);
      const lines = cap.stderr().split('\n').filter((l) => l !== '');
      assert.equal(lines.length, 1, cap.stderr());
      assert.match(lines[0], /^nsregc: /);
      assert.ok((lines[0]).includes(c.mentions), lines[0]);
    });
  }

  it('bad flag values are ConfigErrors with the flag as key path', async () => {
    const bad: Array<[ClientFlags, string, string]> = [
      [{ dnsServer: '127.0.0.1@70000' }, '--dns-server', 'address'],
      [{ addresses: ['nope'] }, '--address[0]', 'address'],
      [{ name: '-bad-' }, '--name', 'name'],
    ];
    for (const [flags, keyPath, reason] of bad) {
      await assert.rejects(loadClientSetup({ home: dir, flags, searchPaths: [] }), (err: unknown) => {
        assert.ok(err instanceof ConfigError);
        assert.equal(err.code, 'ERR_CONFIG');
        assert.equal(err.keyPath, keyPath);
        assert.equal(err.reason, reason);
        return true;
      });
    }
  });

  it('an unknown option: commander reports it, exit 1', async () => {
    const cap = capture(dir);
    assert.equal(await main(argv('--no-such-flag'), cap.io), 1);
    assert.match(cap.stderr(), /--no-such-flag/);
  });

  it('--help and --version exit 0 and write to stdout; every option states its default', async () => {
    const help = capture(dir);
    assert.equal(await main(argv('--help'), help.io), 0);
    const text = help.stdout();
    for (const opt of ['--conffile', '--name', '--interface', '--address', '--dns-server', '--dns-tcp', '--keep', '--debug', '--print']) {
      assert.ok(text.includes(opt), opt);
      const entry = text.slice(text.indexOf(opt)).split(/\n {2}-/)[0];
      assert.match(entry, /default/, `${opt} help states its default`);
    }
    const version = capture(dir);
    assert.equal(await main(argv('-V'), version.io), 0);
    assert.match(version.stdout(), /^\d+\.\d+\.\d+\n$/);
  });
});
