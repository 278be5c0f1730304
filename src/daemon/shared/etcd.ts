/**
 * The connection to etcd (README, "Several daemons as one service"): one
 * etcd3 client per daemon, every operation bounded by the store's timeout
 * and every failure turned into StoreUnavailableError, so a request
 * without a quorum behind it is answered SERVFAIL and acknowledges
 * nothing. It hands out the zones' namespaces, mirrors and elections.
 *
 * The client's fault handling is bounded: a failed call is retried at most
 * once per configured endpoint (each time on another one), with several
 * endpoints one that failed is passed over for a short while, and each
 * unary call carries a deadline of the store timeout. Every call asks
 * for a member with a raft leader, so a member cut off from the quorum
 * refuses at once and ends the watches held on it. The store writes
 * nothing secret into etcd, and neither the password nor the TLS key is
 * ever logged.
 */
import { createHash } from 'node:crypto';
import { Etcd3, GRPCDeadlineExceededError, GRPCResourceExhastedError, isRecoverableError, type IOptions, type Namespace } from 'etcd3';
import type { Logger } from 'pino';

import { errorMessage, NsregError } from '../../errors.js';
import type { Election, SharedStore, StoreConfig, ZoneMirror } from './contract.js';
import { LeaseElection } from './election.js';
import { ResponseTooLargeError, StoreUnavailableError } from './errors.js';
import { zoneNamespacePrefix, zonesPrefix } from './layout.js';
import { openZoneMirror, type EtcdZoneMirror } from './mirror.js';

export type EtcdStoreConfig = Extract<StoreConfig, { readonly type: 'etcd' }>;

/** The largest message the client accepts (a snapshot page or a batch of watch events). */
const MAX_RECEIVE_BYTES = 64 * 1024 * 1024;
/** How long, at most, an endpoint that failed is passed over when there are others. */
const HOST_PAUSE_MAX_MS = 1000;
/** gRPC keepalive pings on idle connections: etcd refuses pings more often than every 5 s. */
const KEEPALIVE_MS = 10_000;

type FaultHandling = NonNullable<IOptions['faultHandling']>;
type Policy = NonNullable<FaultHandling['global']>;
type Backoff = NonNullable<FaultHandling['watchBackoff']>;

type CallOptions = Exclude<NonNullable<IOptions['defaultCallOptions']>, (...args: never[]) => unknown>;
type Interceptor = NonNullable<CallOptions['interceptors']>[number];
type Call = ReturnType<Interceptor>;

/**
 * Marks every call as one that needs a member with a raft leader (the
 * "hasleader" metadata etcd's Go client sends for WithRequireLeader): a
 * member without one refuses unary calls at once (the client moves to
 * another endpoint) and, after a few election timeouts, ends the watch and
 * keep-alive streams held on it. Without it, a watch on a member cut off
 * from the quorum would stay open and silently see nothing.
 */
const requireLeader: Interceptor = (options, nextCall) => {
  const call = nextCall(options);
  // gRPC needs only the interface; InterceptingCall is the class the type names.
  const delegate: Record<keyof Call, unknown> & Pick<Call, 'start'> = {
    start(metadata, listener) {
      metadata.set('hasleader', 'true');
      call.start(metadata, listener);
    },
    cancelWithStatus: (status: Parameters<Call['cancelWithStatus']>[0], details: string) => call.cancelWithStatus(status, details),
    getPeer: () => call.getPeer(),
    sendMessageWithContext: (context: Parameters<Call['sendMessageWithContext']>[0], message: unknown) => call.sendMessageWithContext(context, message),
    sendMessage: (message: unknown) => call.sendMessage(message),
    startRead: () => call.startRead(),
    halfClose: () => call.halfClose(),
    getAuthContext: () => call.getAuthContext(),
  };
  return delegate as unknown as Call;
};

const noEvent = (): { dispose(): void } => ({ dispose: () => undefined });
const neverAborted = new AbortController().signal;

/** A call blocked because its endpoint failed a moment ago (not recoverable: the pool moves on). */
class EndpointPausedError extends Error {}

/**
 * gRPC's own refusal of an answer above its receive limit (status
 * RESOURCE_EXHAUSTED, raised by the client, not by etcd). etcd3 counts every
 * RESOURCE_EXHAUSTED as an endpoint's failure; this one is the reader's,
 * and asking another endpoint gets the same answer.
 */
function isTooLargeForClient(err: unknown): boolean {
  return err instanceof GRPCResourceExhastedError && err.message.includes('larger than max');
}

/** A failure that says the endpoint is unwell (etcd3's recoverable errors, less the answer-too-large one). */
function isEndpointFailure(err: unknown): err is Error {
  return err instanceof Error && isRecoverableError(err) && !isTooLargeForClient(err);
}

/**
 * Runs each call, at most `attempts` times in all while it fails with a
 * recoverable (connection-level) error. A call that ran out of its
 * deadline is not tried again: the deadline is the operation's whole
 * budget, and its caller has given up by then.
 */
