import { NsregError } from '../../errors.js';

export type KeyStoreFailure = 'corrupt' | 'read-failed' | 'write-failed' | 'closed';

/** A key database that cannot be read or written. `file` names the file concerned. */
export class KeyStoreError extends NsregError {
  readonly code = 'ERR_KEYSTORE';
  constructor(
    readonly reason: KeyStoreFailure,
    readonly file: string,
    message: string,
    options?: { cause?: unknown },
  ) {
    super(`${file}: ${message}`, options);
  }
}
