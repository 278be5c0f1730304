/**
 * `nsregd store export|import` on the files store and the JSON lines format:
 * a round trip files → JSON → files carries every live claim and record
 * (imported records come back withdrawn, for the next start to publish);
 * every refusal of a hostile or mistaken file names its line and writes
 * nothing; a name claimed at the target by another key stops the import
 * before anything is written; a daemon on the data directory stops both.
 */
import { strict as assert } from 'node:assert';
import { rmSync } from 'node:fs';
import { after, describe, it } from 'node:test';
import { pino } from 'pino';
import { keyTag } from '../../../src/dns/keys.js';
import { ControlServer } from '../../../src/daemon/control.js';
import { KeyStore } from '../../../src/daemon/keydb/keystore.js';
import {
  exportFiles,
  formatTransfer,
  headerLine,
  importFiles,
  MAX_LINE_BYTES,
  nameLine,
  parseTransfer,
  StoreTransferError,
  withDataDirHeld,
} from '../../../src/daemon/store-transfer.js';
import { ZoneState } from '../../../src/daemon/zonestate.js';
import { systemClock } from '../../../src/clock.js';
import { entry, newKey, NOW, seed, SITE, siteConfigs, sorted, Z1, Z2 } from '../../helpers/transfer-site.js';

const { config, cleanup } = siteConfigs();
after(cleanup);
const logger = pino({ level: 'silent' });

