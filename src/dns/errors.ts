/**
 * The wire layer's error catalog. Every error has a stable `code`; tests
 * assert the code (and the machine-readable `reason`), never the message.
 */
import { NsregError, ReasonedError } from '../errors.js';

export type MalformedReason =
  | 'truncated-header'
  | 'truncated-question'
  | 'truncated-rr'
  | 'count-overrun'
  | 'label-too-long'
  | 'name-too-long'
  | 'pointer-loop'
  | 'forward-pointer'
  | 'bad-label-type'
  | 'rdata-overrun'
  | 'bad-rdata'
  | 'trailing-data';

/** Bytes that are not a well-formed DNS message. `id` is set when the header was readable. */
export class MalformedMessageError extends ReasonedError<MalformedReason> {
  readonly code = 'ERR_DNS_MALFORMED';
  constructor(
    reason: MalformedReason,
    message: string,
    readonly id?: number,
  ) {
    super(reason, message);
  }
}

/** A key or algorithm this project cannot use. */
export class UnsupportedAlgorithmError extends NsregError {
  readonly code = 'ERR_DNS_UNSUPPORTED_ALGORITHM';
  constructor(readonly algorithm: number) {
    super(`unsupported DNSSEC algorithm ${algorithm}`);
  }
}

/** Key material that does not decode (wrong length, bad RSA exponent, …). */
export class InvalidKeyError extends NsregError {
  readonly code = 'ERR_DNS_INVALID_KEY';
}

export type Sig0FailureReason =
  | 'no-sig'
  | 'sig-not-last'
  | 'not-sig0'
  | 'expired'
  | 'not-yet-valid'
  | 'signer-mismatch'
  | 'algorithm-mismatch'
  | 'keytag-mismatch'
  | 'unsupported-algorithm'
  | 'bad-key'
  | 'bad-signature';

/** SIG(0) verification failed; `reason` says which check. */
export class Sig0Error extends ReasonedError<Sig0FailureReason> {
  readonly code = 'ERR_DNS_SIG0';
}

export type TsigFailureReason =
  | 'unsigned-response'
  | 'BADSIG'
  | 'BADKEY'
  | 'BADTIME'
  | 'BADTRUNC'
  | 'unknown-algorithm'
  | 'key-mismatch'
  | 'id-mismatch';

/**
 * A TSIG check failed. For BADSIG/BADKEY/BADTIME, `remote` tells whether the
 * server reported it (in the TSIG error field) or our verification of the
 * server's response found it.
 */
export class TsigError extends ReasonedError<TsigFailureReason> {
  readonly code = 'ERR_DNS_TSIG';
  constructor(
    reason: TsigFailureReason,
    message: string,
    readonly remote: boolean = false,
  ) {
    super(reason, message);
  }
}

/** A BIND key file that cannot be read; names the file (and line when known). */
export class KeyFileError extends NsregError {
  readonly code = 'ERR_DNS_KEYFILE';
  constructor(
    readonly file: string,
    message: string,
    readonly line?: number,
  ) {
    super(line === undefined ? `${file}: ${message}` : `${file}:${line}: ${message}`);
  }
}

export type TransportFailureReason = 'timeout' | 'aborted' | 'closed' | 'too-large' | 'connect' | 'socket';

/** A network exchange that did not produce a reply. */
export class TransportError extends ReasonedError<TransportFailureReason> {
  readonly code = 'ERR_DNS_TRANSPORT';
}

/** A name in presentation form that cannot be put on the wire (empty label, label > 63, name > 255, bad escape). */
export class InvalidNameError extends NsregError {
  readonly code = 'ERR_DNS_INVALID_NAME';
  constructor(
    readonly input: string,
    message: string,
  ) {
    super(`invalid domain name ${JSON.stringify(input)}: ${message}`);
  }
}
