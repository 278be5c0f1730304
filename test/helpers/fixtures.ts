/**
 * The compatibility fixtures (files and captures from the original programs
 * and BIND's tools). Tests run from dist/test/…; the fixtures stay in the
 * source tree. Also the table of every supported algorithm, derived from
 * the registry so a new algorithm is tested everywhere at once.
 */
import { readFileSync } from 'node:fs';
import { loadClientKey, type ClientKey } from '../../src/client/keys.js';
import { Algorithm, type AlgorithmNumber } from '../../src/dns/constants.js';

/** dist/test/helpers/ → repository root → test/fixtures/. */
export const FIXTURES = new URL('../../../test/fixtures/', import.meta.url);

export const fixturePath = (rel: string): string => new URL(rel, FIXTURES).pathname;
export const fixture = (rel: string): string => readFileSync(fixturePath(rel), 'utf8');
export const fixtureBytes = (rel: string): Buffer => readFileSync(fixturePath(rel));

/** [name, number] of every supported DNSSEC algorithm. */
export const ALGORITHMS: ReadonlyArray<readonly [string, AlgorithmNumber]> = Object.entries(Algorithm);

/** The original client's key pair (go-nsregc/nsregc.key, .private), for the name `foxtrot`. */
export const goNsregcKey = (): Promise<ClientKey> =>
  loadClientKey({
    keyFile: fixturePath('go-nsregc/nsregc.key'),
    privateKeyFile: fixturePath('go-nsregc/nsregc.private'),
    genKey: false,
    name: 'foxtrot',
  });
