import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';

import { RRType } from '../../src/dns/constants.js';
import { tcpExchange, udpExchange } from '../../src/net/transport.js';
import { startNamed, type NamedLab } from '../helpers/named.js';

/** A plain RFC 1035 query (no EDNS, so UDP replies are capped at 512 bytes). */
function query(id: number, name: string, type: number): Buffer {
  const header = Buffer.alloc(12);
  header.writeUInt16BE(id, 0);
  header.writeUInt16BE(1, 4); // QDCOUNT
  const labels = name
    .split('.')
    .filter((l) => l !== '')
    .map((l) => Buffer.concat([Buffer.from([l.length]), Buffer.from(l, 'ascii')]));
  const tail = Buffer.alloc(4);
  tail.writeUInt16BE(type, 0);
  tail.writeUInt16BE(1, 2); // class IN
  return Buffer.concat([header, ...labels, Buffer.from([0]), tail]);
}

const rcode = (reply: Buffer): number => reply[3] & 0x0f;
const ancount = (reply: Buffer): number => reply.readUInt16BE(6);
const truncated = (reply: Buffer): boolean => (reply[2] & 0x02) !== 0;

describe('transport against a real named', () => {
  let lab: NamedLab;
  const bigTxt = Array.from({ length: 12 }, (_, i) => `big IN TXT "${String(i).padStart(2, '0')}${'x'.repeat(100)}"`);

  before(async () => {
    lab = await startNamed({ zones: [{ name: 'wire.test.', records: bigTxt }] });
  });

  after(async () => {
    await lab?.stop();
  });

  it('tcpExchange gets the SOA', async () => {
    const reply = await tcpExchange({ host: lab.host, port: lab.port, message: query(0x1111, 'wire.test.', RRType.SOA), timeoutMs: 3000 });
    assert.equal(reply.readUInt16BE(0), 0x1111);
    assert.equal(rcode(reply), 0);
    assert.equal(ancount(reply), 1);
  });

  it('udpExchange gets the SOA over UDP', async () => {
    const result = await udpExchange({ host: lab.host, port: lab.port, message: query(0x2222, 'wire.test.', RRType.SOA), timeoutMs: 3000 });
    assert.equal(result.transport, 'udp');
    assert.equal(result.reply.readUInt16BE(0), 0x2222);
    assert.equal(ancount(result.reply), 1);
  });

  it('udpExchange retries a truncated answer over TCP and gets all of it', async () => {
    const result = await udpExchange({ host: lab.host, port: lab.port, message: query(0x3333, 'big.wire.test.', RRType.TXT), timeoutMs: 3000 });
    assert.equal(result.transport, 'tcp');
    assert.equal(truncated(result.reply), false);
    assert.equal(ancount(result.reply), bigTxt.length);
    assert.ok(result.reply.length > 512);
  });
});