export function retryPolicy(attempts: number): Policy {
  return {
    _altReturn: undefined as never,
    onSuccess: noEvent,
    onFailure: noEvent,
    async execute(fn, signal) {
      let last: unknown;
      for (let i = 0; i < attempts; i++) {
        try {
          return await fn({ signal: signal ?? neverAborted });
        } catch (err) {
          if (!isEndpointFailure(err) || err instanceof GRPCDeadlineExceededError) throw err;
          last = err;
        }
      }
      throw last;
    },
  };
}

/** Passes an endpoint over for `pauseMs` after a recoverable failure (a small circuit breaker). */
export function pausePolicy(pauseMs: number): Policy {
  let pausedUntil = 0;
  return {
    _altReturn: undefined as never,
    onSuccess: noEvent,
    onFailure: noEvent,
    async execute(fn, signal) {
      if (Date.now() < pausedUntil) throw new EndpointPausedError('endpoint paused after a failure');
      try {
        return await fn({ signal: signal ?? neverAborted });
      } catch (err) {
        if (isEndpointFailure(err)) pausedUntil = Date.now() + pauseMs;
        throw err;
      }
    },
  };
}

const passThrough: Policy = {
  _altReturn: undefined as never,
  onSuccess: noEvent,
  onFailure: noEvent,
  execute: async (fn, signal) => fn({ signal: signal ?? neverAborted }),
};

/** A constant pause between attempts to re-establish a watch stream. */
function constantBackoff(ms: number): Backoff {
  const b: Backoff = { duration: ms, next: () => b };
  return b;
}

/** The etcd3 client options for `config` (TLS material as Buffers; secrets only in memory). */
function clientOptions(config: EtcdStoreConfig): IOptions {
  const { tls } = config;
  const pause = Math.min(HOST_PAUSE_MAX_MS, Math.max(100, Math.floor(config.leaseMs / 2)));
  const options: IOptions = {
    hosts: [...config.endpoints],
    dialTimeout: config.timeoutMs,
    grpcOptions: {
      'grpc.max_receive_message_length': MAX_RECEIVE_BYTES,
      // A member that comes back is dialled again within a second, not after gRPC's default two minutes.
      'grpc.initial_reconnect_backoff_ms': 100,
      'grpc.max_reconnect_backoff_ms': 1000,
      'grpc.keepalive_time_ms': KEEPALIVE_MS,
      'grpc.keepalive_timeout_ms': config.timeoutMs,
    },
    // Unary calls end at the store timeout; streams (watches, keep-alives) are long-lived.
    defaultCallOptions: (context) =>
      context.isStream ? { interceptors: [requireLeader] } : { deadline: Date.now() + config.timeoutMs, interceptors: [requireLeader] },
    faultHandling: {
      host: () => (config.endpoints.length > 1 ? pausePolicy(pause) : passThrough),
      global: retryPolicy(Math.max(2, config.endpoints.length)),
      watchBackoff: constantBackoff(Math.min(1000, config.leaseMs)),
    },
  };
  if (tls !== undefined && (tls.ca !== undefined || tls.cert !== undefined || tls.key !== undefined)) {
    options.credentials = {
      // gRPC uses the system's roots when there is no CA (etcd3's type wants a Buffer, gRPC takes null).
      rootCertificate: tls.ca === undefined ? (null as unknown as Buffer) : Buffer.from(tls.ca),
      ...(tls.key === undefined ? {} : { privateKey: Buffer.from(tls.key) }),
      ...(tls.cert === undefined ? {} : { certChain: Buffer.from(tls.cert) }),
    };
  }
  if (config.username !== undefined) options.auth = { username: config.username, password: config.password ?? '' };
  return options;
}

/** What may be logged of the configuration: never the password or the TLS key. */
function describe(config: EtcdStoreConfig): Record<string, unknown> {
  return {
    endpoints: config.endpoints,
    prefix: config.prefix,
    tls: config.tls !== undefined,
    clientCertificate: config.tls?.cert !== undefined,
    username: config.username,
    timeoutMs: config.timeoutMs,
    leaseMs: config.leaseMs,
  };
}

class EtcdStore implements SharedStore {
  readonly #client: Etcd3;
  readonly #config: EtcdStoreConfig;
  readonly #log: Logger;
  readonly #namespaces = new Map<string, Namespace>();
  readonly #mirrors = new Map<string, Promise<EtcdZoneMirror>>();
  readonly #elections = new Set<LeaseElection>();
  #healthy = true;
  /** Set once the first read answered (openSharedStore). */
  siteId = '';
  #probe: NodeJS.Timeout | undefined;
  #closed = false;

  constructor(client: Etcd3, config: EtcdStoreConfig, log: Logger) {
    this.#client = client;
    this.#config = config;
    this.#log = log;
  }

  get healthy(): boolean {
    return this.#healthy;
  }

