/**
 * The shared store (README, "Several daemons as one service"): what the
 * daemons of one site keep in etcd, and the interfaces between the parts
 * that use it. Every value read from etcd is checked as hostile input: a
 * key or value that does not decode is skipped and reported, never
 * trusted.
 *
 * Layout under the configured prefix P (default `/nsregd`), zone names and
 * claimed names percent-encoded (encodeURIComponent) so that no `/` can
 * appear inside one path segment:
 *
 *   P/v1/zones/<zone>/keys/<name>                  the claim: KEY rdata and key tag
 *   P/v1/zones/<zone>/recs/<name>/<type>/<address>  one live record: its TTL
 *   P/v1/zones/<zone>/serial                       touched by every txn that changes published data;
 *                                                   its mod revision is the zone's data version
 *   P/v1/zones/<zone>/changes/<id>                 a change waiting for the publisher (ordered by create revision)
 *   P/v1/zones/<zone>/results/<id>                 the publisher's first attempt at a change (leased)
 *   P/v1/zones/<zone>/leader                       the zone's publisher (leased; value: its instance id)
 *   P/v1/zones/<zone>/until/<name>                 what moves on every refresh: the claim's deadline, the
 *                                                   newest signature inception accepted, each record's deadline
 *
 * keys/ and recs/ change only when a name's key or record set changes;
 * every write to a name (claim, update, refresh, expiry, release) writes or
 * deletes its until/ entry. The daemons' mirrors hold everything but
 * until/ (it sorts last, so a mirror is one range): a refresh, which
 * writes only until/<name>, reaches no other daemon's mirror. Only the
 * publisher, which expires, watches until/ (a mirror of its own).
 *
 * A claim is identified by the create revision of its keys/ entry, and a
 * name's state by the mod revision of its until/ entry: an update compares
 * both, so a name released and claimed again by another key can never be
 * refreshed by the old key, and a change made to the name at another
 * daemon meanwhile makes the update read the name again.
 */
import type { AddrRecord, UpstreamChange } from '../records.js';
import type { KeyRData } from '../../dns/types.js';

/** `store:` in nsregd.yaml (src/config/store.ts parses it). */
export type { StoreConfig } from '../../config/store.js';

export const LAYOUT_VERSION = 'v1';

/** The claim as stored under keys/<name>. */
export interface StoredClaim {
  readonly rdata: KeyRData;
  readonly keyTag: number;
}

/** One live record as stored under recs/<name>/<type>/<address> (its identity is the path). */
export interface StoredRecord {
  readonly ttl: number;
}

/** A name's deadlines, as stored under until/<name>: everything a refresh moves. */
export interface StoredDeadlines {
  /** The claim's deadline, ms since the epoch. */
  readonly expiry: number;
  /** The newest signature inception accepted for the name (ms since the epoch); older requests are replays. */
  readonly signedAt?: number;
  /** Each live record's deadline (ms since the epoch), by `<type>/<address>`. */
  readonly records: ReadonlyMap<string, number>;
}

/** A change waiting for the publisher under changes/<id>. */
export interface StoredChange {
  readonly change: UpstreamChange;
  /** The instance that wrote it (logs). */
  readonly by: string;
  /** ms since the epoch. */
  readonly at: number;
  /** Upstreams that keep records leave this change out (a key's expiry, an operator's release). */
  readonly skipKeepRecords?: boolean;
}

/**
 * The publisher's first attempt at a change, under results/<id>: whether
 * every upstream took it, and if not why (for logs and the TXT reason).
 */
export interface StoredResult {
  readonly ok: boolean;
  readonly reason?: string;
}

/** One entry of the mirror: the decoded value and the revisions that identify it. */
export interface Versioned<T> {
  readonly value: T;
  readonly createRevision: string;
  readonly modRevision: string;
}

/** What a watch event did to the mirror of one zone, after it was applied. */
export interface MirrorEvent {
  readonly revision: string;
  readonly records: { readonly added: readonly AddrRecord[]; readonly removed: readonly AddrRecord[] };
  readonly claims: { readonly put: readonly string[]; readonly deleted: readonly string[] };
  readonly changes: { readonly put: readonly string[]; readonly deleted: readonly string[] };
  readonly results: ReadonlyArray<{ readonly id: string; readonly ok: boolean }>;
}

/**
 * A zone's data as this daemon last saw it in etcd, all but the deadlines
 * (until/): a consistent snapshot (one range read at revision R), then
 * kept current by a watch from R+1.
 * Writes this daemon makes are applied at once with the revision etcd
 * answered (`applyOwn`), and a watch event older than what an entry
 * already holds is ignored, so the mirror never goes back.
 */
