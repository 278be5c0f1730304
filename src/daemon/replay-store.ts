/**
 * The replay cache on disk, so that a restart does not reopen replays: one
 * file per daemon, `<data-dir>/replay-cache`, a journal (./journal.ts) of
 * `{"k": <replay key>, "e": <expiry, ms since the epoch>}` lines. A line is
 * durable before the request it records is answered. Entries live until
 * their signature expires, which `max-sig-validity` bounds, so the file
 * stays small: it is compacted to the live entries when opened and
 * whenever it has grown to twice what the last compaction kept.
 */
import * as path from 'node:path';
import type { Clock } from '../clock.js';
import type { ReplayPersistence } from './guard.js';
import { Journal } from './journal.js';

interface Line {
  k: string;
  e: number;
}

function parseLine(v: unknown): Line | undefined {
  if (typeof v !== 'object' || v === null) return undefined;
  const { k, e } = v as Record<string, unknown>;
  return typeof k === 'string' && typeof e === 'number' && Number.isFinite(e) ? { k, e } : undefined;
}

/** Lines written before the first compaction is considered, however few are live. */
const MIN_COMPACT_LINES = 1024;

export interface OpenedReplayStore {
  store: ReplayStore;
  /** The unexpired entries, for RequestGuard.loadReplays. */
  entries: Array<{ key: string; expiresAtMs: number }>;
  warnings: readonly string[];
}

export class ReplayStore implements ReplayPersistence {
  /** Replay key → expiry of every entry written since the last compaction (and kept by it). */
  private readonly live = new Map<string, number>();
  private compactAt = MIN_COMPACT_LINES;
  private compacting = false;

  private constructor(
    private readonly journal: Journal<Line>,
    private readonly clock: Clock,
  ) {}

  static fileFor(dataDir: string): string {
    return path.join(dataDir, 'replay-cache');
  }

  /** Loads (or creates) the replay file in `dataDir`. Throws JournalError. */
  static async open(dataDir: string, clock: Clock, onError: (err: unknown) => void): Promise<OpenedReplayStore> {
    const { journal, entries, warnings } = await Journal.open(ReplayStore.fileFor(dataDir), parseLine, { onError });
    const store = new ReplayStore(journal, clock);
    for (const line of entries) store.live.set(line.k, Math.max(line.e, store.live.get(line.k) ?? 0));
    await store.compact();
    return { store, entries: [...store.live].map(([key, expiresAtMs]) => ({ key, expiresAtMs })), warnings };
  }

  get size(): number {
    return this.live.size;
  }

  async add(key: string, expiresAtMs: number): Promise<void> {
    this.live.set(key, expiresAtMs);
    await this.journal.writeDurable({ k: key, e: expiresAtMs });
    if (this.compacting || this.journal.length < this.compactAt) return;
    this.compacting = true;
    try {
      await this.compact();
    } finally {
      this.compacting = false;
    }
  }

  /** Rewrites the file with the unexpired entries only. */
  private async compact(): Promise<void> {
    await this.journal.compact(() => {
      const now = this.clock.now();
      for (const [k, e] of this.live) if (e <= now) this.live.delete(k);
      this.compactAt = Math.max(MIN_COMPACT_LINES, 2 * this.live.size);
      return [...this.live].map(([k, e]) => ({ k, e }));
    });
  }

  async close(): Promise<void> {
    await this.journal.close({ removeIfEmpty: true });
  }
}
