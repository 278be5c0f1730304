/**
 * The shared store's failure: etcd could not be asked or did not answer in
 * time (no quorum, no endpoint reachable, timeout, permission denied). A
 * request that meets it is answered SERVFAIL with a TXT reason, so that the
 * client tries another daemon; nothing is acknowledged.
 */
import { NsregError } from '../../errors.js';

export class StoreUnavailableError extends NsregError {
  readonly code = 'ERR_STORE_UNAVAILABLE';
}

/**
 * One answer from etcd was larger than the client takes (MAX_RECEIVE_BYTES
 * in etcd.ts): a read of many keys whose values someone made large. It says
 * nothing about etcd's health, so it is not a StoreUnavailableError: the
 * reader asks again for fewer keys at a time.
 */
export class ResponseTooLargeError extends NsregError {
  readonly code = 'ERR_STORE_RESPONSE_TOO_LARGE';
}
