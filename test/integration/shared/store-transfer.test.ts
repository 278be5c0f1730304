/**
 * `nsregd store export|import` with a real single-member etcd: files →
 * etcd → JSON equals the original, and back into files; each imported
 * name is one claim with its records, the serial and a change for the
 * publisher holding their adds; a name with more records than one
 * transaction takes; a name claimed there by another key stops the import
 * before anything is written, the same key leaves it as it is; undecodable
 * values are left out of an export with a note; an unreachable etcd is an
 * error naming it. And the command line, end to end: export from files,
 * import into etcd, export again; a running daemon stops an export of its
 * files.
 */
import { strict as assert } from 'node:assert';
import { execFile } from 'node:child_process';
import { readFile, writeFile } from 'node:fs/promises';
import * as path from 'node:path';
import { promisify } from 'node:util';
import { after, before, describe, it } from 'node:test';
import { Etcd3 } from 'etcd3';
import { pino } from 'pino';
import type { DaemonConfig } from '../../../src/config/daemon.js';
import { systemClock } from '../../../src/clock.js';
import { decodeChange, encodeClaim, encodeRecord, zoneNamespacePrefix } from '../../../src/daemon/shared/layout.js';
import { openSharedStore } from '../../../src/daemon/shared/etcd.js';
import type { SharedStore } from '../../../src/daemon/shared/contract.js';
import {
  importEtcd,
  importFiles,
  StoreTransferError,
  formatTransfer,
  exportEtcd,
  exportFiles,
  type TransferName,
} from '../../../src/daemon/store-transfer.js';
import { startEtcdCluster, type EtcdCluster } from '../../helpers/etcd.js';
import { startNsregd } from '../../helpers/nsregd-lab.js';
import { eventually } from '../../helpers/eventually.js';
import { serveUpstream, zoneYaml, LOOPBACK_ZONE } from '../../helpers/config-yaml.js';
import { Opcode, RRClass, RRType } from '../../../src/dns/constants.js';
import { decodeMessage, emptyMessage, encodeMessage } from '../../../src/dns/message.js';
import { tcpExchange } from '../../../src/net/transport.js';
import { freePort } from '../../helpers/ports.js';
import { A, entry, NOW, seed, SITE, siteConfigs, sorted, Z1 } from '../../helpers/transfer-site.js';

const logger = pino({ level: 'silent' });
const BIN = path.resolve('bin/nsregd');
const run = promisify(execFile);

