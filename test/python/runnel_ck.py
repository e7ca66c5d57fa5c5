"""runnel_ck: drives a Kafka-compatible broker with confluent-kafka-python (librdkafka) for Runnel's
end-to-end tests (test/helpers/ecosystems.ts runs it in the venv test/python/setup.sh makes).

Every subcommand prints JSON lines on stdout (machine-checked) and exits 0 once it has said what
happened, even when the broker refused something: the test decides what is right. Bad arguments
exit 2 (argparse). Each summary line carries "requests": every request librdkafka sent and the
versions it used, read from its `debug=protocol` log ("Sent FetchRequest (v17, ...)").

  produce --bootstrap B --topic T --count N [--compression none|gzip|snappy|lz4|zstd] [--prefix P]
  consume --bootstrap B --topic T --group G [--count N] [--max-ms MS] [--group-protocol classic|consumer]
  admin   --bootstrap B [--topics t1,t2] [--groups g1,g2]
  txn     --bootstrap B --topic T [--transactional-id ID] [--max-ms MS]

`runnel_ck.py kafka-python <subcommand> ...` runs the same subcommands with kafka-python instead
(produce: none or gzip; consume: classic).
"""
import argparse
import json
import logging
import re
import signal
import sys
import threading
import time

from confluent_kafka import Consumer, KafkaError, KafkaException, Producer, TopicCollection
from confluent_kafka.admin import AdminClient, ConfigResource, ResourceType

_out_lock = threading.Lock()


def emit(obj):
    with _out_lock:
        sys.stdout.write(json.dumps(obj, default=str) + "\n")
        sys.stdout.flush()


class SentRequests(logging.Handler):
    """Collects {"Fetch": {17}, ...} from librdkafka's protocol debug lines; passes its warnings
    and errors (syslog levels 0-4) on to stderr."""

    SENT = re.compile(r"Sent (\w+)Request \(v(\d+)")

    def __init__(self):
        super().__init__(logging.DEBUG)
        self.sent = {}
        # Not `self.lock`: logging.Handler.handle() already holds that one around emit() (a deadlock).
        self.sent_lock = threading.Lock()

    def emit(self, record):
        msg = record.getMessage()
        m = self.SENT.search(msg)
        if m:
            with self.sent_lock:
                self.sent.setdefault(m.group(1), set()).add(int(m.group(2)))
        elif record.levelno >= logging.WARNING:
            sys.stderr.write(msg + "\n")

    def requests(self):
        with self.sent_lock:
            return {name: sorted(vs) for name, vs in self.sent.items()}


sent = SentRequests()
_logger = logging.getLogger("librdkafka")
_logger.setLevel(logging.DEBUG)
_logger.addHandler(sent)
_logger.propagate = False


def client_config(bootstrap, **extra):
    conf = {"bootstrap.servers": bootstrap, "debug": "protocol", "logger": _logger}
    conf.update(extra)
    return conf


def err_json(err):
    """A KafkaError (or exception carrying one) as the tests read it."""
    if err is None:
        return None
    if isinstance(err, KafkaException) and err.args and isinstance(err.args[0], KafkaError):
        err = err.args[0]
    if isinstance(err, KafkaError):
        return {"code": err.name(), "errorCode": err.code(), "message": err.str(), "retriable": err.retriable(),
                "fatal": err.fatal(), "txnRequiresAbort": err.txn_requires_abort()}
    return {"message": str(err)}


def produce(a):
    """count records with acks=all and idempotence, values "<prefix>-<i>-" padded with a repeated
    pattern so that every codec shrinks the batch (librdkafka sends a batch uncompressed when
    compression does not help), key "k-<i>", header i=<i>."""
    p = Producer(client_config(a.bootstrap, **{"acks": "all", "enable.idempotence": True,
                                                "compression.type": a.compression, "linger.ms": 5}))
    start = time.monotonic()
    state = {"failed": 0, "error": None, "partitions": {}}

    def delivered(err, msg):
        if err is not None:
            state["failed"] += 1
            state["error"] = state["error"] or err
        else:
            key = str(msg.partition())
            state["partitions"][key] = state["partitions"].get(key, 0) + 1

    pad = "runnel-" * 16
    for i in range(a.count):
        while True:
            try:
                p.produce(a.topic, key=f"k-{i}", value=f"{a.prefix}-{i}-{pad}", headers=[("i", str(i))],
                          on_delivery=delivered)
                break
            except BufferError:
                p.poll(0.1)
        p.poll(0)
    left = p.flush(a.max_ms / 1000)
    emit({"type": "produced", "acked": a.count - state["failed"] - left, "failed": state["failed"] + left,
          "error": err_json(state["error"]), "partitions": state["partitions"], "compression": a.compression,
          "elapsedMs": int((time.monotonic() - start) * 1000), "requests": sent.requests()})


