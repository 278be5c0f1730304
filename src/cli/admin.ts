/**
 * The admin commands (`nsregd status`, `nsregd names list|show|release`):
 * one request over the running daemon's control socket, the answer printed
 * for people or, with --json, as it came.
 */
import type { NameReport, StatusReport } from '../daemon/admin.js';
import { controlRequest, type ControlRequest } from '../daemon/control.js';
import { errorMessage } from '../errors.js';

export interface AdminInvocation {
  readonly request: ControlRequest;
  readonly json: boolean;
}

export interface AdminIO {
  readonly stdout: { write(s: string): unknown };
  readonly stderr: { write(s: string): unknown };
}

function namesText(names: readonly NameReport[]): string {
  if (names.length === 0) return '(no names claimed)\n';
  const lines: string[] = [];
  for (const n of names) {
    lines.push(`${n.name}  key ${n.keyTag} ${n.algorithm}, expires ${n.keyExpires}`);
    if (n.records.length === 0) lines.push('    (no records)');
    for (const r of n.records) {
      const where = r.upstreams.map((u) => `${u.upstream}: ${u.state}`).join('; ');
      lines.push(`    ${r.type} ${r.address} ttl ${r.ttl}, expires ${r.expires}${where === '' ? '' : `  [${where}]`}`);
    }
  }
  return `${lines.join('\n')}\n`;
}

function statusText(s: StatusReport): string {
  const lines = [
    `nsregd ${s.version}, instance ${s.instance}, up ${s.uptimeSeconds} s (since ${s.started})`,
    `listening: ${s.listening.join(', ') || '(nothing)'}`,
  ];
  for (const z of s.zones) {
    const role = z.publisher === undefined ? '' : z.publisher ? ' (shared store; this daemon publishes)' : ' (shared store; another daemon publishes)';
    lines.push(`zone ${z.zone}: ${z.names} names, ${z.records} records${role}`);
    for (const u of z.upstreams) lines.push(`    ${u.upstream}: ${u.state}, ${u.pending} pending`);
  }
  lines.push(`limits: ${Object.entries(s.limits).map(([k, v]) => `${k} ${v}`).join(', ')}`);
  return `${lines.join('\n')}\n`;
}

function releaseText(r: { name: string; recordsRemoved: readonly string[]; removalApplied: boolean }): string {
  const removed = r.recordsRemoved.length === 0 ? 'no records removed' : `removed ${r.recordsRemoved.join(', ')}`;
  const pending = r.removalApplied ? '' : '; an upstream has not taken the removal yet, it is retried until it does';
  return `released ${r.name} (${removed}${pending}); the next key to claim it owns it\n`;
}

/** Runs one admin command against the daemon whose control socket is `socket`; resolves with the exit code. */
export async function runAdmin(invocation: AdminInvocation, socket: string, io: AdminIO): Promise<number> {
  let reply;
  try {
    reply = await controlRequest(socket, invocation.request);
  } catch (err) {
    io.stderr.write(`nsregd: ${errorMessage(err)}\n`);
    return 1;
  }
  if (!reply.ok) {
    io.stderr.write(`nsregd: ${reply.error.message}\n`);
    return 1;
  }
  if (invocation.json) {
    io.stdout.write(`${JSON.stringify(reply.result, null, 2)}\n`);
    return 0;
  }
  switch (invocation.request.command) {
    case 'status':
      io.stdout.write(statusText(reply.result as StatusReport));
      break;
    case 'names-list':
      io.stdout.write(namesText(reply.result as NameReport[]));
      break;
    case 'names-show':
      io.stdout.write(namesText([reply.result as NameReport]));
      break;
    case 'names-release':
      io.stdout.write(releaseText(reply.result as { name: string; recordsRemoved: string[]; removalApplied: boolean }));
      break;
  }
  return 0;
}
