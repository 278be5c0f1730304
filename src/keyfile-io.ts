/**
 * BIND key file pairs on disk: where they go, reading them and writing them
 * without ever replacing an existing key. Their text is parsed and formatted
 * by src/dns/keyfile.ts.
 */
import type { KeyObject } from 'node:crypto';
import { open, readFile, unlink, type FileHandle } from 'node:fs/promises';
import * as path from 'node:path';
import { KeyFileError } from './dns/errors.js';
import { bindKeyBaseName, formatKeyPair, parseKeyPair, type KeyPairFiles, type KeyPairOptions } from './dns/keyfile.js';
import { keyTag } from './dns/keys.js';
import type { KeyRData } from './dns/types.js';
import { errnoCode, errorMessage } from './errors.js';

/** Reads and cross-checks a `.key`/`.private` pair. */
export async function readKeyPair(publicPath: string, privatePath: string): Promise<KeyPairFiles> {
  const readText = async (p: string): Promise<string> => {
    try {
      return await readFile(p, 'utf8');
    } catch (err) {
      throw new KeyFileError(p, `cannot read: ${errorMessage(err)}`);
    }
  };
  const [publicText, privateText] = await Promise.all([readText(publicPath), readText(privatePath)]);
  return parseKeyPair(publicText, publicPath, privateText, privatePath);
}

export interface KeyPairPaths {
  publicPath: string;
  privatePath: string;
}

/** Where dnssec-keygen -K `dir` would put the pair for this key. */
export function keyPairPathsIn(dir: string, name: string, rdata: KeyRData): KeyPairPaths {
  const base = path.join(dir, bindKeyBaseName(name, rdata.algorithm, keyTag(rdata)));
  return { publicPath: `${base}.key`, privatePath: `${base}.private` };
}

/** Creates `p`, failing if it exists: O_CREAT|O_EXCL, so an existing key is never clobbered, not even by a race. */
async function createExclusive(p: string, mode: number): Promise<FileHandle> {
  try {
    return await open(p, 'wx', mode);
  } catch (err) {
    const code = errnoCode(err);
    throw new KeyFileError(p, code === 'EEXIST' ? 'key file already exists; not overwriting' : `cannot create: ${errorMessage(err)}`);
  }
}

/**
 * Writes a `.key`/`.private` pair, either at the given paths or in a
 * directory under BIND's base name. Never overwrites: an existing file is
 * a KeyFileError and leaves both files untouched. The private file is 0600.
 */
export async function writeKeyPair(
  target: string | KeyPairPaths,
  name: string,
  rdata: KeyRData,
  privateKey: KeyObject,
  options: KeyPairOptions,
): Promise<KeyPairPaths> {
  const { publicText, privateText } = formatKeyPair(name, rdata, privateKey, options);
  const paths = typeof target === 'string' ? keyPairPathsIn(target, name, rdata) : target;
  const priv = await createExclusive(paths.privatePath, 0o600);
  let pub: FileHandle;
  try {
    pub = await createExclusive(paths.publicPath, 0o644);
  } catch (err) {
    await priv.close();
    await unlink(paths.privatePath);
    throw err;
  }
  try {
    await priv.writeFile(privateText);
    await pub.writeFile(publicText);
  } finally {
    await priv.close();
    await pub.close();
  }
  return paths;
}
