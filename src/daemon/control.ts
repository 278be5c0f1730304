/**
 * The control channel (README, "Operating nsregd"): a Unix socket that
 * only the daemon's user can open (mode 0600, created under a umask that
 * never lets it exist with wider rights), serving the admin commands of
 * `nsregd status` and `nsregd names …`. One JSON request per connection,
 * one JSON reply, then the connection closes.
 *
 * Bounded like every other input: requests up to MAX_REQUEST_BYTES, read
 * within REQUEST_TIMEOUT_MS, at most MAX_CONNECTIONS at once. A stale
 * socket left by a crash is replaced; a socket another running daemon
 * answers on is an error (two daemons on one data directory).
 */
import { chmod, lstat, mkdir, unlink } from 'node:fs/promises';
import { dirname } from 'node:path';
import * as net from 'node:net';
import type { Logger } from 'pino';
import { NsregError, ReasonedError, errnoCode, errorMessage } from '../errors.js';

export const MAX_REQUEST_BYTES = 64 * 1024;
export const REQUEST_TIMEOUT_MS = 5_000;
/** A reply the reader stops taking for this long is abandoned. */
const REPLY_IDLE_MS = 30_000;
export const MAX_CONNECTIONS = 8;

export type ControlRequest =
  | { readonly command: 'status' }
  | { readonly command: 'names-list'; readonly zone?: string }
  | { readonly command: 'names-show'; readonly name: string }
  | { readonly command: 'names-release'; readonly name: string; readonly keepRecords: boolean };

export type ControlErrorCode = 'bad-request' | 'not-found' | 'failed';

export type ControlReply =
  | { readonly ok: true; readonly result: unknown }
  | { readonly ok: false; readonly error: { readonly code: ControlErrorCode; readonly message: string } };

/** A command that cannot be carried out, with the code the reply carries. */
export class ControlCommandError extends ReasonedError<ControlErrorCode> {
  readonly code = 'ERR_NSREGD_CONTROL';
}

/** What the daemon answers the commands with. */
export type ControlHandler = (request: ControlRequest) => Promise<unknown>;

function str(v: unknown): string | undefined {
  return typeof v === 'string' && v.length > 0 && v.length <= 1024 ? v : undefined;
}

/** The request, or a ControlCommandError('bad-request') naming what is wrong. */
export function parseControlRequest(text: string): ControlRequest {
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch {
    throw new ControlCommandError('bad-request', 'the request is not JSON');
  }
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) throw new ControlCommandError('bad-request', 'the request is not a JSON object');
  const r = raw as Record<string, unknown>;
  switch (r['command']) {
    case 'status':
      return { command: 'status' };
    case 'names-list': {
      if (r['zone'] === undefined) return { command: 'names-list' };
      const zone = str(r['zone']);
      if (zone === undefined) throw new ControlCommandError('bad-request', '`zone` must be a non-empty string');
      return { command: 'names-list', zone };
    }
    case 'names-show':
    case 'names-release': {
      const name = str(r['name']);
      if (name === undefined) throw new ControlCommandError('bad-request', '`name` must be a non-empty string');
      if (r['command'] === 'names-show') return { command: 'names-show', name };
      const keep = r['keepRecords'] ?? false;
      if (typeof keep !== 'boolean') throw new ControlCommandError('bad-request', '`keepRecords` must be true or false');
      return { command: 'names-release', name, keepRecords: keep };
    }
    default:
      throw new ControlCommandError('bad-request', `unknown command ${JSON.stringify(r['command'])}`);
  }
}

export class ControlServer {
  private readonly sockets = new Set<net.Socket>();

  private constructor(
    readonly path: string,
    private readonly server: net.Server,
  ) {}

  /** Listens on `path` (mode 0600). Throws when another daemon answers there or the path is not a socket. */
  /** `requestTimeoutMs` (tests): the whole request must arrive within it; default REQUEST_TIMEOUT_MS. */
  static async open(path: string, handler: ControlHandler, logger: Logger, requestTimeoutMs = REQUEST_TIMEOUT_MS): Promise<ControlServer> {
    await mkdir(dirname(path), { recursive: true, mode: 0o700 });
    await removeStaleSocket(path);
    const server = net.createServer({ allowHalfOpen: true });
    const control = new ControlServer(path, server);
    server.maxConnections = MAX_CONNECTIONS;
    server.on('connection', (socket) => control.serve(socket, handler, logger, requestTimeoutMs));
    // The socket file is created by bind(2), inside listen(): under this umask it is never wider than 0600.
    const previous = process.umask(0o177);
    try {
      await new Promise<void>((resolve, reject) => {
        server.once('error', reject);
        server.listen(path, () => {
          server.off('error', reject);
          resolve();
        });
      });
    } finally {
      process.umask(previous);
    }
    await chmod(path, 0o600);
    return control;
  }

