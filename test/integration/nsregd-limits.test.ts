/**
 * The `limits:` section on the real bin/nsregd: a signature rate of 1/s
 * with a burst of 1 refuses the second quick signed update of one source
 * (and no other source's), `connections-per-source: 1` closes a second
 * connection from one address; both as configured at start and as applied
 * by SIGHUP (and lifted again by the next); `--check-config` prints every
 * limit in effect.
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import * as net from 'node:net';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { promisify } from 'node:util';
import { after, describe, it } from 'node:test';
import { Algorithm, Opcode, RRClass, RRType, Rcode } from '../../src/dns/constants.js';
import { decodeMessage, emptyMessage, encodeMessage, type DecodedMessage } from '../../src/dns/message.js';
import { FrameDecoder, frame } from '../../src/net/transport.js';
import { serveUpstream, zoneYaml, LOOPBACK_ZONE } from '../helpers/config-yaml.js';
import { freePort } from '../helpers/ports.js';
import { daemonYaml, startNsregd, type NsregdLab } from '../helpers/nsregd-lab.js';
import { a, makeClient, signedUpdate } from '../helpers/sig0-client.js';

const ZONE = 'dynamic.example.org.';
const zones = zoneYaml(ZONE, { ...LOOPBACK_ZONE, upstreams: [serveUpstream(await freePort())] });
const TIGHT = 'limits:\n  sig-rate-per-source: 1\n  sig-burst-per-source: 1\n  connections-per-source: 1\n';
const RATE_LIMITED = 'Too many requests from this address, try again later';

const reasons = (m: DecodedMessage): string[] => m.additionals.flatMap((rr) => (rr.type === 'TXT' && rr.data) || []);

/** One held connection from `localAddress`: requests go over it one at a time. */
interface Held {
  ask(message: Buffer): Promise<DecodedMessage>;
  /** Resolves when the connection closes. */
  closed: Promise<void>;
  destroy(): void;
}

const held: Held[] = [];

async function hold(port: number, localAddress: string): Promise<Held> {
  const socket = await new Promise<net.Socket>((resolve, reject) => {
    const s = net.connect({ port, host: '127.0.0.1', localAddress }, () => resolve(s));
    s.once('error', reject);
  });
  socket.on('error', () => {}); // a refused connection may be reset; `closed` says so
  const decoder = new FrameDecoder();
  const waiting: Array<(reply: Buffer) => void> = [];
  socket.on('data', (chunk: Buffer) => {
    for (const reply of decoder.push(chunk)) waiting.shift()?.(reply);
  });
  const closed = new Promise<void>((resolve) => socket.once('close', () => resolve()));
  const h: Held = {
    ask: (message) =>
      new Promise((resolve, reject) => {
        waiting.push((reply) => resolve(decodeMessage(reply)));
        void closed.then(() => reject(new Error(`connection from ${localAddress} closed`)));
        socket.write(frame(message));
      }),
    closed,
    destroy: () => socket.destroy(),
  };
  held.push(h);
  return h;
}

/** The SRV self-answer query: anything the server answers without a signature. */
function srvQuery(id: number): Buffer {
  const q = emptyMessage(id, Opcode.QUERY);
  q.questions.push({ name: `_nsreg._tcp.${ZONE}`, type: RRType.SRV, class: RRClass.IN });
  return encodeMessage(q);
}

/** Settles within `ms`: true when `p` did, false when it did not. */
function within(p: Promise<void>, ms: number): Promise<boolean> {
  return new Promise((resolve) => {
    const t = setTimeout(() => resolve(false), ms);
    void p.then(() => {
      clearTimeout(t);
      resolve(true);
    });
  });
}

let clients = 0;

/** Two signed updates of one new name, sent back to back over one connection from `source`: their rcodes and reasons. */
async function twoQuickUpdates(d: NsregdLab, source: string): Promise<Array<[number, string[]]>> {
  const c = makeClient(`host${++clients}`, ZONE, Algorithm.ECDSAP256SHA256);
  const now = Math.floor(Date.now() / 1000);
  const conn = await hold(d.port, source);
  const out: Array<[number, string[]]> = [];
  for (const [id, addr] of [[1, '127.0.0.5'], [2, '127.0.0.6']] as const) {
    const reply = await conn.ask(signedUpdate(c, [a(c.name, addr)], { now, id }));
    out.push([reply.rcode, reasons(reply)]);
  }
  conn.destroy();
  return out;
}

