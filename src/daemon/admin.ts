/**
 * What the control channel's commands answer (README, "Operating nsregd"):
 * the daemon's status, the claimed names with their keys and records, and
 * releasing a name. Reports are plain JSON values; times are RFC 3339.
 */
import { algorithmName } from '../dns/constants.js';
import { canonicalName } from '../dns/names.js';
import { ControlCommandError, type ControlHandler, type ControlRequest } from './control.js';
import type { ServedZone } from './zone.js';

export interface RecordReport {
  readonly type: 'A' | 'AAAA';
  readonly address: string;
  readonly ttl: number;
  readonly expires: string;
  /** Per upstream: the record is applied there, or an operation for it waits. */
  readonly upstreams: ReadonlyArray<{ readonly upstream: string; readonly state: 'installed' | 'pending' }>;
}

export interface NameReport {
  readonly zone: string;
  readonly name: string;
  readonly keyTag: number;
  readonly algorithm: string;
  readonly keyExpires: string;
  readonly records: readonly RecordReport[];
}

export interface StatusReport {
  readonly version: string;
  readonly instance: string;
  readonly started: string;
  readonly uptimeSeconds: number;
  readonly listening: readonly string[];
  readonly zones: ReadonlyArray<{
    readonly zone: string;
    readonly names: number;
    readonly records: number;
    /** On a shared store: whether this daemon is the zone's elected publisher. */
    readonly publisher?: boolean;
    readonly upstreams: ReadonlyArray<{ readonly upstream: string; readonly state: 'up' | 'failing'; readonly pending: number }>;
  }>;
  /** `limits:` as in force, key → value in the configuration's syntax. */
  readonly limits: Readonly<Record<string, string>>;
}

export interface AdminView {
  readonly zones: ReadonlyMap<string, ServedZone>;
  status(): StatusReport;
}

function iso(ms: number): string {
  // NaN: a daemon on a shared store that has not written or read the name's deadlines (README, "Several daemons as one service").
  if (Number.isNaN(ms)) return 'unknown here';
  return Number.isFinite(ms) ? new Date(ms).toISOString() : 'never';
}

function nameReport(zone: ServedZone, key: { name: string; keyTag: number; rdata: { algorithm: number }; expiry: number }): NameReport {
  return {
    zone: zone.name,
    name: key.name,
    keyTag: key.keyTag,
    algorithm: algorithmName(key.rdata.algorithm),
    keyExpires: iso(key.expiry),
    records: zone.recordStates(key.name).map((s) => ({
      type: s.record.type,
      address: s.record.address,
      ttl: s.record.ttl,
      expires: iso(s.expiresAt),
      upstreams: s.upstreams.map((u) => ({ upstream: u.upstream, state: u.pending ? 'pending' : 'installed' })),
    })),
  };
}

/** The zone a name is claimed in: the longest served zone it is directly below (README, "Names and existing records"). */
function zoneOf(view: AdminView, name: string): ServedZone {
  const canonical = canonicalName(name);
  const dot = canonical.indexOf('.');
  const zone = dot < 0 ? undefined : view.zones.get(canonical.slice(dot + 1));
  if (zone === undefined) throw new ControlCommandError('not-found', `${canonical} is not a name in a served zone`);
  return zone;
}

function list(view: AdminView, zoneName: string | undefined): NameReport[] {
  let zones = [...view.zones.values()];
  if (zoneName !== undefined) {
    const z = view.zones.get(canonicalName(zoneName));
    if (z === undefined) throw new ControlCommandError('not-found', `${canonicalName(zoneName)} is not a served zone`);
    zones = [z];
  }
  const out: NameReport[] = [];
  for (const z of zones) for (const k of z.claims()) out.push(nameReport(z, k));
  return out.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
}

/** The control channel's handler over the daemon's zones. */
export function adminHandler(view: AdminView): ControlHandler {
  return async (request: ControlRequest): Promise<unknown> => {
    switch (request.command) {
      case 'status':
        return view.status();
      case 'names-list':
        return list(view, request.zone);
      case 'names-show': {
        const zone = zoneOf(view, request.name);
        const key = zone.keyOf(canonicalName(request.name));
        if (key === undefined) throw new ControlCommandError('not-found', `${canonicalName(request.name)} is not claimed`);
        return nameReport(zone, key);
      }
      case 'names-release': {
        const zone = zoneOf(view, request.name);
        const released = await zone.release(canonicalName(request.name), request.keepRecords);
        if (released === null) throw new ControlCommandError('not-found', `${canonicalName(request.name)} is not claimed`);
        return {
          name: canonicalName(request.name),
          released: true,
          recordsRemoved: released.records.map((r) => `${r.type} ${r.address}`),
          // False: an upstream did not take the removal yet; its outbox retries it.
          removalApplied: released.applied,
        };
      }
    }
  };
}
