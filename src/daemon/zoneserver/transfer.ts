/**
 * Zone transfers out of the built-in zone server: AXFR (RFC 5936) and IXFR
 * (RFC 1995), and the TSIG (RFC 8945) checks and signatures of every
 * request the zone server answers.
 *
 * IXFR answers with the differences since the client's serial when the
 * zone's history (./history.ts) reaches back to it, and otherwise with the
 * whole zone in AXFR form, which RFC 1995 §4 allows; a client that is up to
 * date gets our SOA alone.
 */
import { Opcode, RRType, Rcode } from '../../dns/constants.js';
import { emptyMessage, encodeMessage, recordLength, type DecodedMessage, type Message, type ResourceRecord } from '../../dns/message.js';
import { tsigLength, tsigServerTime, TsigResponseSigner, verifyTsigRequest, appendTsigError, type TsigKey } from '../../dns/tsig.js';
import { canonicalName } from '../../dns/names.js';
import { inNets } from '../../net/address.js';
import { MAX_TCP_MESSAGE } from '../../net/transport.js';
import type { Authority } from './authority.js';

/** What a transfer sent, for the log: the whole zone, or the differences since the client's serial. */
export interface TransferNote {
  readonly zone: string;
  readonly remote: string;
  readonly kind: 'AXFR' | 'IXFR' | 'IXFR, whole zone';
  readonly serial: number;
  /** IXFR: the serial the client had. */
  readonly from?: number;
  /** Records sent, SOAs included. */
  readonly records: number;
}

/** Where a request came from and when (Unix seconds), for access control and TSIG times. */
export interface Peer {
  readonly remote: string;
  readonly now: number;
  /** Told of each transfer started (the listener logs it). */
  readonly onTransfer?: (note: TransferNote) => void;
}

/** RFC 5936 §2.2: a transfer message is at most what a TCP frame carries. */
const MAX_MESSAGE = MAX_TCP_MESSAGE;

/** The reply skeleton: the request's ID, opcode and question, QR and AA set. */
function replyTo(req: DecodedMessage, rcode: number, withQuestion = true): Message {
  const m = emptyMessage(req.id, req.opcode);
  m.qr = true;
  m.aa = rcode === Rcode.NOERROR;
  m.rcode = rcode;
  if (withQuestion) m.questions = req.questions.map((q) => ({ ...q }));
  return m;
}

/** How a request's TSIG was found: absent, good (a signer for the response), or a ready error response. */
export type TsigOutcome = { signer: TsigResponseSigner | undefined; reserve: number } | { refusal: Buffer };

/**
 * RFC 8945 §5.2: a signed request is checked against `keys` (the zone's
 * transfer keys; none: every key is unknown). A bad request gets NOTAUTH
 * with the TSIG error in the response's TSIG RR: unsigned for BADKEY and
 * BADSIG (we cannot sign with a key we do not have or that did not verify),
 * signed for BADTIME with our time in Other Data (§5.2.3).
 */
export function checkRequestTsig(req: DecodedMessage, keys: readonly TsigKey[], now: number): TsigOutcome {
  const check = verifyTsigRequest(req, keys, now);
  if (check === undefined) return { signer: undefined, reserve: 0 };
  if (check.ok) {
    return { signer: new TsigResponseSigner(check.key, check.tsig.mac, () => now), reserve: tsigLength(check.key) };
  }
  const body = encodeMessage(replyTo(req, Rcode.NOTAUTH));
  if (check.error === Rcode.BADTIME && check.key !== undefined) {
    const signer = new TsigResponseSigner(check.key, check.tsig.mac, () => now);
    return { refusal: signer.sign(body, { error: check.error, otherData: tsigServerTime(now), timeSigned: check.tsig.timeSigned }) };
  }
  return { refusal: appendTsigError(body, check.keyName, check.tsig, check.error) };
}

/** A single-message answer, signed when the request was. */
function single(m: Message, signer: TsigResponseSigner | undefined): Buffer {
  const bytes = encodeMessage(m);
  return signer === undefined ? bytes : signer.sign(bytes);
}

/** RFC 1982 §3.2: s1 is greater than s2 in serial number arithmetic. */
function serialAfter(s1: number, s2: number): boolean {
  return s1 !== s2 && ((s1 < s2 && s2 - s1 > 0x80000000) || (s1 > s2 && s1 - s2 < 0x80000000));
}

/**
 * The answer to an AXFR or IXFR request for `authority`'s zone: one message
 * (a refusal, an error, an up-to-date IXFR) or the zone's messages in order,
 * made lazily from a snapshot taken now (the records and the SOA serial of
 * one moment, so the transfer is consistent however long it takes).
 */
