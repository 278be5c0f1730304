import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import {
  canonicalName,
  childLabel,
  decodeName,
  encodeName,
  fqdn,
  isSubdomain,
  labelCount,
  nameLength,
  nameToLabels,
  namesEqual,
  writeName,
} from '../../../src/dns/names.js';
import { InvalidNameError, MalformedMessageError } from '../../../src/dns/errors.js';

/** Wire form from raw labels, for building inputs the encoder would refuse. */
function wire(...labels: Array<string | Buffer>): Buffer {
  const parts: Buffer[] = [];
  for (const l of labels) {
    const b = typeof l === 'string' ? Buffer.from(l, 'latin1') : l;
    parts.push(Buffer.from([b.length]), b);
  }
  parts.push(Buffer.from([0]));
  return Buffer.concat(parts);
}

function assertMalformed(fn: () => unknown, reason: string, id?: number): void {
  assert.throws(fn, (err: unknown) => {
    assert.ok(err instanceof MalformedMessageError, `expected MalformedMessageError, got ${String(err)}`);
    assert.equal(err.code, 'ERR_DNS_MALFORMED');
    assert.equal(err.reason, reason);
    if (id !== undefined) assert.equal(err.id, id);
    return true;
  });
}

function assertInvalidName(fn: () => unknown): void {
  assert.throws(fn, (err: unknown) => {
    assert.ok(err instanceof InvalidNameError, `expected InvalidNameError, got ${String(err)}`);
    assert.equal(err.code, 'ERR_DNS_INVALID_NAME');
    return true;
  });
}

describe('names: wire ⇄ presentation round trips', () => {
  const cases: Array<[string, Buffer]> = [
    ['.', Buffer.from([0])],
    ['org.', wire('org')],
    ['host.example.org.', wire('host', 'example', 'org')],
    ['MiXeD.Example.ORG.', wire('MiXeD', 'Example', 'ORG')],
    ['a\\.b.example.', wire('a.b', 'example')],
    ['back\\\\slash.example.', wire('back\\slash', 'example')],
    ['sp\\032ace.example.', wire('sp ace', 'example')],
    ['nul\\000byte.', wire(Buffer.from([0x6e, 0x75, 0x6c, 0x00, 0x62, 0x79, 0x74, 0x65]))],
    ['\\255\\128\\127.', wire(Buffer.from([0xff, 0x80, 0x7f]))],
    ['q\\"\\;\\(\\)\\@\\$.', wire('q";()@$')],
    ['*.wild.example.', wire('*', 'wild', 'example')],
    ['under_score.example.', wire('under_score', 'example')],
  ];
  for (const [text, bytes] of cases) {
    it(`${JSON.stringify(text)} encodes and decodes byte-exactly`, () => {
      assert.deepEqual(encodeName(text), bytes);
      const d = decodeName(bytes, 0);
      assert.equal(d.name, text);
      assert.equal(d.end, bytes.length);
      assert.deepEqual(encodeName(d.name), bytes);
    });
  }

  it('decodes at an offset and reports the end after the name', () => {
    const buf = Buffer.concat([Buffer.from([9, 9, 9]), wire('a', 'b'), Buffer.from([7])]);
    assert.deepEqual(decodeName(buf, 3), { name: 'a.b.', end: 3 + 5 });
  });

  it('accepts names without the trailing dot and equivalent escapes', () => {
    assert.deepEqual(encodeName('host.example.org'), wire('host', 'example', 'org'));
    assert.deepEqual(encodeName('\\104ost.example.'), wire('host', 'example'));
    assert.deepEqual(encodeName('\\h\\o\\s\\t.'), wire('host'));
    assert.deepEqual(encodeName(''), Buffer.from([0]));
  });

  it('treats a final escaped dot as part of the label, an escaped backslash before a dot as a label end', () => {
    assert.deepEqual(encodeName('a\\.'), wire('a.'));
    assert.deepEqual(encodeName('a\\\\.'), wire('a\\'));
    assert.deepEqual(encodeName('a\\\\'), wire('a\\'));
    assert.deepEqual(nameToLabels('a\\\\\\.'), [Buffer.from('a\\.')]);
    assert.equal(fqdn('a\\\\.'), 'a\\\\.');
    assert.equal(fqdn('a\\.'), 'a\\..');
    assert.equal(fqdn('a'), 'a.');
    assert.equal(fqdn(''), '.');
  });

  it('encodes non-ASCII characters as UTF-8, outside the BMP too', () => {
    assert.deepEqual(encodeName('é.'), wire(Buffer.from('é', 'utf8')));
    assert.deepEqual(encodeName('x😀y.'), wire(Buffer.from('x😀y', 'utf8')));
    assert.equal(decodeName(encodeName('é.'), 0).name, '\\195\\169.');
  });

  it('refuses bad presentation names', () => {
    assertInvalidName(() => encodeName('a..b.'));
    assertInvalidName(() => encodeName('.a.'));
    assertInvalidName(() => encodeName('a\\'));
    assertInvalidName(() => encodeName('a\\256.'));
  });

  it('labelCount counts labels, escaped dots are not separators', () => {
    assert.equal(labelCount('.'), 0);
    assert.equal(labelCount('a.b.c.'), 3);
    assert.equal(labelCount('a\\.b.c.'), 2);
  });
});

