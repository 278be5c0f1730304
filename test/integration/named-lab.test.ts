import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { after, before, describe, it } from 'node:test';

import { startNamed, type NamedLab, type TsigKeySpec } from '../helpers/named.js';
import { requireTool, run } from '../helpers/tools.js';

function processAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

describe('named lab', () => {
  const zone = 'lab.test.';
  const key: TsigKeySpec = { name: 'lab-update-key.', algorithm: 'hmac-sha256', secret: randomBytes(32).toString('base64') };
  let lab: NamedLab;

  before(async () => {
    lab = await startNamed({
      zones: [{ name: zone, records: ['static IN A 192.0.2.10'], allowUpdateKey: key.name }],
      tsigKeys: [key],
    });
  });

  after(async () => {
    await lab?.stop();
  });

  it('answers SOA over TCP and over UDP', async () => {
    const soa = 'ns.lab.test. hostmaster.lab.test. 1 3600 600 86400 300';
    assert.deepEqual(await lab.query(zone, 'SOA', { tcp: true }), [soa]);
    assert.deepEqual(await lab.query(zone, 'SOA', { tcp: false }), [soa]);
  });

  it('serves the extra records given for the zone', async () => {
    assert.deepEqual(await lab.query('static.lab.test.', 'A'), ['192.0.2.10']);
    assert.deepEqual(await lab.query('ns.lab.test.', 'A', { tcp: true }), ['127.0.0.1']);
  });

  it('is authoritative and refuses recursion', async () => {
    const out = await lab.dig(['+norecurse', 'static.lab.test.', 'A']);
    assert.match(out, /flags: qr aa/);
    const outside = await lab.dig(['example.com.', 'A']);
    assert.match(outside, /status: REFUSED/);
  });

  it('applies a TSIG-signed update sent by a real nsupdate', async () => {
    const nsupdate = requireTool('nsupdate');
    const script = [
      `server ${lab.host} ${lab.port}`,
      `zone ${zone}`,
      'update add host1.lab.test. 300 IN A 192.0.2.55',
      'update add host1.lab.test. 300 IN AAAA 2001:db8::55',
      'send',
      '',
    ].join('\n');
    const r = await run(nsupdate, ['-y', `${key.algorithm}:${key.name}:${key.secret}`], { input: script });
    assert.equal(r.code, 0, r.stderr);
    assert.deepEqual(await lab.query('host1.lab.test.', 'A'), ['192.0.2.55']);
    assert.deepEqual(await lab.query('host1.lab.test.', 'AAAA', { tcp: true }), ['2001:db8::55']);
    assert.ok(existsSync(`${lab.dir}/lab.test.zone.jnl`), 'named wrote its journal in the lab directory');
  });

  it('rejects an update signed with the wrong secret', async () => {
    const wrong: TsigKeySpec = { ...key, secret: randomBytes(32).toString('base64') };
    const r = await lab.nsupdate([`zone ${zone}`, 'update add bad.lab.test. 300 IN A 192.0.2.66'], { key: wrong, tcp: true });
    assert.notEqual(r.code, 0);
    assert.match(r.stderr, /BADSIG|tsig verify failure/i);
    assert.deepEqual(await lab.query('bad.lab.test.', 'A'), []);
  });

  it('rejects an unsigned update', async () => {
    const r = await lab.nsupdate([`zone ${zone}`, 'update add anon.lab.test. 300 IN A 192.0.2.67']);
    assert.notEqual(r.code, 0);
    assert.match(r.stdout + r.stderr, /REFUSED/);
    assert.deepEqual(await lab.query('anon.lab.test.', 'A'), []);
  });

  it('answers rndc on its private control channel', async () => {
    const status = await lab.rndc(['status']);
    assert.match(status, /server is up and running/);
  });
});

describe('named lab lifecycle', () => {
  it('stop() ends named and removes its directory; a second stop() is harmless', async () => {
    const lab = await startNamed({ zones: [{ name: 'gone.test' }] });
    assert.ok(processAlive(lab.pid));
    assert.ok(existsSync(lab.dir));
    await lab.stop();
    assert.equal(processAlive(lab.pid), false, 'named process is gone');
    assert.equal(existsSync(lab.dir), false, 'lab directory is removed');
    await lab.stop();
  });

  it('two labs run side by side on different ports', async () => {
    const [a, b] = await Promise.all([startNamed({ zones: [{ name: 'a.test.' }] }), startNamed({ zones: [{ name: 'b.test.' }] })]);
    try {
      assert.notEqual(a.port, b.port);
      assert.equal((await a.query('a.test.', 'SOA')).length, 1);
      assert.equal((await b.query('b.test.', 'SOA')).length, 1);
      assert.match(await a.dig(['b.test.', 'SOA']), /status: REFUSED/);
    } finally {
      await Promise.all([a.stop(), b.stop()]);
    }
  });

  it('fails with named’s own log when the configuration is bad', async () => {
    await assert.rejects(
      startNamed({ zones: [{ name: 'broken.test.', records: ['this is not a record'] }], startTimeoutMs: 3000 }),
      (err: unknown) => {
        assert.ok(err instanceof Error);
        assert.match(err.message, /broken\.test/);
        return true;
      },
    );
  });
});

describe('requireTool', () => {
  it('finds named in sbin and returns an absolute path', () => {
    assert.match(requireTool('named'), /^\/.*\/named$/);
  });

  it('throws a clear error for a missing tool', () => {
    assert.throws(() => requireTool('no-such-tool-nsregd-test'), /no-such-tool-nsregd-test/);
  });
});
