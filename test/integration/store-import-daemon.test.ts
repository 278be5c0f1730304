/**
 * What an operator sees after `nsregd store import` into the files store:
 * the daemon's next start serves the imported records (the built-in zone
 * server answers them, and the start logs them as installed again), the
 * imported key owns its name (its signed update is accepted, another
 * key's is refused), and the export of the running site's files is refused
 * while the daemon runs.
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { promisify } from 'node:util';
import { after, describe, it } from 'node:test';
import { Opcode, RRClass, RRType, Rcode } from '../../src/dns/constants.js';
import { decodeMessage, emptyMessage, encodeMessage } from '../../src/dns/message.js';
import { tcpExchange } from '../../src/net/transport.js';
import { formatTransfer, type TransferName } from '../../src/daemon/store-transfer.js';
import { serveUpstream, zoneYaml, LOOPBACK_ZONE } from '../helpers/config-yaml.js';
import { freePort } from '../helpers/ports.js';
import { daemonYaml, startNsregd, type NsregdLab } from '../helpers/nsregd-lab.js';
import { a, makeClient, signedUpdate } from '../helpers/sig0-client.js';

const ZONE = 'dynamic.example.org.';
const BIN = path.resolve('bin/nsregd');
const run = promisify(execFile);

describe('nsregd after a store import into files', () => {
  let d: NsregdLab | undefined;
  let dir: string | undefined;
  after(async () => {
    await d?.stop();
    if (dir !== undefined) await rm(dir, { recursive: true, force: true });
  });

  it('the next start serves the imported records, and the imported key owns its name', async () => {
    dir = await mkdtemp(path.join(tmpdir(), 'nsregd-import-'));
    const port = await freePort();
    const servePort = await freePort();
    const zones = zoneYaml(ZONE, { ...LOOPBACK_ZONE, upstreams: [serveUpstream(servePort)] });
    const configPath = path.join(dir, 'nsregd.yaml');
    await writeFile(configPath, daemonYaml(port, path.join(dir, 'data'), zones));

    const owner = makeClient('host1', ZONE);
    const now = Date.now();
    const site: TransferName[] = [
      {
        zone: ZONE,
        name: owner.name,
        rdata: owner.rdata,
        keyTag: owner.keyTag,
        expiry: now + 3600_000,
        records: [
          { type: 'A', address: '192.0.2.10', ttl: 60, expiresAt: now + 600_000 },
          { type: 'AAAA', address: '2001:db8::10', ttl: 60, expiresAt: now + 600_000 },
        ],
      },
    ];
    const file = path.join(dir, 'site.jsonl');
    await writeFile(file, formatTransfer(site, now));
    const imported = await run(process.execPath, [BIN, '-c', configPath, 'store', 'import', '-i', file]);
    assert.match(imported.stderr, /imported 1 name\(s\) with 2 record\(s\) into .*; the next start of nsregd publishes the records/);

    d = await startNsregd({ dir, port, zonesYaml: zones });
    const installed = await d.waitForLog('installing again the records withdrawn at the last stop');
    assert.equal(installed.records, 2);
    const q = encodeMessage({ ...emptyMessage(7, Opcode.QUERY), questions: [{ name: owner.name, type: RRType.A, class: RRClass.IN }] });
    const reply = decodeMessage(await tcpExchange({ host: '127.0.0.1', port: servePort, message: q, timeoutMs: 5000 }));
    assert.equal(reply.rcode, Rcode.NOERROR);
    assert.deepEqual(reply.answers.map((rr) => rr.data), ['192.0.2.10']);

    const secs = Math.floor(Date.now() / 1000);
    const ok = await d.send(signedUpdate(owner, [a(owner.name, '192.0.2.11', 60)], { now: secs, id: 1 }));
    assert.equal(ok.rcode, Rcode.NOERROR);
    const thief = makeClient('host1', ZONE);
    const refused = await d.send(signedUpdate(thief, [a(thief.name, '192.0.2.66', 60)], { now: secs, id: 2 }));
    assert.equal(refused.rcode, Rcode.REFUSED);

    await assert.rejects(run(process.execPath, [BIN, '-c', configPath, 'store', 'export']), (err: { code?: number; stderr?: string }) => {
      assert.equal(err.code, 1);
      assert.match(err.stderr ?? '', /a daemon is running on .*; stop it first/);
      return true;
    });
  });
});