describe('names: length limits in both directions', () => {
  const l63 = 'x'.repeat(63);
  const l64 = 'x'.repeat(64);
  // 4 labels of 63 plus lengths: 4*64 + 1 = 257 > 255; 3*64 + 62 + 1 + 1 = 255.
  const max255 = `${l63}.${l63}.${l63}.${'y'.repeat(61)}.`;

  it('encodes a 63-octet label and a 255-octet name', () => {
    assert.equal(encodeName(`${l63}.`).length, 65);
    assert.equal(encodeName(max255).length, 255);
    assert.equal(decodeName(encodeName(max255), 0).name, max255);
  });

  it('refuses to encode a 64-octet label (also when made of escapes)', () => {
    assertInvalidName(() => encodeName(`${l64}.example.`));
    assertInvalidName(() => encodeName(`${'\\065'.repeat(64)}.`));
  });

  it('refuses to encode a name over 255 octets', () => {
    assertInvalidName(() => encodeName(`${l63}.${l63}.${l63}.${'y'.repeat(62)}.`));
  });

  it('nameLength measures without encoding and refuses what encodeName refuses', () => {
    const names = ['.', '', 'a', 'a.', 'Host.Example.org', 'a\\.b.', 'sp\\032ace.', 'é.', 'x😀y.', '*.w_c-1.', `${l63}.`, max255, max255.slice(0, -1)];
    for (const name of names) {
      const wireForm = encodeName(name);
      assert.equal(nameLength(name), wireForm.length, name);
      const buf = Buffer.alloc(wireForm.length + 5, 0xee);
      assert.equal(writeName(name, buf, 3), wireForm.length, name);
      assert.deepEqual(buf.subarray(3, 3 + wireForm.length), wireForm, name);
      assert.deepEqual(buf.subarray(3 + wireForm.length), Buffer.alloc(2, 0xee), name);
    }
    assertInvalidName(() => nameLength(`${l63}.${l63}.${l63}.${'y'.repeat(62)}.`));
    assertInvalidName(() => nameLength(`${l63}.${l63}.${l63}.${'y'.repeat(62)}`));
    assertInvalidName(() => nameLength(`${l64}.example.`));
    assertInvalidName(() => nameLength('a..b.'));
  });

  it('refuses to decode a label length byte of 64 and above', () => {
    for (const len of [0x40, 0x7f, 0x80, 0xbf]) {
      const buf = Buffer.concat([Buffer.from([len]), Buffer.alloc(len, 0x61), Buffer.from([0])]);
      assertMalformed(() => decodeName(buf, 0, 77), 'label-too-long', 77);
    }
  });

  it('refuses to decode a name over 255 octets, also when built from pointers', () => {
    const long = wire(l63, l63, l63, 'y'.repeat(62));
    assertMalformed(() => decodeName(long, 0), 'name-too-long');
    // 193 octets of labels at offset 0, then names with labels of their own pointing at them.
    const first = wire(l63, l63, l63);
    const second = Buffer.concat([
      Buffer.from([59]),
      Buffer.alloc(59, 0x62),
      Buffer.from([0xc0, 0x00]),
    ]);
    const buf = Buffer.concat([first, second]);
    assert.equal(first.length, 193);
    assert.equal(decodeName(buf, first.length).end, buf.length);
    const tooLong = Buffer.concat([first, Buffer.from([62]), Buffer.alloc(62, 0x62), Buffer.from([0xc0, 0x00])]);
    assertMalformed(() => decodeName(tooLong, first.length), 'name-too-long');
  });
});

