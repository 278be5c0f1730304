/**
 * Record values shared by the codec tests: every record type the project
 * touches, with non-empty rdata, names with escapes and mixed case among them.
 */
import { RRClass, RRType } from '../../../src/dns/constants.js';
import type { ResourceRecord } from '../../../src/dns/message.js';

export const SIG_DATA = {
  typeCovered: 0,
  algorithm: 13,
  labels: 0,
  originalTtl: 0,
  expiration: 0xfffffff0,
  inception: 1_700_000_000,
  keyTag: 12345,
  signerName: 'Host.Example.org.',
  signature: Buffer.alloc(64, 0xab),
};

export const TSIG_DATA = {
  algorithm: 'hmac-sha256.',
  timeSigned: 0x0001_2345_6789,
  fudge: 300,
  mac: Buffer.alloc(32, 0x5a),
  originalId: 0xbeef,
  error: 0,
  otherData: Buffer.from([0, 0, 0x65, 0x43, 0x21, 0x00]),
};

export const KEY_DATA = { flags: 512, protocol: 3, algorithm: 14, publicKey: Buffer.alloc(96, 0x11) };

/** Every record type the project touches, with non-empty rdata. */
export const WITH_DATA: ResourceRecord[] = [
  { name: 'a.example.', type: 'A', class: RRClass.IN, ttl: 300, data: '192.0.2.1' },
  { name: 'a.example.', type: 'AAAA', class: RRClass.IN, ttl: 300, data: '2001:db8::1' },
  { name: 'example.', type: 'NS', class: RRClass.IN, ttl: 3600, data: 'ns1.example.' },
  { name: 'www.example.', type: 'CNAME', class: RRClass.IN, ttl: 60, data: 'a\\.b.example.' },
  { name: '1.2.0.192.in-addr.arpa.', type: 'PTR', class: RRClass.IN, ttl: 60, data: 'a.example.' },
  { name: 't.example.', type: 'TXT', class: RRClass.IN, ttl: 0, data: ['first', '', 'third string; with "quotes"'] },
  {
    name: 'example.',
    type: 'SOA',
    class: RRClass.IN,
    ttl: 300,
    data: {
      mname: 'ns.example.',
      rname: 'host\\.master.example.',
      serial: 0xffffffff,
      refresh: 3600,
      retry: 600,
      expire: 86400,
      minimum: 300,
    },
  },
  {
    name: '_x._tcp.example.',
    type: 'SRV',
    class: RRClass.IN,
    ttl: 300,
    data: { priority: 10, weight: 20, port: 5353, target: 'sp\\032ace.example.' },
  },
  { name: 'host.example.', type: 'KEY', class: RRClass.IN, ttl: 2592000, data: KEY_DATA },
  { name: '.', type: 'SIG', class: RRClass.ANY, ttl: 0, data: SIG_DATA },
  { name: 'key.name.', type: 'TSIG', class: RRClass.ANY, ttl: 0, data: TSIG_DATA },
  { name: '.', type: 'OPT', class: 1232, ttl: 0x00008000, data: Buffer.from([0, 10, 0, 2, 1, 2]) },
  { name: 'x.example.', type: 'UNKNOWN', code: 65280, class: RRClass.IN, ttl: 7, data: Buffer.from([1, 2, 3]) },
  { name: 'x.example.', type: 'UNKNOWN', code: RRType.MX, class: RRClass.IN, ttl: 7, data: Buffer.from([0, 5, 0]) },
];
