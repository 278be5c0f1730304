import { after, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, statSync, truncateSync, unlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { Algorithm } from '../../../src/dns/constants.js';
import { generateKeyPair, publicKeyToRData } from '../../../src/dns/keys.js';
import type { KeyRData } from '../../../src/dns/types.js';
import { encodeLine } from '../../../src/daemon/journal.js';
import { KeyStoreError } from '../../../src/daemon/keydb/errors.js';
import { KeyStore } from '../../../src/daemon/keydb/keystore.js';
import { judgeDamage, ZONE_LOCK } from '../../../src/daemon/keydb/locks.js';
import { claimOp } from '../../../src/daemon/keydb/ops.js';
import { FakeClock } from '../../helpers/fake-clock.js';

const ZONE = 'dynamic.example.org.';
const KEYDB = 'dynamic.example.org.keydb';
const A = 'alpha.dynamic.example.org.';
const B = 'bravo.dynamic.example.org.';

// One data directory per test, all under one temporary root.
const root = mkdtempSync(path.join(tmpdir(), 'nsregd-keydamage-'));
after(() => rmSync(root, { recursive: true, force: true }));
let made = 0;
const tempDir = (): string => mkdirSync(path.join(root, String(++made)), { recursive: true }) ?? '';

function newKey(): KeyRData {
  return publicKeyToRData(generateKeyPair(Algorithm.ED25519).publicKey, Algorithm.ED25519, 512, 3);
}

async function claimKey(store: KeyStore, name: string, rdata: KeyRData, expiry: number): Promise<'claimed' | 'exists'> {
  const r = await store.claim(name, rdata, expiry);
  if (r === 'claimed') await store.confirm(name);
  return r;
}

const journalOf = (dir: string): string => path.join(dir, `${KEYDB}.journal`);
const lockFileOf = (dir: string): string => path.join(dir, `${KEYDB}.locked`);
const sameKey = (a: KeyRData | undefined, b: KeyRData): boolean => a !== undefined && a.publicKey.equals(b.publicKey) && a.algorithm === b.algorithm;

/** A store with A claimed (acknowledged: tentative and confirmation fsynced), then "kill -9": no close. */
async function crashedAfterClaim(dir: string, key: KeyRData): Promise<void> {
  const { store } = await KeyStore.open(dir, ZONE, new FakeClock());
  assert.equal(await claimKey(store, A, key, 1e12), 'claimed');
}

describe('KeyStore: damage never frees a name', () => {
  it('the last 20 bytes of an acknowledged claim cut off: the name is locked, loudly, and another key is refused', async () => {
    const dir = tempDir();
    const owner = newKey();
    await crashedAfterClaim(dir, owner);
    const journal = journalOf(dir);
    const size = statSync(journal).size;
    const lastLineStart = readFileSync(journal, 'latin1').lastIndexOf('\n', size - 2) + 1;
    truncateSync(journal, size - 20);

    const { store, errors, abandoned } = await KeyStore.open(dir, ZONE, new FakeClock());
    assert.ok(
      errors.some((e) => e.startsWith(`${journal}: byte offset ${lastLineStart} `) && e.includes(A) && e.includes('locked')),
      errors.join('\n'),
    );
    assert.ok(errors.some((e) => e.startsWith(`${A} is locked`) && e.includes(lockFileOf(dir))), 'how to release it is said');
    assert.equal(store.get(A)?.keyTag, -1, 'a stand-in no signature matches');
    assert.equal(await store.claim(A, newKey(), 1e12), 'exists', 'another key does not get the name');
    assert.deepEqual(abandoned, [A], 'the tentative claim itself is dropped; the lock keeps the name');
    assert.equal(store.get(B), undefined, 'other names are free');
    assert.equal(await claimKey(store, B, newKey(), 1e12), 'claimed');
    await store.close();

    // The torn bytes are gone from the journal, but the lock stands at the next start.
    const again = await KeyStore.open(dir, ZONE, new FakeClock());
    assert.equal(again.store.get(A)?.keyTag, -1);
    assert.ok(again.errors.some((e) => e.startsWith(`${A} is locked`)));
    await again.store.close();

    // An operator releases it by deleting the lock file's line.
    unlinkSync(lockFileOf(dir));
    const released = await KeyStore.open(dir, ZONE, new FakeClock());
    assert.equal(released.store.get(A), undefined);
    assert.deepEqual(released.errors, []);
    await released.store.close();
  });

  it('damage in the middle: the store opens, each damaged line is named with its offset, the names it touched are locked', async () => {
    const dir = tempDir();
    const a = newKey();
    const b = newKey();
    const c = newKey();
    const lines = [
      encodeLine(claimOp({ name: A, rdata: a, expiry: 1e12 }, false)),
      encodeLine(claimOp({ name: B, rdata: b, expiry: 1e12 }, false)),
      encodeLine({ op: 'refresh', name: A, expiry: 2e12 }),
      encodeLine(claimOp({ name: `charlie.${ZONE}`, rdata: c, expiry: 1e12 }, false)),
    ];
    // B's claim and A's refresh get a flipped byte each (in the key, in the expiry).
    lines[1] = lines[1].replace('"key":"', '"key":"X');
    lines[2] = lines[2].replace('2000000000000', '2000000000001');
    writeFileSync(journalOf(dir), lines.join(''));
    const { store, errors } = await KeyStore.open(dir, ZONE, new FakeClock());
    const offset = (i: number): number => Buffer.byteLength(lines.slice(0, i).join(''));
    assert.ok(errors.some((e) => e.startsWith(`${journalOf(dir)}: byte offset ${offset(1)} `) && e.includes(B)), errors.join('\n'));
    assert.ok(errors.some((e) => e.startsWith(`${journalOf(dir)}: byte offset ${offset(2)} `) && e.includes(A)), errors.join('\n'));
    // B's key is lost: locked. A's key is still known: its owner keeps it, nobody else gets it.
    assert.equal(store.get(B)?.keyTag, -1);
    assert.ok(sameKey(store.get(A)?.rdata, a));
    assert.equal(store.get(A)?.expiry, 1e12, 'the damaged refresh is not applied');
    assert.ok(sameKey(store.get(`charlie.${ZONE}`)?.rdata, c), 'lines after the damage are read');
    // When A's key expires, the name stays locked instead of becoming free.
    assert.deepEqual(
      store.expireDue(1e12).map((k) => k.name),
      [A, `charlie.${ZONE}`],
    );
    assert.equal(store.get(A)?.keyTag, -1);
    assert.equal(store.get(`charlie.${ZONE}`), undefined);
    assert.equal(await store.claim(A, newKey(), 3e12), 'exists');
    await store.close();
    assert.deepEqual(
      readFileSync(lockFileOf(dir), 'utf8')
        .split('\n')
        .filter((l) => l !== '' && !l.startsWith('#'))
        .map((l) => l.split('\t')[0])
        .sort(),
      [A, B],
    );
  });

  it('a torn tentative claim, refresh or nameless stub after the last good line is an interrupted write: dropped, nothing locked', async () => {
    for (const tail of [
      encodeLine(claimOp({ name: B, rdata: newKey(), expiry: 1e12 }, true)).slice(0, -20),
      encodeLine({ op: 'refresh', name: A, expiry: 2e12 }).slice(0, -12),
      encodeLine({ op: 'remove', name: A }).slice(0, -3),
      '{"op":"claim","na',
      '\0\0\0\0\0\0\0\0',
    ]) {
      const dir = tempDir();
      const a = newKey();
      const good = encodeLine(claimOp({ name: A, rdata: a, expiry: 1e12 }, false));
      writeFileSync(journalOf(dir), good + tail);
      const { store, warnings, errors } = await KeyStore.open(dir, ZONE, new FakeClock());
      assert.deepEqual(errors, [], JSON.stringify(tail));
      assert.equal(warnings.length, 1);
      assert.match(warnings[0], new RegExp(`^${journalOf(dir)}: byte offset ${Buffer.byteLength(good)} `));
      assert.ok(sameKey(store.get(A)?.rdata, a));
      assert.equal(store.get(B), undefined);
      assert.equal(existsSync(lockFileOf(dir)), false);
      await store.close();
    }
  });

  it('legacy lines without a checksum still load, and damage next to them is judged the same way', async () => {
    const dir = tempDir();
    const a = newKey();
    const legacy = JSON.stringify(claimOp({ name: A, rdata: a, expiry: 1e12 }, false)) + '\n';
    const torn = JSON.stringify(claimOp({ name: B, rdata: newKey(), expiry: 1e12 }, false)).slice(0, -5);
    writeFileSync(journalOf(dir), legacy + torn);
    const { store, errors } = await KeyStore.open(dir, ZONE, new FakeClock());
    assert.ok(sameKey(store.get(A)?.rdata, a));
    assert.equal(store.get(B)?.keyTag, -1);
    assert.ok(errors.some((e) => e.includes(`byte offset ${Buffer.byteLength(legacy)}`)));
    await store.close();
  });
});

describe('the lock file', () => {
  it('an operator may write it by hand: names without a reason, comments, any case; `*` locks every unclaimed name', async () => {
    const dir = tempDir();
    writeFileSync(lockFileOf(dir), `# hand-written\nALPHA.dynamic.example.org\n\n`);
    const { store, errors } = await KeyStore.open(dir, ZONE, new FakeClock());
    assert.equal(store.get(A)?.keyTag, -1);
    assert.equal(store.get(B), undefined);
    assert.deepEqual(errors, [`${A} is locked: locked by an operator; to release it, delete its line from ${lockFileOf(dir)} and restart`]);
    await store.close();
    writeFileSync(lockFileOf(dir), `*\tchecking the journal\n`);
    const frozen = await KeyStore.open(dir, ZONE, new FakeClock());
    assert.equal(frozen.store.get(B)?.keyTag, -1);
    assert.equal(await frozen.store.claim(B, newKey(), 1e12), 'exists');
    assert.match(frozen.errors[0], /^every name without a key is locked \(no new claims\): checking the journal;/);
    await frozen.store.close();
  });

  it('a line that is not a name is an error naming the file and line', async () => {
    const dir = tempDir();
    writeFileSync(lockFileOf(dir), `# x\n${'y'.repeat(70)}.${ZONE}\n`);
    await assert.rejects(KeyStore.open(dir, ZONE, new FakeClock()), (err: unknown) => {
      assert.ok(err instanceof KeyStoreError);
      assert.equal(err.reason, 'corrupt');
      assert.equal(err.file, lockFileOf(dir));
      assert.match(err.message, /line 2: /);
      return true;
    });
  });
});

describe('judgeDamage', () => {
  const line = (text: string, torn: boolean) => ({ file: 'j', offset: 0, bytes: Buffer.from(text, 'latin1'), torn });
  const cases: Array<[string, string, boolean, string | undefined]> = [
    ['confirmation, torn', `{"op":"claim","name":"${A}","flags":512,"pro`, true, A],
    ['confirmation, damaged before good lines', `{"op":"claim","name":"${A}","flags":5X2}\t00000000`, false, A],
    ['name upper-cased', `{"op":"claim","name":"ALPHA.Dynamic.Example.Org.","fl`, true, A],
    ['tentative claim, torn', `{"op":"claim","tentative":true,"name":"${A}","fl`, true, undefined],
    ['tentative claim, before good lines', `{"op":"claim","tentative":true,"name":"${A}","fl`, false, undefined],
    ['refresh, torn', `{"op":"refresh","name":"${A}","exp`, true, undefined],
    ['refresh, before good lines', `{"op":"refresh","name":"${A}","expiry":1}\tffffffff`, false, A],
    ['remove, before good lines', `{"op":"remove","name":"${A}"}\tffffffff`, false, A],
    ['operation unreadable', `{"oq":"clbim","name":"${A}"}\tffffffff`, true, A],
    ['name cut short, torn', `{"op":"claim","name":"alpha.dyn`, true, undefined],
    ['zeros, torn', '\0\0\0\0', true, undefined],
    ['name not a domain name (label of 70 octets), torn', `{"op":"claim","name":"${'x'.repeat(70)}.${ZONE}","f`, true, undefined],
    ['name outside the zone, torn', '{"op":"claim","name":"alpha.example.com.","f', true, undefined],
    ['no readable name, before good lines', '{"op":"frobnicate"}', false, ZONE_LOCK],
    ['zeros, before good lines', '\0\0\0\0', false, ZONE_LOCK],
  ];
  for (const [what, text, torn, lock] of cases) {
    it(`${what} → ${lock ?? 'no lock'}`, () => {
      const verdict = judgeDamage(line(text, torn), ZONE);
      assert.equal(verdict.lock, lock);
      assert.match(verdict.message, /^j: byte offset 0 /);
    });
  }
});