/** With TIGHT in effect: the rate refuses a source's second quick update, and a second connection from one address is closed. */
async function assertTight(d: NsregdLab, sources: { rate: string; other: string; conns: string }): Promise<void> {
  assert.deepEqual(await twoQuickUpdates(d, sources.rate), [
    [Rcode.NOERROR, []],
    [Rcode.SERVFAIL, [RATE_LIMITED]],
  ]);
  // Another source has a bucket of its own.
  assert.equal((await twoQuickUpdates(d, sources.other))[0]?.[0], Rcode.NOERROR);

  const first = await hold(d.port, sources.conns);
  assert.equal((await first.ask(srvQuery(10))).rcode, Rcode.NOERROR);
  const second = await hold(d.port, sources.conns);
  assert.ok(await within(second.closed, 5000), 'the second connection from one address is closed');
  assert.equal((await first.ask(srvQuery(11))).rcode, Rcode.NOERROR, 'the first one is still served');
  first.destroy();
}

/** With the defaults in effect: two quick updates pass and two connections from one address are served. */
async function assertDefaults(d: NsregdLab, sources: { rate: string; conns: string }): Promise<void> {
  assert.deepEqual(await twoQuickUpdates(d, sources.rate), [
    [Rcode.NOERROR, []],
    [Rcode.NOERROR, []],
  ]);
  const pair = [await hold(d.port, sources.conns), await hold(d.port, sources.conns)];
  for (const [i, h] of pair.entries()) assert.equal((await h.ask(srvQuery(20 + i))).rcode, Rcode.NOERROR);
  for (const h of pair) h.destroy();
}

describe('nsregd limits: section', () => {
  const labs: NsregdLab[] = [];
  after(async () => {
    for (const h of held) h.destroy();
    await Promise.all(labs.map((l) => l.stop()));
  });

  it('applies the configured signature rate and per-source connection cap', async () => {
    const d = await startNsregd({ zonesYaml: zones, extraYaml: TIGHT });
    labs.push(d);
    await assertTight(d, { rate: '127.0.0.11', other: '127.0.0.12', conns: '127.0.0.13' });
  });

  it('SIGHUP applies new limits to the running daemon, and lifts them again', async () => {
    const d = await startNsregd({ zonesYaml: zones });
    labs.push(d);
    await assertDefaults(d, { rate: '127.0.0.21', conns: '127.0.0.22' });

    await d.writeConfig(daemonYaml(d.port, d.dataDir, zones, '127.0.0.1', TIGHT));
    d.signal('SIGHUP');
    const changed = await d.waitForLog('limits changed');
    assert.deepEqual(changed.changed, ['sig-rate-per-source 1', 'sig-burst-per-source 1', 'connections-per-source 1']);
    await d.waitForLog('configuration reloaded');
    await assertTight(d, { rate: '127.0.0.23', other: '127.0.0.24', conns: '127.0.0.25' });

    await d.writeConfig(daemonYaml(d.port, d.dataDir, zones, '127.0.0.1'));
    d.signal('SIGHUP');
    await d.waitForLogCount('limits changed', 2);
    await d.waitForLogCount('configuration reloaded', 2);
    await assertDefaults(d, { rate: '127.0.0.26', conns: '127.0.0.27' });
  });

  it('--check-config prints every limit in effect, defaults included', async () => {
    const dir = await mkdtemp(path.join(tmpdir(), 'nsregd-limits-'));
    try {
      const file = path.join(dir, 'nsregd.yaml');
      await writeFile(file, daemonYaml(8053, path.join(dir, 'data'), zones, '127.0.0.1', 'max-sig-validity: 10m\nlimits:\n  connections: 64\n  idle-timeout: 2m\n'));
      const { stdout, stderr } = await promisify(execFile)(process.execPath, [path.resolve('bin/nsregd'), '--check-config', '-c', file]);
      assert.equal(stderr, '');
      assert.ok(
        stdout.split('\n').includes(
          'limits: sig-rate-per-source 50, sig-burst-per-source 100, checks-in-flight 16, checks-per-source 16, connections 64, ' +
            'connections-per-source 32, idle-timeout 2m0s, message-timeout 5s, max-message-size 65535, records-per-name 16, replay-window 10m0s',
        ),
        stdout,
      );
      assert.match(stdout, /^zone dynamic\.example\.org\.: .*max-records-per-name 16, /m);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});
