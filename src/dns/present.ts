/**
 * Presentation form of messages (RFC 1035 §5.1 master-file style), for
 * `--print` and logs. Section headings follow the opcode: RFC 2136 names for
 * UPDATE, dig's names otherwise.
 */
import { Opcode, className, opcodeName, rcodeName, typeName } from './constants.js';
import { decodeMessage, typeCode, type Message, type ResourceRecord } from './message.js';
import { errorMessage } from '../errors.js';

function quote(s: string): string {
  return '"' + s.replace(/["\\]/g, (c) => '\\' + c) + '"';
}

/** The rdata of a record in presentation form ("" for empty rdata). */
export function formatRData(rr: ResourceRecord): string {
  if (rr.data === null) return '';
  switch (rr.type) {
    case 'A':
    case 'AAAA':
    case 'NS':
    case 'CNAME':
    case 'PTR':
      return rr.data;
    case 'TXT':
      return rr.data.map(quote).join(' ');
    case 'SOA': {
      const s = rr.data;
      return `${s.mname} ${s.rname} ${s.serial} ${s.refresh} ${s.retry} ${s.expire} ${s.minimum}`;
    }
    case 'SRV':
      return `${rr.data.priority} ${rr.data.weight} ${rr.data.port} ${rr.data.target}`;
    case 'KEY':
      return `${rr.data.flags} ${rr.data.protocol} ${rr.data.algorithm} ${rr.data.publicKey.toString('base64')}`;
    case 'SIG': {
      const s = rr.data;
      return `${typeName(s.typeCovered)} ${s.algorithm} ${s.labels} ${s.originalTtl} ${s.expiration} ${s.inception} ${s.keyTag} ${s.signerName} ${s.signature.toString('base64')}`;
    }
    case 'TSIG': {
      const t = rr.data;
      return `${t.algorithm} ${t.timeSigned} ${t.fudge} ${t.mac.length} ${t.mac.toString('base64')} ${t.originalId} ${rcodeName(t.error)} ${t.otherData.length}`;
    }
    case 'OPT':
    case 'UNKNOWN':
      // RFC 3597 §5 generic form.
      return `\\# ${rr.data.length} ${rr.data.toString('hex')}`;
  }
  return '';
}

export function formatRecord(rr: ResourceRecord): string {
  if (rr.type === 'OPT') return `; EDNS: udp=${rr.class} version=${(rr.ttl >>> 16) & 0xff} flags=${rr.ttl & 0xffff}`;
  const rdata = formatRData(rr);
  const head = `${rr.name}\t${rr.ttl}\t${className(rr.class)}\t${typeName(typeCode(rr))}`;
  return rdata === '' ? head : `${head}\t${rdata}`;
}

export function formatMessage(m: Message): string {
  const flags = (['qr', 'aa', 'tc', 'rd', 'ra', 'ad', 'cd'] as const).filter((f) => m[f]).join(' ');
  const update = m.opcode === Opcode.UPDATE;
  const names = update ? ['ZONE', 'PREREQUISITE', 'UPDATE', 'ADDITIONAL'] : ['QUESTION', 'ANSWER', 'AUTHORITY', 'ADDITIONAL'];
  const lines = [
    `;; opcode: ${opcodeName(m.opcode)}, status: ${rcodeName(m.rcode)}, id: ${m.id}`,
    `;; flags: ${flags}; ${names[0]}: ${m.questions.length}, ${names[1]}: ${m.answers.length}, ${names[2]}: ${m.authorities.length}, ${names[3]}: ${m.additionals.length}`,
    '',
    `;; ${names[0]} SECTION:`,
    ...m.questions.map((q) => `;${q.name}\t\t${className(q.class)}\t${typeName(q.type)}`),
  ];
  const sections = [m.answers, m.authorities, m.additionals];
  sections.forEach((rrs, i) => {
    if (rrs.length === 0) return;
    lines.push('', `;; ${names[i + 1]} SECTION:`, ...rrs.map(formatRecord));
  });
  return lines.join('\n');
}

/**
 * What `--print` shows of a message sent or received: its presentation form,
 * or, for bytes that do not decode, why and the bytes in hex.
 */
export function formatWire(raw: Buffer): string {
  try {
    return formatMessage(decodeMessage(raw));
  } catch (err) {
    return `;; undecodable message: ${errorMessage(err)}\n;; ${raw.length} octets: ${raw.toString('hex')}`;
  }
}
