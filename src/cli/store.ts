/**
 * `nsregd store export` and `nsregd store import` (README, "Moving between
 * stores"): read the file or standard input, write the file or standard
 * output, and say what was done; the work is src/daemon/store-transfer.ts's.
 */
import { readFile } from 'node:fs/promises';
import type { Logger } from 'pino';
import type { DaemonConfig } from '../config/daemon.js';
import { systemClock } from '../clock.js';
import { atomicWrite } from '../fs/atomic.js';
import { openSharedStore } from '../daemon/shared/etcd.js';
import {
  exportEtcd,
  exportFiles,
  formatTransfer,
  importEtcd,
  importFiles,
  parseTransfer,
  type ExportResult,
  type ImportResult,
} from '../daemon/store-transfer.js';
import { errorMessage } from '../errors.js';

export interface StoreInvocation {
  readonly command: 'export' | 'import';
  /** `-o` / `-i`; undefined: standard output / input. */
  readonly file?: string;
}

export interface StoreIO {
  readonly stdin: AsyncIterable<string | Buffer>;
  readonly stdout: { write(s: string): unknown };
  readonly stderr: { write(s: string): unknown };
}

async function readAll(input: AsyncIterable<string | Buffer>): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const c of input) chunks.push(typeof c === 'string' ? Buffer.from(c) : c);
  return Buffer.concat(chunks).toString('utf8');
}

/** Who wrote an etcd change (its `by`), for the publisher's logs. */
const IMPORT_AUTHOR = 'nsregd-store-import';

async function runExport(config: DaemonConfig, file: string | undefined, io: StoreIO, logger: Logger): Promise<ExportResult> {
  const now = systemClock.now();
  let result: ExportResult;
  if (config.store.type === 'etcd') {
    const etcd = await openSharedStore(config.store, logger);
    try {
      result = await exportEtcd(etcd, config, now);
    } finally {
      await etcd.close();
    }
  } else {
    result = await exportFiles(config, systemClock, logger);
  }
  const text = formatTransfer(result.names, now);
  if (file === undefined) io.stdout.write(text);
  else await atomicWrite(file, text);
  return result;
}

async function runImport(config: DaemonConfig, file: string | undefined, io: StoreIO, logger: Logger): Promise<ImportResult> {
  const text = file === undefined ? await readAll(io.stdin) : await readFile(file, 'utf8');
  const names = parseTransfer(text, file ?? '<standard input>', config.zones);
  if (config.store.type === 'etcd') {
    const etcd = await openSharedStore(config.store, logger);
    try {
      return await importEtcd(etcd, names, systemClock.now(), IMPORT_AUTHOR);
    } finally {
      await etcd.close();
    }
  }
  return importFiles(config, names, systemClock, logger);
}

/** Runs one store command on the store `config` names; resolves with the exit code. */
export async function runStore(invocation: StoreInvocation, config: DaemonConfig, io: StoreIO, logger: Logger): Promise<number> {
  const where = config.store.type === 'etcd' ? `etcd (${config.store.endpoints.join(', ')}, prefix ${config.store.prefix})` : config.dataDir;
  try {
    if (invocation.command === 'export') {
      const r = await runExport(config, invocation.file, io, logger);
      for (const note of r.notes) io.stderr.write(`nsregd: note: ${note}\n`);
      const records = r.names.reduce((n, x) => n + x.records.length, 0);
      io.stderr.write(`nsregd: exported ${r.names.length} name(s) with ${records} record(s) from ${where}\n`);
    } else {
      const r = await runImport(config, invocation.file, io, logger);
      for (const note of r.notes) io.stderr.write(`nsregd: note: ${note}\n`);
      const unchanged = r.unchanged.length === 0 ? '' : `; ${r.unchanged.length} name(s) already claimed there by the same key left as they were`;
      const next = config.store.type === 'etcd' ? 'the zone publishers send the records upstream' : 'the next start of nsregd publishes the records';
      io.stderr.write(`nsregd: imported ${r.imported.length} name(s) with ${r.records} record(s) into ${where}${unchanged}; ${next}\n`);
    }
    return 0;
  } catch (err) {
    io.stderr.write(`nsregd: store ${invocation.command}: ${errorMessage(err)}\n`);
    return 1;
  }
}
