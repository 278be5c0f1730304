/**
 * The one interface every upstream kind implements. Each kind lives in its
 * own file and is registered by its YAML `type` in ./registry.ts.
 */
import { NsregError } from '../../errors.js';
import type { Logger } from 'pino';
import type { Clock } from '../../clock.js';
import type { AddrRecord, UpstreamChange } from '../records.js';
import type { LabelSyntax } from '../../config/daemon.js';

export interface UpstreamContext {
  /** The registration zone (lower-case FQDN). */
  readonly zone: string;
  readonly logger: Logger;
  readonly clock: Clock;
  /** Every live (installed, unexpired) record of a name, for upstreams that rewrite whole names. */
  liveRecords(name: string): readonly AddrRecord[];
  /** Every live record of the zone (an upstream (re)starting with state of its own seeds it from these). */
  allLiveRecords(): readonly AddrRecord[];
  /** The daemon's data directory, for upstreams that keep state on disk. */
  readonly dataDir: string;
  /** Which claimed labels the zone allows (zone `label-syntax`; default hostname); upstreams that publish names skip the rest. */
  readonly labelSyntax?: LabelSyntax;
  /** Where clients register (the daemon's listen-addr and bound port). */
  registration(): { readonly host: string; readonly port: number };
  /**
   * The zone's SOA serial when the daemons of a site share a store (every
   * daemon derives the same serial from the shared data's version); absent:
   * the built-in zone server keeps its own counter in the data-dir.
   */
  readonly sharedSerial?: SerialSource;
}

/** Where the built-in zone server takes its SOA serials from. */
export interface SerialSource {
  readonly value: number;
  /** Moves the serial on (a change seen before the serial moved); a shared serial cannot, and returns its value. */
  next(): number;
  settle(): Promise<void>;
}

export interface Upstream {
  /** For logs: e.g. "nsupdate 127.0.0.1:53". */
  readonly description: string;
  /** Records stay upstream when the daemon shuts down or a key expires. */
  readonly keepRecords: boolean;
  /**
   * In-process upstreams that read the live records themselves (the
   * built-in zone server): never fail, need no retry queue or journal.
   */
  readonly local?: boolean;
  /**
   * Lives on the daemon's own host (the built-in zone server, Unbound):
   * when several daemons share a store, each daemon feeds its own from the
   * shared data; the others are fed by the zone's publisher alone.
   */
  readonly perHost?: boolean;
  /** One-time set-up (e.g. create Unbound's local zone). Rejects on failure. */
  start(): Promise<void>;
  /**
   * Asked before a name is first claimed (upstreams that can protect names
   * the operator uses, e.g. nsupdate's `protect-existing`). Resolves when
   * the name may be claimed; rejects with NameInUseError when it holds
   * records nsregd did not put there (a refusal, not to be retried), with
   * UpstreamError when the upstream could not answer.
   */
  checkUnused?(name: string): Promise<void>;
  /** Applies a change. Resolves once the upstream accepted it; rejects with UpstreamError otherwise. */
  apply(change: UpstreamChange): Promise<void>;
  /** Releases resources; no further calls follow. */
  close(): Promise<void>;
}

/** An upstream refused or could not be reached. */
export class UpstreamError extends NsregError {
  readonly code = 'ERR_UPSTREAM';
  constructor(
    readonly upstream: string,
    message: string,
    options?: { cause?: unknown },
  ) {
    super(`${upstream}: ${message}`, options);
  }
}

/**
 * The upstream answered, and the answer is no: the name holds records nsregd
 * did not put there. Final for this claim; retrying cannot change it.
 */
export class NameInUseError extends UpstreamError {
  constructor(
    upstream: string,
    readonly owner: string,
  ) {
    super(upstream, `${owner} is in use by other records`);
  }
}
