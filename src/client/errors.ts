/**
 * nsregc's error catalog (the client side of the project; the wire layer
 * has its own in src/dns/errors.ts). Each class has a stable `code` and a
 * machine-readable `reason`; tests assert those, never the message.
 */
import { ReasonedError } from '../errors.js';

export type ResolvConfFailureReason = 'unreadable' | 'no-nameserver';

/** /etc/resolv.conf could not be read or names no usable nameserver. */
export class ResolvConfError extends ReasonedError<ResolvConfFailureReason> {
  readonly code = 'ERR_NSREGC_RESOLV_CONF';
  constructor(
    readonly file: string,
    reason: ResolvConfFailureReason,
    message: string,
    options?: { cause?: unknown },
  ) {
    super(reason, `${file}: ${message}`, options);
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
export class ClientKeyError extends ReasonedError<ClientKeyFailureReason> {
  readonly code = 'ERR_NSREGC_KEY';
}

export type DiscoveryFailureReason =
  /** A reply that does not answer the question asked. */
  | 'bad-reply'
  /** The DNS server answered SERVFAIL. */
  | 'server-failure'
  /** An SRV target that names no address. */
  | 'unresolvable-target';

/** Zone discovery or server lookup failed. */
export class DiscoveryError extends ReasonedError<DiscoveryFailureReason> {
  readonly code = 'ERR_NSREGC_DISCOVERY';
}

export type ClientStartFailureReason =
  /** No zone configured or given, and discovery is off. */
  | 'no-zones'
  /** A signal arrived while starting. */
  | 'aborted';

/** nsregc has nothing to register with; the run ends with exit code 1. */
export class ClientStartError extends ReasonedError<ClientStartFailureReason> {
  readonly code = 'ERR_NSREGC_START';
}
