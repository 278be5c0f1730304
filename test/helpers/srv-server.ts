/**
 * A recursive server as nsregc sees it, reduced to one answer: the SRV
 * records of `_nsreg._tcp.<zone>`, over TCP on loopback (nsregc with
 * `dns-tcp`). Every other question gets NXDOMAIN. For client tests that
 * need several SRV targets (the daemons answer only for themselves).
 */
import { once } from 'node:events';
import * as net from 'node:net';
import { Opcode, RRClass, RRType, Rcode } from '../../src/dns/constants.js';
import { decodeMessage, emptyMessage, encodeMessage } from '../../src/dns/message.js';
import { namesEqual } from '../../src/dns/names.js';
import type { SrvData } from '../../src/dns/rdata.js';
import { frame } from '../../src/net/transport.js';

export interface SrvServer {
  readonly port: number;
  /** SRV questions answered so far. */
  readonly asked: () => number;
  close(): Promise<void>;
}

export async function startSrvServer(zone: string, records: readonly SrvData[]): Promise<SrvServer> {
  const qname = `_nsreg._tcp.${zone}`;
  let asked = 0;
  const answer = (raw: Buffer): Buffer => {
    const q = decodeMessage(raw);
    const question = q.questions[0];
    const r = emptyMessage(q.id, Opcode.QUERY);
    r.qr = true;
    r.ra = true;
    if (question !== undefined) r.questions.push(question);
    if (question !== undefined && question.type === RRType.SRV && namesEqual(question.name, qname)) {
      asked++;
      for (const data of records) r.answers.push({ name: question.name, type: 'SRV', class: RRClass.IN, ttl: 0, data });
    } else r.rcode = Rcode.NXDOMAIN;
    return encodeMessage(r);
  };
  const server = net.createServer((socket) => {
    let buf = Buffer.alloc(0);
    socket.on('error', () => socket.destroy());
    socket.on('data', (chunk: Buffer) => {
      buf = Buffer.concat([buf, chunk]);
      while (buf.length >= 2 && buf.length >= 2 + buf.readUInt16BE(0)) {
        const len = buf.readUInt16BE(0);
        const msg = buf.subarray(2, 2 + len);
        buf = buf.subarray(2 + len);
        try {
          socket.write(frame(answer(msg)));
        } catch {
          socket.destroy();
        }
      }
    });
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const { port } = server.address() as net.AddressInfo;
  return {
    port,
    asked: () => asked,
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}
