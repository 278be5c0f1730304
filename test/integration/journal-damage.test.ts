/**
 * An acknowledged claim survives damage to the key journal: nsregd killed
 * with SIGKILL right after a claim, the journal's last 20 bytes cut off,
 * restarted — the name is locked (another key is refused as "Invalid key
 * for name"), and the error log names the journal file and byte offset.
 */
import assert from 'node:assert/strict';
import { readFile, stat, truncate } from 'node:fs/promises';
import * as path from 'node:path';
import { describe, it } from 'node:test';
import { Rcode } from '../../src/dns/constants.js';
import type { DecodedMessage } from '../../src/dns/message.js';
import { serveUpstream, zoneYaml } from '../helpers/config-yaml.js';
import { freePort } from '../helpers/ports.js';
import { startNsregd, type NsregdLab } from '../helpers/nsregd-lab.js';
import { a, makeClient, type TestClient, signedUpdate } from '../helpers/sig0-client.js';

const ZONE = 'dynamic.example.org.';
const zones = zoneYaml(ZONE, { 'max-key-ttl': '720h', 'max-addr-ttl': '1h', 'allowed-nets': ['127.0.0.0/8'], upstreams: [serveUpstream(await freePort())] });

function reasons(m: DecodedMessage): string[] {
  return m.additionals.flatMap((rr) => (rr.type === 'TXT' && rr.data ? rr.data : []));
}

const claim = (d: NsregdLab, c: TestClient, id: number): Promise<DecodedMessage> =>
  d.send(signedUpdate(c, [a(c.name, '192.0.2.7', 300)], { now: Math.floor(Date.now() / 1000), id }));

describe('nsregd: a damaged key journal', () => {
  it('after kill -9 and 20 bytes cut off the journal, the claimed name is locked, not handed to another key', async () => {
    const first = await startNsregd({ zonesYaml: zones });
    const journal = path.join(first.dataDir, `${ZONE}keydb.journal`);
    let second: NsregdLab | undefined;
    try {
      const owner = makeClient('victim', ZONE);
      const r = await claim(first, owner, 1);
      assert.equal(r.rcode, Rcode.NOERROR, reasons(r).join());
      first.signal('SIGKILL');
      await first.exited();

      const { size } = await stat(journal);
      const text = await readFile(journal, 'latin1');
      const lastLine = text.lastIndexOf('\n', size - 2) + 1;
      await truncate(journal, size - 20);

      second = await startNsregd({ zonesYaml: zones, dir: first.dir });
      const logged = second.logs().find((l) => typeof l.msg === 'string' && l.msg.startsWith(`${journal}: byte offset ${lastLine} `));
      assert.ok(logged, `an error names ${journal} and offset ${lastLine}:\n${second.logs().map((l) => JSON.stringify(l)).join('\n')}`);
      assert.equal(logged.level, 50, 'logged as an error');
      assert.ok(second.logs().some((l) => l.level === 50 && typeof l.msg === 'string' && l.msg.startsWith(`${owner.name} is locked`)));

      const thief = makeClient('victim', ZONE);
      const refused = await claim(second, thief, 2);
      assert.equal(refused.rcode, Rcode.REFUSED);
      assert.deepEqual(reasons(refused), ['Invalid key for name']);
      // Other names are claimed as before.
      const other = await claim(second, makeClient('other', ZONE), 3);
      assert.equal(other.rcode, Rcode.NOERROR, reasons(other).join());
    } finally {
      await second?.stop();
      await first.stop();
    }
  });
});
