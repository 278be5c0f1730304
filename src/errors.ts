/**
 * The root of every error nsregd and nsregc raise on purpose. Each subclass
 * carries a stable `code` ('ERR_…') that code and tests compare, never the
 * message text. This module imports nothing, so every layer (the wire layer
 * included) may extend it.
 */
export abstract class NsregError extends Error {
  abstract readonly code: string;

  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = new.target.name;
  }
}

/** An error with several causes: `reason` says which one, as stable as `code`. */
export abstract class ReasonedError<R extends string> extends NsregError {
  constructor(
    readonly reason: R,
    message: string,
    options?: { cause?: unknown },
  ) {
    super(message, options);
  }
}

/** A thrown value's message: the Error's message, or the value in words. */
export function errorMessage(err: unknown): string {
  if (err instanceof Error) return err.message;
  if (typeof err === 'string') return err;
  try {
    return JSON.stringify(err) ?? String(err);
  } catch {
    return Object.prototype.toString.call(err);
  }
}

/** The errno code of a Node.js system error ('ENOENT', …), if it is one. */
export function errnoCode(err: unknown): string | undefined {
  const code = (err as { code?: unknown } | null)?.code;
  return typeof code === 'string' ? code : undefined;
}
