/**
 * The `store:` section of nsregd.yaml (README, "Several daemons as one
 * service"): where claims and records are kept. `type: files` (the
 * default) is one daemon with its files in `data-dir`; `type: etcd` is
 * several daemons sharing an etcd cluster.
 *
 * Files named here (TLS material, `password-file`) are read when the
 * configuration is parsed, so a start-up or reload fails at once on a
 * missing or unreadable one, and the running daemon never re-reads them.
 * Their contents, and `password`, never appear in an error, a warning or
 * `--check-config` output.
 *
 * Decisions:
 * - `tls` requires https:// endpoints (an error, not a warning): the etcd
 *   client uses TLS for every endpoint once any TLS setting is given,
 *   whatever the scheme says, so an http:// endpoint next to `tls` would
 *   read as clear text while being encrypted, or the reverse.
 *   Endpoints of one store all use one scheme for the same reason.
 * - https:// without `tls` checks the servers against the system's CAs.
 * - A password over http:// is sent in clear: a warning.
 * - `lease` is whole seconds: etcd leases have a TTL in seconds.
 * - A `store:` with etcd keys but no `type` is an error rather than
 *   silently the files store: on a site of several daemons that would be
 *   a daemon acting alone.
 */
import { closeSync, fstatSync, openSync, readSync } from 'node:fs';
import { isIPv4, isIPv6 } from 'node:net';
import { errnoCode } from '../errors.js';
import { formatDuration } from './duration.js';
import { fail, MapReader, warn, type DurationLimit, type KeyPath } from './validate.js';

/** `store:` in nsregd.yaml. (src/daemon/shared/contract.ts uses this type.) */
export type StoreConfig =
  | { readonly type: 'files' }
  | {
      readonly type: 'etcd';
      /** e.g. `http://127.0.0.1:2379`, `https://etcd1.example.org:2379`. */
      readonly endpoints: readonly string[];
      /** Key prefix, no trailing slash (default `/nsregd`). */
      readonly prefix: string;
      readonly tls?: {
        /** PEM contents (read at parse time), not paths. */
        readonly ca?: string;
        readonly cert?: string;
        readonly key?: string;
      };
      readonly username?: string;
      readonly password?: string;
      /** How long one store operation may take before the request gets SERVFAIL (ms; default 2000). */
      readonly timeoutMs: number;
      /** The publisher's lease (ms, whole seconds; default 2000): a dead publisher is replaced within about twice this. */
      readonly leaseMs: number;
    };

export const STORE_TYPES = ['files', 'etcd'] as const;

/** The defaults table (documented in nsregd.example.yaml and nsregd.yaml(5), STORE). */
export const STORE_DEFAULTS = Object.freeze({
  type: 'files',
  prefix: '/nsregd',
  timeout: 2_000,
  lease: 2_000,
});

/** The keys that only `type: etcd` reads. */
const ETCD_KEYS = ['endpoints', 'prefix', 'tls', 'username', 'password', 'password-file', 'timeout', 'lease'] as const;

/**
 * The most A/AAAA records one name may hold when the store is etcd. One
 * request's writes are one transaction nested in a batch, and etcd
 * refuses a transaction of more than 128 operations per level (its
 * default `--max-txn-ops`), which would fail the whole batch: every other
 * request in it too. A request that replaces all of a name's records
 * deletes them and puts the new ones (2 × this) beside its claim,
 * deadlines, change and serial.
 */
export const ETCD_MAX_RECORDS_PER_NAME = 60;

const TIMEOUT_MIN_MS = 100;
const TIMEOUT_LIMIT: DurationLimit = Object.freeze({ ms: 60_000, why: 'a request waits this long for the store before SERVFAIL' });
const LEASE_MIN_MS = 1_000;
const LEASE_LIMIT: DurationLimit = Object.freeze({ ms: 30_000, why: 'a dead publisher is replaced only after its lease ran out' });
const MAX_PREFIX = 256;
/** PEM files: a certificate chain is a few KB; this refuses reading a device or a wrong large file. */
const MAX_PEM_BYTES = 1 << 20;
const MAX_PASSWORD_BYTES = 4096;