describe('store transfer: the format', () => {
  const c = config();

  it('what formatTransfer writes, parseTransfer reads back', () => {
    const text = formatTransfer(SITE, NOW);
    assert.deepEqual(parseTransfer(text, 'x', c.zones), [...SITE]);
    const lines = text.split('\n');
    assert.deepEqual(JSON.parse(lines[0] ?? ''), { 'nsregd-store': 1, exported: new Date(NOW).toISOString() });
    const first = JSON.parse(lines[1] ?? '') as Record<string, unknown>;
    assert.deepEqual(Object.keys(first), ['zone', 'name', 'key', 'keyTag', 'expiry', 'records']);
    assert.deepEqual(Object.keys(first.key as object), ['flags', 'protocol', 'algorithm', 'publicKey']);
    assert.equal(lines.at(-1), '');
    // A header alone is an empty export.
    assert.deepEqual(parseTransfer(`${headerLine(NOW)}\n`, 'x', c.zones), []);
  });

  /** A name line as a JSON object, to be spoilt. */
  interface Line {
    [field: string]: unknown;
    zone: unknown;
    name: unknown;
    key: Record<string, unknown>;
    keyTag: number;
    records?: unknown;
  }
  const recs = (o: Line): Array<Record<string, unknown>> => o.records as Array<Record<string, unknown>>;
  const good = (): Line => JSON.parse(nameLine(SITE[0])) as Line;

  function refused(body: string, line: number, why: RegExp, header = headerLine(NOW)): void {
    assert.throws(
      () => parseTransfer(`${header}\n${body}`, 'the-file', c.zones),
      (err: unknown) => {
        assert.ok(err instanceof StoreTransferError, String(err));
        assert.ok(err.message.startsWith(`the-file: line ${line}: `), err.message);
        assert.match(err.message, why);
        assert.ok(err.message.endsWith('; nothing imported'), err.message);
        return true;
      },
    );
  }
  const spoilt = (f: (o: Line) => void): string => {
    const o = good();
    f(o);
    return `${JSON.stringify(o)}\n`;
  };

  it('refuses a missing, malformed or unknown header', () => {
    assert.throws(() => parseTransfer('', 'f', c.zones), /f: line 1: empty: no header/);
    refused('', 1, /not JSON/, 'nsregd');
    refused('', 1, /not an nsregd store export header: the header is not a JSON object/, '[]');
    refused('', 1, /has no "exported"/, '{"nsregd-store":1}');
    refused('', 1, /format 2 is not one this nsregd reads \(1\)/, '{"nsregd-store":2,"exported":"2026-01-01T00:00:00Z"}');
    refused('', 1, /exported is not an RFC 3339 time/, '{"nsregd-store":1,"exported":"yesterday"}');
    refused('', 1, /unknown field "x"/, '{"nsregd-store":1,"exported":"2026-01-01T00:00:00Z","x":1}');
  });

  const cases: Array<[string, string, RegExp]> = [
    ['not JSON', '{"zone":', /not JSON/],
    ['an empty line', '\n', /not JSON/],
    ['a list', '[]\n', /the line is not a JSON object/],
    ['an unknown field', spoilt((o) => (o.extra = 1)), /unknown field "extra"/],
    ['a missing field', spoilt((o) => delete o.records), /has no "records"/],
    ['a zone not in canonical form', spoilt((o) => (o.zone = 'DYN.example.org')), /zone is not a domain name in canonical form/],
    ['a zone not configured', spoilt((o) => ((o.zone = 'elsewhere.example.'), (o.name = 'alpha.elsewhere.example.'))), /zone elsewhere\.example\. is not configured here/],
    ['a name outside its zone', spoilt((o) => (o.name = 'alpha.other.example.')), /not one label below dyn\.example\.org\./],
    ['a name two labels below', spoilt((o) => (o.name = 'a.b.dyn.example.org.')), /not one label below/],
    ['the zone itself', spoilt((o) => (o.name = 'dyn.example.org.')), /not one label below/],
    ['a name not a host name', spoilt((o) => (o.name = 'a_b.dyn.example.org.')), /not a claimable label \(label-syntax: hostname\)/],
    ['a wildcard', spoilt((o) => (o.name = '*.dyn.example.org.')), /not a claimable label/],
    ['a reserved name', spoilt((o) => (o.name = 'ns.dyn.example.org.')), /reserved in dyn\.example\.org\./],
    ['a name as a number', spoilt((o) => (o.name = 7)), /name is not a domain name/],
    ['a key with an unknown field', spoilt((o) => (o.key.x = 1)), /key has unknown field "x"/],
    ['a key tag not the key\'s', spoilt((o) => (o.keyTag = (o.keyTag + 1) % 65536)), /key: key tag \d+ is not the key's/],
    ['a key in bad base64', spoilt((o) => (o.key.publicKey = 'not base64!')), /key: public key is not canonical base64/],
    ['flags out of range', spoilt((o) => (o.key.flags = 65536)), /key: KEY flags, protocol or algorithm out of range/],
    ['flags as a string', spoilt((o) => (o.key.flags = '256')), /out of range/],
    ['an unsupported algorithm', spoilt((o) => (o.key.algorithm = 1)), /key: /],
    ['an expiry not RFC 3339', spoilt((o) => (o.expiry = NOW)), /expiry is not an RFC 3339 time/],
    ['records not a list', spoilt((o) => (o.records = {})), /records is not a list/],
    ['a record with an unknown type', spoilt((o) => (recs(o)[0].type = 'TXT')), /records\[0\]\.type is not A or AAAA/],
    ['an address not canonical', spoilt((o) => (recs(o)[2].address = '2001:DB8:0::1')), /records\[2\]\.address is not an AAAA address in canonical form/],
    ['an A record with an IPv6 address', spoilt((o) => (recs(o)[0].address = '2001:db8::1')), /records\[0\]\.address is not an A address/],
    ['a negative TTL', spoilt((o) => (recs(o)[1].ttl = -1)), /records\[1\]\.ttl is not a TTL/],
    ['a fractional TTL', spoilt((o) => (recs(o)[1].ttl = 1.5)), /records\[1\]\.ttl is not a TTL/],
    ['a TTL beyond 2^31-1', spoilt((o) => (recs(o)[1].ttl = 2 ** 31)), /records\[1\]\.ttl is not a TTL/],
    ['a record deadline not RFC 3339', spoilt((o) => (recs(o)[0].expiresAt = 'soon')), /records\[0\]\.expiresAt is not an RFC 3339 time/],
    ['a record with a missing field', spoilt((o) => delete recs(o)[0].ttl), /records\[0\] has no "ttl"/],
    ['a record given twice', spoilt((o) => (recs(o)[1].address = recs(o)[0].address)), /record A 192\.0\.2\.1 is given twice/],
    ['more records than the zone allows', spoilt((o) => ((o.zone = Z2), (o.name = `alpha.${Z2}`), recs(o).push({ ...recs(o)[0], address: '192.0.2.9' }))), /4 records; other\.example\. allows 3 per name/],
    ['a line too long', `{"zone":"${'x'.repeat(MAX_LINE_BYTES)}"}\n`, /longer than 1048576 octets/],
  ];
  for (const [what, body, why] of cases) {
    it(`refuses ${what}, naming its line`, () => refused(nameLine(SITE[1]) + '\n' + body, 3, why));
  }

  it('refuses a name given twice, naming both lines', () => {
    const other = newKey();
    refused(`${nameLine(SITE[0])}\n${nameLine(SITE[1])}\n${nameLine({ ...SITE[0], rdata: other, keyTag: keyTag(other) })}\n`, 4, /alpha\.dyn\.example\.org\. is on line 2 already/);
    const same = SITE[0];
    refused(`${nameLine(same)}\n${nameLine(same)}\n`, 3, /alpha\.dyn\.example\.org\. is on line 2 already/);
  });
});

describe('store transfer: the files store', () => {
  it('round trip: files → JSON → files carries every live claim and record; imported records are withdrawn for the next start', async () => {
    const a = config();
    await seed(a, SITE, { orphan: 'nokey', expiredClaim: 'old', expiredRecordOf: 'alpha' });
    const exported = await exportFiles(a, systemClock, logger);
    assert.deepEqual(exported.names, sorted(SITE));
    assert.deepEqual(exported.notes, [
      `${Z1}: 1 expired claim(s) left out`,
      `${Z1}: 1 expired record(s) left out`,
      `${Z1}: records of 1 name(s) without a claim left out: nokey.${Z1}`,
    ]);
    const text = formatTransfer(exported.names, NOW);
    const b = config();
    const result = await importFiles(b, parseTransfer(text, 'x', b.zones), systemClock, logger);
    assert.deepEqual([...result.imported].sort(), SITE.map((n) => n.name).sort());
    assert.equal(result.records, 5);
    assert.deepEqual(result.unchanged, []);
    const again = await exportFiles(b, systemClock, logger);
    assert.deepEqual(again.names, sorted(SITE));
    assert.deepEqual(again.notes, []);
    // Everything is in the files the daemon opens, records marked for publication at its start.
    const { loaded, state } = await ZoneState.open(b.dataDir, Z1, (err) => assert.fail(err));
    await state.close();
    assert.equal(loaded.records.length, 4);
    assert.ok(loaded.records.every((r) => r.withdrawn === true));
    const { store } = await KeyStore.open(b.dataDir, Z1, systemClock);
    assert.equal(store.size, 3);
    await store.close();
  });

  it('an import over names the target holds by the same key leaves them as they were; by another key it writes nothing', async () => {
    const b = config();
    await seed(b, [SITE[1]]);
    const first = await importFiles(b, [...SITE], systemClock, logger);
    assert.deepEqual(first.unchanged, [SITE[1].name]);
    assert.equal(first.imported.length, 3);
    const second = await importFiles(b, [...SITE], systemClock, logger);
    assert.deepEqual([second.imported, second.records, second.unchanged.length], [[], 0, 4]);

    const c = config();
    const taken = [entry(Z1, 'alpha'), entry(Z2, 'delta')];
    await seed(c, taken);
    await assert.rejects(importFiles(c, [...SITE], systemClock, logger), (err: unknown) => {
      assert.ok(err instanceof StoreTransferError);
      assert.match(err.message, /^2 name\(s\) are claimed by another key in the target store: alpha\.dyn\.example\.org\., delta\.other\.example\.; nothing imported/);
      return true;
    });
    assert.deepEqual((await exportFiles(c, systemClock, logger)).names, sorted(taken));
  });

  it('a zone without files is not exported (and no files are made for it)', async () => {
    const a = config();
    await seed(a, []);
    rmSync(a.dataDir, { recursive: true, force: true });
    assert.deepEqual(await exportFiles(a, systemClock, logger), { names: [], notes: [] });
  });

  it('refuses while a daemon holds the control socket; a daemon cannot start while it runs', async () => {
    const a = config();
    await seed(a, SITE);
    const daemon = await ControlServer.open(a.controlSocket, () => Promise.resolve({}), logger);
    try {
      for (const run of [() => exportFiles(a, systemClock, logger), () => importFiles(a, [...SITE], systemClock, logger)]) {
        await assert.rejects(run(), (err: unknown) => {
          assert.ok(err instanceof StoreTransferError);
          assert.equal(err.message, `a daemon is running on ${a.dataDir} (it answers on ${a.controlSocket}); stop it first: the files store is used by one process at a time`);
          return true;
        });
      }
    } finally {
      await daemon.close();
    }
    // While an export runs, the socket is held: a daemon starting then is refused.
    let refusal: unknown;
    const attempt = (): Promise<void> =>
      ControlServer.open(a.controlSocket, () => Promise.resolve({}), logger).then(
        (s) => s.close(),
        (err: unknown) => void (refusal = err),
      );
    await withDataDirHeld(a, 'export', logger, attempt);
    assert.match(String(refusal), /another nsregd answers on/);
  });
});
