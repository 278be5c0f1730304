/**
 * The manual pages in man/ against the code they describe: every key the
 * configuration parsers read has an entry in its page, every defaults
 * table's value is the default the page states, every option of both
 * commands and every refusal the daemon sends is documented, the example
 * configurations in the pages load without warnings, and package.json
 * installs every page. (Rendering with groff and man is checked in
 * test/integration/manpages.test.ts.)
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { readdir, readFile } from 'node:fs/promises';
import * as path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { promisify } from 'node:util';
import { Cidr, MapReader } from '../../../src/config/validate.js';
import { parseDuration } from '../../../src/config/duration.js';
import { parseDaemonConfig } from '../../../src/config/daemon.js';
import { parseClientConfig } from '../../../src/config/client.js';
import { Refusals } from '../../../src/daemon/refusals.js';
import { rcodeName } from '../../../src/dns/constants.js';

// dist/test/unit/docs/ → repository root
const ROOT = fileURLToPath(new URL('../../../../', import.meta.url));
const DIST_CONFIG = fileURLToPath(new URL('../../../src/config/', import.meta.url));

const run = promisify(execFile);

/** One `.TP` entry of a page whose tag is `.B <key>`. */
interface Entry {
  readonly key: string;
  /** The `.SH` title it is under. */
  readonly section: string;
  /** The `.SS` title it is under, if any. */
  readonly subsection: string | undefined;
  readonly body: readonly string[];
}

interface Page {
  readonly text: string;
  /** The source with roff escapes for `-`, quotes and zero-width breaks resolved. */
  readonly plain: string;
  readonly entries: readonly Entry[];
  /** Every `.TP`/`.TQ` tag line, plain and without font changes, with its section. */
  readonly tags: ReadonlyArray<{ readonly section: string; readonly tag: string }>;
}

/** What the pages write for `-`, quotes and `\&`. */
function plain(roff: string): string {
  return roff.replaceAll('\\-', '-').replaceAll('\\(lq', '"').replaceAll('\\(rq', '"').replaceAll('\\&', '');
}

function title(line: string): string {
  return line.replace(/^\.S[HS]\s+/, '').replace(/^"(.*)"$/, '$1');
}

function parsePage(text: string): Page {
  const lines = text.split('\n');
  const entries: Entry[] = [];
  const tags: Array<{ section: string; tag: string }> = [];
  let section = '';
  let subsection: string | undefined;
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i] ?? '';
    if (line.startsWith('.SH ')) {
      section = title(line);
      subsection = undefined;
      continue;
    }
    if (line.startsWith('.SS ')) {
      subsection = title(line);
      continue;
    }
    if (line !== '.TP' && line !== '.TQ') continue;
    const tag = lines[i + 1] ?? '';
    tags.push({ section, tag: plain(tag).replace(/\\f[BIRP]/g, '') });
    const m = /^\.B (\S+)$/.exec(tag);
    if (m === null) continue;
    const body: string[] = [];
    for (let j = i + 2; j < lines.length && !/^\.(TP|TQ|SH|SS|PP)\b/.test(lines[j] ?? ''); j++) body.push(lines[j] ?? '');
    entries.push({ key: plain(m[1] ?? ''), section, subsection, body });
  }
  return { text, plain: plain(text), entries, tags };
}

async function page(name: string): Promise<Page> {
  return parsePage(await readFile(path.join(ROOT, 'man', name), 'utf8'));
}

/** Where a defaults table's keys are documented. */
interface Place {
  readonly page: string;
  readonly section: string;
  readonly subsection?: string;
}

/** Every exported `*_DEFAULTS` table of src/config and the page section it belongs in. */
function placeOf(table: string): Place | undefined {
  if (table === 'DAEMON_DEFAULTS') return { page: 'nsregd.yaml.5', section: 'TOP-LEVEL KEYS' };
  if (table === 'ZONE_DEFAULTS') return { page: 'nsregd.yaml.5', section: 'ZONE KEYS' };
  if (table === 'SERVE_DEFAULTS') return { page: 'nsregd.yaml.5', section: 'UPSTREAMS', subsection: 'type: serve' };
  if (/^LIMITS?_DEFAULTS$/.test(table)) return { page: 'nsregd.yaml.5', section: 'LIMITS' };
  if (table === 'STORE_DEFAULTS') return { page: 'nsregd.yaml.5', section: 'STORE' };
  if (table === 'CLIENT_DEFAULTS') return { page: 'nsregc.yaml.5', section: 'KEYS' };
  return undefined;
}

async function filesUnder(dir: string, ext: string): Promise<string[]> {
  const found: string[] = [];
  for (const e of await readdir(dir, { withFileTypes: true })) {
    const p = path.join(dir, e.name);
    if (e.isDirectory()) found.push(...(await filesUnder(p, ext)));
    else if (e.name.endsWith(ext)) found.push(p);
  }
  return found.sort();
}

