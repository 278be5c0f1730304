import assert from 'node:assert/strict';
import { describe, it } from 'node:test';

import { parseDaemonConfig } from '../../../src/config/daemon.js';
import { ConfigError } from '../../../src/config/errors.js';
import type { NsupdateUpstreamConfig, UnboundUpstreamConfig } from '../../../src/config/upstreams/index.js';
import { MINIMAL_UPSTREAMS } from '../../helpers/upstream-trees.js';

const FILE = '/etc/nsregd/nsregd.yaml';
const NSUPDATE = MINIMAL_UPSTREAMS.nsupdate;
const UNBOUND = MINIMAL_UPSTREAMS.unbound;

function upstream(u: Record<string, unknown>): unknown {
  const text = JSON.stringify({
    zones: { 'dynamic.example.org': { 'max-key-ttl': '720h', 'max-addr-ttl': '1h', 'allowed-nets': ['127.0.0.0/8'], upstreams: [u] } },
  });
  return Object.values(parseDaemonConfig(text, FILE).config.zones)[0]?.upstreams[0];
}

describe('reconcile-interval and status-interval', () => {
  it('default to 1h and 10s', () => {
    assert.equal((upstream(NSUPDATE) as NsupdateUpstreamConfig).reconcileInterval, 3_600_000);
    assert.equal((upstream(UNBOUND) as UnboundUpstreamConfig).statusInterval, 10_000);
  });

  it('take durations, and 0 in any spelling switches them off', () => {
    assert.equal((upstream({ ...NSUPDATE, 'reconcile-interval': '90s' }) as NsupdateUpstreamConfig).reconcileInterval, 90_000);
    assert.equal((upstream({ ...UNBOUND, 'status-interval': '2s' }) as UnboundUpstreamConfig).statusInterval, 2_000);
    for (const off of [0, '0', '0s', '0h']) {
      assert.equal((upstream({ ...NSUPDATE, 'reconcile-interval': off }) as NsupdateUpstreamConfig).reconcileInterval, 0);
      assert.equal((upstream({ ...UNBOUND, 'status-interval': off }) as UnboundUpstreamConfig).statusInterval, 0);
    }
  });

  it('are bounded by the longest timer, and the error names the key and value', () => {
    for (const [u, k] of [[NSUPDATE, 'reconcile-interval'], [UNBOUND, 'status-interval']] as const) {
      assert.throws(
        () => upstream({ ...u, [k]: '596h31m23.648s' }),
        (e: unknown) => e instanceof ConfigError && e.message.includes(k) && e.message.includes('596h31m23.648s'),
      );
      assert.throws(() => upstream({ ...u, [k]: '-5s' }), ConfigError);
    }
  });
});
