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