/** `name → table` for every exported `*_DEFAULTS` object of the compiled src/config. */
async function defaultsTables(): Promise<Map<string, Record<string, unknown>>> {
  const tables = new Map<string, Record<string, unknown>>();
  for (const file of await filesUnder(DIST_CONFIG, '.js')) {
    const mod = (await import(pathToFileURL(file).href)) as Record<string, unknown>;
    for (const [name, value] of Object.entries(mod)) {
      if (name.endsWith('_DEFAULTS') && typeof value === 'object' && value !== null) tables.set(name, value as Record<string, unknown>);
    }
  }
  return tables;
}

/** The bold values of an entry's `Default:` line; undefined when it has none. */
function statedDefault(e: Entry): string[] | undefined {
  const line = e.body.find((l) => l.startsWith('Default:'));
  if (line === undefined) return undefined;
  return [...line.matchAll(/\\fB(.*?)\\fR/g)].map((m) => plain(m[1] ?? ''));
}

const DURATION = /^([0-9]+(\.[0-9]*)?(ns|us|ms|s|m|h))+$/;

/** Whether the page's written default is the table's value (durations in ms, prefixes normalised). */
function sameDefault(written: readonly string[], value: unknown): boolean {
  const norm = (s: string): string => (s.includes('/') ? String(Cidr.parse(s) ?? s) : s);
  if (Array.isArray(value)) {
    return written.length === value.length && value.every((v, i) => norm(String(v)) === norm(written[i] ?? ''));
  }
  if (written.length !== 1) return false;
  const w = written[0] ?? '';
  if (typeof value === 'number') return DURATION.test(w) ? parseDuration(w) === value : Number(w) === value;
  return w === String(value);
}

/**
 * The keys a configuration source reads: the literal first argument of
 * every MapReader method call (`r.duration('max-key-ttl', …)`), and of
 * `intervalOrOff(r, 'key')`.
 */
function keysRead(source: string): Set<string> {
  const methods = Object.getOwnPropertyNames(MapReader.prototype).filter((n) => n !== 'constructor');
  const call = new RegExp(`\\.(?:${methods.join('|')})\\(\\s*'([^']*)'`, 'g');
  const keys = new Set<string>();
  for (const re of [call, /intervalOrOff\(\s*\w+,\s*'([^']*)'/g]) {
    for (const m of source.matchAll(re)) {
      const key = m[1] ?? '';
      if (/^[a-z][a-z0-9-]*$/.test(key)) keys.add(key);
    }
  }
  return keys;
}

/** The long options (`--name`), short options (`-n`) and arguments of a commander --help text. */
function helpOptions(help: string): { long: string[]; short: string[]; args: string[] } {
  const long = new Set<string>();
  const short = new Set<string>();
  const args: string[] = [];
  let part = '';
  for (const line of help.split('\n')) {
    if (/^(Options|Arguments):$/.test(line)) {
      part = line;
      continue;
    }
    const term = /^ {2}(\S.*?)(?: {2,}|$)/.exec(line)?.[1];
    if (term === undefined) continue;
    if (part === 'Arguments:') args.push(term);
    if (part !== 'Options:') continue;
    for (const m of term.matchAll(/(?:^|[\s,])(--?[A-Za-z][A-Za-z-]*)/g)) {
      const opt = m[1] ?? '';
      (opt.startsWith('--') ? long : short).add(opt);
    }
  }
  return { long: [...long], short: [...short], args };
}