/** `scheme://host:port`, the host a name, an IPv4 address or a bracketed IPv6 address. */
const ENDPOINT_RE = /^(https?):\/\/(\[[^\]/]*\]|[^:/[\]]*):([0-9]{1,5})\/?$/i;
const HOST_NAME_RE = /^(?=.{1,253}$)[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?(\.[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?)*\.?$/;

/** Who besides the owner can read a file of this mode; undefined: nobody. */
export function readableByOthers(mode: number): string | undefined {
  if ((mode & 0o044) === 0) return undefined;
  const octal = (mode & 0o7777).toString(8).padStart(4, '0');
  const who = [(mode & 0o040) !== 0 ? 'its group' : '', (mode & 0o004) !== 0 ? 'other users' : ''].filter((w) => w !== '').join(' and ');
  return `its mode is ${octal}, readable by ${who}`;
}

/**
 * Reads a file named at `p` (a regular file of at most `max` octets).
 * Errors show the path and the errno code, never the contents. `secret`:
 * warn when group or other users can read it.
 */
function readNamedFile(r: MapReader, key: string, max: number, secret: boolean): string {
  const file = r.require(key, r.filePath(key));
  const p = r.at(key);
  let fd: number;
  try {
    fd = openSync(file, 'r');
  } catch (err) {
    return fail(r.ctx, p, 'read', `cannot read ${file} (${errnoCode(err) ?? 'error'})`, undefined, err);
  }
  try {
    const st = fstatSync(fd);
    if (!st.isFile()) fail(r.ctx, p, 'read', `${file} is not a regular file`);
    if (st.size > max) fail(r.ctx, p, 'range', `${file} is ${st.size} octets; at most ${max} are read`);
    const mode = secret ? readableByOthers(st.mode) : undefined;
    if (mode !== undefined) warn(r.ctx, p, `${file} holds a secret but ${mode}; chmod 600 it`);
    const buf = Buffer.alloc(st.size);
    let got = 0;
    try {
      while (got < buf.length) {
        const n = readSync(fd, buf, got, buf.length - got, null);
        if (n === 0) break;
        got += n;
      }
    } catch (err) {
      fail(r.ctx, p, 'read', `cannot read ${file} (${errnoCode(err) ?? 'error'})`, undefined, err);
    }
    return buf.subarray(0, got).toString('utf8');
  } finally {
    closeSync(fd);
  }
}

/** A PEM file: at least one `-----BEGIN <label>-----` block of a kind `labels` matches (others, such as EC PARAMETERS, may be there too). */
function pemFile(r: MapReader, key: string, labels: RegExp, what: string, secret: boolean): string {
  const text = readNamedFile(r, key, MAX_PEM_BYTES, secret);
  const found = [...text.matchAll(/^-----BEGIN ([A-Z0-9 ]+)-----\r?$/gm)].map((m) => m[1] ?? '');
  if (!found.some((l) => labels.test(l))) {
    // Only the path is named: a key file's contents must never reach a message.
    fail(r.ctx, r.at(key), 'invalid', `${r.filePath(key) ?? ''} does not hold ${what} in PEM form`);
  }
  return text;
}

/** One endpoint, normalised (scheme and host lower case, no trailing slash). */
function endpoint(r: MapReader, p: KeyPath, text: string): { url: string; scheme: string } {
  const m = ENDPOINT_RE.exec(text);
  const scheme = m?.[1]?.toLowerCase() ?? '';
  const host = m?.[2]?.toLowerCase() ?? '';
  const port = Number(m?.[3]);
  const bad = (why: string): never =>
    fail(r.ctx, p, 'invalid', `${why}; write http://HOST:PORT or https://HOST:PORT (an IPv6 address in brackets), no path`, text);
  if (m === null) return bad('not an etcd endpoint');
  if (host.startsWith('[')) {
    if (!isIPv6(host.slice(1, -1))) bad('not an IPv6 address in the brackets');
  } else if (host.includes(':') || !(isIPv4(host) || (HOST_NAME_RE.test(host) && !/^[0-9.]+$/.test(host)))) {
    bad('not a host name or address');
  }
  if (!(port >= 1 && port <= 65535)) bad('the port must be 1 to 65535');
  return { url: `${scheme}://${host}:${port}`, scheme };
}

function endpoints(r: MapReader): string[] {
  const list = r.require('endpoints', r.stringList('endpoints'));
  if (list.length === 0) fail(r.ctx, r.at('endpoints'), 'missing', 'at least one endpoint is required', []);
  const seen = new Set<string>();
  let first: string | undefined;
  return list.map((text, i) => {
    const p = [...r.at('endpoints'), i];
    const { url, scheme } = endpoint(r, p, text);
    if (seen.has(url)) fail(r.ctx, p, 'duplicate', 'endpoint given twice', text);
    seen.add(url);
    first ??= scheme;
    if (scheme !== first) fail(r.ctx, p, 'invalid', `all endpoints must use one scheme (the first is ${first}://)`, text);
    return url;
  });
}

function prefix(r: MapReader): string {
  const v = r.string('prefix');
  if (v === undefined) return STORE_DEFAULTS.prefix;
  const bad = (why: string): never => fail(r.ctx, r.at('prefix'), 'invalid', why, v);
  if (!/^[\x21-\x7e]*$/.test(v)) bad('must be visible ASCII (no spaces or control characters)');
  if (!v.startsWith('/')) bad('must start with /');
  if (v.length === 1 || v.endsWith('/')) bad('must not end with / (the prefix /nsregd keeps keys under /nsregd/v1/...)');
  if (v.includes('//')) bad('must not contain //');
  if (v.length > MAX_PREFIX) bad(`must be at most ${MAX_PREFIX} characters`);
  return v;
}

function duration(r: MapReader, key: string, min: number, limit: DurationLimit, unit: number, unitName: string): number | undefined {
  const ms = r.duration(key, limit);
  if (ms === undefined) return undefined;
  if (ms < min) fail(r.ctx, r.at(key), 'range', `duration must be at least ${formatDuration(min)}`, r.raw(key));
  if (ms % unit !== 0) fail(r.ctx, r.at(key), 'range', `must be a whole number of ${unitName}`, r.raw(key));
  return ms;
}

function tls(r: MapReader): { ca?: string; cert?: string; key?: string } | undefined {
  const t = r.mapping('tls');
  if (t === undefined) return undefined;
  const out: { ca?: string; cert?: string; key?: string } = {};
  if (t.has('ca')) out.ca = pemFile(t, 'ca', /^(X509 |TRUSTED )?CERTIFICATE$/, 'a certificate', false);
  if (t.has('cert') !== t.has('key')) {
    const missing = t.has('cert') ? 'key' : 'cert';
    fail(r.ctx, t.at(missing), 'missing', 'cert and key are given together (the client certificate and its private key)');
  }
  if (t.has('cert')) out.cert = pemFile(t, 'cert', /^(X509 |TRUSTED )?CERTIFICATE$/, 'a certificate', false);
  if (t.has('key')) out.key = pemFile(t, 'key', /^((RSA|EC) )?PRIVATE KEY$/, 'an unencrypted private key', true);
  t.finish('tls key');
  if (out.ca === undefined && out.cert === undefined) {
    fail(r.ctx, r.at('tls'), 'missing', 'give ca, or cert and key, or both; without tls, https:// endpoints are checked against the system CAs');
  }
  return out;
}

/** username with password or password-file, or none of them. */
function credentials(r: MapReader): { username: string; password: string } | undefined {
  const username = r.nonEmptyString('username');
  // `password` is read without r.string so that no message can ever show it.
  const inline = r.raw('password');
  if (inline !== undefined && (typeof inline !== 'string' || inline === '')) {
    fail(r.ctx, r.at('password'), 'type', 'expected a non-empty string (quote it); the value is not shown');
  }
  const hasFile = r.has('password-file');
  if (inline !== undefined && hasFile) fail(r.ctx, r.at('password-file'), 'invalid', 'give password or password-file, not both');
  if (username === undefined) {
    if (inline !== undefined || hasFile) fail(r.ctx, r.at('username'), 'missing', 'a password needs a username');
    return undefined;
  }
  if (inline === undefined && !hasFile) fail(r.ctx, r.at('password'), 'missing', 'username needs password or password-file');
  if (inline !== undefined) return { username, password: inline };
  // One trailing newline (an editor's, or `echo`'s) is not part of the password.
  const password = readNamedFile(r, 'password-file', MAX_PASSWORD_BYTES, true).replace(/\r?\n$/, '');
  if (password === '') fail(r.ctx, r.at('password-file'), 'invalid', `${r.filePath('password-file') ?? ''} is empty`);
  return { username, password };
}

/** The `store:` section of `top` (absent or empty: the files store). */
export function parseStore(top: MapReader): StoreConfig {
  const r = top.mapping('store') ?? new MapReader(top.ctx, ['store'], undefined);
  const type = r.oneOf('type', STORE_TYPES);
  const etcdKeys = r.keys().filter((k) => (ETCD_KEYS as readonly string[]).includes(k.toLowerCase()));
  if (type === undefined && etcdKeys.length > 0) {
    fail(r.ctx, r.at('type'), 'missing', `required with ${etcdKeys.join(', ')} (type: etcd for the shared store, or files)`);
  }
  if (type !== 'etcd') {
    for (const k of etcdKeys) {
      r.raw(k.toLowerCase());
      warn(r.ctx, [...r.path, k], 'only type: etcd reads it; ignored');
    }
    r.finish('store key');
    return { type: 'files' };
  }
  const eps = endpoints(r);
  const secure = eps[0]?.startsWith('https:') === true;
  const tlsConfig = tls(r);
  if (tlsConfig !== undefined && !secure) {
    fail(r.ctx, r.at('tls'), 'invalid', 'tls needs https:// endpoints (the etcd client would use TLS with every endpoint anyway)', eps[0]);
  }
  const creds = credentials(r);
  if (creds !== undefined && !secure) warn(r.ctx, r.at('username'), 'the password goes to etcd in clear over http://; use https://');
  const store: StoreConfig = {
    type: 'etcd',
    endpoints: eps,
    prefix: prefix(r),
    ...(tlsConfig === undefined ? {} : { tls: tlsConfig }),
    ...(creds ?? {}),
    timeoutMs: duration(r, 'timeout', TIMEOUT_MIN_MS, TIMEOUT_LIMIT, 1, 'milliseconds') ?? STORE_DEFAULTS.timeout,
    leaseMs: duration(r, 'lease', LEASE_MIN_MS, LEASE_LIMIT, 1_000, 'seconds (etcd leases are)') ?? STORE_DEFAULTS.lease,
  };
  r.finish('store key');
  return store;
}

/** Whether `password` was written in the configuration file itself (not in a password-file). */
export function storePasswordInline(top: MapReader): boolean {
  return top.mapping('store')?.has('password') === true;
}

/**
 * The store's settings as `key value` in file order (`--check-config`, the
 * reload log). Secrets are never shown: `password (set)`, and of the TLS
 * material only which parts are given.
 */
export function storeEntries(s: StoreConfig): Array<[key: string, value: string]> {
  if (s.type === 'files') return [['type', 'files']];
  const entries: Array<[string, string]> = [
    ['type', 'etcd'],
    ['endpoints', s.endpoints.join(' ')],
    ['prefix', s.prefix],
  ];
  if (s.tls !== undefined) {
    const parts = [s.tls.ca === undefined ? '' : 'ca', s.tls.cert === undefined ? '' : 'cert', s.tls.key === undefined ? '' : 'key'];
    entries.push(['tls', parts.filter((x) => x !== '').join('+')]);
  }
  if (s.username !== undefined) entries.push(['username', s.username]);
  if (s.password !== undefined) entries.push(['password', '(set)']);
  entries.push(['timeout', formatDuration(s.timeoutMs)], ['lease', formatDuration(s.leaseMs)]);
  return entries;
}
