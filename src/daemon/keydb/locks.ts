/**
 * Names the key database no longer knows the owner of, because a journal
 * line that may have held their key is damaged (README, "What nsregd keeps
 * on disk"). A locked name is refused to every key except one the database
 * still holds for it: handing a name to someone else is the one outcome
 * that is never acceptable, so damage locks names rather than freeing them.
 *
 * Judging a damaged line. The key journal's lines start with their
 * operation and name (`{"op":"claim","name":"x.zone.",…` — ops.ts), so a
 * line cut short or with a few bad bytes usually still shows both:
 *  - a tentative claim never locks: no client is answered on it (the reply
 *    waits for the separate confirmation line);
 *  - a refresh or removal in the torn tail (after the last good line) is a
 *    lazy write a crash cut short, which nobody waited for: dropped, as a
 *    crash before the write would have;
 *  - anything else that shows a name in the zone — a confirmation, an
 *    unreadable operation, a refresh or removal damaged before good lines
 *    (losing a refresh could let the key expire early) — locks that name;
 *  - a line showing no name: in the torn tail it is taken as a write cut
 *    short (a zero-filled tail, or the first bytes of a line). A confirmed
 *    claim cut back to less than its name is indistinguishable from that —
 *    as is one cut off exactly at a line boundary, which no per-line
 *    checksum can see — so locking here would freeze the zone after
 *    ordinary crashes while protecting nothing more. Before good lines it
 *    cannot be a torn write: every name without a key is locked (`*`),
 *    i.e. no new claims in the zone, until an operator has looked.
 *
 * Locks are kept in `<zone>keydb.locked`, one `<name> TAB <why>` a line (`*`
 * for the whole zone), written before the damaged lines are cut off or
 * compacted away, and reported at every start. An operator releases a name
 * by deleting its line (or the file) and restarting nsregd.
 */
import { readFile } from 'node:fs/promises';
import { errnoCode, errorMessage } from '../../errors.js';
import { canonicalName } from '../../dns/names.js';
import { atomicWrite } from '../../fs/atomic.js';
import { describeDamage, type DamagedLine } from '../journal.js';
import { KeyStoreError } from './errors.js';

/** The lock of every name that has no key. */
export const ZONE_LOCK = '*';

/** What one damaged line means for the names it may have touched. */
export interface DamageVerdict {
  /** The name to lock (ZONE_LOCK: all unclaimed names), or undefined: nothing to lock. */
  readonly lock: string | undefined;
  /** For the log: what the line was and what was done. */
  readonly message: string;
}

const OP = /"op"\s*:\s*"([a-z]+)"/;
const TENTATIVE = /"tentative"\s*:\s*true\b/;
const NAME = /"name"\s*:\s*"([!#-[\]-~]*)"/; // printable ASCII but `"` and `\`

/** The name a damaged line shows, if it is a name in `zone` (canonical); a garbled one counts as none. */
function nameIn(text: string, zone: string): string | undefined {
  const m = NAME.exec(text);
  if (m?.[1] === undefined) return undefined;
  let name: string;
  try {
    name = canonicalName(m[1]);
  } catch {
    return undefined; // not a domain name at all (a label too long, …)
  }
  return name.length > zone.length && name.endsWith(`.${zone}`) ? name : undefined;
}

/** Applies the rules of the module comment to one bad line of the key journal of `zone`. */
export function judgeDamage(d: DamagedLine, zone: string): DamageVerdict {
  const text = d.bytes.toString('latin1');
  const where = describeDamage(d);
  const op = OP.exec(text)?.[1];
  if (op === 'claim' && TENTATIVE.test(text)) {
    return { lock: undefined, message: `${where}: a tentative claim (never answered on), dropped` };
  }
  if (d.torn && (op === 'refresh' || op === 'remove')) {
    return { lock: undefined, message: `${where}: an unsynced ${op} cut short by a crash, dropped` };
  }
  const name = nameIn(text, canonicalName(zone));
  if (name !== undefined) {
    return { lock: name, message: `${where}: damaged ${op ?? 'unreadable'} line of ${name}; the name is locked` };
  }
  if (d.torn) return { lock: undefined, message: `${where}: an incomplete last line (interrupted write), dropped` };
  return { lock: ZONE_LOCK, message: `${where}: damaged line naming no readable name; every unclaimed name in the zone is locked` };
}

/** Reads the lock file: name → why. An absent file is no locks. */
export async function readLocks(file: string): Promise<Map<string, string>> {
  const locks = new Map<string, string>();
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (err) {
    if (errnoCode(err) === 'ENOENT') return locks;
    throw new KeyStoreError('read-failed', file, errorMessage(err), { cause: err });
  }
  for (const [i, raw] of text.split('\n').entries()) {
    const line = raw.trim();
    if (line === '' || line.startsWith('#')) continue;
    const tab = line.indexOf('\t');
    const name = tab === -1 ? line : line.slice(0, tab).trim();
    let key = name;
    if (name !== ZONE_LOCK) {
      try {
        key = canonicalName(name);
      } catch (err) {
        throw new KeyStoreError('corrupt', file, `line ${i + 1}: ${JSON.stringify(name)} is not a name: ${errorMessage(err)}`, { cause: err });
      }
    }
    locks.set(key, tab === -1 ? 'locked by an operator' : line.slice(tab + 1).trim());
  }
  return locks;
}

/** Replaces the lock file (atomically, durably) with `locks`. */
export async function writeLocks(file: string, locks: ReadonlyMap<string, string>): Promise<void> {
  let text = '# Names locked after damage to the key journal (README, "What nsregd keeps on disk").\n';
  text += '# Delete a line (or this file) and restart nsregd to release the name.\n';
  for (const [name, why] of locks) text += `${name}\t${why.replace(/[\r\n]/g, ' ')}\n`;
  try {
    await atomicWrite(file, text);
  } catch (err) {
    throw new KeyStoreError('write-failed', file, `cannot record locked names: ${errorMessage(err)}`, { cause: err });
  }
}
