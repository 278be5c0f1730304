import { ReasonedError } from '../../errors.js';

export type KeyStoreFailure = 'corrupt' | 'read-failed' | 'write-failed' | 'closed';

/** A key database that cannot be read or written. `file` names the file concerned. */
export class KeyStoreError extends ReasonedError<KeyStoreFailure> {
  readonly code = 'ERR_KEYSTORE';
  constructor(
    reason: KeyStoreFailure,
    readonly file: string,
    message: string,
    options?: { cause?: unknown },
  ) {
    super(reason, `${file}: ${message}`, options);
  }
}
