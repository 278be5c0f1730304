import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { mkdtemp, rm, stat, writeFile } from 'node:fs/promises';
import * as net from 'node:net';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { after, before, describe, it } from 'node:test';
import {
  ControlCommandError,
  ControlServer,
  MAX_REQUEST_BYTES,
  controlRequest,
  parseControlRequest,
  type ControlRequest,
} from '../../../src/daemon/control.js';
import { logSink } from '../../helpers/log-sink.js';

/** Sends raw bytes and returns the whole reply text. */
function rawExchange(socket: string, bytes: string | Buffer): Promise<string> {
  return new Promise((resolve, reject) => {
    const c = net.connect(socket);
    let text = '';
    c.setEncoding('utf8');
    c.on('data', (d: string) => (text += d));
    c.on('end', () => resolve(text));
    c.on('error', reject);
    c.on('connect', () => c.end(bytes));
  });
}

describe('parseControlRequest', () => {
  it('accepts the four commands with their arguments', () => {
    assert.deepEqual(parseControlRequest('{"command":"status"}'), { command: 'status' });
    assert.deepEqual(parseControlRequest('{"command":"names-list","zone":"a.example."}'), { command: 'names-list', zone: 'a.example.' });
    assert.deepEqual(parseControlRequest('{"command":"names-show","name":"h.a.example."}'), { command: 'names-show', name: 'h.a.example.' });
    assert.deepEqual(parseControlRequest('{"command":"names-release","name":"h.a.example."}'), {
      command: 'names-release',
      name: 'h.a.example.',
      keepRecords: false,
    });
  });

  for (const [text, why] of [
    ['not json', /not JSON/],
    ['[1]', /not a JSON object/],
    ['{"command":"shutdown"}', /unknown command "shutdown"/],
    ['{"command":"names-show"}', /`name` must be/],
    ['{"command":"names-show","name":""}', /`name` must be/],
    [`{"command":"names-show","name":"${'a'.repeat(2000)}"}`, /`name` must be/],
    ['{"command":"names-list","zone":5}', /`zone` must be/],
    ['{"command":"names-release","name":"x","keepRecords":"yes"}', /`keepRecords` must be/],
  ] as const) {
    it(`refuses ${text.slice(0, 40)}`, () => {
      assert.throws(
        () => parseControlRequest(text),
        (err: unknown) => err instanceof ControlCommandError && err.reason === 'bad-request' && why.test(err.message),
      );
    });
  }
});

describe('ControlServer', () => {
  let dir: string;
  let server: ControlServer;
  let socket: string;
  const seen: ControlRequest[] = [];

  before(async () => {
    dir = await mkdtemp(path.join(tmpdir(), 'nsregd-control-unit-'));
    socket = path.join(dir, 'sub', 'control.sock');
    server = await ControlServer.open(
      socket,
      async (r) => {
        seen.push(r);
        if (r.command === 'names-show') throw new ControlCommandError('not-found', `${r.name} is not claimed`);
        if (r.command === 'names-release') throw new Error('disk on fire');
        return { hello: 'world' };
      },
      logSink().logger,
    );
  });
  after(async () => {
    await server.close();
    await rm(dir, { recursive: true, force: true });
  });

  it('creates its directory and a 0600 socket; answers a request', async () => {
    assert.equal((await stat(socket)).mode & 0o777, 0o600);
    assert.deepEqual(await controlRequest(socket, { command: 'status' }), { ok: true, result: { hello: 'world' } });
  });

  it('command errors keep their code; other failures are "failed"', async () => {
    assert.deepEqual(await controlRequest(socket, { command: 'names-show', name: 'x.' }), {
      ok: false,
      error: { code: 'not-found', message: 'x. is not claimed' },
    });
    assert.deepEqual(await controlRequest(socket, { command: 'names-release', name: 'x.', keepRecords: false }), {
      ok: false,
      error: { code: 'failed', message: 'disk on fire' },
    });
  });

  it('a request without a newline is read to its end; garbage and oversize requests are refused without reaching the handler', async () => {
    const before = seen.length;
    assert.deepEqual(JSON.parse(await rawExchange(socket, '{"command":"status"}')), { ok: true, result: { hello: 'world' } });
    assert.equal(seen.length, before + 1);
    assert.equal((JSON.parse(await rawExchange(socket, 'hello\n')) as { error: { code: string } }).error.code, 'bad-request');
    const huge = JSON.parse(await rawExchange(socket, Buffer.alloc(MAX_REQUEST_BYTES + 10, 0x20))) as { error: { message: string } };
    assert.match(huge.error.message, /larger than 65536 octets/);
    assert.equal(seen.length, before + 1);
  });

  it('a second server on a live socket is refused; a non-socket file at the path is not replaced', async () => {
    await assert.rejects(ControlServer.open(socket, async () => null, logSink().logger), /another nsregd answers on/);
    const file = path.join(dir, 'plain');
    await writeFile(file, 'x');
    await assert.rejects(ControlServer.open(file, async () => null, logSink().logger), /exists and is not a socket/);
  });

  it('a stale socket file (its process killed) is replaced', async () => {
    const stale = path.join(dir, 'stale.sock');
    // A process that listens and is then killed leaves its socket file behind, answering nobody.
    const child = spawn(process.execPath, ['-e', `require('node:net').createServer().listen(${JSON.stringify(stale)}, () => console.log('up'))`], {
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    await once(child.stdout, 'data');
    child.kill('SIGKILL');
    await once(child, 'exit');
    assert.ok((await stat(stale)).isSocket(), 'the file is left behind');
    const s = await ControlServer.open(stale, async () => 'fresh', logSink().logger);
    assert.deepEqual(await controlRequest(stale, { command: 'status' }), { ok: true, result: 'fresh' });
    await s.close();
  });

  it('a request dripping a byte at a time is cut off at the whole-request deadline', async () => {
    const slow = path.join(dir, 'slow.sock');
    const s = await ControlServer.open(slow, async () => 'never', logSink().logger, 200);
    const c = net.connect(slow);
    let closed = false;
    c.on('close', () => (closed = true));
    c.on('error', () => undefined);
    await once(c, 'connect');
    // Never a newline: only the deadline ends it (each byte would reset an idle timer).
    for (let i = 0; i < 200 && !closed; i++) {
      c.write('{');
      await new Promise<void>((resolve) => setImmediate(resolve));
      await new Promise<void>((resolve) => setTimeout(resolve, 20));
    }
    assert.equal(closed, true, 'the server closed the connection');
    await s.close();
  });

  it('the client names a daemon that is not running', async () => {
    await assert.rejects(controlRequest(path.join(dir, 'none.sock'), { command: 'status' }), (err: unknown) => {
      assert.equal((err as { code?: string }).code, 'ERR_NSREGD_CONTROL_UNREACHABLE');
      assert.match((err as Error).message, /nsregd is not running/);
      return true;
    });
  });
});
