/**
 * Signature checks are shared fairly between sources: while 20 sources
 * (127.1.0.x) keep a real nsregd busy with well-formed updates carrying
 * wrong signatures for names whose keys they know, a legitimate client from
 * another address still gets its refreshes through. Bounded: a 3-second
 * flood. Latency figures belong to bench/flood-fair.ts, not to this test.
 */
import assert from 'node:assert/strict';
import * as net from 'node:net';
import { after, before, describe, it } from 'node:test';
import { Rcode } from '../../src/dns/constants.js';
import { decodeMessage } from '../../src/dns/message.js';
import { FrameDecoder, frame, tcpExchange } from '../../src/net/transport.js';
import { LOOPBACK_ZONE, serveUpstream, zoneYaml } from '../helpers/config-yaml.js';
import { startNsregd, type NsregdLab } from '../helpers/nsregd-lab.js';
import { freePort } from '../helpers/ports.js';
import { a, makeClient, signedUpdate } from '../helpers/sig0-client.js';
import { letTimePass } from '../helpers/eventually.js';

const ZONE = 'dynamic.example.org.';
const SOURCES = 20;
const PIPELINE = 8;
const FLOOD_MS = 3000;
const nowS = (): number => Math.floor(Date.now() / 1000);

describe('fair signature checks under a many-source flood', () => {
  let d: NsregdLab;
  before(async () => {
    d = await startNsregd({ zonesYaml: zoneYaml(ZONE, { ...LOOPBACK_ZONE, upstreams: [serveUpstream(await freePort(), { 'rate-limit': 0 })] }) });
  });
  after(async () => {
    await d?.stop();
  });

  it('a legitimate client from another address keeps getting NOERROR', async () => {
    let id = 1;
    const send = async (message: Buffer, localAddress: string): Promise<number> =>
      decodeMessage(await tcpExchange({ host: '127.0.0.1', port: d.port, localAddress, message, timeoutMs: 10_000 })).rcode;

    const victims = Array.from({ length: SOURCES }, (_, i) => makeClient(`victim${i}`, ZONE));
    for (const [i, v] of victims.entries()) {
      assert.equal(await send(signedUpdate(v, [a(v.name, `10.1.0.${i + 1}`)], { now: nowS(), id: id++ }), `127.0.1.${i + 1}`), Rcode.NOERROR);
    }
    const legit = makeClient('legit', ZONE);
    assert.equal(await send(signedUpdate(legit, [a(legit.name, '10.2.0.1')], { now: nowS(), id: id++ }), '127.0.0.2'), Rcode.NOERROR);

    // The victim's KEY and key tag, signed by another key: the full (P-384) check, then NOTAUTH.
    const forger = makeClient('forger', ZONE);
    const bogus = victims.map((v, i) => frame(signedUpdate({ ...forger, name: v.name, rdata: v.rdata, keyTag: v.keyTag }, [a(v.name, '10.66.0.1')], { now: nowS(), id: 40000 + i })));
    let stopping = false;
    let floodAnswers = 0;
    const floodRcodes = new Set<number>();
    const sockets = bogus.map((msg, i) => {
      const s = net.connect({ port: d.port, host: '127.0.0.1', localAddress: `127.1.0.${i + 1}` });
      const decoder = new FrameDecoder();
      s.on('connect', () => {
        for (let k = 0; k < PIPELINE; k++) s.write(msg);
      });
      s.on('data', (chunk: Buffer) => {
        for (const reply of decoder.push(chunk)) {
          floodAnswers++;
          floodRcodes.add(decodeMessage(reply).rcode);
          if (!stopping) s.write(msg);
        }
      });
      s.on('error', () => undefined);
      return s;
    });

    const outcomes: Array<number | string> = [];
    const end = Date.now() + FLOOD_MS;
    try {
      while (Date.now() < end) {
        try {
          outcomes.push(await send(signedUpdate(legit, [a(legit.name, '10.2.0.1')], { now: nowS(), id: id++ }), '127.0.0.2'));
        } catch (err) {
          outcomes.push((err as { code?: string }).code ?? 'error');
        }
        await letTimePass(50); // on purpose: the legitimate client refreshes at a steady pace through the flood
      }
    } finally {
      stopping = true;
      for (const s of sockets) s.destroy();
    }
    const ok = outcomes.filter((o) => o === Rcode.NOERROR).length;
    assert.ok(floodAnswers > outcomes.length, `the flood was served too (${floodAnswers} answers)`);
    // NOTAUTH after the check, or SERVFAIL when the source is over its rate: never accepted.
    assert.deepEqual([...floodRcodes].filter((r) => r !== Rcode.NOTAUTH && r !== Rcode.SERVFAIL), [], 'every forged update was refused');
    assert.ok(floodRcodes.has(Rcode.NOTAUTH), 'forged updates were checked, not only turned away');
    assert.ok(outcomes.length >= 5, `refreshes sent: ${outcomes.length}`);
    assert.ok(ok >= 0.9 * outcomes.length, `NOERROR for ${ok} of ${outcomes.length} refreshes: ${outcomes.join(' ')}`);
  });
});
