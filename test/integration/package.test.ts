/**
 * Packaging as a user meets it: `npm pack`, a global install into a temp
 * prefix, the two commands and their manual pages working from there, a
 * quiet `npm ci`, and the systemd units passing `systemd-analyze verify`
 * against the installed binaries.
 */
import assert from 'node:assert/strict';
import { access, copyFile, mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { requireTool, run } from '../helpers/tools.js';

const ROOT = path.resolve('.');

/**
 * The entries of a commander --help text's Options and Arguments sections:
 * the long option (or the argument's name) → its description, wrapped lines
 * joined.
 */
function helpEntries(help: string): Map<string, string> {
  const entries = new Map<string, string>();
  let inSection = false;
  let current: string | undefined;
  for (const line of help.split('\n')) {
    if (/^(Options|Arguments):$/.test(line)) {
      inSection = true;
      current = undefined;
      continue;
    }
    if (!inSection) continue;
    const entry = /^ {2}(\S(?:.*?\S)?) {2,}(\S.*)$/.exec(line);
    const more = /^ {4,}(\S.*)$/.exec(line);
    if (entry) {
      const term = entry[1];
      current = /--[\w-]+/.exec(term)?.[0] ?? term.split(' ')[0];
      entries.set(current, entry[2]);
    } else if (more && current !== undefined) {
      entries.set(current, `${entries.get(current) ?? ''} ${more[1]}`);
    } else {
      inSection = false;
      current = undefined;
    }
  }
  return entries;
}

describe('npm package and systemd units', () => {
  let dir: string;
  let prefix: string;

  before(async () => {
    dir = await mkdtemp(path.join(tmpdir(), 'nsregd-pack-'));
    prefix = path.join(dir, 'prefix');
    const pack = await run('npm', ['pack', '--pack-destination', dir, ROOT], { timeoutMs: 120_000 });
    assert.equal(pack.code, 0, pack.stderr);
    const tgz = pack.stdout.trim().split('\n').at(-1) as string;
    // README, "Installing as a service": a global install has no project package.json whose allowScripts would cover netlink's install script.
    const install = await run('npm', ['install', '-g', '--allow-scripts=netlink,protobufjs', '--prefix', prefix, path.join(dir, tgz)], { timeoutMs: 300_000 });
    assert.equal(install.code, 0, install.stderr);
    assert.doesNotMatch(install.stderr, /allowScripts|install-scripts/);
  });

  after(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it('the installed nsregd and nsregc print their version', async () => {
    const version = (JSON.parse(await readFile(path.join(ROOT, 'package.json'), 'utf8')) as { version: string }).version;
    for (const bin of ['nsregd', 'nsregc']) {
      const r = await run(path.join(prefix, 'bin', bin), ['--version']);
      assert.equal(r.code, 0, r.stderr);
      assert.equal(r.stdout.trim(), version);
    }
  });

  it('the installed nsregd checks the shipped example configuration, and rejects a bad one', async () => {
    const example = path.join(prefix, 'lib', 'node_modules', 'nsregd', 'nsregd.example.yaml');
    const ok = await run(path.join(prefix, 'bin', 'nsregd'), ['--check-config', '-c', example]);
    assert.equal(ok.code, 0, ok.stderr);
    assert.match(ok.stdout, /zone dynamic\.example\.org\./);
    const bad = path.join(dir, 'bad.yaml');
    await writeFile(bad, 'zones:\n  z.example:\n    max-key-ttl: 10\n    max-addr-ttl: 1h\n');
    const r = await run(path.join(prefix, 'bin', 'nsregd'), ['--check-config', '-c', bad]);
    assert.equal(r.code, 1);
    assert.match(r.stderr, /bad\.yaml: zones\."z\.example"\.max-key-ttl: .*\(got 10\)/);
  });

  it('every option is documented with its default in --help', async () => {
    // Actions do something and exit: they have no value, so no default to state.
    const actions = ['--version', '--help', '--check-config'];
    const d = helpEntries((await run(path.join(prefix, 'bin', 'nsregd'), ['--help'])).stdout);
    assert.deepEqual([...d.keys()].sort(), ['--check-config', '--conffile', '--debug', '--help', '--print', '--version']);
    const c = helpEntries((await run(path.join(prefix, 'bin', 'nsregc'), ['--help'])).stdout);
    assert.deepEqual(
      [...c.keys()].sort(),
      ['--address', '--conffile', '--debug', '--dns-server', '--dns-tcp', '--help', '--interface', '--keep', '--name', '--print', '--version', 'zone'],
    );
    for (const [program, entries] of [['nsregd', d], ['nsregc', c]] as const) {
      for (const [opt, text] of entries) {
        if (actions.includes(opt)) continue;
        assert.match(text, /\(default: [^)]+\)/, `${program} ${opt}: ${text}`);
      }
    }
    // The hidden aliases of the original's flags are named in their option's help.
    assert.match(c.get('--dns-server') ?? '', /alias -s\/--server/);
    assert.match(c.get('--dns-tcp') ?? '', /alias -t\/--tcp/);
  });

  it('npm ci in a fresh checkout has no install script left to review (package.json allowScripts)', async () => {
    const copy = path.join(dir, 'checkout');
    await mkdir(copy);
    for (const f of ['package.json', 'package-lock.json']) await copyFile(path.join(ROOT, f), path.join(copy, f));
    const r = await run('npm', ['ci', '--dry-run'], { cwd: copy, timeoutMs: 120_000 });
    assert.equal(r.code, 0, r.stderr);
    assert.doesNotMatch(r.stderr, /allowScripts|install-scripts/);
  });

  it('the installed package puts its manual pages where man finds them', async () => {
    const man = requireTool('man');
    const manDir = path.join(prefix, 'share', 'man');
    for (const [page, section] of [['nsregd', 8], ['nsregc', 8], ['nsregd.yaml', 5], ['nsregc.yaml', 5]] as const) {
      await access(path.join(manDir, `man${section}`, `${page}.${section}`));
      const r = await run(man, ['-M', manDir, String(section), page], { env: { ...process.env, MANPAGER: 'cat', PAGER: 'cat', MANWIDTH: '80' } });
      assert.equal(r.code, 0, r.stderr);
      assert.ok(r.stdout.startsWith(`${page.toUpperCase()}(${section})`), r.stdout.slice(0, 80));
    }
  });

  it('the systemd units pass systemd-analyze verify', async () => {
    const analyze = requireTool('systemd-analyze');
    const units: string[] = [];
    for (const name of ['nsregd', 'nsregc']) {
      const text = await readFile(path.join(ROOT, 'packaging', 'systemd', `${name}.service`), 'utf8');
      assert.match(text, /^ExecStart=\/usr\/bin\//m);
      const unit = path.join(dir, `${name}.service`);
      await writeFile(unit, text.replace(`/usr/bin/${name}`, path.join(prefix, 'bin', name)));
      units.push(unit);
    }
    // verify runs `man` for every man: link in Documentation=: the installed pages must be found.
    const r = await run(analyze, ['verify', ...units], { env: { ...process.env, MANPATH: path.join(prefix, 'share', 'man') } });
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.stderr.trim(), '', 'no warnings');
    const nsregd = await readFile(units[0], 'utf8');
    assert.match(nsregd, /^ExecReload=\/bin\/kill -HUP \$MAINPID$/m);
    assert.match(nsregd, /^StateDirectory=nsregd$/m);
    assert.match(nsregd, /^CapabilityBoundingSet=CAP_NET_BIND_SERVICE$/m);
    const nsregc = await readFile(units[1], 'utf8');
    assert.match(nsregc, /^RestrictAddressFamilies=.*AF_NETLINK/m);
    // The manual pages and this package's README, not the original's repository.
    assert.match(nsregd, /^Documentation=man:nsregd\(8\) man:nsregd\.yaml\(5\) file:\/usr\/lib\/node_modules\/nsregd\/README\.md$/m);
    assert.match(nsregc, /^Documentation=man:nsregc\(8\) man:nsregc\.yaml\(5\) file:\/usr\/lib\/node_modules\/nsregd\/README\.md$/m);
  });
});