describe('store export/import with etcd', () => {
  let cluster: EtcdCluster;
  let raw: Etcd3;
  const { config, cleanup } = siteConfigs();
  let prefixes = 0;
  /** A configuration on the etcd store, under a prefix of its own. */
  const etcdConfig = (): DaemonConfig =>
    config(`store:\n  type: etcd\n  endpoints: [${cluster.endpoints.join(', ')}]\n  prefix: /t${++prefixes}\n  timeout: 5s\n`);
  /** The daemon's own connection to the store of `c`, closed after the tests. */
  const access = async (c: DaemonConfig): Promise<SharedStore> => {
    const e = await openSharedStore(c.store, logger);
    after(() => e.close());
    return e;
  };
  /** Every key of a zone namespace (relative), with its value. */
  const dump = async (c: DaemonConfig, zone: string): Promise<Map<string, string>> => {
    assert.ok(c.store.type === 'etcd');
    return new Map(Object.entries(await raw.namespace(zoneNamespacePrefix(c.store.prefix, zone)).getAll().prefix('').strings()));
  };

  before(async () => {
    cluster = await startEtcdCluster({ members: 1 });
    raw = new Etcd3({ hosts: [...cluster.endpoints], dialTimeout: 2000 });
  });
  after(async () => {
    raw.close();
    await cluster.close();
    cleanup();
  });

  it('files → etcd → JSON equals the original; etcd → files likewise', async () => {
    const files = config();
    await seed(files, SITE);
    const fromFiles = await exportFiles(files, systemClock, logger);
    assert.deepEqual(fromFiles.names, sorted(SITE));
    const e = etcdConfig();
    const result = await importEtcd((await access(e)), fromFiles.names, NOW, 'test-import');
    assert.deepEqual([result.imported.length, result.records, result.unchanged], [4, 5, []]);
    const fromEtcd = await exportEtcd((await access(e)), e, NOW);
    assert.deepEqual(fromEtcd, { names: sorted(SITE), notes: [] });
    assert.equal(formatTransfer(fromEtcd.names, NOW), formatTransfer(fromFiles.names, NOW));

    // Each name with records left a change for the publisher with their adds, and the serial.
    const keys = await dump(e, Z1);
    const changes = [...keys].filter(([k]) => k.startsWith('changes/')).map(([, v]) => decodeChange(v));
    assert.equal(changes.length, 2, [...keys.keys()].join(' '));
    const added = changes.flatMap((c) => (c.ok ? c.value.change.add.map((r) => `${r.name} ${r.type} ${r.address} ${r.ttl}`) : [c.reason])).sort();
    assert.deepEqual(added, [
      `alpha.${Z1} A 192.0.2.1 60`,
      `alpha.${Z1} A 192.0.2.2 300`,
      `alpha.${Z1} AAAA 2001:db8::1 60`,
      `gamma.${Z1} AAAA 2001:db8::5 30`,
    ]);
    assert.ok(changes.every((c) => c.ok && c.value.by === 'test-import' && c.value.at === NOW));
    assert.match(keys.get('serial') ?? '', /^[0-9]+$/);

    const back = config();
    const imported = await importFiles(back, fromEtcd.names, systemClock, logger);
    assert.equal(imported.imported.length, 4);
    assert.deepEqual((await exportFiles(back, systemClock, logger)).names, sorted(SITE));
  });

  it('a name with more records than one transaction takes is imported whole', async () => {
    const e = etcdConfig();
    const records = Array.from({ length: 250 }, (_, i) => A(`10.0.${i >> 8}.${i & 255}`));
    const big = entry(Z1, 'big', records);
    const result = await importEtcd((await access(e)), [big], NOW, 'test-import');
    assert.equal(result.records, 250);
    const keys = await dump(e, Z1);
    assert.equal([...keys.keys()].filter((k) => k.startsWith('recs/')).length, 250);
    assert.equal([...keys.keys()].filter((k) => k.startsWith('changes/')).length, 3);
    const sortedRecords = [...records].sort((a, b) => (a.address < b.address ? -1 : 1));
    assert.deepEqual((await exportEtcd((await access(e)), e, NOW)).names, [{ ...big, records: sortedRecords }]);
  });

  it('refuses, writing nothing, when a name is claimed there by another key; the same key is left as it is', async () => {
    const e = etcdConfig();
    const store = await access(e);
    await importEtcd(store, [SITE[1]], NOW, 'first');
    const before = await dump(e, Z1);
    const other = entry(Z1, 'beta', [A('192.0.2.50')]);
    await assert.rejects(importEtcd(store, [SITE[0], other], NOW, 'second'), (err: unknown) => {
      assert.ok(err instanceof StoreTransferError);
      assert.match(err.message, /^1 name\(s\) are claimed by another key in the target store: beta\.dyn\.example\.org\.; nothing imported/);
      return true;
    });
    assert.deepEqual(await dump(e, Z1), before);
    // The same key again: left as it is, the rest imported; a second run changes nothing.
    const first = await importEtcd(store, [...SITE], NOW, 'third');
    assert.deepEqual([first.imported.length, first.unchanged], [3, [SITE[1].name]]);
    const after1 = await dump(e, Z1);
    const second = await importEtcd(store, [...SITE], NOW, 'fourth');
    assert.deepEqual([second.imported, second.unchanged.length], [[], 4]);
    assert.deepEqual(await dump(e, Z1), after1);
  });

  it('an export leaves out undecodable values with a note', async () => {
    const e = etcdConfig();
    await importEtcd((await access(e)), [SITE[0]], NOW, 'test-import');
    assert.ok(e.store.type === 'etcd');
    const ns = raw.namespace(zoneNamespacePrefix(e.store.prefix, Z1));
    await ns.put(`keys/${encodeURIComponent(`evil.${Z1}`)}`).value('{"flags":256}');
    await ns.put(`recs/${encodeURIComponent(`alpha.${Z1}`)}/A/192.0.2.77`).value('not json');
    await ns.put('keys/NOT-CANONICAL.dyn.example.org.').value('{}');
    // Deadlines that do not decode, a record and a claim without one.
    await ns.put(`until/${encodeURIComponent(`evil.${Z1}`)}`).value('{"expiry":"soon","recs":{}}');
    await ns.put(`recs/${encodeURIComponent(`alpha.${Z1}`)}/A/192.0.2.78`).value(encodeRecord({ ttl: 60 }));
    await ns.put(`keys/${encodeURIComponent(`lone.${Z1}`)}`).value(encodeClaim({ rdata: SITE[0].rdata, keyTag: SITE[0].keyTag }));
    const { names, notes } = await exportEtcd((await access(e)), e, NOW);
    assert.deepEqual(names, [SITE[0]]);
    assert.deepEqual([...notes].sort(), [
      `${Z1}: 2 undecodable record(s) left out`,
      `${Z1}: keys/NOT-CANONICAL.dyn.example.org.: not a claim object; left out`,
      `${Z1}: keys/evil.dyn.example.org.: not a claim object; left out`,
      `${Z1}: keys/lone.dyn.example.org.: no deadlines in until/lone.dyn.example.org.; left out`,
      `${Z1}: recs/alpha.dyn.example.org./A/192.0.2.77: not JSON; left out`,
      `${Z1}: recs/alpha.dyn.example.org./A/192.0.2.78: no deadline in until/alpha.dyn.example.org.; left out`,
      `${Z1}: until/evil.dyn.example.org.: expiry is not a time; left out`,
    ]);
  });

  it('an unreachable etcd is an error naming it, at the command line', async () => {
    const port = await freePort();
    const c = config(`store:\n  type: etcd\n  endpoints: [http://127.0.0.1:${port}]\n  timeout: 300ms\n`);
    await assert.rejects(run(process.execPath, [BIN, '-c', c.file, 'store', 'export']), (err: { code?: number; stdout?: string; stderr?: string }) => {
      assert.equal(err.code, 1);
      assert.equal(err.stdout, '');
      assert.match(err.stderr ?? '', new RegExp(`nsregd: store export: cannot use etcd at http://127\\.0\\.0\\.1:${port}: `));
      return true;
    });
  });

  it('the command line: export from files, import into etcd, export again; a running daemon stops an export of its files', async () => {
    const files = config();
    await seed(files, SITE);
    const dir = path.dirname(files.file);
    const out = path.join(dir, 'site.jsonl');
    const exp = await run(process.execPath, [BIN, '-c', files.file, 'store', 'export', '-o', out]);
    assert.equal(exp.stdout, '');
    assert.match(exp.stderr, /exported 4 name\(s\) with 5 record\(s\) from /);
    const e = etcdConfig();
    const imp = await run(process.execPath, [BIN, '-c', e.file, 'store', 'import', '-i', out]);
    assert.match(imp.stderr, /imported 4 name\(s\) with 5 record\(s\) into etcd \(http:\/\/127\.0\.0\.1:\d+, prefix \/t\d+\); the zone publishers send the records upstream/);
    const again = await run(process.execPath, [BIN, '-c', e.file, 'store', 'export']);
    const body = (text: string): string[] => text.split('\n').slice(1);
    assert.deepEqual(body(again.stdout), body(await readFile(out, 'utf8')));
    const names: TransferName[] = (await exportEtcd((await access(e)), e, NOW)).names.slice();
    assert.deepEqual(names, sorted(SITE));

    // A bad file: the line named, nothing imported, exit 1.
    const bad = path.join(dir, 'bad.jsonl');
    await writeFile(bad, `${(await readFile(out, 'utf8')).split('\n')[0]}\n{"zone":"x"}\n`);
    const e2 = etcdConfig();
    await assert.rejects(run(process.execPath, [BIN, '-c', e2.file, 'store', 'import', '-i', bad]), (err: { code?: number; stderr?: string }) => {
      assert.equal(err.code, 1);
      assert.match(err.stderr ?? '', /store import: .*bad\.jsonl: line 2: the line has no "name"; nothing imported/);
      return true;
    });

    const d = await startNsregd({ zonesYaml: `  ${Z1}:\n    max-key-ttl: 1h\n    max-addr-ttl: 1h\n    allowed-nets: [127.0.0.0/8]\n    upstreams: [{ type: serve, listen-addr: 127.0.0.1, listen-port: ${await freePort()} }]\n` });
    try {
      await assert.rejects(run(process.execPath, [BIN, '-c', d.configPath, 'store', 'export']), (err: { code?: number; stderr?: string }) => {
        assert.equal(err.code, 1);
        assert.match(err.stderr ?? '', /store export: a daemon is running on .* stop it first/);
        return true;
      });
    } finally {
      await d.stop();
    }
  });

  it('an import into etcd while a daemon runs on it: its zone server answers the imported records', async () => {
    const servePort = await freePort();
    const zones = zoneYaml(Z1, { ...LOOPBACK_ZONE, upstreams: [serveUpstream(servePort)] });
    const store = `store:\n  type: etcd\n  endpoints: [${cluster.endpoints.join(', ')}]\n  prefix: /t${++prefixes}\n`;
    const d = await startNsregd({ zonesYaml: zones, extraYaml: store });
    try {
      const file = path.join(d.dir, 'site.jsonl');
      await writeFile(file, formatTransfer([SITE[0]], NOW));
      const imp = await run(process.execPath, [BIN, '-c', d.configPath, 'store', 'import', '-i', file]);
      assert.match(imp.stderr, /imported 1 name\(s\) with 3 record\(s\) into etcd/);
      const q = encodeMessage({ ...emptyMessage(9, Opcode.QUERY), questions: [{ name: SITE[0].name, type: RRType.A, class: RRClass.IN }] });
      const ask = async (): Promise<string[]> =>
        decodeMessage(await tcpExchange({ host: '127.0.0.1', port: servePort, message: q, timeoutMs: 5000 })).answers.flatMap((rr) => (typeof rr.data === 'string' ? [rr.data] : [])).sort();
      await eventually('the imported A records at the zone server', ask, (v) => v.join() === '192.0.2.1,192.0.2.2', 10_000);
    } finally {
      await d.stop();
    }
  });
});
