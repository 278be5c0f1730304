/** Shared value types of the wire layer. Names are always FQDNs with a trailing dot ("." is the root). */

/** KEY (RFC 2535 §3.1) / DNSKEY (RFC 4034 §2.1) rdata. */
export interface KeyRData {
  flags: number;
  protocol: number;
  algorithm: number;
  publicKey: Buffer;
}
