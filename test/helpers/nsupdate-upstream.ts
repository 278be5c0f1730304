/** An nsupdate upstream's configuration for a named lab (tests). */
import type { NsupdateUpstreamConfig } from '../../src/config/upstreams/index.js';
import type { NamedLab, TsigKeySpec } from './named.js';

/** TCP, zone dyn.example., record-ttl 600 s, no reconciliation unless `over` sets it. */
export function nsupdateUpstreamConfig(lab: NamedLab, key: TsigKeySpec, over: Partial<NsupdateUpstreamConfig> = {}): NsupdateUpstreamConfig {
  return {
    type: 'nsupdate',
    hostname: lab.host,
    port: lab.port,
    tcp: true,
    timeout: 5000,
    zone: 'dyn.example.',
    reverseZones: [],
    recordTtl: 600_000,
    tsigName: key.name,
    tsigSecret: key.secret,
    tsigAlgorithm: key.algorithm as NsupdateUpstreamConfig['tsigAlgorithm'],
    keepRecords: false,
    excludeNets: [],
    protectExisting: true,
    reconcileInterval: 0,
    ...over,
  };
}