  zoneNamespace(zone: string): Namespace {
    const prefix = zoneNamespacePrefix(this.#config.prefix, zone);
    let ns = this.#namespaces.get(prefix);
    if (ns === undefined) {
      ns = this.#client.namespace(prefix);
      this.#namespaces.set(prefix, ns);
    }
    return ns;
  }

  async run<T>(what: string, op: () => Promise<T>): Promise<T> {
    if (this.#closed) throw new StoreUnavailableError(`${what}: the store is closed`);
    const ms = this.#config.timeoutMs;
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new StoreUnavailableError(`${what}: etcd did not answer within ${ms} ms`)), ms);
    });
    const pending = Promise.resolve().then(op);
    // Once the timeout has won, a late failure of the operation must not surface as unhandled.
    pending.catch(() => undefined);
    try {
      const value = await Promise.race([pending, timeout]);
      this.#succeeded();
      return value;
    } catch (err) {
      if (err instanceof StoreUnavailableError) {
        this.#failed(err);
        throw err;
      }
      // Our own errors (a value the layout refuses, a refusal) say nothing about etcd.
      if (err instanceof NsregError) throw err;
      if (isTooLargeForClient(err)) throw new ResponseTooLargeError(`${what}: ${errorMessage(err)}`, { cause: err });
      const e = new StoreUnavailableError(`${what}: ${errorMessage(err)}`, { cause: err });
      this.#failed(e);
      throw e;
    } finally {
      clearTimeout(timer);
    }
  }

  mirror(zone: string): Promise<ZoneMirror> {
    if (this.#closed) return Promise.reject(new StoreUnavailableError(`mirror of ${zone}: the store is closed`));
    const ns = this.zoneNamespace(zone);
    const key = zoneNamespacePrefix(this.#config.prefix, zone);
    let opened = this.#mirrors.get(key);
    if (opened === undefined) {
      opened = openZoneMirror({
        zone,
        namespace: ns,
        run: (what, op) => this.run(what, op),
        logger: this.#log.child({ zone }),
        timeoutMs: this.#config.timeoutMs,
      });
      this.#mirrors.set(key, opened);
      // A mirror that could not load is tried afresh on the next call.
      opened.catch(() => this.#mirrors.delete(key));
    }
    return opened;
  }

  election(zone: string, instanceId: string): Election {
    if (this.#closed) throw new StoreUnavailableError(`election of ${zone}: the store is closed`);
    const election = new LeaseElection({
      namespace: this.zoneNamespace(zone),
      instanceId,
      leaseMs: this.#config.leaseMs,
      timeoutMs: this.#config.timeoutMs,
      logger: this.#log.child({ zone, election: instanceId }),
      onClose: () => this.#elections.delete(election),
    });
    this.#elections.add(election);
    return election;
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    clearInterval(this.#probe);
    this.#probe = undefined;
    await Promise.allSettled([...this.#elections].map((e) => e.close()));
    const mirrors = await Promise.allSettled(this.#mirrors.values());
    for (const m of mirrors) if (m.status === 'fulfilled') await m.value.close();
    this.#mirrors.clear();
    this.#client.close();
  }

  #succeeded(): void {
    if (this.#healthy) return;
    this.#healthy = true;
    clearInterval(this.#probe);
    this.#probe = undefined;
    this.#log.info('etcd answers again');
  }

  #failed(err: StoreUnavailableError): void {
    if (!this.#healthy || this.#closed) return;
    this.#healthy = false;
    this.#log.warn({ err }, 'etcd is unavailable: requests get SERVFAIL until it answers again');
    // While unhealthy, a cheap read every lease period notices the quorum coming back.
    this.#probe = setInterval(() => {
      this.run('health check', () => this.#client.get(zonesPrefix(this.#config.prefix)).exists()).catch(() => undefined);
    }, this.#config.leaseMs);
    this.#probe.unref();
  }
}

/**
 * One site's name: the same for every daemon on one etcd cluster and
 * prefix, different for another cluster or prefix. nsregc compares it to
 * tell another daemon of its site from another service (README, "Running
 * nsregc").
 */
function siteIdOf(clusterId: string, prefix: string): string {
  return createHash('sha256').update(`${clusterId}\0${prefix}`).digest('hex').slice(0, 16);
}

/**
 * Connects to etcd and checks that it answers (a bounded read under the
 * prefix); rejects with StoreUnavailableError naming the endpoints
 * otherwise. `config` must be the etcd kind.
 */
export async function openSharedStore(config: StoreConfig, logger: Logger): Promise<SharedStore> {
  if (config.type !== 'etcd') throw new TypeError(`openSharedStore needs an etcd store configuration, got type ${config.type}`);
  const log = logger.child({ component: 'etcd' });
  const client = new Etcd3(clientOptions(config));
  const store = new EtcdStore(client, config, log);
  try {
    const first = await store.run('first read', () => client.get(zonesPrefix(config.prefix)).exec());
    store.siteId = siteIdOf(first.header.cluster_id, config.prefix);
  } catch (err) {
    await store.close();
    throw new StoreUnavailableError(`cannot use etcd at ${config.endpoints.join(', ')}: ${errorMessage(err)}`, { cause: err });
  }
  log.info(describe(config), 'connected to etcd');
  return store;
}
