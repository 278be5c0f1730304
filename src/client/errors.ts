/**
 * nsregc's error catalog (the client side of the project; the wire layer
 * has its own in src/dns/errors.ts). Each class has a stable `code` and a
 * machine-readable `reason`; tests assert those, never the message.
 */
import { NsregError } from '../errors.js';

/** /etc/resolv.conf could not be read or names no usable nameserver. */
export class ResolvConfError extends NsregError {
  readonly code = 'ERR_NSREGC_RESOLV_CONF';
  constructor(
    readonly file: string,
    readonly reason: 'unreadable' | 'no-nameserver',
    message: string,
    options?: { cause?: unknown },
  ) {
    super(`${file}: ${message}`, options);
    this.name = 'ResolvConfError';
  }
}

export type ClientKeyFailureReason =
  /** Neither file exists and gen-key is off. */
  | 'missing'
  /** The private file exists, the public one does not. */
  | 'missing-public'
  /** The public file exists, the private one does not. */
  | 'missing-private'
  /** A path exists but is not a regular file, or cannot be examined. */
  | 'unusable';

/** The client's key pair cannot be loaded or created. */
export class ClientKeyError extends NsregError {
  readonly code = 'ERR_NSREGC_KEY';
  constructor(
    readonly reason: ClientKeyFailureReason,
    message: string,
    options?: { cause?: unknown },
  ) {
    super(message, options);
    this.name = 'ClientKeyError';
  }
}

export type DiscoveryFailureReason =
  /** A reply that does not answer the question asked. */
  | 'bad-reply'
  /** The DNS server answered SERVFAIL. */
  | 'server-failure'
  /** An SRV target that names no address. */
  | 'unresolvable-target';

/** Zone discovery or server lookup failed. */
export class DiscoveryError extends NsregError {
  readonly code = 'ERR_NSREGC_DISCOVERY';
  constructor(
    readonly reason: DiscoveryFailureReason,
    message: string,
    options?: { cause?: unknown },
  ) {
    super(message, options);
    this.name = 'DiscoveryError';
  }
}

export type ClientStartFailureReason =
  /** No zone configured, given or discovered. */
  | 'no-zones'
  /** No zone has an nsregd server (no SRV answer, or its target does not resolve). */
  | 'no-servers'
  /** A signal arrived while starting. */
  | 'aborted';

/** nsregc has nothing to register with; the run ends with exit code 1. */
export class ClientStartError extends NsregError {
  readonly code = 'ERR_NSREGC_START';
  constructor(
    readonly reason: ClientStartFailureReason,
    message: string,
    options?: { cause?: unknown },
  ) {
    super(message, options);
    this.name = 'ClientStartError';
  }
}
