/**
 * rtnetlink addresses through a child process (netlink-child.ts), so that
 * a native abort in the `netlink` package (ENOBUFS under a burst of
 * changes, see netlink-child.ts) costs a restart of the watcher instead of
 * nsregc itself.
 *
 * When the watcher dies the supervisor logs it, starts a new one after a
 * short, doubling delay, re-reads the full address list and reports the
 * difference to what its consumer last heard — so a change made while no
 * watcher was running is still seen; the default-route listeners are told
 * once too, since a route change may have been missed the same way. After
 * `maxDeaths` deaths within `deathWindowMs` it gives up and reports a
 * failure; the client then falls back to polling the interface list (and
 * logs that).
 */
import { spawn, type ChildProcessWithoutNullStreams } from 'node:child_process';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import type { Logger } from 'pino';
import { Backoff } from '../../backoff.js';
import { errorMessage } from '../../errors.js';
import { EventRelay } from './relay.js';
import { snapshotOf, type AddressEvent, type AddressSource, type LocalAddress } from './source.js';

export const CHILD_SCRIPT = fileURLToPath(new URL('./netlink-child.js', import.meta.url));

export interface ChildNetlinkOptions {
  /** SO_RCVBUF of the child's notification socket (default: the child's own, 1 MiB). */
  readonly recvBufferSize?: number;
  readonly logger?: Logger;
  /** Deaths within `deathWindowMs` that make the supervisor give up (default 5 in 60 s). */
  readonly maxDeaths?: number;
  readonly deathWindowMs?: number;
  /** First restart delay, doubled per recent death up to `restartCapMs` (default 100 ms, 5 s). */
  readonly restartInitialMs?: number;
  readonly restartCapMs?: number;
  /** How long a watcher may take to start or to answer a list request (default 10 s). */
  readonly requestTimeoutMs?: number;
}

type ChildLine =
  | { type: 'ready' }
  | { type: 'event'; event: AddressEvent }
  | { type: 'route' }
  | { type: 'list'; id: number; addresses: LocalAddress[] }
  | { type: 'error'; message: string; code: string | null };

class WatcherDied extends Error {}

/** One watcher process and its line protocol. */
class Watcher {
  readonly ready: Promise<void>;
  readonly exited: Promise<string>;
  #stderr = '';
  #nextId = 1;
  #requests = new Map<number, { resolve: (a: LocalAddress[]) => void; reject: (e: Error) => void }>();
  #gone: string | null = null;
  /** Keep the parent alive for this process even when nothing is pending (the consumer subscribed). */
  #keepAlive = false;
  /** Start-up plus list requests in flight: these keep the parent alive too. */
  #busy = 1;