CODECS = ["none", "gzip", "snappy", "lz4", "zstd"]


def commit_sync(consumer):
    """Commits the stored offsets; the error, or None (also when there was nothing to commit)."""
    try:
        consumer.commit(asynchronous=False)
    except KafkaException as e:
        if e.args[0].code() != KafkaError._NO_OFFSET:
            return e
    return None


def consume(a):
    """Joins the group and prints every record as a JSON line, plus assigned/revoked/lost events,
    until count records, SIGTERM or --max-ms; then commits what it read, leaves the group (close)
    and prints {"type":"done",...}. Offsets are stored as records are printed and auto-committed
    every second; "consumer" is KIP-848's protocol (ConsumerGroupHeartbeat)."""
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    conf = client_config(a.bootstrap, **{"group.id": a.group, "group.protocol": a.group_protocol,
                                         "auto.offset.reset": "earliest", "enable.auto.commit": True,
                                         "enable.auto.offset.store": False, "auto.commit.interval.ms": 1000})
    c = Consumer(conf)

    def parts(ps):
        m = {}
        for tp in ps:
            m.setdefault(tp.topic, []).append(tp.partition)
        return {t: sorted(v) for t, v in m.items()}

    def on_assign(consumer, ps):
        emit({"type": "assigned", "partitions": parts(ps)})

    def on_revoke(consumer, ps):
        # What was read from a revoked partition is committed before another member takes it.
        emit({"type": "revoked", "partitions": parts(ps), "commitError": err_json(commit_sync(consumer))})

    def on_lost(consumer, ps):
        emit({"type": "lost", "partitions": parts(ps)})

    c.subscribe([a.topic], on_assign=on_assign, on_revoke=on_revoke, on_lost=on_lost)
    start = time.monotonic()
    deadline = start + a.max_ms / 1000
    n = 0
    last_err = None
    while not stop.is_set() and (a.count == 0 or n < a.count) and time.monotonic() < deadline:
        msg = c.poll(0.2)
        if msg is None:
            continue
        if msg.error():
            if msg.error().code() != KafkaError._PARTITION_EOF:
                last_err = msg.error()
                emit({"type": "error", "topic": msg.topic(), "partition": msg.partition(), "error": err_json(last_err)})
            continue
        key = msg.key()
        emit({"type": "record", "topic": msg.topic(), "partition": msg.partition(), "offset": msg.offset(),
              "key": None if key is None else key.decode(), "value": (msg.value() or b"").decode(),
              "headers": {k: (v or b"").decode() for k, v in (msg.headers() or [])}})
        c.store_offsets(message=msg)
        n += 1
    commit_err = commit_sync(c)
    close_err = None
    try:
        c.close()
    except KafkaException as e:
        close_err = e
    emit({"type": "done", "count": n, "commitError": err_json(commit_err), "leaveError": err_json(close_err),
          "lastError": err_json(last_err), "elapsedMs": int((time.monotonic() - start) * 1000),
          "requests": sent.requests()})


