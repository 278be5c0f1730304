/**
 * Registry of upstream schemas, chosen by the YAML `type`. Adding a kind is
 * one new file exporting a parser and one line in UPSTREAM_PARSERS; the
 * UpstreamConfig union follows from the registry.
 */
import type { MapReader } from '../validate.js';
import { parseNsupdateUpstream } from './nsupdate.js';
import { parseUnboundUpstream } from './unbound.js';
import { parseServeUpstream } from './serve.js';

export type { NsupdateUpstreamConfig } from './nsupdate.js';
export type { UnboundUpstreamConfig } from './unbound.js';
export type { ServeUpstreamConfig } from './serve.js';

/** Reads one upstream mapping (the `type` key already consumed). */
export type UpstreamParser = (r: MapReader) => { readonly type: string };

export const UPSTREAM_PARSERS = {
  nsupdate: parseNsupdateUpstream,
  unbound: parseUnboundUpstream,
  serve: parseServeUpstream,
} as const satisfies Record<string, UpstreamParser>;

export type UpstreamType = keyof typeof UPSTREAM_PARSERS;

/** Discriminated union (on `type`) of every registered upstream kind. */
export type UpstreamConfig = ReturnType<(typeof UPSTREAM_PARSERS)[UpstreamType]>;

/** `type: disabled` skips an upstream entirely (handy for switching one off without deleting it). */
export const DISABLED_UPSTREAM_TYPE = 'disabled';

/** Parse one upstream of a registered kind; undefined if nobody registered `type`. */
export function parseUpstream(type: string, r: MapReader): UpstreamConfig | undefined {
  if (!Object.hasOwn(UPSTREAM_PARSERS, type)) return undefined;
  return UPSTREAM_PARSERS[type as UpstreamType](r);
}

export function upstreamTypes(): string[] {
  return Object.keys(UPSTREAM_PARSERS);
}
