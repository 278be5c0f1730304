/** A LocalAddress for address-source and policy tests: eth0 (index 2), /24 or /64, lifetimes forever. */
import { LIFETIME_FOREVER, type LocalAddress } from '../../src/client/addresses/source.js';

export function localAddress(address: string, flags: number, over: Partial<LocalAddress> = {}): LocalAddress {
  return {
    address,
    family: address.includes(':') ? 6 : 4,
    ifindex: 2,
    ifname: 'eth0',
    prefixLen: address.includes(':') ? 64 : 24,
    flags,
    validLifetime: LIFETIME_FOREVER,
    preferredLifetime: LIFETIME_FOREVER,
    ...over,
  };
}