def admin(a):
    """One JSON object: describe_cluster (DescribeCluster), list_topics (Metadata), describe_topics
    with topic ids (DescribeTopicPartitions where the broker has it), describe_configs of each topic
    and of the controller node, list_consumer_groups and describe_consumer_groups. Each part
    carries its own error."""
    adm = AdminClient(client_config(a.bootstrap))
    timeout = a.max_ms / 1000
    result = {"type": "admin"}

    def part(name, fn):
        try:
            result[name] = fn()
        except Exception as e:  # each part reports its own failure; the others still run
            result[name] = {"error": err_json(e)}

    def cluster():
        d = adm.describe_cluster(request_timeout=timeout).result()
        return {"clusterId": d.cluster_id, "controllerId": d.controller.id if d.controller else None,
                "brokers": [{"nodeId": n.id, "host": n.host, "port": n.port, "rack": n.rack} for n in d.nodes]}
    part("cluster", cluster)

    def topics():
        md = adm.list_topics(timeout=timeout)
        return [{"name": t.topic, "partitions": len(t.partitions), "error": err_json(t.error)}
                for t in sorted(md.topics.values(), key=lambda t: t.topic)]
    part("topics", topics)

    names = [t for t in (a.topics.split(",") if a.topics else []) if t]
    if names:
        def described():
            out = []
            for name, f in adm.describe_topics(TopicCollection(names), request_timeout=timeout).items():
                try:
                    d = f.result()
                    # librdkafka prints a Uuid in standard base64 ("+", "/"); Kafka's text (and the
                    # tests') is the URL-safe alphabet: the same 16 bytes.
                    tid = str(d.topic_id).replace("+", "-").replace("/", "_")
                    out.append({"name": d.name, "id": tid, "internal": d.is_internal,
                                "partitions": [{"id": p.id, "leader": p.leader.id if p.leader else None,
                                                "replicas": [r.id for r in p.replicas], "isr": [r.id for r in p.isr]}
                                               for p in d.partitions], "error": None})
                except Exception as e:
                    out.append({"name": name, "error": err_json(e)})
            return sorted(out, key=lambda t: t["name"])
        part("describedTopics", described)

        def configs():
            out = {}
            resources = [ConfigResource(ResourceType.TOPIC, t) for t in names]
            for res, f in adm.describe_configs(resources, request_timeout=timeout).items():
                try:
                    out[res.name] = {k: v.value for k, v in f.result().items()}
                except Exception as e:
                    out[res.name] = {"error": err_json(e)}
            return out
        part("topicConfigs", configs)

    def broker_config():
        node = adm.describe_cluster(request_timeout=timeout).result().controller
        f = adm.describe_configs([ConfigResource(ResourceType.BROKER, str(node.id))], request_timeout=timeout)
        return {"nodeId": node.id, "configs": {k: v.value for k, v in list(f.values())[0].result().items()}}
    part("brokerConfig", broker_config)

    def listed():
        r = adm.list_consumer_groups(request_timeout=timeout).result()
        return {"groups": sorted(g.group_id for g in r.valid), "errors": [err_json(e) for e in r.errors]}
    part("listedGroups", listed)

    groups = [g for g in (a.groups.split(",") if a.groups else []) if g]
    if groups:
        def described_groups():
            out = []
            for name, f in adm.describe_consumer_groups(groups, request_timeout=timeout).items():
                try:
                    g = f.result()
                    out.append({"group": g.group_id, "state": str(g.state), "type": str(getattr(g, "type", "")),
                                "assignor": g.partition_assignor,
                                "members": [{"memberId": m.member_id, "clientId": m.client_id,
                                             "assigned": _parts(m.assignment.topic_partitions if m.assignment else [])}
                                            for m in g.members], "error": None})
                except Exception as e:
                    out.append({"group": name, "error": err_json(e)})
            return out
        part("groups", described_groups)
    while adm.poll(0.1) > 0:  # logs reach the logger only when polled
        pass
    result["requests"] = sent.requests()
    emit(result)


def _parts(ps):
    m = {}
    for tp in ps:
        m.setdefault(tp.topic, []).append(tp.partition)
    return {t: sorted(v) for t, v in m.items()}


def txn(a):
    """init_transactions, then one record in a transaction and a commit."""
    p = Producer(client_config(a.bootstrap, **{"transactional.id": a.transactional_id}))
    start = time.monotonic()
    err = None
    try:
        p.init_transactions(a.max_ms / 1000)
        p.begin_transaction()
        p.produce(a.topic, value=b"in a transaction")
        p.commit_transaction(a.max_ms / 1000)
    except KafkaException as e:
        err = e
    elapsed = int((time.monotonic() - start) * 1000)
    try:
        p.poll(0.1)  # logs reach the logger only when polled
    except KafkaException:
        pass  # the fatal error again, already reported
    emit({"type": "txn", "ok": err is None, "error": err_json(err), "elapsedMs": elapsed, "requests": sent.requests()})


