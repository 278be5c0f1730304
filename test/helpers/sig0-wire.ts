/**
 * A deliberately independent, minimal reader for the SIG(0) RR at the end of
 * a captured UPDATE, so key tests can check real signers' bytes without
 * going through the project's own SIG(0) module.
 */
import assert from 'node:assert/strict';

export interface RawSig0 {
  algorithm: number;
  keyTag: number;
  signer: string;
  /** RFC 2931 §3.1: SIG rdata minus the signature, then the message without the SIG (ARCOUNT - 1). */
  signedData: Buffer;
  signature: Buffer;
}

/** Finds the last RR if it is owner ".", type SIG (24), class ANY, TTL 0. */
export function rawSig0(msg: Buffer): RawSig0 {
  const head = Buffer.from([0x00, 0x00, 0x18, 0x00, 0xff, 0, 0, 0, 0]);
  const start = msg.lastIndexOf(head);
  assert.ok(start > 12, 'message has a SIG(0) RR');
  const rdlen = msg.readUInt16BE(start + 9);
  const rdata = msg.subarray(start + 11, start + 11 + rdlen);
  assert.equal(start + 11 + rdlen, msg.length, 'SIG is the last RR');
  const labels: string[] = [];
  let off = 18;
  while (rdata[off] !== 0) {
    const len = rdata[off];
    assert.ok(len < 64, 'signer name is not compressed (RFC 2931 §3)');
    labels.push(rdata.subarray(off + 1, off + 1 + len).toString('latin1'));
    off += len + 1;
  }
  off += 1;
  const before = Buffer.from(msg.subarray(0, start));
  before.writeUInt16BE(before.readUInt16BE(10) - 1, 10);
  return {
    algorithm: rdata[2],
    keyTag: rdata.readUInt16BE(16),
    signer: `${labels.join('.')}.`,
    signedData: Buffer.concat([rdata.subarray(0, off), before]),
    signature: Buffer.from(rdata.subarray(off)),
  };
}
