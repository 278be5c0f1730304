/** Ephemeral loopback ports for test servers that cannot bind port 0 themselves. */

import * as dgram from 'node:dgram';
import { once } from 'node:events';
import * as net from 'node:net';

/**
 * A port number free for both TCP and UDP on `host` at the time of the call.
 * DNS servers listen on both, so a port is only offered once the UDP bind of
 * the same number succeeded too. Another process may still take it before the
 * caller binds; callers that can detect "address in use" should retry.
 */
export async function freePort(host = '127.0.0.1'): Promise<number> {
  for (let attempt = 0; attempt < 50; attempt++) {
    const server = net.createServer();
    server.listen(0, host);
    await once(server, 'listening');
    const { port } = server.address() as net.AddressInfo;
    const udp = dgram.createSocket(net.isIPv6(host) ? 'udp6' : 'udp4');
    const udpFree = await new Promise<boolean>((resolve) => {
      udp.once('error', () => resolve(false));
      udp.bind(port, host, () => resolve(true));
    });
    if (udpFree) {
      await new Promise<void>((r) => udp.close(() => r()));
    } else {
      try {
        udp.close();
      } catch {
        // A socket whose bind failed may already be closed.
      }
    }
    await new Promise<void>((r) => server.close(() => r()));
    if (udpFree) return port;
  }
  throw new Error(`no port free for both TCP and UDP on ${host} after 50 attempts`);
}
