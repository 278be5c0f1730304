/**
 * The messages between nsregc and an nsregd server: the signed RFC 2136
 * UPDATE that registers or removes addresses, and the reason a reply
 * gives. Pure: no I/O, no clock (the signing time is passed in).
 */
import * as net from 'node:net';
import { RRClass } from '../dns/constants.js';
import { encodeMessage, type DecodedMessage, type ResourceRecord } from '../dns/message.js';
import { fqdn } from '../dns/names.js';
import { signSig0 } from '../dns/sig0.js';
import { addRecord, buildUpdate, deleteRecord } from '../dns/update.js';
import type { ClientKey } from './keys.js';

/** An address to register and the TTL (seconds) to register it with. */
export interface RegistrarAddress {
  readonly address: string;
  readonly ttl: number;
}

/** The KEY/SIG(0) material an update is signed with (ClientKey satisfies it). */
export type RegistrarKey = Pick<ClientKey, 'signerFor' | 'keyRecord'>;

export interface BuildRegistrationOptions {
  readonly id: number;
  readonly zone: string;
  readonly name: string;
  readonly key: RegistrarKey;
  readonly keyTtl: number;
  /** Unix seconds for the SIG(0) window. */
  readonly now: number;
  readonly inserts?: readonly RegistrarAddress[];
  /** Addresses whose records are deleted (RFC 2136 §2.5.4). */
  readonly removals?: readonly string[];
}

function addressRecord(name: string, address: string, ttl: number): ResourceRecord {
  const type = net.isIPv6(address) ? 'AAAA' : 'A';
  return { name, type, class: RRClass.IN, ttl, data: address };
}

/**
 * The signed UPDATE the client sends: zone section = the zone (SOA, IN),
 * update section = inserts then removals, additional = the KEY under the
 * full name with TTL key-ttl (so a first-time server can learn it), then
 * the SIG(0) whose signer is that name (RFC 2136 §2, RFC 2931 §3). Names
 * are not compressed, as the original client sent them.
 */
export function buildRegistration(opts: BuildRegistrationOptions): Buffer {
  const name = fqdn(opts.name);
  const updates: ResourceRecord[] = [
    ...(opts.inserts ?? []).map((a) => addRecord(addressRecord(name, a.address, a.ttl))),
    ...(opts.removals ?? []).map((a) => deleteRecord(addressRecord(name, a, 0))),
  ];
  const msg = buildUpdate({
    id: opts.id,
    zone: opts.zone,
    updates,
    additionals: [opts.key.keyRecord(name, opts.keyTtl)],
  });
  return signSig0(encodeMessage(msg), opts.key.signerFor(name), { now: opts.now });
}

/** The server's human-readable reason: the first TXT of the additional section (how nsregd answers). */
export function replyReason(reply: DecodedMessage): string | undefined {
  for (const rr of reply.additionals) {
    if (rr.type === 'TXT' && rr.data !== null) return rr.data.join('');
  }
  return undefined;
}
