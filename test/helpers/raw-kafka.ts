/**
 * A raw Kafka connection for hostile-input tests: it writes any bytes (well-formed requests from
 * @runnel/protocol or deliberately broken frames) and splits what comes back into response frames,
 * so a test can check both the answers and whether the broker closed the connection; and
 * `kafkaRequest`, one well-formed request and its decoded answer.
 */
import { connect, type Socket } from 'node:net';
import { decodeResponse, encodeRequest, type DecodedResponses, type RequestInputs, type SupportedApiKey } from '@runnel/protocol';

export class RawKafka {
  readonly socket: Socket;
  readonly frames: Buffer[] = [];
  readonly closed: Promise<void>;
  #isClosed = false;
  #buf: Buffer = Buffer.alloc(0);
  #waiters: (() => void)[] = [];

  private constructor(socket: Socket) {
    this.socket = socket;
    socket.on('error', () => {});
    socket.on('data', (d: Buffer) => {
      this.#buf = this.#buf.length === 0 ? d : Buffer.concat([this.#buf, d]);
      while (this.#buf.length >= 4 && this.#buf.length >= 4 + this.#buf.readInt32BE(0)) {
        const n = this.#buf.readInt32BE(0);
        this.frames.push(this.#buf.subarray(4, 4 + n));
        this.#buf = this.#buf.subarray(4 + n);
      }
      this.#wake();
    });
    this.closed = new Promise((resolve) => socket.on('close', () => {
      this.#isClosed = true;
      this.#wake();
      resolve();
    }));
  }

  static open(port: number): Promise<RawKafka> {
    return new Promise((resolve, reject) => {
      const socket = connect(port, '127.0.0.1', () => resolve(new RawKafka(socket)));
      socket.once('error', reject);
    });
  }

  get isClosed(): boolean {
    return this.#isClosed;
  }

  send(...chunks: Buffer[]): void {
    for (const c of chunks) this.socket.write(c);
  }

  /** Waits for `n` response frames in total; rejects if the connection closes first or on deadline. */
  async waitFrames(n: number, timeoutMs = 10_000): Promise<Buffer[]> {
    const deadline = Date.now() + timeoutMs;
    while (this.frames.length < n) {
      if (this.#isClosed) throw new Error(`connection closed after ${this.frames.length} of ${n} responses`);
      if (Date.now() > deadline) throw new Error(`only ${this.frames.length} of ${n} responses within ${timeoutMs} ms`);
      await new Promise<void>((resolve) => {
        this.#waiters.push(resolve);
        setTimeout(resolve, 50);
      });
    }
    return this.frames.slice(0, n);
  }

  /** Resolves true if the broker closes the connection within `timeoutMs`. */
  async closedWithin(timeoutMs: number): Promise<boolean> {
    return Promise.race([this.closed.then(() => true), new Promise<boolean>((r) => setTimeout(() => r(false), timeoutMs))]);
  }

  close(): void {
    this.socket.destroy();
  }

  #wake(): void {
    for (const w of this.#waiters.splice(0)) w();
  }
}

/** One request on a fresh connection to 127.0.0.1:`port`, and its decoded response body. */
export async function kafkaRequest<K extends SupportedApiKey>(port: number, apiKey: K, apiVersion: number, body: RequestInputs[K]): Promise<DecodedResponses[K]> {
  const conn = await RawKafka.open(port);
  try {
    conn.send(encodeRequest({ apiKey, apiVersion, correlationId: 1, clientId: 'runnel-test' } as never, body as never));
    const [frame] = await conn.waitFrames(1);
    return decodeResponse(apiKey, apiVersion, frame!).body;
  } finally {
    conn.close();
  }
}
