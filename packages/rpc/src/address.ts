import { RpcError } from './errors.ts';
import type { Address } from './methods.ts';

/**
 * 'host:port' → { host, port }. IPv6 hosts are written in brackets ('[::1]:9000'). Port 0 is
 * allowed (a listener asking for an ephemeral port).
 */
export function parseAddress(s: string): Address {
  const match = /^(?:\[([^\]]+)\]|([^:\s]+)):(\d{1,5})$/.exec(s.trim());
  const port = match === null ? NaN : Number(match[3]);
  if (match === null || port > 65535) {
    throw new RpcError('BAD_ADDRESS', `not a host:port address: '${s}'`);
  }
  return { host: match[1] ?? match[2], port };
}

export function formatAddress(a: Address): string {
  return a.host.includes(':') ? `[${a.host}]:${a.port}` : `${a.host}:${a.port}`;
}