  constructor(
    readonly child: ChildProcessWithoutNullStreams,
    onEvent: (w: Watcher, e: AddressEvent) => void,
    onRoute: (w: Watcher) => void,
    timeoutMs: number,
  ) {
    let markReady: () => void = () => undefined;
    let failStart: (e: Error) => void = () => undefined;
    this.ready = new Promise<void>((resolve, reject) => {
      markReady = resolve;
      failStart = reject;
    });
    const startTimer = setTimeout(() => {
      failStart(new Error(`netlink watcher did not start within ${timeoutMs} ms`));
      child.kill('SIGKILL');
    }, timeoutMs);
    startTimer.unref();
    createInterface({ input: child.stdout }).on('line', (line) => {
      let msg: ChildLine;
      try {
        msg = JSON.parse(line) as ChildLine;
      } catch {
        return;
      }
      if (msg.type === 'ready') {
        clearTimeout(startTimer);
        markReady();
      } else if (msg.type === 'event') {
        onEvent(this, msg.event);
      } else if (msg.type === 'route') {
        onRoute(this);
      } else if (msg.type === 'list') {
        const r = this.#requests.get(msg.id);
        this.#requests.delete(msg.id);
        r?.resolve(msg.addresses);
      } else if (msg.type === 'error') {
        clearTimeout(startTimer);
        const err: NodeJS.ErrnoException = new Error(msg.message);
        if (msg.code !== null) err.code = msg.code;
        failStart(err);
      }
    });
    child.stderr.setEncoding('utf8');
    child.stderr.on('data', (c: string) => {
      this.#stderr = (this.#stderr + c).slice(-2000);
    });
    this.exited = new Promise<string>((resolve) => {
      const done = (how: string): void => {
        if (this.#gone !== null) return;
        clearTimeout(startTimer);
        this.#gone = how;
        failStart(new WatcherDied(`netlink watcher ended (${how}) before it was ready`));
        for (const r of this.#requests.values()) r.reject(new WatcherDied(`netlink watcher ended (${how})`));
        this.#requests.clear();
        resolve(how);
      };
      child.once('exit', (code, signal) => done(signal !== null ? `signal ${signal}` : `exit code ${String(code)}`));
      child.once('error', (err) => done(`spawn error: ${err.message}`));
    });
    // The start-up promise may be abandoned when the process dies first.
    this.ready.then(
      () => this.#idle(),
      () => this.#idle(),
    );
  }

  get stderrTail(): string {
    return this.#stderr.trim();
  }

  list(timeoutMs: number): Promise<LocalAddress[]> {
    if (this.#gone !== null) return Promise.reject(new WatcherDied(`netlink watcher ended (${this.#gone})`));
    const id = this.#nextId++;
    this.#busy++;
    this.#applyRef();
    const result = new Promise<LocalAddress[]>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.#requests.delete(id);
        reject(new Error(`netlink watcher did not answer a list request within ${timeoutMs} ms`));
        // A watcher that does not answer is as good as dead.
        this.child.kill('SIGKILL');
      }, timeoutMs);
      this.#requests.set(id, {
        resolve: (a) => {
          clearTimeout(timer);
          resolve(a);
        },
        reject: (e) => {
          clearTimeout(timer);
          reject(e);
        },
      });
      this.child.stdin.write(`${JSON.stringify({ id })}\n`);
    });
    result.then(
      () => this.#idle(),
      () => this.#idle(),
    );
    return result;
  }

  /** Keep (or stop keeping) the parent's event loop alive for this process while idle. */
  ref(on: boolean): void {
    this.#keepAlive = on;
    this.#applyRef();
  }

  #idle(): void {
    this.#busy--;
    this.#applyRef();
  }

  #applyRef(): void {
    const on = this.#keepAlive || this.#busy > 0;
    const handles = [this.child, this.child.stdout, this.child.stderr, this.child.stdin] as Array<{ ref?: () => void; unref?: () => void }>;
    for (const h of handles) (on ? h.ref : h.unref)?.call(h);
  }

  stop(): void {
    if (this.#gone !== null) return;
    // Whoever stops the watcher waits for its exit: keep the event loop alive until then.
    this.ref(true);
    this.child.stdin.end();
    const t = setTimeout(() => this.child.kill('SIGKILL'), 2000);
    t.unref();
    void this.exited.then(() => clearTimeout(t));
  }
}

export class ChildNetlinkSource implements AddressSource {
  readonly kind = 'netlink' as const;
  readonly #opts: ChildNetlinkOptions;
  readonly #log: Logger | undefined;
  readonly #timeoutMs: number;
  /** Indexed by the number of recent deaths, so it eases off as old deaths leave the window. */
  readonly #restartBackoff: Backoff;
  #watcher: Watcher | null = null;
  /** Resolves with the next usable watcher while one is being (re)started. */
  #starting: Promise<Watcher> | null = null;
  readonly #relay = new EventRelay(() => this.close());
  /** Events held while a resync listing is in flight; replayed after its difference. */
  #held: AddressEvent[] | null = null;
  #deaths: number[] = [];
  #referenced = false;

  private constructor(opts: ChildNetlinkOptions) {
    this.#opts = opts;
    this.#log = opts.logger;
    this.#timeoutMs = opts.requestTimeoutMs ?? 10_000;
    this.#restartBackoff = new Backoff({ initialMs: opts.restartInitialMs ?? 100, capMs: opts.restartCapMs ?? 5_000 });
  }

  /** Starts the first watcher; rejects (with the child's reason) when netlink cannot be used. */
  static async open(opts: ChildNetlinkOptions = {}): Promise<ChildNetlinkSource> {
    const source = new ChildNetlinkSource(opts);
    const w = source.#spawn();
    try {
      await w.ready;
    } catch (err) {
      w.stop();
      throw err;
    }
    source.#adopt(w);
    return source;
  }

  /** Process id of the running watcher (tests). */
  get watcherPid(): number | undefined {
    return this.#watcher?.child.pid;
  }