describe('names: compression pointers', () => {
  it('follows a backward pointer and ends after the pointer', () => {
    const buf = Buffer.concat([wire('example', 'org'), Buffer.from([4]), Buffer.from('host'), Buffer.from([0xc0, 0x00])]);
    assert.deepEqual(decodeName(buf, 13), { name: 'host.example.org.', end: buf.length });
  });

  it('follows a chain of backward pointers', () => {
    // "org." at 0, "example" + ptr(0) at 5, "host" + ptr(5) at 15.
    const buf = Buffer.concat([
      wire('org'),
      Buffer.from([7]),
      Buffer.from('example'),
      Buffer.from([0xc0, 0]),
      Buffer.from([4]),
      Buffer.from('host'),
      Buffer.from([0xc0, 5]),
    ]);
    assert.equal(decodeName(buf, 15).name, 'host.example.org.');
  });

  it('refuses a forward pointer', () => {
    const buf = Buffer.concat([Buffer.from([0xc0, 0x04, 0, 0]), wire('a')]);
    assertMalformed(() => decodeName(buf, 0, 5), 'forward-pointer', 5);
  });

  it('refuses a pointer past the end of the message', () => {
    assertMalformed(() => decodeName(Buffer.from([0x01, 0x61, 0xc0, 0xff]), 0), 'forward-pointer');
    assertMalformed(() => decodeName(Buffer.from([0x01, 0x61, 0xff, 0xff]), 0), 'forward-pointer');
  });

  it('refuses a pointer to itself', () => {
    assertMalformed(() => decodeName(Buffer.from([0, 0, 0xc0, 0x02]), 2), 'pointer-loop');
  });

  it('refuses a loop of two pointers', () => {
    // Two pointers aimed at each other: one of them must point forward (RFC 1035 §4.1.4 prior occurrence).
    const pair = Buffer.from([0xc0, 0x02, 0xc0, 0x00]);
    assertMalformed(() => decodeName(pair, 0), 'forward-pointer');
    assertMalformed(() => decodeName(pair, 2), 'forward-pointer');
    // Backward-only loop: label "a" at 0, pointer at 2 back to 0, reached again after the label.
    assertMalformed(() => decodeName(Buffer.from([0x01, 0x61, 0xc0, 0x00]), 2), 'pointer-loop');
    // Two backward jumps, each before the last, are fine; "b" then back to "b" again is a loop.
    const twice = Buffer.from([0x01, 0x61, 0x00, 0x01, 0x62, 0xc0, 0x00, 0xc0, 0x03]);
    assert.deepEqual(decodeName(twice, 7), { name: 'b.a.', end: 9 });
    const again = Buffer.from([0x01, 0x61, 0x01, 0x62, 0xc0, 0x00, 0xc0, 0x02]);
    assertMalformed(() => decodeName(again, 6), 'pointer-loop');
    const back = Buffer.from([0x01, 0x61, 0xc0, 0x04, 0x01, 0x62, 0xc0, 0x00, 0x00]);
    assertMalformed(() => decodeName(back, 4), 'forward-pointer');
    // Jump back into the name being decoded.
    const into = Buffer.from([0x00, 0x01, 0x61, 0x01, 0x62, 0xc0, 0x03]);
    assertMalformed(() => decodeName(into, 1), 'pointer-loop');
  });

  it('refuses a cut-off pointer and a name without its terminator', () => {
    assertMalformed(() => decodeName(Buffer.from([0x01, 0x61, 0xc0]), 0), 'truncated-rr');
    assertMalformed(() => decodeName(Buffer.from([0x03, 0x61, 0x62]), 0), 'truncated-rr');
    assertMalformed(() => decodeName(Buffer.from([0x01, 0x61]), 0), 'truncated-rr');
    assertMalformed(() => decodeName(Buffer.alloc(0), 0), 'truncated-rr');
  });

  it('never hangs on pointer soup', () => {
    const buf = Buffer.alloc(4096);
    for (let i = 0; i < buf.length; i += 2) buf.writeUInt16BE(0xc000 | Math.max(0, i - 2), i);
    const start = process.hrtime.bigint();
    for (let i = 0; i < buf.length; i += 512) {
      assert.throws(() => decodeName(buf, i), MalformedMessageError);
    }
    assert.ok(process.hrtime.bigint() - start < 1_000_000_000n);
  });
});

