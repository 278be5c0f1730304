/**
 * The ceiling the daemon is measured against: bare `crypto.verify` of a
 * P-384 signature over about a registration update's signed data, in this
 * process, sync on one thread and async on libuv's thread pool (16 in
 * flight), with the process CPU (all threads) each verification costs.
 */
import { generateKeyPairSync, randomBytes, sign as cryptoSign, verify as cryptoVerify } from 'node:crypto';
import { cpuUsage } from 'node:process';

export interface RawRates {
  /** Verifications per second, sync, one thread. */
  sync: number;
  /** Verifications per second, async on the pool. */
  async: number;
  /** Process CPU per async verification, ms (pool threads and the main thread's share). */
  asyncCpuMs: number;
}

const IN_FLIGHT = 16;

export async function rawVerify(seconds: number): Promise<RawRates> {
  const { privateKey, publicKey } = generateKeyPairSync('ec', { namedCurve: 'P-384' });
  const data = randomBytes(260);
  const sig = cryptoSign('sha384', data, { key: privateKey, dsaEncoding: 'ieee-p1363' });
  const key = { key: publicKey, dsaEncoding: 'ieee-p1363' as const };
  let n = 0;
  let t0 = performance.now();
  while (performance.now() - t0 < seconds * 1000) {
    if (!cryptoVerify('sha384', data, key, sig)) throw new Error('raw verify failed');
    n++;
  }
  const sync = n / ((performance.now() - t0) / 1000);
  let done = 0;
  let stop = false;
  const cpu0 = cpuUsage();
  t0 = performance.now();
  await new Promise<void>((resolve, reject) => {
    let running = 0;
    const launch = (): void => {
      running++;
      cryptoVerify('sha384', data, key, sig, (err, ok) => {
        running--;
        if (err !== null || !ok) {
          stop = true;
          reject(err ?? new Error('raw async verify failed'));
          return;
        }
        done++;
        if (!stop && performance.now() - t0 >= seconds * 1000) stop = true;
        if (!stop) launch();
        else if (running === 0) resolve();
      });
    };
    for (let i = 0; i < IN_FLIGHT; i++) launch();
  });
  const elapsed = (performance.now() - t0) / 1000;
  const cpu = cpuUsage(cpu0);
  return { sync, async: done / elapsed, asyncCpuMs: (cpu.user + cpu.system) / 1000 / done };
}
