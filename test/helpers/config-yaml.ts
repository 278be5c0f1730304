/**
 * nsregd configuration for labs and benchmarks, built as objects and
 * written with js-yaml, so each test states only what it sets.
 */
import { dump } from 'js-yaml';
import type { UnboundLab } from './unbound.js';

type Settings = Record<string, unknown>;

/** One zone, as YAML lines for under `zones:` (indented two spaces). */
export function zoneYaml(zone: string, settings: Settings & { upstreams: readonly Settings[] }): string {
  const text = dump({ [zone]: settings }, { lineWidth: -1 });
  return text
    .trimEnd()
    .split('\n')
    .map((l) => `  ${l}`)
    .join('\n') + '\n';
}

/** The built-in zone server on 127.0.0.1. */
export function serveUpstream(port: number, settings: Settings = {}): Settings {
  return { type: 'serve', 'listen-addr': '127.0.0.1', 'listen-port': port, ...settings };
}

/** An nsupdate upstream over TCP to 127.0.0.1 with a TSIG key. */
export function nsupdateUpstream(zone: string, port: number, key: { name: string; secret: string }, settings: Settings = {}): Settings {
  return {
    type: 'nsupdate',
    hostname: '127.0.0.1',
    port,
    tcp: true,
    timeout: '2s',
    zone,
    'record-ttl': '60s',
    'tsig-name': key.name,
    'tsig-secret': key.secret,
    ...settings,
  };
}

/** An unbound upstream on `lab`'s remote-control port, zone-type static, over its TLS files. */
export function unboundUpstream(lab: UnboundLab, settings: Settings = {}): Settings {
  return {
    type: 'unbound',
    hostname: '127.0.0.1',
    port: lab.controlPort,
    'client-cert': lab.clientCert,
    'client-key': lab.clientKey,
    'server-cert': lab.serverCert,
    'server-name': lab.serverName,
    'zone-type': 'static',
    timeout: '3s',
    'record-ttl': '60s',
    ...settings,
  };
}

/** Settings of a zone anyone on loopback may claim in, with any address (labs, benchmarks). */
export const LOOPBACK_ZONE: Readonly<Settings> = Object.freeze({
  'max-key-ttl': '720h',
  'max-addr-ttl': '1h',
  'allowed-nets': ['127.0.0.0/8'],
  'allow-any-addr': true,
});