describe('names: case and comparisons', () => {
  it('canonicalName lower-cases ASCII only, normalises escapes and adds the dot', () => {
    assert.equal(canonicalName('Host.Example.ORG'), 'host.example.org.');
    assert.equal(canonicalName('.'), '.');
    assert.equal(canonicalName(''), '.');
    assert.equal(canonicalName('\\065BC.'), 'abc.');
    assert.equal(canonicalName('A\\.B.C.'), 'a\\.b.c.');
    assert.equal(canonicalName('\\196\\128.'), '\\196\\128.');
    assert.equal(canonicalName('x\\h.'), 'xh.');
  });

  it('namesEqual ignores ASCII case (RFC 4343) but not escaped dots', () => {
    assert.ok(namesEqual('HOST.example.org.', 'host.EXAMPLE.org'));
    assert.ok(namesEqual('\\072ost.', 'host.'));
    assert.ok(!namesEqual('a\\.b.', 'a.b.'));
    assert.ok(!namesEqual('a.', 'a.b.'));
  });

  it('isSubdomain compares label by label', () => {
    assert.ok(isSubdomain('zone.', 'zone.'));
    assert.ok(isSubdomain('a.zone.', 'ZONE'));
    assert.ok(isSubdomain('b.a.zone.', 'zone.'));
    assert.ok(isSubdomain('anything.', '.'));
    assert.ok(!isSubdomain('zone.', 'a.zone.'));
    assert.ok(!isSubdomain('notzone.', 'zone.'));
    assert.ok(!isSubdomain('a.notzone.', 'zone.'));
    // Escaped dots: one label "a.victim" under "zone." — not under "victim.zone.".
    assert.ok(!isSubdomain('a\\.victim.zone.', 'victim.zone.'));
    assert.ok(isSubdomain('a\\.victim.zone.', 'zone.'));
    assert.ok(!isSubdomain('victim\\.zone.', 'zone.'));
  });

  it('childLabel returns the one label directly below the zone', () => {
    assert.equal(childLabel('Host.Zone.', 'zone.'), 'host');
    assert.equal(childLabel('host.zone', 'zone.'), 'host');
    assert.equal(childLabel('zone.', 'zone.'), undefined);
    assert.equal(childLabel('a.b.zone.', 'zone.'), undefined);
    assert.equal(childLabel('host.other.', 'zone.'), undefined);
    assert.equal(childLabel('a\\.victim.zone.', 'zone.'), 'a\\.victim');
    assert.equal(childLabel('a\\.victim.zone.', 'victim.zone.'), undefined);
    assert.equal(childLabel('victim\\.zone.', 'zone.'), undefined);
    assert.equal(childLabel('sp\\032ace.zone.', 'zone.'), 'sp\\032ace');
    assert.equal(childLabel('top.', '.'), 'top');
  });
});
