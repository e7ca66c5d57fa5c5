import { ANONYMOUS, type Handler } from '@runnel/kafka-server';
import { decodeRequest, decodeResponse, encodeRequest, encodeResponse, type DecodedResponses, type RequestInputs, type SupportedApiKey } from '@runnel/protocol';

/**
 * Calls a handler the way the listener does: the request is encoded to bytes and decoded again
 * with @runnel/protocol, and the response is encoded and decoded, so field names, versions and
 * nullability are checked against the real codec.
 */
export async function callHandler<K extends SupportedApiKey>(handlers: Handler[], apiKey: K, apiVersion: number, body: RequestInputs[K], clientId = 'tester'): Promise<DecodedResponses[K]> {
  const frame = encodeRequest({ apiKey, apiVersion, correlationId: 42, clientId } as never, body as never).subarray(4);
  const req = decodeRequest(frame);
  const h = handlers.find((x) => x.api === apiKey);
  if (!h) throw new Error(`no handler for api ${apiKey}`);
  if (apiVersion < h.versions[0] || apiVersion > h.versions[1]) throw new Error(`v${apiVersion} not served`);
  const res = await h.handle(req.body, { header: req.header, connectionId: 1, clientAddress: '127.0.0.1:50123', receivedAt: 0, principal: ANONYMOUS, securityProtocol: 'PLAINTEXT', clientHost: '127.0.0.1' });
  const out = encodeResponse(apiKey as number, apiVersion, 42, res as object);
  return decodeResponse(apiKey, apiVersion, out.subarray(4)).body as DecodedResponses[K];
}
