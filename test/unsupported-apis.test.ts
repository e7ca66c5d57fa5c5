// A client that asks for an API Runnel does not serve gets Kafka's UNSUPPORTED_VERSION answer in
// that API's own schema where one can be encoded, the connection stays open, and the node logs the
// API once (docs/protocol.md, "Who answers what"). A key no Kafka knows is closed, as Kafka does.
// Raw requests against a real `runnel start`.
import { describe, expect, it } from 'vitest';
import { ApiKey, decodeResponse, encodeRequest, ErrorCode } from '@runnel/protocol';
import { RawKafka } from './helpers/raw-kafka.ts';
import { suiteBroker } from './helpers/suite-broker.ts';

const broker = suiteBroker();

const header = (apiKey: number, apiVersion: number, correlationId: number) => ({ apiKey, apiVersion, correlationId, clientId: 'unsupported-test' }) as never;

describe('APIs Runnel does not serve', () => {
  it('EndTxn v5, ListTransactions v2 and SaslHandshake (no SASL listener) answer UNSUPPORTED_VERSION in their own schema (the ACL APIs, served, answer SECURITY_DISABLED without an authorizer); the connection stays open', async () => {
    const conn = await RawKafka.open(broker().port);
    try {
      conn.send(
        // Versions past what the transaction coordinator serves (KIP-890 part 2's EndTxn v5, KIP-1152's ListTransactions v2).
        encodeRequest(header(ApiKey.EndTxn, 5, 1), { transactionalId: 'tx', producerId: 1n, producerEpoch: 0, committed: true } as never),
        encodeRequest(header(ApiKey.ListTransactions, 2, 2), { stateFilters: [], producerIdFilters: [], durationFilter: -1n, transactionalIdPattern: null } as never),
        encodeRequest(header(ApiKey.DescribeAcls, 2, 3), { resourceTypeFilter: 1, resourceNameFilter: null, patternTypeFilter: 1, principalFilter: null, hostFilter: null, operation: 1, permissionType: 1 } as never),
        encodeRequest(header(ApiKey.CreateAcls, 3, 4), { creations: [1, 2].map((i) => ({ resourceType: 2, resourceName: `t${i}`, resourcePatternType: 3, principal: 'User:a', host: '*', operation: 3, permissionType: 3 })) } as never),
        encodeRequest(header(ApiKey.DeleteAcls, 1, 5), { filters: [{ resourceTypeFilter: 1, resourceNameFilter: null, patternTypeFilter: 1, principalFilter: null, hostFilter: null, operation: 1, permissionType: 1 }] } as never),
        // Still served after the refusals, on the same connection.
        encodeRequest(header(ApiKey.Metadata, 9, 6), { topics: [], allowAutoTopicCreation: false, includeClusterAuthorizedOperations: false, includeTopicAuthorizedOperations: false } as never),
        // Served only by a node with a SASL_* listener; this one has PLAINTEXT only.
        encodeRequest(header(ApiKey.SaslHandshake, 1, 7), { mechanism: 'PLAIN' } as never),
      );
      const frames = await conn.waitFrames(7);
      const body = (api: number, version: number, i: number) => {
        const r = decodeResponse(api as never, version, frames[i]!);
        expect(r.correlationId).toBe(i + 1);
        return r.body as Record<string, unknown>;
      };
      expect(body(ApiKey.EndTxn, 5, 0)).toMatchObject({ errorCode: ErrorCode.UNSUPPORTED_VERSION });
      expect(body(ApiKey.ListTransactions, 2, 1)).toMatchObject({ errorCode: ErrorCode.UNSUPPORTED_VERSION, transactionStates: [] });
      // Served since issue 16, as Kafka without authorizer.class.name: SECURITY_DISABLED in the same shapes.
      expect(body(ApiKey.DescribeAcls, 2, 2)).toMatchObject({ errorCode: ErrorCode.SECURITY_DISABLED, resources: [] });
      expect(body(ApiKey.CreateAcls, 3, 3)).toMatchObject({ results: [1, 2].map(() => ({ errorCode: ErrorCode.SECURITY_DISABLED })) });
      expect(body(ApiKey.DeleteAcls, 1, 4)).toMatchObject({ filterResults: [{ errorCode: ErrorCode.SECURITY_DISABLED, matchingAcls: [] }] });
      expect(body(ApiKey.Metadata, 9, 5)).toHaveProperty('brokers');
      expect(body(ApiKey.SaslHandshake, 1, 6)).toEqual({ errorCode: ErrorCode.UNSUPPORTED_VERSION, mechanisms: [] });
      expect(conn.isClosed).toBe(false);
    } finally {
      conn.close();
    }
  });

  it('logs "unsupported API <name> (key N) vN from <client id>" once per key', async () => {
    for (let i = 0; i < 2; i++) {
      const conn = await RawKafka.open(broker().port);
      conn.send(encodeRequest(header(ApiKey.EndTxn, 5, 1), { transactionalId: 'tx', producerId: 1n, producerEpoch: 0, committed: false } as never));
      await conn.waitFrames(1);
      conn.close();
    }
    await broker().process.waitFor(/unsupported API ListTransactions \(key 66\) v2 from unsupported-test/, 5_000);
    const lines = broker().process.output().split('\n').filter((l) => l.includes('unsupported API EndTxn (key 26)'));
    expect(lines).toHaveLength(1);
    expect(lines[0]).toContain('unsupported API EndTxn (key 26) v5 from unsupported-test');
  });

  it('a key no Kafka knows closes the connection (as Kafka does: no schema to answer in), and is logged', async () => {
    const conn = await RawKafka.open(broker().port);
    const frame = encodeRequest(header(ApiKey.Metadata, 1, 1), { topics: [] } as never);
    frame.writeInt16BE(999, 4);
    conn.send(frame);
    expect(await conn.closedWithin(5_000)).toBe(true);
    expect(conn.frames).toEqual([]);
    await broker().process.waitFor(/unsupported API Unknown\(999\) \(key 999\) v1 from unsupported-test/, 5_000);
  });
});
