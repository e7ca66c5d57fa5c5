// The image's HEALTHCHECK, plain JavaScript with no dependencies (it runs in the image's Node 24).
//
//   node deploy/healthcheck.mjs                    every listener in $KAFKA_LISTENERS answers ApiVersions,
//                                                  except those named in $KAFKA_CONTROLLER_LISTENER_NAMES
//                                                  (Runnel never binds them: its controller speaks RPC)
//   node deploy/healthcheck.mjs kafka HOST:PORT    that Kafka listener answers ApiVersions
//   node deploy/healthcheck.mjs tcp HOST:PORT      something accepts TCP connections there (the
//                                                  controller: its protobuf RPC port has no Kafka listener)
//
// ApiVersions v0 rather than a bare TCP connect: a listener that accepts connections but cannot
// answer (a wedged event loop) is unhealthy. Exit 0 when healthy, 1 with one line on stderr when not.
import { connect } from 'node:net';

const TIMEOUT_MS = 3_000;

/**
 * `INTERNAL://0.0.0.0:19092,EXTERNAL://:9092` -> [{host, port}], wildcard hosts probed on loopback;
 * the listeners named in `skip` (controller listeners, upper case) are left out.
 */
function listenerAddresses(text, skip) {
  return text.split(',').map((s) => s.trim()).filter(Boolean).flatMap((l) => {
    const m = /^([A-Za-z0-9_]+):\/\/(\[[^\]]*\]|[^:]*):(\d+)$/.exec(l);
    if (!m) throw new Error(`cannot read listener ${JSON.stringify(l)}`);
    return skip.includes(m[1].toUpperCase()) ? [] : [{ host: local(m[2]), port: Number(m[3]) }];
  });
}

function hostPort(text) {
  const m = /^(\[[^\]]*\]|[^:]*):(\d+)$/.exec(text ?? '');
  if (!m) throw new Error(`expected HOST:PORT, got ${JSON.stringify(text)}`);
  return { host: local(m[1]), port: Number(m[2]) };
}

function local(host) {
  return host === '' || host === '0.0.0.0' || host === '[::]' ? '127.0.0.1' : host.replace(/^\[|\]$/g, '');
}

/** Resolves once a connection to host:port is open; the caller ends it. */
function open(host, port) {
  return new Promise((resolve, reject) => {
    const socket = connect({ host, port });
    socket.setTimeout(TIMEOUT_MS, () => socket.destroy(new Error(`${host}:${port}: no answer within ${TIMEOUT_MS} ms`)));
    socket.once('connect', () => resolve(socket));
    socket.once('error', (e) => reject(new Error(`${host}:${port}: ${e.message}`)));
  });
}

async function tcp({ host, port }) {
  (await open(host, port)).destroy();
}

/** Sends ApiVersions v0 and requires a response with our correlation id and error code 0. */
async function apiVersions({ host, port }) {
  const socket = await open(host, port);
  const clientId = Buffer.from('runnel-healthcheck');
  const body = Buffer.alloc(2 + 2 + 4 + 2 + clientId.length);
  body.writeInt16BE(18, 0); // api_key ApiVersions
  body.writeInt16BE(0, 2); // api_version 0
  body.writeInt32BE(0x4845414c, 4); // correlation_id
  body.writeInt16BE(clientId.length, 8);
  clientId.copy(body, 10);
  const size = Buffer.alloc(4);
  size.writeInt32BE(body.length);
  socket.write(Buffer.concat([size, body]));
  return new Promise((resolve, reject) => {
    let got = Buffer.alloc(0);
    socket.on('data', (chunk) => {
      got = Buffer.concat([got, chunk]);
      if (got.length < 10) return;
      socket.destroy();
      const correlation = got.readInt32BE(4);
      const error = got.readInt16BE(8);
      if (correlation !== 0x4845414c) reject(new Error(`${host}:${port}: ApiVersions answered with correlation id ${correlation}`));
      else if (error !== 0) reject(new Error(`${host}:${port}: ApiVersions answered error code ${error}`));
      else resolve();
    });
    socket.once('error', (e) => reject(new Error(`${host}:${port}: ${e.message}`)));
    socket.once('close', () => reject(new Error(`${host}:${port}: connection closed before an ApiVersions response`)));
  });
}

try {
  const [mode, target] = process.argv.slice(2);
  if (mode === undefined) {
    const listeners = process.env.KAFKA_LISTENERS;
    if (!listeners) throw new Error('KAFKA_LISTENERS is not set; pass `kafka HOST:PORT` or `tcp HOST:PORT`');
    // The pattern of Kafka's images lists a CONTROLLER listener too; Runnel does not bind it.
    const controllers = (process.env.KAFKA_CONTROLLER_LISTENER_NAMES ?? '').split(',').map((n) => n.trim().toUpperCase()).filter(Boolean);
    const addresses = listenerAddresses(listeners, controllers);
    if (addresses.length === 0) throw new Error('KAFKA_LISTENERS has only controller listeners; pass `tcp HOST:PORT` for a controller');
    for (const address of addresses) await apiVersions(address);
  } else if (mode === 'kafka') {
    await apiVersions(hostPort(target));
  } else if (mode === 'tcp') {
    await tcp(hostPort(target));
  } else {
    throw new Error(`unknown mode ${JSON.stringify(mode)} (expected kafka or tcp)`);
  }
  process.exit(0);
} catch (e) {
  process.stderr.write(`unhealthy: ${e.message}\n`);
  process.exit(1);
}
