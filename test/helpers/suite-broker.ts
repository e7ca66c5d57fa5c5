/**
 * One `runnel start` shared by the tests of a file or `describe` block: started in `beforeAll`,
 * stopped and its data deleted in `afterAll`. Kept apart from broker.ts because that one is also
 * imported outside vitest (test/fixtures/record-requests.ts), where the hooks do not exist.
 */
import { afterAll, beforeAll } from 'vitest';
import { startBroker, type TestBroker } from './broker.ts';

/** Registers the hooks where it is called; the returned function gives the broker inside tests. */
export function suiteBroker(options: Parameters<typeof startBroker>[0] = {}): () => TestBroker {
  let broker: TestBroker | undefined;
  beforeAll(async () => {
    broker = await startBroker(options);
  }, 60_000);
  afterAll(async () => {
    await broker?.cleanup();
  });
  return () => {
    if (!broker) throw new Error('the suite broker is used before beforeAll started it');
    return broker;
  };
}
