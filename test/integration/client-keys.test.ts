/**
 * nsregc loads keys made by BIND's dnssec-keygen (KEY and DNSKEY files)
 * and signs registrations with them that verify.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { loadClientKey } from '../../src/client/keys.js';
import { buildRegistration } from '../../src/client/update-message.js';
import { decodeMessage } from '../../src/dns/message.js';
import { keyRecords, verifySig0 } from '../../src/dns/sig0.js';
import { requireTool, run } from '../helpers/tools.js';

let dir = '';
let keygen = '';

before(async () => {
  keygen = requireTool('dnssec-keygen');
  dir = await mkdtemp(path.join(tmpdir(), 'nsregc-client-keys-'));
});
after(async () => {
  if (dir !== '') await rm(dir, { recursive: true, force: true });
});

async function keygenPair(args: string[], name: string): Promise<{ keyFile: string; privateKeyFile: string; tag: number }> {
  const res = await run(keygen, ['-K', dir, ...args, name]);
  assert.equal(res.code, 0, res.stderr);
  const base = res.stdout.trim();
  const m = /^K.+\+\d{3}\+(\d{5})$/.exec(base);
  assert.ok(m, `dnssec-keygen printed a key base name: ${base}`);
  return { keyFile: path.join(dir, `${base}.key`), privateKeyFile: path.join(dir, `${base}.private`), tag: Number(m[1]) };
}

describe('nsregc with dnssec-keygen keys', () => {
  for (const variant of [
    { label: 'KEY (-T KEY -n HOST)', args: ['-a', 'ECDSAP256SHA256', '-T', 'KEY', '-n', 'HOST'], flags: 512 },
    { label: 'DNSKEY (zone key)', args: ['-a', 'ECDSAP256SHA256'], flags: 256 },
  ]) {
    it(`${variant.label}: loads, and a registration signed with it verifies`, async () => {
      const files = await keygenPair(variant.args, `kg${variant.flags}.example.`);
      const key = await loadClientKey({ ...files, genKey: false, name: 'unused' });
      assert.equal(key.generated, false);
      assert.equal(key.algorithm, 13);
      assert.equal(key.keyTag, files.tag);
      assert.equal(key.rdata.flags, variant.flags);

      const name = 'laptop.dynamic.example.org.';
      const now = 1_800_000_000;
      const wire = buildRegistration({
        id: 7,
        zone: 'dynamic.example.org.',
        name,
        key,
        keyTtl: 2592000,
        now,
        inserts: [{ address: '2001:db8::7', ttl: 600 }],
      });
      const msg = decodeMessage(wire);
      const [sent] = keyRecords(msg);
      assert.ok(sent);
      assert.equal(sent.name, name);
      assert.equal(sent.ttl, 2592000);
      assert.deepEqual(sent.rdata, key.rdata);
      const { sig } = verifySig0(msg, { name, rdata: sent.rdata }, now);
      assert.equal(sig.signerName, name);
      assert.equal(sig.keyTag, files.tag);
    });
  }
});
