import { strict as assert } from 'node:assert';
import { describe, it } from 'node:test';
import { ConfigError } from '../../src/config/errors.js';
import { KeyStoreError } from '../../src/daemon/keydb/errors.js';
import { Refusals } from '../../src/daemon/refusals.js';
import { Sig0Error } from '../../src/dns/errors.js';
import { ClientKeyError } from '../../src/client/errors.js';
import { errnoCode, errorMessage, NsregError } from '../../src/errors.js';

describe('error root', () => {
  it('every error class extends NsregError, names itself and carries a stable code', () => {
    const samples: NsregError[] = [
      new Sig0Error('expired', 'signature expired'),
      new KeyStoreError('write-failed', '/x/keydb', 'disk full'),
      new ClientKeyError('missing', 'no key'),
      Refusals.rateLimited(),
    ];
    for (const e of samples) {
      assert.ok(e instanceof NsregError && e instanceof Error);
      assert.equal(e.name, e.constructor.name);
      assert.match(e.code, /^ERR_[A-Z0-9_]+$/);
    }
    assert.equal(new KeyStoreError('corrupt', '/x/keydb', 'bad').message, '/x/keydb: bad');
    assert.equal(new KeyStoreError('corrupt', '/x/keydb', 'bad').reason, 'corrupt');
    assert.equal(ConfigError.prototype instanceof NsregError, true);
  });

  it('refusals carry an id code can compare, besides rcode and reason', () => {
    const r = Refusals.busy();
    assert.equal(r.id, 'busy');
    assert.equal(r.code, 'ERR_REFUSAL');
    assert.equal(r.reason, 'Server busy, try again later');
  });

  it('errorMessage and errnoCode read any thrown value', () => {
    assert.equal(errorMessage(new Error('boom')), 'boom');
    assert.equal(errorMessage('text'), 'text');
    assert.equal(errorMessage({ a: 1 }), '{"a":1}');
    assert.equal(errorMessage(undefined), 'undefined');
    const circular: Record<string, unknown> = {};
    circular.self = circular;
    assert.equal(errorMessage(circular), '[object Object]');
    assert.equal(errnoCode(Object.assign(new Error('x'), { code: 'ENOENT' })), 'ENOENT');
    assert.equal(errnoCode(new Error('x')), undefined);
    assert.equal(errnoCode(null), undefined);
  });
});
