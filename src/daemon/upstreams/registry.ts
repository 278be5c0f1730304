/**
 * Upstream kinds by their YAML `type`. Adding a kind: one file implementing
 * Upstream, one line in UPSTREAM_FACTORIES (its config schema is registered
 * the same way in src/config/upstreams/index.ts).
 */
import type { UpstreamConfig, UpstreamType } from '../../config/upstreams/index.js';
import { createNsupdateUpstream } from './nsupdate.js';
import { createUnboundUpstream } from './unbound.js';
import { createServeUpstream } from './serve.js';
import type { Upstream, UpstreamContext } from './upstream.js';

export type UpstreamFactory<C extends UpstreamConfig> = (config: C, ctx: UpstreamContext) => Upstream;

type FactoryTable = { readonly [K in UpstreamType]: UpstreamFactory<Extract<UpstreamConfig, { type: K }>> };

export const UPSTREAM_FACTORIES: FactoryTable = {
  nsupdate: createNsupdateUpstream,
  unbound: createUnboundUpstream,
  serve: createServeUpstream,
};

/** The upstream for a parsed configuration entry. */
export function createUpstream(config: UpstreamConfig, ctx: UpstreamContext): Upstream {
  const factory = UPSTREAM_FACTORIES[config.type] as UpstreamFactory<UpstreamConfig>;
  return factory(config, ctx);
}