  private serve(socket: net.Socket, handler: ControlHandler, logger: Logger, requestTimeoutMs: number): void {
    this.sockets.add(socket);
    socket.once('close', () => this.sockets.delete(socket));
    socket.on('error', () => socket.destroy());
    // A deadline for the whole request, not an idle timer: a byte now and then does not keep a slot.
    const deadline = setTimeout(() => socket.destroy(), requestTimeoutMs);
    socket.once('close', () => clearTimeout(deadline));
    socket.setTimeout(REPLY_IDLE_MS, () => socket.destroy());
    const chunks: Buffer[] = [];
    let size = 0;
    let done = false;
    const finish = (): void => {
      if (done) return;
      done = true;
      clearTimeout(deadline);
      socket.pause();
      const text = Buffer.concat(chunks).toString('utf8').split('\n', 1)[0] ?? '';
      void answer(text, handler, logger).then((reply) => {
        if (!socket.destroyed) socket.end(`${JSON.stringify(reply)}\n`);
      });
    };
    socket.on('data', (chunk: Buffer) => {
      if (done) return;
      size += chunk.length;
      if (size > MAX_REQUEST_BYTES) {
        done = true;
        clearTimeout(deadline);
        socket.end(`${JSON.stringify(failure('bad-request', `request larger than ${MAX_REQUEST_BYTES} octets`))}\n`);
        return;
      }
      chunks.push(chunk);
      if (chunk.includes(0x0a)) finish();
    });
    socket.on('end', finish);
  }

  async close(): Promise<void> {
    await new Promise<void>((resolve) => {
      this.server.close(() => resolve());
      for (const s of this.sockets) s.destroy();
    });
    await unlink(this.path).catch(() => undefined);
  }
}

function failure(code: ControlErrorCode, message: string): ControlReply {
  return { ok: false, error: { code, message } };
}

async function answer(text: string, handler: ControlHandler, logger: Logger): Promise<ControlReply> {
  try {
    const request = parseControlRequest(text);
    const result = await handler(request);
    if (request.command === 'names-release') logger.info({ request }, 'control command carried out');
    return { ok: true, result };
  } catch (err) {
    if (err instanceof ControlCommandError) return failure(err.reason, err.message);
    logger.error({ err }, 'control command failed');
    return failure('failed', errorMessage(err));
  }
}

/**
 * A socket file left by a daemon that did not stop cleanly is removed;
 * one that answers belongs to a running daemon; anything else at the
 * path is not ours to remove.
 */
async function removeStaleSocket(path: string): Promise<void> {
  let isSocket: boolean;
  try {
    isSocket = (await lstat(path)).isSocket();
  } catch (err) {
    if (errnoCode(err) === 'ENOENT') return;
    throw err;
  }
  if (!isSocket) throw new ControlCommandError('failed', `${path} exists and is not a socket; not replacing it`);
  const alive = await new Promise<boolean>((resolve) => {
    const probe = net.connect(path);
    probe.once('connect', () => {
      probe.destroy();
      resolve(true);
    });
    probe.once('error', () => resolve(false));
  });
  if (alive) throw new ControlCommandError('failed', `another nsregd answers on ${path}`);
  await unlink(path);
}

/** Why a request could not reach the daemon, for the admin commands' one-line errors. */
export class ControlUnreachableError extends NsregError {
  readonly code = 'ERR_NSREGD_CONTROL_UNREACHABLE';
}

/** Sends one request to the daemon at `path`; rejects with ControlUnreachableError when it cannot be reached. */
export function controlRequest(path: string, request: ControlRequest, timeoutMs = 30_000): Promise<ControlReply> {
  return new Promise((resolve, reject) => {
    const socket = net.connect(path);
    const chunks: Buffer[] = [];
    let size = 0;
    socket.setTimeout(timeoutMs, () => {
      socket.destroy();
      reject(new ControlUnreachableError(`no answer from nsregd on ${path} within ${timeoutMs / 1000} s`));
    });
    socket.once('error', (err) => {
      const code = errnoCode(err);
      const why =
        code === 'ENOENT' || code === 'ECONNREFUSED'
          ? 'nsregd is not running (or uses another control socket)'
          : code === 'EACCES'
            ? 'permission denied (run as the daemon\'s user or root)'
            : errorMessage(err);
      reject(new ControlUnreachableError(`cannot reach nsregd on ${path}: ${why}`, { cause: err }));
    });
    socket.on('data', (c: Buffer) => {
      size += c.length;
      // The replies are bounded by what the daemon holds; this only guards against a runaway peer.
      if (size > 256 * 1024 * 1024) socket.destroy(new Error('reply too large'));
      chunks.push(c);
    });
    socket.once('end', () => {
      try {
        resolve(JSON.parse(Buffer.concat(chunks).toString('utf8')) as ControlReply);
      } catch (err) {
        reject(new ControlUnreachableError(`unreadable reply from nsregd on ${path}`, { cause: err }));
      }
    });
    socket.once('connect', () => socket.end(`${JSON.stringify(request)}\n`));
  });
}