# --- kafka-python: `runnel_ck.py kafka-python <subcommand> ...` ------------------------------------
# The same cases with kafka-python, the pure-Python client (its own protocol code, no librdkafka).
# It negotiates each request's version from the broker's ApiVersions like librdkafka; "requests"
# is read from its debug log ("Request 3: MetadataRequest(version=12, ...)").


class KpSentRequests(SentRequests):
    SENT = re.compile(r"Request \d+: (\w+?)Request\(version=(\d+)")


kp_sent = KpSentRequests()


def _kp_logging():
    lg = logging.getLogger("kafka")
    lg.setLevel(logging.DEBUG)
    lg.addHandler(kp_sent)
    lg.propagate = False


def kp_err_json(err):
    """A kafka.errors exception as the tests read it: Kafka's error name when it is a broker error."""
    if err is None:
        return None
    from kafka import errors as kerrors
    out = {"message": f"{type(err).__name__}: {err}"}
    if isinstance(err, kerrors.BrokerResponseError):
        out.update({"code": err.message, "errorCode": err.errno, "retriable": bool(err.retriable)})
    elif isinstance(err, kerrors.KafkaError):
        out.update({"code": type(err).__name__, "retriable": bool(getattr(err, "retriable", False))})
    return out


def kp_produce(a):
    """The records `produce` sends, through KafkaProducer with acks=all and idempotence."""
    from kafka import KafkaProducer
    if a.compression not in ("none", "gzip"):
        raise SystemExit(f"kafka-python produce: --compression {a.compression} needs an extra package; none or gzip")
    start = time.monotonic()
    p = KafkaProducer(bootstrap_servers=a.bootstrap.split(","), acks="all", enable_idempotence=True, linger_ms=5,
                      compression_type=None if a.compression == "none" else a.compression, max_block_ms=a.max_ms)
    pad = "runnel-" * 16
    futures = [p.send(a.topic, key=f"k-{i}".encode(), value=f"{a.prefix}-{i}-{pad}".encode(), headers=[("i", str(i).encode())])
               for i in range(a.count)]
    p.flush(timeout=a.max_ms / 1000)
    state = {"failed": 0, "error": None, "partitions": {}}
    for f in futures:
        try:
            md = f.get(timeout=0)
            state["partitions"][str(md.partition)] = state["partitions"].get(str(md.partition), 0) + 1
        except Exception as e:  # noqa: BLE001 - each failure is reported, the test decides
            state["failed"] += 1
            state["error"] = state["error"] or e
    p.close(timeout=5)
    emit({"type": "produced", "acked": a.count - state["failed"], "failed": state["failed"], "error": kp_err_json(state["error"]),
          "partitions": state["partitions"], "compression": a.compression,
          "elapsedMs": int((time.monotonic() - start) * 1000), "requests": kp_sent.requests()})


def kp_consume(a):
    """Joins the group (classic protocol) from the earliest offset, prints every record until
    count records, SIGTERM or --max-ms; then commits, leaves (close) and prints the summary."""
    from kafka import KafkaConsumer
    from kafka.consumer.subscription_state import ConsumerRebalanceListener
    if a.group_protocol != "classic":
        raise SystemExit("kafka-python consume: --group-protocol is classic only")
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    start = time.monotonic()
    c = KafkaConsumer(bootstrap_servers=a.bootstrap.split(","), group_id=a.group, auto_offset_reset="earliest",
                      enable_auto_commit=False, fetch_max_wait_ms=500)

    class Listener(ConsumerRebalanceListener):
        def on_partitions_assigned(self, assigned):
            emit({"type": "assigned", "partitions": _parts(assigned)})

        def on_partitions_revoked(self, revoked):
            emit({"type": "revoked", "partitions": _parts(revoked), "commitError": None})

    c.subscribe([a.topic], listener=Listener())
    n, last_err = 0, None
    while not stop.is_set() and (a.count == 0 or n < a.count) and time.monotonic() - start < a.max_ms / 1000:
        try:
            batches = c.poll(timeout_ms=200)
        except Exception as e:  # noqa: BLE001
            last_err = e
            emit({"type": "error", "topic": a.topic, "partition": -1, "error": kp_err_json(e)})
            time.sleep(0.2)
            continue
        for tp, msgs in batches.items():
            for m in msgs:
                emit({"type": "record", "topic": m.topic, "partition": m.partition, "offset": m.offset,
                      "key": None if m.key is None else m.key.decode(), "value": m.value.decode(),
                      "headers": {k: v.decode() for k, v in (m.headers or [])}})
                n += 1
    commit_err = None
    try:
        c.commit()
    except Exception as e:  # noqa: BLE001
        commit_err = e
    leave_err = None
    try:
        c.close()
    except Exception as e:  # noqa: BLE001
        leave_err = e
    emit({"type": "done", "count": n, "commitError": kp_err_json(commit_err), "leaveError": kp_err_json(leave_err),
          "lastError": kp_err_json(last_err), "elapsedMs": int((time.monotonic() - start) * 1000), "requests": kp_sent.requests()})


