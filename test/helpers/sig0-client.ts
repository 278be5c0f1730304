/**
 * Builds SIG(0)-signed registration updates the way nsregc does (KEY then
 * SIG in the additional section), with knobs to break each rule the daemon
 * checks. For handler tests, the daemon integration tests and benchmarks.
 */
import { Algorithm, RRClass } from '../../src/dns/constants.js';
import { generateKeyPair, keyTag, publicKeyToRData, type KeyPair } from '../../src/dns/keys.js';
import { encodeMessage, type ResourceRecord } from '../../src/dns/message.js';
import { fqdn } from '../../src/dns/names.js';
import { signSig0 } from '../../src/dns/sig0.js';
import type { KeyRData } from '../../src/dns/types.js';
import { buildUpdate } from '../../src/dns/update.js';

export interface TestClient {
  name: string;
  zone: string;
  rdata: KeyRData;
  keyTag: number;
  keys: KeyPair;
  algorithm: number;
}

export function makeClient(label: string, zone: string, algorithm: number = Algorithm.ECDSAP384SHA384): TestClient {
  const keys = generateKeyPair(algorithm);
  const rdata = publicKeyToRData(keys.publicKey, algorithm, 256, 3);
  return { name: fqdn(`${label}.${zone}`), zone: fqdn(zone), rdata, keyTag: keyTag(rdata), keys, algorithm };
}

export interface SignOptions {
  /** Unix seconds. */
  now: number;
  id?: number;
  keyTtl?: number;
  /** Zone section name (default the client's zone). */
  zoneName?: string;
  /** Signer/claimed name (default the client's name). */
  signer?: string;
  keyOwner?: string;
  keyRData?: KeyRData;
  omitKey?: boolean;
  omitSig?: boolean;
  duplicateKey?: boolean;
  extraAdditionals?: ResourceRecord[];
  /** Key used to sign (default the client's). */
  signWith?: TestClient;
  /** Name-compress the update (owners become pointers), as large requests must to fit a TCP frame. */
  compress?: boolean;
}

export function a(name: string, address: string, ttl = 300, cls: number = RRClass.IN): ResourceRecord {
  return { name: fqdn(name), type: 'A', class: cls, ttl, data: address };
}

export function aaaa(name: string, address: string, ttl = 300, cls: number = RRClass.IN): ResourceRecord {
  return { name: fqdn(name), type: 'AAAA', class: cls, ttl, data: address };
}

export function signedUpdate(client: TestClient, updates: ResourceRecord[], opts: SignOptions): Buffer {
  const keyRR: ResourceRecord = {
    name: fqdn(opts.keyOwner ?? client.name),
    type: 'KEY',
    class: RRClass.IN,
    ttl: opts.keyTtl ?? 2592000,
    data: opts.keyRData ?? client.rdata,
  };
  const additionals: ResourceRecord[] = [];
  if (!opts.omitKey) additionals.push(keyRR);
  if (opts.duplicateKey) additionals.push(keyRR);
  additionals.push(...(opts.extraAdditionals ?? []));
  const msg = encodeMessage(
    buildUpdate({ id: opts.id ?? 4242, zone: opts.zoneName ?? client.zone, updates, additionals }),
    { compress: opts.compress ?? false },
  );
  if (opts.omitSig) return msg;
  const signer = opts.signWith ?? client;
  return signSig0(
    msg,
    { name: opts.signer ?? client.name, algorithm: signer.algorithm, keyTag: signer.keyTag, privateKey: signer.keys.privateKey },
    { now: opts.now },
  );
}