export interface ZoneMirror {
  readonly zone: string;
  /** The revision the mirror is current to (a write to until/ alone does not move it: the watch does not report it). */
  readonly revision: string;
  claim(name: string): Versioned<StoredClaim> | undefined;
  claims(): IterableIterator<[string, Versioned<StoredClaim>]>;
  readonly claimCount: number;
  /** The records of one name. */
  records(name: string): ReadonlyArray<{ readonly record: AddrRecord; readonly entry: Versioned<StoredRecord> }>;
  allRecords(): ReadonlyArray<{ readonly record: AddrRecord; readonly entry: Versioned<StoredRecord> }>;
  readonly recordCount: number;
  /** Pending changes, oldest (lowest create revision) first. */
  changes(): ReadonlyArray<{ readonly id: string; readonly entry: Versioned<StoredChange> }>;
  result(id: string): boolean | undefined;
  /** The mod revision of serial (0 when never written): the zone's data version. */
  readonly dataVersion: string;
  /** The value of serial: the zone's SOA serial base, decimal ('0' when never written). */
  readonly serialBase: string;
  /**
   * What a failed transaction read back about one name (its `keys/<name>`
   * and every `recs/<name>/…`, with their own revisions, as of `revision`):
   * replaces the mirror's view of that name where it is older. Emits an event.
   */
  reloadName(name: string, revision: string, kvs: ReadonlyArray<import('etcd3').IKeyValue>): void;
  /** Called after each applied batch of watch events (and after applyOwn). */
  onEvent(listener: (e: MirrorEvent) => void): () => void;
  /**
   * Waits until the mirror has seen `revision` (resolves at once when it
   * has); rejects with StoreUnavailableError after timeoutMs. The revision
   * should be one of a write in this zone's namespace (a txn's header
   * revision): the watch reports only revisions that touch the namespace.
   */
  caughtUp(revision: string, timeoutMs: number): Promise<void>;
  /**
   * Applies a write this daemon made in the zone's namespace (its txn
   * succeeded at `revision`, the txn response's header revision) at once,
   * so this daemon's next request sees it before the watch reports it; the
   * watch's report of the same write is then ignored. Emits a MirrorEvent
   * when anything changed. It does not move `revision` (writes of other
   * daemons before it may still be on their way).
   */
  applyOwn(revision: string, writes: OwnWrites): void;
  /**
   * False while the watch is down or the mirror is loading a fresh snapshot
   * after it failed: the mirror may then be behind (it reports what changed
   * meanwhile as events once it is current again).
   */
  readonly current: boolean;
}

/** What one of this daemon's transactions wrote in a zone's namespace (keys relative to it). */
export interface OwnWrites {
  /**
   * Keys put, with the value written. `createRevision`: the key's create
   * revision when the txn updated an existing key; when absent
   * the mirror keeps the create revision it knows, or takes the txn's
   * revision for a key it does not hold (a key the txn created).
   */
  readonly puts?: ReadonlyArray<{ readonly key: string; readonly value: string | Buffer; readonly createRevision?: string }>;
  readonly deletes?: readonly string[];
}

/**
 * The connection to etcd (src/daemon/shared/etcd.ts implements it). Every
 * operation is bounded by the store's timeout; a failure (no quorum, no
 * endpoint reachable, timeout, permission) rejects with
 * StoreUnavailableError, which a request answers with SERVFAIL and a TXT
 * reason so that the client tries another daemon.
 */
export interface SharedStore {
  /** The etcd3 namespace of `P/v1/zones/<zone>/` (keys relative to it: `keys/<name>`, …). */
  zoneNamespace(zone: string): import('etcd3').Namespace;
  /** Runs one store operation under the timeout, mapping every failure to StoreUnavailableError. */
  run<T>(what: string, op: () => Promise<T>): Promise<T>;
  /** Opens (once per zone) the zone's mirror: resolves when its first snapshot is loaded. */
  mirror(zone: string): Promise<ZoneMirror>;
  /** Joins the zone's publisher election (one Election per zone and daemon). */
  election(zone: string, instanceId: string): Election;
  /** The same for every daemon on this etcd cluster and prefix: what clients compare to recognise one site. */
  readonly siteId: string;
  /** Whether the store answered within the timeout lately (false while there is no quorum). */
  readonly healthy: boolean;
  close(): Promise<void>;
}

/**
 * Lease-based election of a zone's publisher: one daemon at a time holds
 * `leader` under a lease of `leaseMs`, kept alive while it runs. It is
 * leader only while its last keep-alive was answered less than
 * `leaseMs / 2` ago: a daemon cut off from the quorum stops publishing
 * before its lease can run out at etcd, so two publishers never overlap.
 */
export interface Election {
  readonly isLeader: boolean;
  /** Called with true when this daemon becomes leader and false when it stops being leader (lost lease, resign, close). */
  onChange(listener: (leader: boolean) => void): () => void;
  /**
   * A compare that holds only while this daemon is leader (the leader
   * key's create revision is the one it wrote): publisher writes are made
   * conditional on it. Undefined when not leader.
   */
  fence(): { readonly key: string; readonly createRevision: string } | undefined;
  /** Gives up leadership (shutdown) and stops campaigning. */
  close(): Promise<void>;
}