export function answerTransfer(
  req: DecodedMessage,
  authority: Authority,
  transport: 'udp' | 'tcp',
  peer: Peer | undefined,
  tsig: { signer: TsigResponseSigner | undefined; reserve: number },
): Buffer | Iterable<Buffer> {
  const { signer } = tsig;
  const policy = authority.transfer;
  const allowed =
    policy !== undefined &&
    authority.records !== undefined &&
    (signer !== undefined || (peer !== undefined && policy.nets.length > 0 && inNets(peer.remote, policy.nets)));
  if (!allowed) return single(replyTo(req, Rcode.REFUSED), signer);
  const q = req.questions[0];
  // Only the zone itself transfers (RFC 5936 §2.2.1): a name below the apex is not a zone here.
  if (q === undefined || canonicalName(q.name) !== authority.apex) return single(replyTo(req, Rcode.NOTAUTH), signer);
  if (q?.type === RRType.IXFR) {
    // RFC 1995 §3: the client's SOA is in the authority section.
    const theirs = req.authorities.find((rr) => rr.type === 'SOA');
    if (theirs?.type !== 'SOA' || theirs.data === null) return single(replyTo(req, Rcode.FORMERR), signer);
    const changes = transport === 'tcp' ? authority.changesSince?.(theirs.data.serial) : undefined;
    const soa = authority.soa();
    // RFC 1995 §2: over UDP (or when the client is up to date) the answer is our SOA alone; the client then asks over TCP.
    if (transport === 'udp' || !serialAfter(serialOf(soa), theirs.data.serial)) {
      const m = replyTo(req, Rcode.NOERROR);
      m.answers.push(soa);
      return single(m, signer);
    }
    if (changes !== undefined && changes.length > 0) {
      // RFC 1995 §4: new SOA, then per difference the old SOA, deletions, the next SOA, additions; new SOA last.
      const records = [soa];
      for (const d of changes) records.push(withSerial(soa, d.from), ...d.deleted, withSerial(soa, d.to), ...d.added);
      records.push(soa);
      peer?.onTransfer?.({ zone: authority.apex, remote: peer.remote, kind: 'IXFR', serial: serialOf(soa), from: theirs.data.serial, records: records.length });
      return transferMessages(req, records, signer, tsig.reserve);
    }
  } else if (transport === 'udp') {
    // RFC 5936 §4.2: AXFR over UDP is not defined; BIND answers FORMERR too.
    return single(replyTo(req, Rcode.FORMERR), signer);
  }
  const body = authority.records?.() ?? [];
  const soa = authority.soa();
  const ixfr = q?.type === RRType.IXFR;
  peer?.onTransfer?.({
    zone: authority.apex,
    remote: peer.remote,
    kind: ixfr ? 'IXFR, whole zone' : 'AXFR',
    serial: serialOf(soa),
    ...(ixfr ? { from: serialOf(req.authorities.find((rr) => rr.type === 'SOA') ?? soa) } : {}),
    records: body.length + 2,
  });
  return transferMessages(req, [soa, ...body, soa], signer, tsig.reserve);
}

function serialOf(soa: ResourceRecord): number {
  return soa.type === 'SOA' && soa.data !== null ? soa.data.serial : 0;
}

/** The SOA with another serial: the versions an IXFR answer names. */
function withSerial(soa: ResourceRecord, serial: number): ResourceRecord {
  return soa.type === 'SOA' && soa.data !== null ? { ...soa, data: { ...soa.data, serial } } : soa;
}

/**
 * Packs the records into as few messages as fit (RFC 5936 §2.2: as many
 * RRs per message as fit), each at most 65535 octets with its TSIG. The
 * question goes in the first message only (§2.2.1 lets later ones omit it).
 * Sizes are counted uncompressed, an upper bound of the compressed encoding.
 */
function* transferMessages(
  req: DecodedMessage,
  records: readonly ResourceRecord[],
  signer: TsigResponseSigner | undefined,
  reserve: number,
): Generator<Buffer> {
  let i = 0;
  let first = true;
  while (i < records.length) {
    const m = replyTo(req, Rcode.NOERROR, first);
    m.opcode = Opcode.QUERY;
    let size = encodeMessage(m).length + reserve;
    while (i < records.length) {
      const rr = records[i];
      const len = recordLength(rr);
      if (m.answers.length > 0 && size + len > MAX_MESSAGE) break;
      m.answers.push(rr);
      size += len;
      i++;
    }
    first = false;
    yield single(m, signer);
  }
}
