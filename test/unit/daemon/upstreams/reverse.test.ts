import assert from 'node:assert/strict';
import { describe, it } from 'node:test';

import { reverseName, reverseZoneFor } from '../../../../src/daemon/reverse.js';

describe('reverseName', () => {
  it('reverses IPv4 octets under in-addr.arpa', () => {
    assert.equal(reverseName('192.0.2.5'), '5.2.0.192.in-addr.arpa.');
    assert.equal(reverseName('10.0.0.255'), '255.0.0.10.in-addr.arpa.');
  });

  it('reverses all 32 IPv6 nibbles under ip6.arpa, expanding ::', () => {
    assert.equal(
      reverseName('2001:db8::1'),
      '1.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.8.b.d.0.1.0.0.2.ip6.arpa.',
    );
    assert.equal(
      reverseName('2001:DB8:abcd:12::fe01'),
      '1.0.e.f.0.0.0.0.0.0.0.0.0.0.0.0.2.1.0.0.d.c.b.a.8.b.d.0.1.0.0.2.ip6.arpa.',
    );
  });

  it('returns undefined for non-addresses', () => {
    assert.equal(reverseName('host.example.'), undefined);
    assert.equal(reverseName('300.1.1.1'), undefined);
  });
});

describe('reverseZoneFor', () => {
  const zones = ['2.0.192.in-addr.arpa.', '8.b.d.0.1.0.0.2.ip6.arpa.', '192.in-addr.arpa.'];

  it('finds the zone holding a v4 or v6 reverse name', () => {
    assert.equal(reverseZoneFor('192.0.2.77', zones), '2.0.192.in-addr.arpa.');
    assert.equal(reverseZoneFor('2001:db8:1::5', zones), '8.b.d.0.1.0.0.2.ip6.arpa.');
  });

  it('prefers the most specific zone', () => {
    assert.equal(reverseZoneFor('192.0.2.1', ['192.in-addr.arpa.', '2.0.192.in-addr.arpa.']), '2.0.192.in-addr.arpa.');
    assert.equal(reverseZoneFor('192.0.3.1', zones), '192.in-addr.arpa.');
  });

  it('compares case-insensitively and without a trailing dot', () => {
    assert.equal(reverseZoneFor('192.0.2.1', ['2.0.192.IN-ADDR.ARPA']), '2.0.192.IN-ADDR.ARPA');
  });

  it('returns undefined outside every zone', () => {
    assert.equal(reverseZoneFor('198.51.100.1', zones), undefined);
    assert.equal(reverseZoneFor('2001:db9::1', zones), undefined);
    assert.equal(reverseZoneFor('not-an-ip', zones), undefined);
  });
});
