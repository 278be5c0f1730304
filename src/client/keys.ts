/**
 * The client's key pair: a BIND `.key`/`.private` pair,
 * loaded as-is or generated on first start.
 *
 * The owner name and TTL inside the public file do not matter on the
 * wire: the original client writes its short name with TTL 0, dnssec-keygen
 * writes whatever name it was given. What is sent is the KEY rdata under
 * the full registered name with TTL = key-ttl, and SIG(0) names that same
 * full name as signer (RFC 2931 §3: the signer is the KEY's owner).
 */
import { stat } from 'node:fs/promises';
import type { KeyObject } from 'node:crypto';
import { Algorithm, RRClass } from '../dns/constants.js';
import { readKeyPair, writeKeyPair } from '../keyfile-io.js';
import { generateKeyPair, keyTag, publicKeyToRData } from '../dns/keys.js';
import type { ResourceRecord } from '../dns/message.js';
import { fqdn } from '../dns/names.js';
import type { Sig0Signer } from '../dns/sig0.js';
import type { KeyRData } from '../dns/types.js';
import { ClientKeyError } from './errors.js';
import { errnoCode } from '../errors.js';

/** What the original client generates: a zone key (flags 256), DNSSEC protocol 3, ECDSA P-384. */
export const GENERATED_KEY = Object.freeze({ flags: 256, protocol: 3, algorithm: Algorithm.ECDSAP384SHA384 });

export interface ClientKey {
  readonly rdata: KeyRData;
  readonly algorithm: number;
  readonly keyTag: number;
  readonly privateKey: KeyObject;
  readonly publicKey: KeyObject;
  /** True when this call generated and wrote the files. */
  readonly generated: boolean;
  readonly publicPath: string;
  readonly privatePath: string;
  /** A SIG(0) signer whose signer name is `name` (the full registered name). */
  signerFor(name: string): Sig0Signer;
  /** The KEY RR sent along with an update: owner `name`, class IN, TTL `ttlSeconds`. */
  keyRecord(name: string, ttlSeconds: number): ResourceRecord;
}

export interface LoadClientKeyOptions {
  /** Path of the public (`.key`) file. */
  readonly keyFile: string;
  /** Path of the private (`.private`) file. */
  readonly privateKeyFile: string;
  /** Generate a key when neither file exists. */
  readonly genKey: boolean;
  /** The name being registered (unqualified or FQDN): owner of a generated key. */
  readonly name: string;
  /** Timestamps written into a generated private file. */
  readonly now?: Date;
}

/** true = regular file, false = absent. */
async function fileExists(p: string): Promise<boolean> {
  try {
    const st = await stat(p);
    if (!st.isFile()) throw new ClientKeyError('unusable', `${p} exists but is not a regular file`);
    return true;
  } catch (err) {
    if (err instanceof ClientKeyError) throw err;
    const code = errnoCode(err);
    if (code === 'ENOENT') return false;
    throw new ClientKeyError('unusable', `cannot examine ${p} (${code ?? 'error'})`, { cause: err });
  }
}

function makeClientKey(
  rdata: KeyRData,
  privateKey: KeyObject,
  publicKey: KeyObject,
  paths: { publicPath: string; privatePath: string },
  generated: boolean,
): ClientKey {
  const tag = keyTag(rdata);
  const frozenRData: KeyRData = Object.freeze({ ...rdata, publicKey: Buffer.from(rdata.publicKey) });
  return Object.freeze({
    rdata: frozenRData,
    algorithm: rdata.algorithm,
    keyTag: tag,
    privateKey,
    publicKey,
    generated,
    publicPath: paths.publicPath,
    privatePath: paths.privatePath,
    signerFor(name: string): Sig0Signer {
      return { name: fqdn(name), algorithm: rdata.algorithm, keyTag: tag, privateKey };
    },
    keyRecord(name: string, ttlSeconds: number): ResourceRecord {
      return {
        name: fqdn(name),
        type: 'KEY',
        class: RRClass.IN,
        ttl: ttlSeconds,
        data: { ...frozenRData, publicKey: Buffer.from(frozenRData.publicKey) },
      };
    },
  });
}

/**
 * Loads the key pair, generating it first when neither file exists and
 * `genKey` is set. One file without the other is an error: generating
 * would overwrite half of someone's key, and guessing is worse.
 * Throws ClientKeyError, or the wire layer's KeyFileError/InvalidKeyError
 * for files that do not parse or do not belong together.
 */
export async function loadClientKey(opts: LoadClientKeyOptions): Promise<ClientKey> {
  const paths = { publicPath: opts.keyFile, privatePath: opts.privateKeyFile };
  const [hasPublic, hasPrivate] = await Promise.all([fileExists(opts.keyFile), fileExists(opts.privateKeyFile)]);
  if (hasPublic && !hasPrivate) {
    throw new ClientKeyError('missing-private', `public key file ${opts.keyFile} exists but private key file ${opts.privateKeyFile} does not`);
  }
  if (!hasPublic && hasPrivate) {
    throw new ClientKeyError('missing-public', `private key file ${opts.privateKeyFile} exists but public key file ${opts.keyFile} does not`);
  }
  if (!hasPublic && !hasPrivate) {
    if (!opts.genKey) {
      throw new ClientKeyError('missing', `no key files (${opts.keyFile}, ${opts.privateKeyFile}) and gen-key is off`);
    }
    const pair = generateKeyPair(GENERATED_KEY.algorithm);
    const rdata = publicKeyToRData(pair.publicKey, GENERATED_KEY.algorithm, GENERATED_KEY.flags, GENERATED_KEY.protocol);
    // writeKeyPair opens with O_EXCL, so a file appearing meanwhile is never clobbered.
    await writeKeyPair(paths, fqdn(opts.name), rdata, pair.privateKey, { now: opts.now ?? new Date() });
    return makeClientKey(rdata, pair.privateKey, pair.publicKey, paths, true);
  }
  const files = await readKeyPair(opts.keyFile, opts.privateKeyFile);
  return makeClientKey(files.publicFile.rdata, files.privateKey, files.publicKey, paths, false);
}