  async list(): Promise<LocalAddress[]> {
    for (let attempt = 1; ; attempt++) {
      const w = await this.#currentWatcher();
      this.#relay.listing();
      try {
        const list = await w.list(this.#timeoutMs);
        this.#relay.listed(list);
        return list;
      } catch (err) {
        if (!(err instanceof WatcherDied) || attempt >= 3) throw err;
      }
    }
  }

  async subscribe(onEvent: (e: AddressEvent) => void, onFailure: (err: Error) => void): Promise<void> {
    this.#relay.subscribe(onEvent, onFailure, () => {
      this.#referenced = true;
      this.#watcher?.ref(true);
    });
  }

  /** Forwards the watcher's default-route notifications; also called once after each restart. */
  onDefaultRouteChange(listener: () => void): void {
    this.#relay.onRouteChange(listener);
  }

  async close(): Promise<void> {
    if (!this.#relay.close()) return;
    const w = this.#watcher;
    this.#watcher = null;
    if (w !== null) {
      w.stop();
      await w.exited;
    }
  }

  #spawn(): Watcher {
    const args = [CHILD_SCRIPT];
    if (this.#opts.recvBufferSize !== undefined) args.push(String(this.#opts.recvBufferSize));
    const child = spawn(process.execPath, args, { stdio: ['pipe', 'pipe', 'pipe'] });
    const w = new Watcher(
      child,
      (from, e) => this.#fromWatcher(from, e),
      (from) => this.#routeFromWatcher(from),
      this.#timeoutMs,
    );
    w.ref(this.#referenced);
    return w;
  }

  #adopt(w: Watcher): void {
    this.#watcher = w;
    void w.exited.then((how) => this.#died(w, how));
  }

  async #currentWatcher(): Promise<Watcher> {
    if (this.#relay.failure !== null) throw this.#relay.failure;
    if (this.#relay.closed) throw new Error('address source is closed');
    if (this.#watcher !== null) return this.#watcher;
    if (this.#starting !== null) return this.#starting;
    throw new Error('no netlink watcher running');
  }

  #fromWatcher(from: Watcher, e: AddressEvent): void {
    if (this.#relay.closed || from !== this.#watcher) return;
    if (this.#held !== null) this.#held.push(e);
    else this.#relay.deliver(e);
  }

  #routeFromWatcher(from: Watcher): void {
    if (this.#relay.closed || from !== this.#watcher) return;
    this.#relay.routeChanged();
  }

  #died(w: Watcher, how: string): void {
    if (this.#relay.closed || w !== this.#watcher) return;
    this.#watcher = null;
    const now = Date.now();
    const window = this.#opts.deathWindowMs ?? 60_000;
    this.#deaths = this.#deaths.filter((t) => now - t < window);
    this.#deaths.push(now);
    const max = this.#opts.maxDeaths ?? 5;
    const stderr = w.stderrTail;
    if (this.#deaths.length >= max) {
      const err = new Error(`netlink watcher died ${this.#deaths.length} times within ${window / 1000}s (last: ${how})`);
      this.#log?.error({ how, stderr }, `${err.message}; giving up on netlink`);
      this.#relay.fail(err);
      return;
    }
    const delay = this.#restartBackoff.delayFor(this.#deaths.length - 1);
    this.#log?.warn(
      { how, stderr, restartInMs: delay },
      `netlink watcher died (${how}); re-reading addresses and restarting it`,
    );
    this.#starting = this.#restart(delay);
    this.#starting.catch(() => undefined);
  }

  /** A new watcher after `delayMs`, then the difference between what it lists and what was reported. */
  async #restart(delayMs: number): Promise<Watcher> {
    await new Promise<void>((resolve) => setTimeout(resolve, delayMs));
    if (this.#relay.closed) throw new Error('address source is closed');
    const w = this.#spawn();
    let list: LocalAddress[];
    try {
      await w.ready;
      // Events from the new watcher are held until its listing is applied.
      this.#held = [];
      this.#watcher = w;
      list = await w.list(this.#timeoutMs);
    } catch (err) {
      this.#held = null;
      this.#starting = null;
      w.stop();
      // Counted as another death: it gives up after maxDeaths like a crash does.
      this.#watcher = w;
      this.#died(w, `restart failed: ${errorMessage(err)}`);
      throw err;
    }
    if (this.#relay.closed) {
      w.stop();
      throw new Error('address source is closed');
    }
    const changes = this.#relay.difference(snapshotOf(list));
    const held = this.#held ?? [];
    this.#held = null;
    this.#starting = null;
    this.#adopt(w);
    this.#log?.info({ watcherPid: w.child.pid, changes: changes.length }, 'netlink watcher restarted');
    for (const e of changes) this.#relay.deliver(e);
    // Repeats of what the listing showed are no-ops for the consumer.
    for (const e of held) this.#relay.deliver(e);
    // No watcher heard the kernel's route notifications while this one was
    // starting: a default route may have changed meanwhile (the host may have
    // roamed), so the route listeners are told once, as if it had.
    this.#relay.routeChanged();
    return w;
  }
}

/** Start the rtnetlink watcher child; rejects when netlink cannot be used here. */
export function openChildNetlinkSource(opts: ChildNetlinkOptions = {}): Promise<ChildNetlinkSource> {
  return ChildNetlinkSource.open(opts);
}
