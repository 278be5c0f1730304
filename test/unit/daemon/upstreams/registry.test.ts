import assert from 'node:assert/strict';
import { describe, it } from 'node:test';

import pino from 'pino';

import { upstreamTypes } from '../../../../src/config/upstreams/index.js';
import { systemClock } from '../../../../src/clock.js';
import { createUpstream, UPSTREAM_FACTORIES } from '../../../../src/daemon/upstreams/registry.js';
import type { UpstreamContext } from '../../../../src/daemon/upstreams/upstream.js';

const ctx: UpstreamContext = { zone: 'dyn.example.', logger: pino({ level: 'silent' }), clock: systemClock, liveRecords: () => [], allLiveRecords: () => [], dataDir: '/nonexistent', registration: () => ({ host: '127.0.0.1', port: 8053 }) };

describe('upstream registry', () => {
  it('has a factory for every configurable type', () => {
    assert.deepEqual(Object.keys(UPSTREAM_FACTORIES).sort(), upstreamTypes().sort());
  });

  it('builds each kind from its config', () => {
    const ns = createUpstream(
      {
        type: 'nsupdate',
        hostname: '127.0.0.1',
        port: 53,
        tcp: true,
        timeout: 1000,
        zone: 'dyn.example.',
        reverseZones: [],
        recordTtl: 60_000,
        tsigName: 'k.',
        tsigSecret: 'c2VjcmV0',
        tsigAlgorithm: 'hmac-sha256',
        keepRecords: true,
        excludeNets: [],
        protectExisting: true,
        reconcileInterval: 0,
      },
      ctx,
    );
    assert.match(ns.description, /^nsupdate 127\.0\.0\.1:53/);
    assert.equal(ns.keepRecords, true);
    const ub = createUpstream(
      {
        type: 'unbound',
        hostname: '::1',
        port: 8953,
        clientCert: '/c',
        clientKey: '/k',
        serverCert: '/s',
        serverName: 'unbound',
        zoneType: 'none',
        reverseZones: [],
        timeout: 1000,
        recordTtl: 60_000,
        keepRecords: false,
        excludeNets: [],
        statusInterval: 0,
      },
      ctx,
    );
    assert.equal(ub.description, 'unbound [::1]:8953');
    assert.equal(ub.keepRecords, false);
  });
});