describe('manual pages', () => {
  it('package.json installs every page in man/, and ships the directory', async () => {
    const pkg = JSON.parse(await readFile(path.join(ROOT, 'package.json'), 'utf8')) as { man?: string[]; files?: string[] };
    const pages = (await readdir(path.join(ROOT, 'man'))).filter((f) => /\.[1-8]$/.test(f)).map((f) => `man/${f}`);
    assert.deepEqual([...(pkg.man ?? [])].sort(), pages.sort());
    assert.deepEqual(pages.sort(), ['man/nsregc.8', 'man/nsregc.yaml.5', 'man/nsregd.8', 'man/nsregd.yaml.5']);
    assert.ok(pkg.files?.includes('man/'), 'man/ is in "files"');
  });

  it('every page names this version of the package in its title line', async () => {
    const { version } = JSON.parse(await readFile(path.join(ROOT, 'package.json'), 'utf8')) as { version: string };
    for (const name of await readdir(path.join(ROOT, 'man'))) {
      const th = (await page(name)).text.split('\n').find((l) => l.startsWith('.TH '));
      assert.ok(th?.includes(`"nsregd ${version}"`), `${name}: ${th ?? 'no .TH line'} does not name nsregd ${version}`);
    }
  });

  it('every page is ASCII (man-db reads a page without an encoding declaration as ISO-8859-1)', async () => {
    for (const name of await readdir(path.join(ROOT, 'man'))) {
      const text = await readFile(path.join(ROOT, 'man', name), 'latin1');
      const bad = [...text].findIndex((c) => c.charCodeAt(0) > 0x7e || (c.charCodeAt(0) < 0x20 && c !== '\n'));
      assert.equal(bad, -1, `${name}: a byte that is not printable ASCII at offset ${bad}`);
    }
  });

  it('every defaults table of src/config has a section, and each key its entry there with the same default', async () => {
    const tables = await defaultsTables();
    assert.ok(tables.has('DAEMON_DEFAULTS') && tables.has('CLIENT_DEFAULTS') && tables.has('SERVE_DEFAULTS'));
    for (const [name, table] of tables) {
      const place = placeOf(name);
      assert.ok(place !== undefined, `${name}: no manual page section for this defaults table; document its keys and map it in placeOf()`);
      const p = await page(place.page);
      for (const [key, value] of Object.entries(table)) {
        const where = `${place.page} ${place.section}${place.subsection === undefined ? '' : ` / ${place.subsection}`}: ${key}`;
        const entry = p.entries.find(
          (e) => e.key === key && e.section === place.section && (place.subsection === undefined || e.subsection === place.subsection),
        );
        assert.ok(entry !== undefined, `${where}: no entry`);
        const written = statedDefault(entry);
        assert.ok(written !== undefined, `${where}: no "Default:" line`);
        assert.ok(sameDefault(written, value), `${where}: the page says ${JSON.stringify(written)}, the code ${JSON.stringify(value)}`);
      }
    }
  });

  it('every key a configuration parser reads has an entry in its page', async () => {
    const daemon = await page('nsregd.yaml.5');
    const client = await page('nsregc.yaml.5');
    const skip = new Set(['validate.ts', 'duration.ts', 'errors.ts']);
    let checked = 0;
    for (const file of await filesUnder(path.join(ROOT, 'src', 'config'), '.ts')) {
      if (skip.has(path.basename(file))) continue;
      const rel = path.relative(path.join(ROOT, 'src', 'config'), file);
      const upstream = /^upstreams\/(\w+)\.ts$/.exec(rel)?.[1];
      const p = rel === 'client.ts' ? client : daemon;
      for (const key of keysRead(await readFile(file, 'utf8'))) {
        const found = p.entries.some((e) => e.key === key && (upstream === undefined || e.subsection === `type: ${upstream}`));
        assert.ok(found, `src/config/${rel} reads "${key}": no entry for it in ${rel === 'client.ts' ? 'nsregc.yaml.5' : 'nsregd.yaml.5'}${upstream === undefined ? '' : ` under "type: ${upstream}"`}`);
        checked++;
      }
    }
    assert.ok(checked > 60, `only ${checked} keys found: the scan of src/config is broken`);
  });

  it('every option of nsregd and nsregc has an entry in OPTIONS, the hidden aliases included', async () => {
    for (const program of ['nsregd', 'nsregc']) {
      const { stdout } = await run(process.execPath, [path.join(ROOT, 'bin', program), '--help'], { cwd: ROOT });
      const { long, short, args } = helpOptions(stdout);
      assert.ok(long.length >= 5, `${program} --help: ${stdout}`);
      const p = await page(`${program}.8`);
      const optionTags = p.tags.filter((t) => t.section === 'OPTIONS').map((t) => t.tag);
      for (const opt of [...long, ...short]) {
        const re = new RegExp(`(^|[\\s",])${opt}([\\s",]|$)`);
        assert.ok(optionTags.some((t) => re.test(t)), `${program}.8: no OPTIONS entry for ${opt}`);
      }
      for (const arg of args) assert.ok(optionTags.includes(`.I ${arg}`), `${program}.8: no OPTIONS entry for the argument ${arg}`);
    }
    // Hidden in --help (only named there), but options all the same.
    const nsregc = (await page('nsregc.8')).plain;
    assert.match(nsregc, /Alias:\n\.BR -s ,\n\.BR --server \./);
    assert.match(nsregc, /Alias:\n\.BR -t ,\n\.BR --tcp \./);
  });

  it('nsregd(8) lists every refusal with its RCODE and reason', async () => {
    const p = await page('nsregd.8');
    const tags = new Set(p.tags.filter((t) => t.section === 'DIAGNOSTICS').map((t) => t.tag));
    for (const [id, make] of Object.entries(Refusals)) {
      const r = make();
      const tag = `${rcodeName(r.rcode)} "${r.reason}"`;
      assert.ok(tags.has(tag), `nsregd.8 DIAGNOSTICS: no entry \`${tag}\` (refusal ${id})`);
    }
  });

  it('the example configurations in the pages load without warnings', async () => {
    const examples = (p: Page): string[] => [...p.plain.matchAll(/^\.EX\n([\s\S]*?)^\.EE$/gm)].map((m) => m[1] ?? '');
    const daemon = examples(await page('nsregd.yaml.5'));
    assert.equal(daemon.length, 2);
    for (const text of daemon) {
      const { config, warnings } = parseDaemonConfig(text, '/etc/nsregd/nsregd.yaml');
      assert.deepEqual(warnings, []);
      assert.ok(config.zones['dynamic.example.org.'] !== undefined);
    }
    const client = examples(await page('nsregc.yaml.5'));
    assert.equal(client.length, 1);
    const { config, warnings } = parseClientConfig(client[0] ?? '', '/etc/nsregc/nsregc.yaml', { hostname: 'host' });
    assert.deepEqual(warnings, []);
    assert.deepEqual(config.zones, ['dynamic.example.org.']);
  });
});
