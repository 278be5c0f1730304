import assert from 'node:assert/strict';
import { describe, it } from 'node:test';

import { EventRelay } from '../../../../src/client/addresses/relay.js';
import { LIFETIME_FOREVER, snapshotOf, type AddressEvent, type LocalAddress } from '../../../../src/client/addresses/source.js';

function addr(address: string, flags = 0): LocalAddress {
  return {
    address,
    family: 4,
    ifindex: 2,
    ifname: 'eth0',
    prefixLen: 24,
    flags,
    validLifetime: LIFETIME_FOREVER,
    preferredLifetime: LIFETIME_FOREVER,
  };
}

function added(address: string, flags = 0): AddressEvent {
  return { kind: 'added', address: addr(address, flags) };
}

function removed(address: string): AddressEvent {
  return { kind: 'removed', address: addr(address) };
}

/** [kind, address] of each event. */
function brief(events: readonly AddressEvent[]): Array<[string, string]> {
  return events.map((e) => [e.kind, e.address.address]);
}

/** A relay over a fake source that counts how often it was closed. */
function relay(): { relay: EventRelay; closes: () => number } {
  let closes = 0;
  const r = new EventRelay(async () => {
    closes++;
    r.close();
  });
  return { relay: r, closes: () => closes };
}

describe('EventRelay', () => {
  it('holds events until subscribe(), then replays them in order; later ones go straight through', () => {
    const { relay: r } = relay();
    r.deliver(added('192.0.2.1'));
    r.deliver(removed('192.0.2.1'));
    const seen: AddressEvent[] = [];
    let whenAttached = -1;
    r.subscribe(
      (e) => seen.push(e),
      () => assert.fail('no failure'),
      () => (whenAttached = seen.length),
    );
    assert.equal(whenAttached, 0, 'attached runs before the replay');
    assert.deepEqual(brief(seen), [['added', '192.0.2.1'], ['removed', '192.0.2.1']]);
    r.deliver(added('192.0.2.2'));
    assert.deepEqual(brief(seen).at(-1), ['added', '192.0.2.2']);
  });

  it('a listing before subscribe() drops what it already reflects and becomes the baseline', () => {
    const { relay: r } = relay();
    r.deliver(added('192.0.2.1'));
    r.listing();
    r.listed([addr('192.0.2.1'), addr('192.0.2.2')]);
    const seen: AddressEvent[] = [];
    r.subscribe((e) => seen.push(e), () => undefined);
    assert.deepEqual(seen, [], 'nothing held from before the listing');
    // The difference to a fresh read is measured from the listing plus what was delivered since.
    r.deliver(removed('192.0.2.2'));
    const fresh = snapshotOf([addr('192.0.2.1', 0x80), addr('192.0.2.3')]);
    assert.deepEqual(brief(r.difference(fresh)), [['added', '192.0.2.1'], ['added', '192.0.2.3']]);
  });

  it('after subscribe() a listing no longer moves the baseline', () => {
    const { relay: r } = relay();
    r.listed([addr('192.0.2.1')]);
    r.subscribe(() => undefined, () => undefined);
    r.listing();
    r.listed([]);
    assert.deepEqual(brief(r.difference(new Map())), [['removed', '192.0.2.1']]);
  });

  it('refuses a second subscriber and any subscriber once closed', () => {
    const { relay: r } = relay();
    r.subscribe(() => undefined, () => undefined);
    assert.throws(() => r.subscribe(() => undefined, () => undefined), /already subscribed/);
    assert.equal(r.close(), true);
    assert.equal(r.close(), false, 'closing twice is a no-op');
    assert.equal(r.closed, true);
    assert.throws(() => r.subscribe(() => undefined, () => undefined), /closed/);
  });

  it('reports a failure once, after closing the source; a failure before subscribe() is reported at subscribe()', async () => {
    const early = relay();
    early.relay.fail('netlink went away');
    assert.equal(early.relay.failure?.message, 'netlink went away', 'a thrown non-Error becomes an Error');
    const reported: Error[] = [];
    early.relay.subscribe(() => undefined, (err) => reported.push(err));
    await new Promise<void>((resolve) => setImmediate(resolve));
    assert.deepEqual(reported.map((e) => e.message), ['netlink went away']);
    assert.equal(early.closes(), 1);

    const late = relay();
    const seen: Error[] = [];
    late.relay.subscribe(() => undefined, (err) => {
      assert.equal(late.relay.closed, true, 'the source is closed before the subscriber hears of it');
      seen.push(err);
    });
    const boom = new Error('socket closed');
    late.relay.fail(boom);
    late.relay.fail(new Error('second'));
    await new Promise<void>((resolve) => setImmediate(resolve));
    assert.deepEqual(seen, [boom]);
    assert.equal(late.closes(), 1);
  });
});

describe('EventRelay default-route listeners', () => {
  it('tells every listener, before and after subscribe, and none once closed', () => {
    const { relay: r } = relay();
    const heard: string[] = [];
    r.onRouteChange(() => heard.push('a'));
    r.routeChanged();
    r.subscribe(() => undefined, () => undefined);
    r.onRouteChange(() => heard.push('b'));
    r.routeChanged();
    assert.deepEqual(heard, ['a', 'a', 'b']);
    r.close();
    r.routeChanged();
    r.onRouteChange(() => heard.push('c'));
    r.routeChanged();
    assert.deepEqual(heard, ['a', 'a', 'b']);
  });
});
