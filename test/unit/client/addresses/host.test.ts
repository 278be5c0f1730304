import assert from 'node:assert/strict';
import { describe, it } from 'node:test';

import { HostAddresses } from '../../../../src/client/addresses/host.js';
import { IFA_F_DEPRECATED } from '../../../../src/client/addresses/policy.js';
import { type AddressEvent, type AddressSource, type LocalAddress } from '../../../../src/client/addresses/source.js';
import { Cidr } from '../../../../src/net/address.js';
import { localAddress } from '../../../helpers/local-address.js';
import { logSink } from '../../../helpers/log-sink.js';
import { eventually } from '../../../helpers/eventually.js';

function addr(address: string, opts: Partial<LocalAddress> = {}): LocalAddress {
  return localAddress(address, 0, opts);
}

/** A source whose listing the test sets and whose subscriber the test drives. */
class FakeSource implements AddressSource {
  readonly kind = 'netlink' as const;
  addresses: LocalAddress[];
  onEvent: ((e: AddressEvent) => void) | undefined;
  onFailure: ((err: Error) => void) | undefined;
  closed = false;
  readonly subscribed: Promise<void>;
  #markSubscribed: () => void = () => undefined;

  constructor(addresses: LocalAddress[]) {
    this.addresses = addresses;
    this.subscribed = new Promise((resolve) => (this.#markSubscribed = resolve));
  }

  async list(): Promise<LocalAddress[]> {
    return [...this.addresses];
  }

  async subscribe(onEvent: (e: AddressEvent) => void, onFailure: (err: Error) => void): Promise<void> {
    this.onEvent = onEvent;
    this.onFailure = onFailure;
    this.#markSubscribed();
  }

  async close(): Promise<void> {
    this.closed = true;
  }

  routeListener: (() => void) | undefined;
  onDefaultRouteChange(listener: () => void): void {
    this.routeListener = listener;
  }
}

const ADDR_TTL = 3600;
const EXCLUDED = Cidr.parse('198.51.100.0/24');

function host(source: FakeSource, fallback: FakeSource, extras: string[] = []): { host: HostAddresses; changes: Array<[string, string, number]> } {
  const changes: Array<[string, string, number]> = [];
  const h = new HostAddresses(
    source,
    { interfaces: [], excludeSubnets: EXCLUDED === null ? [] : [EXCLUDED] },
    ADDR_TTL,
    extras,
    logSink().logger,
    () => fallback,
  );
  h.onChange((kind, address, ttl) => changes.push([kind, address, ttl]));
  return { host: h, changes };
}

describe('HostAddresses', () => {
  it('lists the registrable addresses with their TTLs, extra addresses included; networks for discovery', async () => {
    const source = new FakeSource([
      addr('192.0.2.1'),
      addr('2001:db8::1', { validLifetime: 600, preferredLifetime: 300 }),
      addr('2001:db8::2', { flags: IFA_F_DEPRECATED }),
      addr('198.51.100.7'),
    ]);
    const { host: h } = host(source, new FakeSource([]), ['203.0.113.5']);
    await h.open();
    assert.ok(source.onEvent !== undefined, 'subscribed after the first listing');
    assert.deepEqual(
      (await h.list()).map((a) => [a.address, a.ttl]).sort(),
      [['192.0.2.1', ADDR_TTL], ['2001:db8::1', 600], ['203.0.113.5', ADDR_TTL]].sort(),
    );
    assert.deepEqual(
      h.networks().map((n) => [n.address, n.prefixLength]),
      [['192.0.2.1', 24], ['2001:db8::1', 64]],
    );
  });

  it('turns source events into new / gone for usable addresses only', async () => {
    const source = new FakeSource([addr('192.0.2.1')]);
    const { host: h, changes } = host(source, new FakeSource([]));
    await h.open();
    source.onEvent?.({ kind: 'added', address: addr('192.0.2.2', { validLifetime: 900 }) });
    source.onEvent?.({ kind: 'added', address: addr('192.0.2.2', { validLifetime: 800 }) });
    source.onEvent?.({ kind: 'added', address: addr('198.51.100.9') });
    source.onEvent?.({ kind: 'removed', address: addr('192.0.2.1') });
    assert.deepEqual(changes, [
      ['new', '192.0.2.2', 900],
      ['gone', '192.0.2.1', ADDR_TTL],
    ]);
    await h.close();
    assert.equal(source.closed, true);
    source.onEvent?.({ kind: 'removed', address: addr('192.0.2.2') });
    assert.equal(changes.length, 2, 'nothing after close');
  });

  it('falls back when the source fails, announcing what changed in between; the old source is closed and ignored', async () => {
    const source = new FakeSource([addr('192.0.2.1'), addr('192.0.2.2')]);
    const fallback = new FakeSource([addr('192.0.2.2'), addr('192.0.2.3')]);
    const { host: h, changes } = host(source, fallback);
    await h.open();
    source.onFailure?.(new Error('netlink socket closed'));
    await fallback.subscribed;
    assert.equal(source.closed, true);
    assert.deepEqual(changes, [
      ['gone', '192.0.2.1', 0],
      ['new', '192.0.2.3', ADDR_TTL],
    ]);
    source.onEvent?.({ kind: 'added', address: addr('192.0.2.9') });
    assert.equal(changes.length, 2, 'the failed source is not heard any more');
    fallback.onEvent?.({ kind: 'removed', address: addr('192.0.2.2') });
    assert.deepEqual(changes.at(-1), ['gone', '192.0.2.2', ADDR_TTL]);
    assert.deepEqual((await h.list()).map((a) => a.address), ['192.0.2.2', '192.0.2.3'], 'lists come from the fallback now');
    await h.close();
    assert.equal(fallback.closed, true);
  });

  it('network changes: the usable prefixes changed, or the source saw a default route change; not other events', async () => {
    const source = new FakeSource([addr('192.0.2.1', { prefixLen: 24 })]);
    const fallback = new FakeSource([addr('192.0.2.1', { prefixLen: 24 })]);
    const { host: h } = host(source, fallback);
    let changes = 0;
    h.onNetworkChange(() => changes++);
    await h.open();
    // A lifetime-only repeat of a known address, and an excluded address: the prefixes stay.
    source.onEvent?.({ kind: 'added', address: addr('192.0.2.1', { prefixLen: 24, validLifetime: 100 }) });
    source.onEvent?.({ kind: 'added', address: addr('198.51.100.7', { prefixLen: 24 }) });
    assert.equal(changes, 0);
    source.onEvent?.({ kind: 'added', address: addr('203.0.113.5', { prefixLen: 24 }) });
    assert.equal(changes, 1, 'a new prefix');
    source.onEvent?.({ kind: 'removed', address: addr('203.0.113.5', { prefixLen: 24 }) });
    assert.equal(changes, 2, 'a prefix went away');
    source.routeListener?.();
    assert.equal(changes, 3, 'a default route changed');
    // After a fail-over the old source's routes no longer count, the fallback's do, and the switch itself is one.
    source.onFailure?.(new Error('netlink closed'));
    await fallback.subscribed;
    const afterFailover = await eventually('the fail-over counted as a change', () => changes, (c) => c === 4, 1000);
    source.routeListener?.();
    assert.equal(changes, afterFailover);
    fallback.routeListener?.();
    assert.equal(changes, afterFailover + 1);
    await h.close();
    fallback.routeListener?.();
    assert.equal(changes, afterFailover + 1, 'nothing after close');
  });
});