def kp_admin(a):
    """KafkaAdminClient.describe_cluster(): DescribeCluster (Metadata only when the broker lacks it)."""
    from kafka import KafkaAdminClient
    out = {"type": "admin"}
    try:
        ad = KafkaAdminClient(bootstrap_servers=a.bootstrap.split(","), request_timeout_ms=min(a.max_ms, 30_000))
    except Exception as e:  # noqa: BLE001
        out["cluster"] = {"error": kp_err_json(e)}
    else:
        try:
            d = ad.describe_cluster()
            out["cluster"] = {"clusterId": d.get("cluster_id"), "controllerId": d.get("controller_id"),
                              "brokers": sorted(({"nodeId": b["broker_id"], "host": b["host"], "port": b["port"], "rack": b.get("rack")}
                                                 for b in d["brokers"]), key=lambda b: b["nodeId"])}
        except Exception as e:  # noqa: BLE001
            out["cluster"] = {"error": kp_err_json(e)}
        ad.close()
    out["requests"] = kp_sent.requests()
    emit(out)


def kp_txn(a):
    """KafkaProducer(transactional_id=...) and init_transactions(), then one record in a
    transaction and a commit (max_block_ms is --max-ms: a hang shows as KafkaTimeoutError, not a
    test timeout)."""
    from kafka import KafkaProducer
    start = time.monotonic()
    err = None
    p = None
    try:
        p = KafkaProducer(bootstrap_servers=a.bootstrap.split(","), transactional_id=a.transactional_id, max_block_ms=a.max_ms)
        p.init_transactions()
        p.begin_transaction()
        p.send(a.topic, value=b"in a transaction")
        p.commit_transaction()
    except Exception as e:  # noqa: BLE001 - the test decides which error is right
        err = e
    elapsed = int((time.monotonic() - start) * 1000)
    if p is not None:
        try:
            p.close(timeout=2)
        except Exception:  # noqa: BLE001 - the error is already reported
            pass
    emit({"type": "txn", "ok": err is None, "error": kp_err_json(err), "elapsedMs": elapsed, "requests": kp_sent.requests()})


def main():
    ap = argparse.ArgumentParser(prog="runnel_ck")
    sub = ap.add_subparsers(dest="cmd", required=True)
    for name in ("produce", "consume", "admin", "txn"):
        s = sub.add_parser(name)
        s.add_argument("--bootstrap", required=True)
        s.add_argument("--max-ms", type=int, default=60_000)
        if name in ("produce", "consume", "txn"):
            s.add_argument("--topic", required=True)
        if name == "produce":
            s.add_argument("--count", type=int, required=True)
            s.add_argument("--compression", choices=CODECS, default="none")
            s.add_argument("--prefix", default="ck")
        if name == "consume":
            s.add_argument("--group", required=True)
            s.add_argument("--count", type=int, default=0)
            s.add_argument("--group-protocol", choices=["classic", "consumer"], default="classic")
        if name == "admin":
            s.add_argument("--topics", default="")
            s.add_argument("--groups", default="")
        if name == "txn":
            s.add_argument("--transactional-id", default="runnel-ck-txn")
    if len(sys.argv) > 1 and sys.argv[1] == "kafka-python":
        _kp_logging()
        ap.prog = "runnel_ck kafka-python"
        a = ap.parse_args(sys.argv[2:])
        {"produce": kp_produce, "consume": kp_consume, "admin": kp_admin, "txn": kp_txn}[a.cmd](a)
        return
    a = ap.parse_args()
    {"produce": produce, "consume": consume, "admin": admin, "txn": txn}[a.cmd](a)


if __name__ == "__main__":
    main()
