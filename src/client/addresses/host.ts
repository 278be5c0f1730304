/**
 * The host's addresses as the registrars see them: a source (netlink, or
 * the polled interface list) folded into an AddressSet, which turns raw
 * kernel events into "became usable" / "left the host". Lists are re-read
 * from the source each time, so TTLs are the lifetimes remaining now, not
 * at the last event. When the source fails, the polled interface list
 * takes over.
 *
 * It also says when the host may have moved to another network: the set
 * of usable prefixes changed, or a default route came, went or changed
 * (sources that see routes report those). Consumers debounce.
 */
import type { Logger } from 'pino';
import type { NetworkPrefix } from '../discover.js';
import type { AddressProvider } from '../registrar.js';
import type { RegistrarAddress } from '../update-message.js';
import { AddressSet, isUsable, registrableAddresses, ttlFor, type AddressPolicy } from './policy.js';
import type { AddressEvent, AddressSource, LocalAddress } from './source.js';

type AddressListener = (kind: 'new' | 'gone', address: string, ttl: number) => void;

export class HostAddresses implements AddressProvider {
  private source: AddressSource;
  private set: AddressSet;
  private listener: AddressListener | undefined;
  private networkListener: (() => void) | undefined;
  private closed = false;

  constructor(
    source: AddressSource,
    private readonly policy: AddressPolicy,
    private readonly addrTtl: number,
    private readonly extras: readonly string[],
    private readonly log: Logger,
    private readonly fallback: () => AddressSource,
  ) {
    this.source = source;
    this.set = new AddressSet(policy);
  }

  /** First listing, then changes (in that order, as the AddressSource contract asks). */
  async open(): Promise<void> {
    this.set.load(await this.source.list());
    await this.subscribe(this.source);
    const usable = this.usableInstances().map((a) => `${a.address}/${a.prefixLen} (${a.ifname})`);
    this.log.info({ source: this.source.kind, addresses: usable }, 'watching local addresses');
  }

  /** Only one consumer: the client, which fans events out to its registrars. */
  onChange(listener: AddressListener): void {
    this.listener = listener;
  }

  /** Called when the usable prefixes or the default routes change (repeats possible). */
  onNetworkChange(listener: () => void): void {
    this.networkListener = listener;
  }

  async list(): Promise<readonly RegistrarAddress[]> {
    const found = registrableAddresses(await this.source.list(), this.policy, this.addrTtl, this.extras);
    return found.map((a) => ({ address: a.address, ttl: a.ttl }));
  }

  /** The usable local addresses with their prefixes, for zone discovery. */
  networks(): NetworkPrefix[] {
    return this.usableInstances().map((a) => ({ address: a.address, prefixLength: a.prefixLen }));
  }

  async close(): Promise<void> {
    this.closed = true;
    this.listener = undefined;
    await this.source.close();
  }

  private usableInstances(): LocalAddress[] {
    return this.set.instances().filter((a) => isUsable(a, this.policy));
  }

  private networkChanged(): void {
    if (!this.closed) this.networkListener?.();
  }

  /** The usable prefixes, as one comparable text. */
  private prefixes(): string {
    return [...new Set(this.networks().map((n) => `${n.address}/${n.prefixLength}`))].sort().join(' ');
  }

  private subscribe(source: AddressSource): Promise<void> {
    source.onDefaultRouteChange?.(() => {
      if (source === this.source) this.networkChanged();
    });
    return source.subscribe(
      (e) => {
        if (source === this.source) this.handle(e);
      },
      (err) => {
        if (source === this.source) void this.failover(err);
      },
    );
  }

  private handle(e: AddressEvent): void {
    if (this.closed) return;
    const before = this.prefixes();
    const change = this.set.apply(e);
    if (change === 'unchanged') return;
    this.log.debug({ address: e.address.address, ifname: e.address.ifname, change }, 'address change');
    this.listener?.(change, e.address.address, ttlFor(e.address, this.addrTtl));
    if (this.prefixes() !== before) this.networkChanged();
  }

  /**
   * The source stopped reporting (netlink socket error): carry on with
   * the polled interface list, announcing what changed in between.
   */
  private async failover(err: Error): Promise<void> {
    if (this.closed) return;
    this.log.error({ err }, 'address source failed; falling back to polling the interface list');
    const old = this.source;
    const poll = this.fallback();
    this.source = poll;
    await old.close().catch(() => undefined);
    try {
      const fresh = new AddressSet(this.policy);
      const list = await poll.list();
      fresh.load(list);
      const before = this.set;
      this.set = fresh;
      const oldUsable = new Set(before.instances().filter((a) => before.isUsable(a.address)).map((a) => a.address));
      for (const address of oldUsable) {
        if (!fresh.has(address)) this.listener?.('gone', address, 0);
      }
      for (const a of list) {
        if (fresh.isUsable(a.address) && !oldUsable.has(a.address)) {
          oldUsable.add(a.address);
          this.listener?.('new', a.address, ttlFor(a, this.addrTtl));
        }
      }
      await this.subscribe(poll);
      // Changes in between were not seen: the network may be another one now.
      this.networkChanged();
    } catch (e) {
      this.log.error({ err: e }, 'polling the interface list failed too; address changes are no longer followed');
    }
  }
}
