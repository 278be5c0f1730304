/**
 * The one interface every way of learning the host's addresses implements:
 * rtnetlink where the kernel offers it, a poll of the
 * OS interface list otherwise. Sources report raw facts — every address on
 * every interface, with its kernel flags — and never filter; what counts as
 * registrable is decided by `policy.ts`.
 */

/** Lifetime value the kernel uses for "forever" (INFINITY_LIFE_TIME). */
export const LIFETIME_FOREVER = 0xffffffff;

export interface LocalAddress {
  /** Canonical text (RFC 5952 for IPv6), no zone id. */
  readonly address: string;
  readonly family: 4 | 6;
  /** Kernel interface index; 0 when unknown. */
  readonly ifindex: number;
  /** Interface name (without an IPv4 alias label suffix). */
  readonly ifname: string;
  readonly prefixLen: number;
  /** IFA_F_* flags; the 32-bit IFA_FLAGS value when the kernel sent one. */
  readonly flags: number;
  /** Seconds; LIFETIME_FOREVER = forever. */
  readonly validLifetime: number;
  /** Seconds; LIFETIME_FOREVER = forever. */
  readonly preferredLifetime: number;
}

export interface AddressEvent {
  readonly kind: 'added' | 'removed';
  readonly address: LocalAddress;
}

export interface AddressSource {
  /** Every address currently configured, on every interface. */
  list(): Promise<LocalAddress[]>;
  /**
   * Start delivering changes. Changes that happen after the most recent
   * `list()` began are delivered (a few may repeat what that list showed;
   * consumers must treat repeats as no-ops). `onFailure` is called at most
   * once, when the source can no longer report changes.
   */
  subscribe(onEvent: (e: AddressEvent) => void, onFailure: (err: Error) => void): Promise<void>;
  close(): Promise<void>;
  /**
   * Calls `listener` whenever a default route (0.0.0.0/0 or ::/0 in the
   * main table) appears, goes away or changes gateway or interface: the
   * host may have moved to another network. Repeats are possible;
   * consumers debounce. Sources that cannot see routes leave it out.
   */
  onDefaultRouteChange?(listener: () => void): void;
  readonly kind: 'netlink' | 'poll';
}

/**
 * Identity of one address instance: the same address on two interfaces is
 * two instances. The index, not the name, identifies the interface (names
 * change; the poller may not know an index, then the name stands in). The
 * prefix length is part of the identity because IPv4 allows one address
 * with two prefixes on one interface.
 */
export function instanceKey(a: Pick<LocalAddress, 'address' | 'ifindex' | 'ifname' | 'prefixLen'>): string {
  const iface = a.ifindex > 0 ? `#${a.ifindex}` : a.ifname;
  return `${iface} ${a.address}/${a.prefixLen}`;
}

function sameInstanceState(a: LocalAddress, b: LocalAddress): boolean {
  // Lifetimes count down between two snapshots; only a change of flags is news.
  return a.flags === b.flags;
}

/**
 * Events that turn snapshot `before` into snapshot `after`: removals first,
 * then additions (an instance whose flags changed is re-announced
 * as `added`, as the kernel does with RTM_NEWADDR).
 */
export function diffSnapshots(
  before: ReadonlyMap<string, LocalAddress>,
  after: ReadonlyMap<string, LocalAddress>,
): AddressEvent[] {
  const events: AddressEvent[] = [];
  for (const [key, addr] of before) {
    if (!after.has(key)) events.push({ kind: 'removed', address: addr });
  }
  for (const [key, addr] of after) {
    const old = before.get(key);
    if (old === undefined || !sameInstanceState(old, addr)) events.push({ kind: 'added', address: addr });
  }
  return events;
}

/** Index a list by instance key. */
export function snapshotOf(list: readonly LocalAddress[]): Map<string, LocalAddress> {
  return new Map(list.map((a) => [instanceKey(a), a]));
}
