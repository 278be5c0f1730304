/**
 * Numeric DNS registry values used across the wire layer.
 * RFC 1035 §3.2, RFC 2136 §1.3 (class NONE), RFC 2535/2931 (KEY, SIG),
 * RFC 8945 (TSIG), RFC 6891 (OPT) and RFC 8945 §5.3.2 (extended rcodes).
 */
export const RRType = {
  A: 1,
  NS: 2,
  CNAME: 5,
  SOA: 6,
  PTR: 12,
  MX: 15,
  TXT: 16,
  SIG: 24,
  KEY: 25,
  AAAA: 28,
  SRV: 33,
  OPT: 41,
  DNSKEY: 48,
  TSIG: 250,
  IXFR: 251,
  AXFR: 252,
  ANY: 255,
} as const;

export const RRClass = {
  IN: 1,
  CH: 3,
  HS: 4,
  /** RFC 2136 §2.4.3 / §2.5.4: "delete an RR from an RRset". */
  NONE: 254,
  ANY: 255,
} as const;

export const Opcode = {
  QUERY: 0,
  IQUERY: 1,
  STATUS: 2,
  NOTIFY: 4,
  UPDATE: 5,
} as const;

export const Rcode = {
  NOERROR: 0,
  FORMERR: 1,
  SERVFAIL: 2,
  NXDOMAIN: 3,
  NOTIMP: 4,
  REFUSED: 5,
  YXDOMAIN: 6,
  YXRRSET: 7,
  NXRRSET: 8,
  NOTAUTH: 9,
  NOTZONE: 10,
  /** RFC 8945 §5.3.2: these three travel in the TSIG error field. */
  BADSIG: 16,
  BADKEY: 17,
  BADTIME: 18,
} as const;

/** DNSSEC algorithm numbers (IANA "DNS Security Algorithm Numbers"). */
export const Algorithm = {
  RSASHA256: 8,
  RSASHA512: 10,
  ECDSAP256SHA256: 13,
  ECDSAP384SHA384: 14,
  ED25519: 15,
  ED448: 16,
} as const;

export type AlgorithmNumber = (typeof Algorithm)[keyof typeof Algorithm];

const rrTypeNames = new Map<number, string>(Object.entries(RRType).map(([k, v]) => [v, k]));
const rrClassNames = new Map<number, string>(Object.entries(RRClass).map(([k, v]) => [v, k]));
const rcodeNames = new Map<number, string>(Object.entries(Rcode).map(([k, v]) => [v, k]));
const opcodeNames = new Map<number, string>(Object.entries(Opcode).map(([k, v]) => [v, k]));
const algorithmNames = new Map<number, string>(Object.entries(Algorithm).map(([k, v]) => [v, k]));

/** Presentation name of a type; RFC 3597 `TYPEnnn` for unknown ones. */
export function typeName(type: number): string {
  return rrTypeNames.get(type) ?? `TYPE${type}`;
}

/** Presentation name of a class; RFC 3597 `CLASSnnn` for unknown ones. */
export function className(cls: number): string {
  return rrClassNames.get(cls) ?? `CLASS${cls}`;
}

export function rcodeName(rcode: number): string {
  return rcodeNames.get(rcode) ?? `RCODE${rcode}`;
}

export function opcodeName(opcode: number): string {
  return opcodeNames.get(opcode) ?? `OPCODE${opcode}`;
}

export function algorithmName(alg: number): string {
  return algorithmNames.get(alg) ?? `ALG${alg}`;
}
