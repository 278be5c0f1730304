import { after, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { appendFileSync, copyFileSync, existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, rmdirSync, statSync, symlinkSync, unlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { Algorithm } from '../../../src/dns/constants.js';
import { parsePublicKeyFile } from '../../../src/dns/keyfile.js';
import { generateKeyPair, keyTag, publicKeyToRData } from '../../../src/dns/keys.js';
import type { KeyRData } from '../../../src/dns/types.js';
import { KeyStoreError } from '../../../src/daemon/keydb/errors.js';
import { KeyStore, keyDbPath } from '../../../src/daemon/keydb/keystore.js';
import { formatRfc3339, parseRfc3339 } from '../../../src/daemon/keydb/rfc3339.js';
import type { StoredKey } from '../../../src/daemon/keydb/stored-key.js';
import { FakeClock } from '../../helpers/fake-clock.js';
import { fixturePath as anyFixture } from '../../helpers/fixtures.js';
const fixturePath = (rel: string): string => anyFixture(`go-keydb/${rel}`);

// Compiled to dist/test/unit/daemon/: the fixtures stay in the source tree.
const ZONE = 'dynamic.example.org.';
const KEYDB = 'dynamic.example.org.keydb';

const dirs: string[] = [];
function tempDir(): string {
  const d = mkdtempSync(path.join(tmpdir(), 'nsregd-keystore-'));
  dirs.push(d);
  return d;
}
after(() => {
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

function isStoreError(reason: string, file?: string): (err: unknown) => boolean {
  return (err: unknown) => {
    assert.ok(err instanceof KeyStoreError, `expected KeyStoreError, got ${String(err)}`);
    assert.equal(err.code, 'ERR_KEYSTORE');
    assert.equal(err.reason, reason);
    if (file !== undefined) assert.equal(err.file, file);
    return true;
  };
}

/** A distinct valid Ed25519 KEY rdata per call (cheap to generate). */
function newKey(): KeyRData {
  return publicKeyToRData(generateKeyPair(Algorithm.ED25519).publicKey, Algorithm.ED25519, 512, 3);
}

async function open(dir: string, clock = new FakeClock(), compactMinOps?: number): Promise<KeyStore> {
  const { store } = await KeyStore.open(dir, ZONE, clock, compactMinOps === undefined ? {} : { compactMinOps });
  return store;
}

/** The same key: flags, protocol, algorithm and public key bytes. */
function isKey(k: StoredKey | undefined, rdata: KeyRData): boolean {
  return (
    k !== undefined &&
    k.rdata.flags === rdata.flags &&
    k.rdata.protocol === rdata.protocol &&
    k.rdata.algorithm === rdata.algorithm &&
    k.rdata.publicKey.equals(rdata.publicKey)
  );
}

/** A claim as a request makes it: tentative, then confirmed. */
async function claimKey(store: KeyStore, name: string, rdata: KeyRData, expiry: number): Promise<'claimed' | 'exists'> {
  const r = await store.claim(name, rdata, expiry);
  if (r === 'claimed') await store.confirm(name);
  return r;
}

/** What a store holds, as comparable data. */
function contents(store: KeyStore): Map<string, { key: string; expiry: number }> {
  const out = new Map<string, { key: string; expiry: number }>();
  for (const k of store.keys()) out.set(k.name, { key: k.rdata.publicKey.toString('base64'), expiry: k.expiry });
  return out;
}

/** Reads a snapshot file the way the original daemon does: the JSON object alone, no journal. */
function readOriginalFormat(file: string): Record<string, Record<string, unknown>> {
  return JSON.parse(readFileSync(file, 'utf8')) as Record<string, Record<string, unknown>>;
}

/** A copy of the data directory as a crash would leave it (nothing flushed or closed). */
function crashCopy(dir: string, except: string[] = []): string {
  const copy = tempDir();
  for (const f of readdirSync(dir)) if (!except.includes(f)) copyFileSync(path.join(dir, f), path.join(copy, f));
  return copy;
}

/** The journal's operations (checksums stripped). */
function journalOps(dir: string): Array<Record<string, unknown>> {
  return journalLines(dir).map((l) => JSON.parse(l.includes('\t') ? l.slice(0, l.lastIndexOf('\t')) : l) as Record<string, unknown>);
}

function journalLines(dir: string): string[] {
  const f = path.join(dir, `${KEYDB}.journal`);
  if (!existsSync(f)) return [];
  return readFileSync(f, 'utf8').split('\n').filter((l) => l !== '');
}

describe('RFC 3339 times', () => {
  it('reads Go RFC3339Nano, offsets and the zero time; writes UTC with ms', () => {
    assert.equal(parseRfc3339('2026-12-22T01:54:12.837067088Z'), Date.UTC(2026, 11, 22, 1, 54, 12, 837));
    assert.equal(parseRfc3339('2026-12-22T01:54:12Z'), Date.UTC(2026, 11, 22, 1, 54, 12));
    assert.equal(parseRfc3339('2026-12-22T03:54:12.5+02:00'), Date.UTC(2026, 11, 22, 1, 54, 12, 500));
    assert.equal(parseRfc3339('2026-12-21T23:24:12-02:30'), Date.UTC(2026, 11, 22, 1, 54, 12));
    assert.equal(parseRfc3339('0001-01-01T00:00:00Z'), -62135596800000);
    for (const bad of ['2026-02-30T00:00:00Z', '2026-12-22 01:54:12Z', '2026-12-22T01:54:12', '2026-13-01T00:00:00Z', 'yesterday', '2026-12-22T24:00:00Z']) {
      assert.equal(parseRfc3339(bad), undefined, bad);
    }
    assert.equal(formatRfc3339(Date.UTC(2026, 11, 22, 1, 54, 12, 837)), '2026-12-22T01:54:12.837Z');
    assert.equal(parseRfc3339(formatRfc3339(1_700_000_000_123)), 1_700_000_000_123);
  });
});

describe('KeyStore: the original daemon file', () => {
  it('loads dynamic.example.org.keydb unchanged: 4 names, keys, tags, expiries to the ms', async () => {
    const dir = tempDir();
    copyFileSync(fixturePath(KEYDB), path.join(dir, KEYDB));
    const before = readFileSync(path.join(dir, KEYDB));
    const { store, warnings } = await KeyStore.open(dir, 'dynamic.example.org', new FakeClock());
    assert.deepEqual(warnings, []);
    assert.equal(store.file, path.join(dir, KEYDB));
    assert.equal(store.size, 4);
    const want: Array<[string, string, number, number, string]> = [
      ['alpha', 'Kalpha.dynamic.example.org.+014+32957.key', 14, 32957, '2026-12-22T01:54:12.837Z'],
      ['bravo', 'Kbravo.dynamic.example.org.+015+03740.key', 15, 3740, '2026-12-22T01:54:15.837Z'],
      ['charlie', 'Kcharlie.dynamic.example.org.+008+30554.key', 8, 30554, '2026-12-22T01:54:18.845Z'],
      ['delta', 'Kdelta.dynamic.example.org.+013+21468.key', 13, 21468, '2026-12-22T01:54:21.848Z'],
    ];
    for (const [label, keyFile, alg, tag, expiry] of want) {
      const k = store.get(`${label}.dynamic.example.org.`);
      assert.ok(k, label);
      const pub = parsePublicKeyFile(readFileSync(fixturePath(keyFile), 'utf8'), keyFile);
      assert.equal(k.name, `${label}.dynamic.example.org.`);
      assert.equal(k.rdata.algorithm, alg);
      assert.equal(k.rdata.flags, 512);
      assert.equal(k.rdata.protocol, 3);
      assert.equal(k.keyTag, tag);
      assert.ok(isKey(k, pub.rdata), `${label} matches its BIND key file`);
      assert.equal(k.expiry, Date.parse(expiry));
      // Imported once, then the same object every time.
      const obj = k.publicKey();
      assert.equal(k.publicKey(), obj);
      assert.equal(obj.type, 'public');
    }
    assert.equal(store.get('ALPHA.Dynamic.Example.Org')?.keyTag, 32957, 'lookups ignore case');
    await store.idle();
    assert.ok(readFileSync(path.join(dir, KEYDB)).equals(before), 'opening does not rewrite the file');
    await store.close();
    // Rewritten in the same format, and still the same keys.
    const doc = readOriginalFormat(path.join(dir, KEYDB));
    assert.deepEqual(Object.keys(doc), want.map(([l]) => `${l}.dynamic.example.org.`));
    const orig = readOriginalFormat(fixturePath(KEYDB));
    for (const [name, entry] of Object.entries(doc)) {
      assert.deepEqual(Object.keys(entry), ['Name', 'Flags', 'Protocol', 'Algorithm', 'KeyTag', 'PublicKey', 'Expiry']);
      const o = orig[name];
      for (const f of ['Name', 'Flags', 'Protocol', 'Algorithm', 'KeyTag', 'PublicKey']) assert.equal(entry[f], o[f], `${name} ${f}`);
      assert.equal(Date.parse(entry.Expiry as string), Math.floor(Date.parse(o.Expiry as string)));
    }
    assert.equal(statSync(path.join(dir, KEYDB)).mode & 0o777, 0o600);
  });

  it('of entries differing only in case the lower-case one keeps the name, whatever the expiries; each collision warned with both key tags', async () => {
    // victim (bravo's key) expires first; the later claims VICTIM (delta's key) and Victim (alpha's key) must not take it.
    const dir = tempDir();
    copyFileSync(anyFixture('keydb-case/lower-kept.keydb'), path.join(dir, KEYDB));
    const { store, warnings } = await KeyStore.open(dir, ZONE, new FakeClock());
    assert.equal(store.size, 2);
    const k = store.get('VICTIM.dynamic.example.org');
    assert.equal(k?.name, 'victim.dynamic.example.org.');
    assert.equal(k?.keyTag, 3740);
    assert.equal(k?.expiry, Date.parse('2026-12-22T01:54:15.837Z'));
    const collisions = warnings.filter((w) => w.includes('only in case'));
    assert.equal(collisions.length, 2);
    assert.ok(collisions.some((w) => w.includes('"VICTIM.dynamic.example.org."') && w.includes('key tag 21468') && w.includes('key tag 3740')), collisions.join('\n'));
    assert.ok(collisions.some((w) => w.includes('"Victim.dynamic.example.org."') && w.includes('key tag 32957') && w.includes('key tag 3740')), collisions.join('\n'));
    assert.equal(existsSync(path.join(dir, `${KEYDB}.locked`)), false);
    await store.close();
  });

  it('entries differing only in case with no lower-case one: the name is locked (no key keeps it), on disk before compaction', async () => {
    const dir = tempDir();
    copyFileSync(anyFixture('keydb-case/no-lower.keydb'), path.join(dir, KEYDB));
    const { store, warnings } = await KeyStore.open(dir, ZONE, new FakeClock());
    assert.equal(store.size, 1);
    assert.equal(store.has('victim.dynamic.example.org.'), false);
    // The stand-in of a locked name: key tag -1, which no signature carries.
    assert.equal(store.get('victim.dynamic.example.org.')?.keyTag, -1);
    assert.ok(warnings.some((w) => w.includes('key tag 21468') && w.includes('key tag 3740') && w.includes('locked')), warnings.join('\n'));
    assert.match(readFileSync(path.join(dir, `${KEYDB}.locked`), 'utf8'), /^victim\.dynamic\.example\.org\.\t.*key tag 21468.*key tag 3740/m);
    await store.close();
    // Reopened after the snapshot was rewritten without the entries: still locked.
    assert.doesNotMatch(readFileSync(path.join(dir, KEYDB), 'utf8'), /victim/i);
    const again = await KeyStore.open(dir, ZONE, new FakeClock());
    assert.equal(again.store.get('victim.dynamic.example.org.')?.keyTag, -1);
    await again.store.close();
  });

  it('a missing file is an empty database; the data directory is created', async () => {
    const dir = path.join(tempDir(), 'not', 'yet');
    const store = await open(dir);
    assert.equal(store.size, 0);
    assert.equal(keyDbPath(dir, 'Dynamic.Example.Org'), path.join(dir, KEYDB));
    await store.close();
  });

  it('a corrupt snapshot is an error naming the file, and the file is left alone', async () => {
    for (const text of ['{"a.dynamic.example.org.": {"Name": ', '[1,2]', '{"a.dynamic.example.org.":{"Flags":1,"Protocol":3,"Algorithm":15,"PublicKey":"!!","Expiry":"2026-01-01T00:00:00Z"}}', '{"a.dynamic.example.org.":{"Flags":1,"Protocol":3,"Algorithm":15,"PublicKey":"AAAA","Expiry":"soon"}}']) {
      const dir = tempDir();
      const file = path.join(dir, KEYDB);
      writeFileSync(file, text);
      await assert.rejects(open(dir), isStoreError('corrupt', file));
      assert.equal(readFileSync(file, 'utf8'), text);
    }
  });
});

describe('KeyStore: claims', () => {
  it('a claim is on disk before it resolves (a second reader sees it without flush)', async () => {
    const dir = tempDir();
    const store = await open(dir);
    const k = newKey();
    assert.equal(await claimKey(store, 'Host.Dynamic.Example.Org.', k, 5_000_000), 'claimed');
    const reader = await open(dir);
    assert.ok(isKey(reader.get('host.dynamic.example.org.'), k));
    assert.equal(reader.get('host.dynamic.example.org.')?.expiry, 5_000_000);
    assert.equal(statSync(path.join(dir, `${KEYDB}.journal`)).mode & 0o777, 0o600);
    await store.close();
  });

  it('names are case-insensitive: VICTIM.zone is the same name as victim.zone', async () => {
    const dir = tempDir();
    const store = await open(dir);
    const k1 = newKey();
    assert.equal(await claimKey(store, 'victim.dynamic.example.org.', k1, 1e12), 'claimed');
    assert.equal(await claimKey(store, 'VICTIM.dynamic.example.org.', newKey(), 1e12), 'exists');
    assert.equal(await claimKey(store, 'victim.DYNAMIC.example.org', newKey(), 1e12), 'exists');
    assert.ok(isKey(store.get('Victim.Dynamic.Example.Org.'), k1));
    assert.equal(store.size, 1);
    await store.close();
  });

  it('concurrent claims of one new name: exactly one wins, the others wait for its confirmation', async () => {
    const dir = tempDir();
    const store = await open(dir);
    const keys = Array.from({ length: 8 }, () => newKey());
    const results = await Promise.all(keys.map((k, i) => claimKey(store, i % 2 ? 'race.dynamic.example.org.' : 'RACE.dynamic.example.org.', k, 1e12)));
    assert.equal(results.filter((r) => r === 'claimed').length, 1);
    assert.equal(results.filter((r) => r === 'exists').length, 7);
    const winner = keys[results.indexOf('claimed')];
    assert.ok(isKey(store.get('race.dynamic.example.org.'), winner));
    const ops = journalOps(dir);
    assert.deepEqual(ops.map((o) => [o.op, o.tentative, o.key]), [
      ['claim', true, winner.publicKey.toString('base64')],
      ['claim', undefined, winner.publicKey.toString('base64')],
    ], 'only the winner was written: tentative, then confirmed');
    await store.close();
    assert.ok(isKey((await open(dir)).get('race.dynamic.example.org.'), winner));
  });

  it('concurrent claims of different names are all stored, one tentative and one confirming line each', async () => {
    const dir = tempDir();
    const store = await open(dir);
    const names = Array.from({ length: 50 }, (_, i) => `h${i}.dynamic.example.org.`);
    const results = await Promise.all(names.map((n) => claimKey(store, n, newKey(), 1e12)));
    assert.ok(results.every((r) => r === 'claimed'));
    assert.equal(journalLines(dir).length, 100);
    const reader = await open(dir);
    assert.equal(reader.size, 50);
    await store.close();
  });

  it('a claim is not visible (get, has, keys, size, nextExpiry, expiry) until it is confirmed', async () => {
    const dir = tempDir();
    const clock = new FakeClock(1_000);
    const store = await open(dir, clock);
    const name = 'slow.dynamic.example.org.';
    const p = store.claim(name, newKey(), 2_000);
    assert.equal(store.get(name), undefined);
    assert.equal(await p, 'claimed');
    assert.equal(store.get(name), undefined);
    assert.equal(store.has(name), false);
    assert.deepEqual([...store.keys()], []);
    assert.equal(store.size, 0);
    assert.equal(store.nextExpiry(), undefined);
    assert.deepEqual(store.expireDue(1e15), [], 'a tentative claim never expires');
    assert.equal(store.refresh(name, 3_000), false);
    await store.confirm(name);
    assert.equal(store.get(name)?.expiry, 2_000);
    assert.equal(store.nextExpiry(), 2_000);
    assert.equal(store.size, 1);
    await store.close();
  });
});

describe('KeyStore: tentative claims', () => {
  const NAME = 'new.dynamic.example.org.';

  it('a crash after the tentative claim: reopening drops it and lists it as abandoned, once', async () => {
    const dir = tempDir();
    const store = await open(dir);
    assert.equal(await store.claim(NAME, newKey(), 1e12), 'claimed');
    const copy = crashCopy(dir);
    const { store: reopened, abandoned, warnings } = await KeyStore.open(copy, ZONE, new FakeClock());
    assert.deepEqual(abandoned, [NAME]);
    assert.ok(warnings.some((w) => w.includes(NAME)), 'a warning names it');
    assert.equal(reopened.get(NAME), undefined);
    assert.equal(reopened.size, 0);
    // The name is free again.
    assert.equal(await claimKey(reopened, NAME, newKey(), 1e12), 'claimed');
    await reopened.close();
    const again = await KeyStore.open(copy, ZONE, new FakeClock());
    assert.deepEqual(again.abandoned, [], 'reported once');
    assert.equal(again.store.size, 1);
    await again.store.close();
    await store.close();
  });

  it('a crash after the confirmation: the key is there, nothing abandoned', async () => {
    const dir = tempDir();
    const store = await open(dir);
    const k = newKey();
    await store.claim(NAME, k, 1e12);
    await store.confirm(NAME);
    const { store: reopened, abandoned } = await KeyStore.open(crashCopy(dir), ZONE, new FakeClock());
    assert.deepEqual(abandoned, []);
    assert.ok(isKey(reopened.get(NAME), k));
    await reopened.close();
    await store.close();
  });

  it('a compaction between claim and confirm keeps the tentative claim (in the fresh journal, not the snapshot)', async () => {
    const dir = tempDir();
    const store = await open(dir);
    await claimKey(store, 'old.dynamic.example.org.', newKey(), 1e12);
    const k = newKey();
    await store.claim(NAME, k, 1e12);
    await store.flush();
    assert.deepEqual(Object.keys(readOriginalFormat(path.join(dir, KEYDB))), ['old.dynamic.example.org.'], 'the snapshot holds confirmed keys only');
    assert.deepEqual(journalOps(dir).map((o) => [o.op, o.name, o.tentative]), [['claim', NAME, true]], 'carried over');
    assert.equal(existsSync(path.join(dir, `${KEYDB}.journal.old`)), false);
    const crashed = await KeyStore.open(crashCopy(dir), ZONE, new FakeClock());
    assert.deepEqual(crashed.abandoned, [NAME]);
    assert.equal(crashed.store.size, 1);
    await crashed.store.close();

    await store.confirm(NAME);
    const confirmed = await KeyStore.open(crashCopy(dir), ZONE, new FakeClock());
    assert.deepEqual(confirmed.abandoned, []);
    assert.ok(isKey(confirmed.store.get(NAME), k));
    await confirmed.store.close();
    await store.close();
  });

  it('close() with a claim pending keeps it in the journal: the next open reports it', async () => {
    const dir = tempDir();
    const store = await open(dir);
    await store.claim(NAME, newKey(), 1e12);
    await store.close();
    assert.ok(existsSync(path.join(dir, `${KEYDB}.journal`)));
    const { store: reopened, abandoned } = await KeyStore.open(dir, ZONE, new FakeClock());
    assert.deepEqual(abandoned, [NAME]);
    await reopened.close();
    assert.deepEqual(readdirSync(dir), [KEYDB], 'then nothing is left but the snapshot');
  });

  it('compactions at any point between claims and confirmations lose nothing', async () => {
    const dir = tempDir();
    const store = await open(dir, new FakeClock(), 2);
    const names = Array.from({ length: 20 }, (_, i) => `t${i}.dynamic.example.org.`);
    for (const [i, n] of names.entries()) {
      await store.claim(n, newKey(), 1e12);
      if (i % 3 !== 2) await store.confirm(n);
    }
    await store.idle();
    const { store: reopened, abandoned } = await KeyStore.open(crashCopy(dir), ZONE, new FakeClock());
    assert.deepEqual(abandoned.sort(), names.filter((_, i) => i % 3 === 2).sort());
    assert.deepEqual(contents(reopened), contents(store));
    await reopened.close();
    await store.close();
  });

  it('abandon: the name is free at once (a waiting claim proceeds), and stays free after a crash', async () => {
    const dir = tempDir();
    const store = await open(dir);
    await store.claim(NAME, newKey(), 1e12);
    const k2 = newKey();
    const second = store.claim(NAME, k2, 1e12);
    store.abandon(NAME);
    store.abandon(NAME);
    assert.equal(await second, 'claimed');
    await store.confirm(NAME);
    assert.ok(isKey(store.get(NAME), k2));
    store.abandon(NAME);
    assert.ok(isKey(store.get(NAME), k2), 'abandon does not touch a confirmed key');
    await store.idle();
    const { store: reopened, abandoned } = await KeyStore.open(crashCopy(dir), ZONE, new FakeClock());
    assert.deepEqual(abandoned, []);
    assert.ok(isKey(reopened.get(NAME), k2));
    await reopened.close();

    await store.claim('gone.dynamic.example.org.', newKey(), 1e12);
    store.abandon('gone.dynamic.example.org.');
    await store.idle();
    const after = await KeyStore.open(crashCopy(dir), ZONE, new FakeClock());
    assert.deepEqual(after.abandoned, []);
    assert.equal(after.store.get('gone.dynamic.example.org.'), undefined);
    await after.store.close();
    await store.close();
  });

  it('a waiting claim gets exists once the first is confirmed', async () => {
    const dir = tempDir();
    const store = await open(dir);
    await store.claim(NAME, newKey(), 1e12);
    let settled = false;
    const second = store.claim(NAME, newKey(), 1e12).finally(() => (settled = true));
    await store.idle();
    assert.equal(settled, false, 'it waits while the first is tentative');
    await store.confirm(NAME);
    assert.equal(await second, 'exists');
    await store.close();
  });

  it('a confirmation that cannot be written rejects; the claim stays tentative until abandoned', async () => {
    const dir = tempDir();
    const store = await open(dir);
    await store.claim(NAME, newKey(), 1e12);
    await store.flush();
    const journal = path.join(dir, `${KEYDB}.journal`);
    // The next write reopens the journal: put a directory in its way.
    unlinkSync(journal);
    mkdirSync(journal);
    await assert.rejects(store.confirm(NAME), isStoreError('write-failed', journal));
    assert.equal(store.get(NAME), undefined);
    const k2 = newKey();
    const waiting = store.claim(NAME, k2, 1e12);
    store.abandon(NAME);
    rmdirSync(journal);
    assert.equal(await waiting, 'claimed');
    await store.confirm(NAME);
    assert.ok(isKey(store.get(NAME), k2));
    await store.close();
  });

  it('confirm without a tentative claim is a programming error', async () => {
    const store = await open(tempDir());
    await assert.rejects(store.confirm(NAME), /no tentative claim/);
    await store.close();
  });
});

describe('KeyStore: journal and crashes', () => {
  it('replays claims, refreshes and removals written before a crash (no flush, no close)', async () => {
    const dir = tempDir();
    copyFileSync(fixturePath(KEYDB), path.join(dir, KEYDB));
    const crashed = await open(dir);
    const k = newKey();
    await claimKey(crashed, 'new.dynamic.example.org.', k, 1e12);
    assert.equal(crashed.refresh('ALPHA.dynamic.example.org.', 2e12), true);
    assert.equal(crashed.remove('bravo.dynamic.example.org.'), true);
    assert.equal(crashed.refresh('nobody.dynamic.example.org.', 2e12), false);
    assert.equal(crashed.remove('nobody.dynamic.example.org.'), false);
    await crashed.idle();
    // The process dies here: nothing flushed, the snapshot is still the original.
    assert.ok(readFileSync(path.join(dir, KEYDB)).equals(readFileSync(fixturePath(KEYDB))));
    const copy = tempDir();
    for (const f of readdirSync(dir)) copyFileSync(path.join(dir, f), path.join(copy, f));
    const reopened = await open(copy);
    assert.deepEqual(contents(reopened), contents(crashed));
    assert.equal(reopened.size, 4);
    assert.equal(reopened.get('alpha.dynamic.example.org.')?.expiry, 2e12);
    assert.equal(reopened.get('bravo.dynamic.example.org.'), undefined);
    assert.ok(isKey(reopened.get('new.dynamic.example.org.'), k));
    await reopened.close();
    await crashed.close();
  });

  it('replays hand-written journal lines over the snapshot', async () => {
    const dir = tempDir();
    copyFileSync(fixturePath(KEYDB), path.join(dir, KEYDB));
    const k = newKey();
    const lines = [
      { op: 'claim', name: 'echo.dynamic.example.org.', flags: 512, protocol: 3, algorithm: 15, key: k.publicKey.toString('base64'), expiry: 123 },
      { op: 'refresh', name: 'echo.dynamic.example.org.', expiry: 456 },
      { op: 'remove', name: 'charlie.dynamic.example.org.' },
      { op: 'refresh', name: 'delta.dynamic.example.org.', expiry: 789 },
    ];
    writeFileSync(path.join(dir, `${KEYDB}.journal`), lines.map((l) => JSON.stringify(l) + '\n').join(''));
    const store = await open(dir);
    assert.equal(store.size, 4);
    assert.equal(store.get('echo.dynamic.example.org.')?.expiry, 456);
    assert.equal(store.get('echo.dynamic.example.org.')?.keyTag, keyTag(k));
    assert.equal(store.get('charlie.dynamic.example.org.'), undefined);
    assert.equal(store.get('delta.dynamic.example.org.')?.expiry, 789);
    await store.close();
  });

  it('ignores (and cuts off) a torn last line, then appends cleanly after it', async () => {
    const dir = tempDir();
    const k = newKey();
    const journal = path.join(dir, `${KEYDB}.journal`);
    const good = JSON.stringify({ op: 'claim', name: 'one.dynamic.example.org.', flags: 512, protocol: 3, algorithm: 15, key: k.publicKey.toString('base64'), expiry: 1e12 }) + '\n';
    writeFileSync(journal, good);
    const goodSize = statSync(journal).size;
    appendFileSync(journal, '{"op":"claim","name":"two.dynamic.exa');
    const { store, warnings } = await KeyStore.open(dir, ZONE, new FakeClock());
    assert.equal(store.size, 1);
    assert.equal(warnings.length, 1);
    assert.equal(statSync(journal).size, goodSize, 'torn bytes cut off');
    await claimKey(store, 'three.dynamic.example.org.', newKey(), 1e12);
    const again = await open(dir);
    assert.deepEqual([...contents(again).keys()].sort(), ['one.dynamic.example.org.', 'three.dynamic.example.org.']);
    await store.close();
  });

  it('a damaged line with good lines after it does not stop the open: an error names the journal and offset, and names are locked', async () => {
    const dir = tempDir();
    const store = await open(dir);
    const one = newKey();
    await claimKey(store, 'one.dynamic.example.org.', one, 1e12);
    await claimKey(store, 'two.dynamic.example.org.', newKey(), 1e12);
    await store.idle();
    const journal = path.join(dir, `${KEYDB}.journal`);
    const [l1, l2] = readFileSync(journal, 'utf8').split('\n');
    writeFileSync(journal, `${l1}\n{"op":"frobnicate"}\n${l2}\n`);
    const { store: again, errors } = await KeyStore.open(dir, ZONE, new FakeClock());
    assert.ok(errors.some((e) => e.startsWith(`${journal}: byte offset ${Buffer.byteLength(l1) + 1} `)), errors.join('\n'));
    // The line shows no name: every name without a key is locked; keys still known stay usable.
    assert.ok(isKey(again.get('one.dynamic.example.org.'), one));
    assert.equal(again.get('three.dynamic.example.org.')?.keyTag, -1);
    assert.equal(await claimKey(again, 'three.dynamic.example.org.', newKey(), 1e12), 'exists');
    await again.close();
    await store.close().catch(() => undefined);
  });

  it('compacts in the background: the snapshot alone (original format) then holds everything', async () => {
    const dir = tempDir();
    const store = await open(dir, new FakeClock(), 5);
    const model = new Map<string, number>();
    for (let i = 0; i < 20; i++) {
      const name = `c${i}.dynamic.example.org.`;
      await claimKey(store, name, newKey(), 1000 + i);
      model.set(name, 1000 + i);
      if (i % 3 === 0) {
        store.refresh(name, 5000 + i);
        model.set(name, 5000 + i);
      }
    }
    await store.idle();
    // Fewer operations are left in the journal than the threshold allows.
    assert.ok(journalLines(dir).length <= 20, `journal has ${journalLines(dir).length} lines`);
    assert.equal(existsSync(path.join(dir, `${KEYDB}.journal.old`)), false);
    // The original daemon reads only the snapshot. Flush first so it is complete.
    await store.flush();
    const doc = readOriginalFormat(path.join(dir, KEYDB));
    assert.equal(Object.keys(doc).length, 20);
    for (const [name, expiry] of model) {
      assert.equal(doc[name].Name, name);
      assert.equal(Date.parse(doc[name].Expiry as string), expiry);
    }
    // Our loader, given the snapshot without any journal, agrees.
    const only = tempDir();
    copyFileSync(path.join(dir, KEYDB), path.join(only, KEYDB));
    const snap = await open(only);
    assert.deepEqual(contents(snap), contents(store));
    assert.equal(statSync(path.join(dir, KEYDB)).mode & 0o777, 0o600);
    await store.close();
    assert.equal(existsSync(path.join(dir, `${KEYDB}.journal`)), false, 'close leaves only the snapshot');
    assert.deepEqual(readdirSync(dir), [KEYDB]);
  });

  it('a compaction interrupted by a crash (journal.old left behind) replays correctly and is finished on open', async () => {
    const dir = tempDir();
    copyFileSync(fixturePath(KEYDB), path.join(dir, KEYDB));
    const k = newKey();
    const line = (o: object): string => JSON.stringify(o) + '\n';
    // The old journal was already folded into a snapshot... or not: either way replay must agree.
    writeFileSync(
      path.join(dir, `${KEYDB}.journal.old`),
      line({ op: 'remove', name: 'alpha.dynamic.example.org.' }) +
        line({ op: 'claim', name: 'alpha.dynamic.example.org.', flags: 512, protocol: 3, algorithm: 15, key: k.publicKey.toString('base64'), expiry: 42 }),
    );
    writeFileSync(path.join(dir, `${KEYDB}.journal`), line({ op: 'refresh', name: 'alpha.dynamic.example.org.', expiry: 43 }));
    const store = await open(dir);
    assert.ok(isKey(store.get('alpha.dynamic.example.org.'), k));
    assert.equal(store.get('alpha.dynamic.example.org.')?.expiry, 43);
    await store.idle();
    assert.equal(existsSync(path.join(dir, `${KEYDB}.journal.old`)), false);
    const again = await open(dir);
    assert.deepEqual(contents(again), contents(store));
    await store.close();
  });

  it('random claims/refreshes/removals with frequent compaction survive a crash at any quiet point', async () => {
    const dir = tempDir();
    const store = await open(dir, new FakeClock(), 3);
    const names = Array.from({ length: 12 }, (_, i) => `r${i}.dynamic.example.org.`);
    let seed = 99;
    const rand = (): number => ((seed = (seed * 1103515245 + 12345) % 2 ** 31) / 2 ** 31);
    for (let step = 0; step < 300; step++) {
      const name = names[Math.floor(rand() * names.length)];
      const r = rand();
      if (r < 0.4) await claimKey(store, name, newKey(), Math.floor(rand() * 1e6));
      else if (r < 0.8) store.refresh(name, Math.floor(rand() * 1e6));
      else store.remove(name);
      if (step % 25 === 24) {
        await store.idle();
        const copy = tempDir();
        for (const f of readdirSync(dir)) copyFileSync(path.join(dir, f), path.join(copy, f));
        const reopened = await open(copy);
        assert.deepEqual(contents(reopened), contents(store), `step ${step}`);
      }
    }
    await store.close();
    const final = await open(dir);
    assert.equal(final.size, store.size);
  });
});

describe('KeyStore: write failures', () => {
  it('a snapshot that cannot be written: compaction fails in the background, backs off, and succeeds once possible', async () => {
    const dir = tempDir();
    const errors: KeyStoreError[] = [];
    const { store } = await KeyStore.open(dir, ZONE, new FakeClock(), { compactMinOps: 2, onBackgroundError: (e) => errors.push(e) });
    // A non-empty directory where the snapshot goes: the rename onto it fails.
    mkdirSync(path.join(dir, KEYDB));
    writeFileSync(path.join(dir, KEYDB, 'x'), '');
    for (let i = 0; i < 30; i++) {
      await claimKey(store, `b${i}.dynamic.example.org.`, newKey(), 1e12);
      await store.idle();
    }
    assert.ok(errors.length >= 1, 'the failure was reported');
    assert.ok(errors.every((e) => e.reason === 'write-failed'));
    // Without the back-off nearly every claim would try again (29 attempts).
    assert.ok(errors.length <= 10, `backed off: ${errors.length} attempts for 60 operations`);
    // Nothing was lost meanwhile.
    const reader = await KeyStore.open(crashCopy(dir, [KEYDB]), ZONE, new FakeClock());
    assert.equal(reader.store.size, 30);
    await reader.store.close();
    rmSync(path.join(dir, KEYDB), { recursive: true });
    await store.flush();
    assert.equal(Object.keys(readOriginalFormat(path.join(dir, KEYDB))).length, 30);
    await store.close();
    assert.deepEqual(readdirSync(dir), [KEYDB]);
  });

  it('a journal that cannot be opened (a directory in its place) rejects the claim; nothing changes', async () => {
    const dir = tempDir();
    copyFileSync(fixturePath(KEYDB), path.join(dir, KEYDB));
    const store = await open(dir);
    const journal = path.join(dir, `${KEYDB}.journal`);
    mkdirSync(journal);
    await assert.rejects(store.claim('new.dynamic.example.org.', newKey(), 1e12), isStoreError('write-failed', journal));
    assert.equal(store.get('new.dynamic.example.org.'), undefined);
    assert.equal(store.size, 4);
    assert.ok(readFileSync(path.join(dir, KEYDB)).equals(readFileSync(fixturePath(KEYDB))), 'the existing file is intact');
    // Once the obstacle is gone, the next claim of that name goes through.
    rmdirSync(journal);
    assert.equal(await claimKey(store, 'new.dynamic.example.org.', newKey(), 1e12), 'claimed');
    await store.close();
    assert.equal((await open(dir)).size, 5);
  });

  it('a full disk (journal on /dev/full: ENOSPC even for root) rejects the claim; the next one succeeds once space is back', async () => {
    assert.ok(existsSync('/dev/full'), '/dev/full is needed to simulate a full disk');
    const dir = tempDir();
    const first = await open(dir);
    await claimKey(first, 'before.dynamic.example.org.', newKey(), 1e12);
    await first.close();
    const snapshot = readFileSync(path.join(dir, KEYDB));
    const store = await open(dir);
    const journal = path.join(dir, `${KEYDB}.journal`);
    // The journal is opened on the first write: make that land on a full device.
    symlinkSync('/dev/full', journal);
    await assert.rejects(store.claim('lost.dynamic.example.org.', newKey(), 1e12), (err: unknown) => {
      assert.ok(isStoreError('write-failed', journal)(err));
      assert.equal(((err as Error).cause as NodeJS.ErrnoException).code, 'ENOSPC');
      return true;
    });
    assert.equal(store.get('lost.dynamic.example.org.'), undefined);
    assert.ok(readFileSync(path.join(dir, KEYDB)).equals(snapshot), 'the snapshot is intact');
    unlinkSync(journal);
    assert.equal(await claimKey(store, 'after.dynamic.example.org.', newKey(), 1e12), 'claimed');
    const reader = await open(dir);
    assert.deepEqual([...contents(reader).keys()].sort(), ['after.dynamic.example.org.', 'before.dynamic.example.org.']);
    await store.close();
  });
});

describe('KeyStore: expiry', () => {
  it('expireDue returns and drops expired keys, earliest first; removals reach the disk', async () => {
    const dir = tempDir();
    const clock = new FakeClock(1_000_000);
    const store = await open(dir, clock);
    await claimKey(store, 'a.dynamic.example.org.', newKey(), 1_000_500);
    await claimKey(store, 'b.dynamic.example.org.', newKey(), 1_000_100);
    await claimKey(store, 'c.dynamic.example.org.', newKey(), 9_000_000);
    store.refresh('c.dynamic.example.org.', 1_000_200);
    assert.equal(store.nextExpiry(), 1_000_100);
    assert.deepEqual(store.expireDue(1_000_099), []);
    const gone = store.expireDue(1_000_200).map((k: StoredKey) => k.name);
    assert.deepEqual(gone, ['b.dynamic.example.org.', 'c.dynamic.example.org.']);
    assert.equal(store.get('b.dynamic.example.org.'), undefined);
    assert.equal(store.size, 1);
    clock.setNow(2_000_000);
    assert.deepEqual(store.expireDue().map((k) => k.name), ['a.dynamic.example.org.']);
    await store.idle();
    assert.equal((await open(dir)).size, 0);
    // An expired name can be claimed anew.
    assert.equal(await claimKey(store, 'b.dynamic.example.org.', newKey(), 3_000_000), 'claimed');
    await store.close();
  });

  it('a closed store refuses changes with reason closed', async () => {
    const dir = tempDir();
    const store = await open(dir);
    await store.close();
    await store.close();
    await assert.rejects(store.claim('x.dynamic.example.org.', newKey(), 1), isStoreError('closed'));
    assert.throws(() => store.refresh('x.dynamic.example.org.', 1), isStoreError('closed'));
    assert.deepEqual(store.expireDue(Infinity), []);
  });
});
