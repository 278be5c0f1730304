/**
 * SIGHUP with a changed listen-addr: nsregd listens where the new file says
 * (the same port re-bound on an address it already used included) and no
 * longer where it said before.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { Opcode, RRClass, RRType, Rcode } from '../../src/dns/constants.js';
import { decodeMessage, emptyMessage, encodeMessage } from '../../src/dns/message.js';
import { tcpExchange } from '../../src/net/transport.js';
import { serveUpstream, zoneYaml } from '../helpers/config-yaml.js';
import { freePort } from '../helpers/ports.js';
import { daemonYaml, startNsregd, type NsregdLab } from '../helpers/nsregd-lab.js';

const ZONE = 'dynamic.example.org.';
const zones = zoneYaml(ZONE, { 'max-key-ttl': '720h', 'max-addr-ttl': '1h', 'allowed-nets': ['127.0.0.0/8'], upstreams: [serveUpstream(await freePort())] });

/** The SRV self-answer, asked of host:port; the rcode, or the error's code when nothing answers. */
async function ask(host: string, port: number): Promise<number | string> {
  const q = emptyMessage(Math.floor(Math.random() * 65535), Opcode.QUERY);
  q.questions.push({ name: `_nsreg._tcp.${ZONE}`, type: RRType.SRV, class: RRClass.IN });
  try {
    return decodeMessage(await tcpExchange({ host, port, message: encodeMessage(q), timeoutMs: 3000 })).rcode;
  } catch (err) {
    return (err as { code?: string }).code ?? 'error';
  }
}

describe('nsregd reload with a new listen-addr', () => {
  let d: NsregdLab;
  before(async () => {
    d = await startNsregd({ zonesYaml: zones, listenAddr: '127.0.0.1' });
  });
  after(async () => {
    await d?.stop();
  });

  it('moves to the new addresses, re-binding the port on one it already had', async () => {
    assert.equal(await ask('127.0.0.1', d.port), Rcode.NOERROR);

    await d.writeConfig(daemonYaml(d.port, d.dataDir, zones, '127.0.0.2'));
    d.signal('SIGHUP');
    await d.waitForLog('configuration reloaded');
    assert.equal(await ask('127.0.0.2', d.port), Rcode.NOERROR);
    assert.notEqual(await ask('127.0.0.1', d.port), Rcode.NOERROR, 'the old address no longer answers');

    // Back to 127.0.0.1: the port is bound again where it was before.
    await d.writeConfig(daemonYaml(d.port, d.dataDir, zones, '127.0.0.1'));
    d.signal('SIGHUP');
    await d.waitForLogCount('configuration reloaded', 2);
    assert.equal(await ask('127.0.0.1', d.port), Rcode.NOERROR);
    assert.notEqual(await ask('127.0.0.2', d.port), Rcode.NOERROR);
    assert.equal(d.logs().filter((l) => l.msg === 'cannot listen on the new address; going back to the old one').length, 0);
  });
});
