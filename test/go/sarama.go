// The `sarama` subcommands: the same produce/consume/admin/txn cases driven with IBM's sarama,
// the other widely used Go client. Unlike franz-go it does not negotiate per request: it sends the
// versions of the Kafka release its config.Version names (--kafka-version, sarama's default when
// empty), so the lines carry "kafkaVersion" and an empty "requests".
//
// A leading --kafka-version=V (runnel-franz sarama --kafka-version=4.3.1 produce ...) does the same.
//
//	runnel-franz sarama produce --bootstrap B --topic T --count N [--compression ...] [--prefix P] [--kafka-version V]
//	runnel-franz sarama consume --bootstrap B --topic T --group G [--count N] [--max-ms MS] [--kafka-version V]
//	runnel-franz sarama admin   --bootstrap B [--kafka-version V]
//	runnel-franz sarama txn     --bootstrap B --topic T [--transactional-id ID] [--max-ms MS] [--kafka-version V]
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log"
	"os"
	"os/signal"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/IBM/sarama"
)

// saramaErrJSON describes an error for the tests: sarama's KError carries the Kafka code; its
// text is Kafka's description, so "code" is the Kafka name the tests compare.
func saramaErrJSON(err error) map[string]any {
	if err == nil {
		return nil
	}
	m := map[string]any{"message": err.Error()}
	var ke sarama.KError
	if errors.As(err, &ke) {
		m["errorCode"] = int16(ke)
		if name, ok := kafkaErrorNames[int16(ke)]; ok {
			m["code"] = name
		}
	}
	return m
}

// The Kafka error names the tests look for (sarama's KError has only descriptions).
var kafkaErrorNames = map[int16]string{
	3: "UNKNOWN_TOPIC_OR_PARTITION", 7: "REQUEST_TIMED_OUT", 15: "COORDINATOR_NOT_AVAILABLE",
	16: "NOT_COORDINATOR", 29: "TOPIC_AUTHORIZATION_FAILED", 35: "UNSUPPORTED_VERSION",
	51: "CONCURRENT_TRANSACTIONS", 53: "TRANSACTIONAL_ID_AUTHORIZATION_FAILED",
	59: "UNKNOWN_PRODUCER_ID", 87: "INVALID_RECORD",
}

func saramaCodec(name string) sarama.CompressionCodec {
	switch name {
	case "none":
		return sarama.CompressionNone
	case "gzip":
		return sarama.CompressionGZIP
	case "snappy":
		return sarama.CompressionSnappy
	case "lz4":
		return sarama.CompressionLZ4
	case "zstd":
		return sarama.CompressionZSTD
	}
	fail("unknown --compression %q (none, gzip, snappy, lz4, zstd)", name)
	panic("unreachable")
}

func saramaMain(args []string) {
	if len(args) < 1 {
		fail("usage: runnel-franz sarama produce|consume|admin|txn --bootstrap HOST:PORT ...")
	}
	// A leading --kafka-version=V (before the subcommand) sets the default of --kafka-version, so
	// the tests' helper can name a sarama per Kafka release as one command prefix.
	defaultVersion := ""
	if v, ok := strings.CutPrefix(args[0], "--kafka-version="); ok {
		defaultVersion, args = v, args[1:]
		if len(args) < 1 {
			fail("usage: runnel-franz sarama [--kafka-version=V] produce|consume|admin|txn ...")
		}
	}
	cmd, args := args[0], args[1:]
	fs := flag.NewFlagSet("sarama "+cmd, flag.ExitOnError)
	bootstrap := fs.String("bootstrap", "", "bootstrap servers, comma-separated")
	topic := fs.String("topic", "", "topic")
	count := fs.Int("count", 0, "records to produce, or to consume before exiting (0: until SIGTERM or --max-ms)")
	compression := fs.String("compression", "none", "none, gzip, snappy, lz4 or zstd")
	prefix := fs.String("prefix", "sarama", "value prefix")
	group := fs.String("group", "", "consumer group")
	groupProtocol := fs.String("group-protocol", "classic", "classic only (sarama has no KIP-848 consumer)")
	maxMs := fs.Int("max-ms", 60_000, "give up after this long")
	fs.String("groups", "", "ignored (the common admin flags)")
	fs.String("topics", "", "ignored (the common admin flags)")
	txnID := fs.String("transactional-id", "runnel-sarama-txn", "transactional id")
	kafkaVersion := fs.String("kafka-version", defaultVersion, "sarama's config.Version (the Kafka release whose request versions it sends); empty: sarama's default")
	if err := fs.Parse(args); err != nil {
		fail("%v", err)
	}
	if *bootstrap == "" {
		fail("sarama %s: --bootstrap is required", cmd)
	}
	if *groupProtocol != "classic" {
		fail("sarama consume: --group-protocol is classic only, not %q", *groupProtocol)
	}
	cfg := sarama.NewConfig()
	cfg.ClientID = "runnel-sarama"
	if *kafkaVersion != "" {
		v, err := sarama.ParseKafkaVersion(*kafkaVersion)
		if err != nil {
			fail("sarama: --kafka-version: %v", err)
		}
		cfg.Version = v
	}
	// sarama's own log (retries, coordinator lookups) goes to stderr, for the test's failure messages.
	sarama.Logger = log.New(os.Stderr, "[sarama] ", log.Lmicroseconds)
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	ctx, cancel := context.WithTimeout(ctx, time.Duration(*maxMs)*time.Millisecond)
	defer cancel()
	brokers := strings.Split(*bootstrap, ",")
	switch cmd {
	case "produce":
		if *topic == "" || *count <= 0 {
			fail("sarama produce: --topic and --count > 0 are required")
		}
		saramaProduce(cfg, brokers, *topic, *count, *compression, *prefix)
	case "consume":
		if *topic == "" || *group == "" {
			fail("sarama consume: --topic and --group are required")
		}
		saramaConsume(ctx, cfg, brokers, *topic, *group, *count)
	case "admin":
		saramaAdmin(cfg, brokers)
	case "txn":
		if *topic == "" {
			fail("sarama txn: --topic is required")
		}
		saramaTxn(cfg, brokers, *topic, *txnID)
	default:
		fail("unknown sarama subcommand %q (produce, consume, admin, txn)", cmd)
	}
}

// saramaProduce sends count records through a SyncProducer with acks=all and idempotence (one
// request in flight, as sarama requires for it), the values, keys and headers `produce` sends.
func saramaProduce(cfg *sarama.Config, brokers []string, topic string, count int, compression, prefix string) {
	cfg.Producer.RequiredAcks = sarama.WaitForAll
	cfg.Producer.Idempotent = true
	cfg.Net.MaxOpenRequests = 1
	cfg.Producer.Return.Successes = true
	cfg.Producer.Compression = saramaCodec(compression)
	cfg.Producer.Flush.Frequency = 5 * time.Millisecond
	start := time.Now()
	p, err := sarama.NewSyncProducer(brokers, cfg)
	if err != nil {
		emit(map[string]any{"type": "produced", "acked": 0, "failed": count, "error": saramaErrJSON(err), "partitions": map[string]int{},
			"compression": compression, "elapsedMs": time.Since(start).Milliseconds(), "requests": map[string][]int{}, "kafkaVersion": cfg.Version.String()})
		return
	}
	defer p.Close()
	pad := strings.Repeat("runnel-", 16)
	msgs := make([]*sarama.ProducerMessage, count)
	for i := range msgs {
		msgs[i] = &sarama.ProducerMessage{
			Topic:   topic,
			Key:     sarama.StringEncoder("k-" + strconv.Itoa(i)),
			Value:   sarama.StringEncoder(fmt.Sprintf("%s-%d-%s", prefix, i, pad)),
			Headers: []sarama.RecordHeader{{Key: []byte("i"), Value: []byte(strconv.Itoa(i))}},
		}
	}
	err = p.SendMessages(msgs)
	failed := 0
	var firstErr error
	var pes sarama.ProducerErrors
	if errors.As(err, &pes) {
		failed = len(pes)
		firstErr = pes[0].Err
	} else if err != nil {
		failed, firstErr = count, err
	}
	perPartition := map[string]int{}
	for _, m := range msgs {
		if m.Offset >= 0 && (err == nil || !saramaFailed(pes, m)) {
			perPartition[strconv.Itoa(int(m.Partition))]++
		}
	}
	emit(map[string]any{"type": "produced", "acked": count - failed, "failed": failed, "error": saramaErrJSON(firstErr),
		"partitions": perPartition, "compression": compression, "elapsedMs": time.Since(start).Milliseconds(),
		"requests": map[string][]int{}, "kafkaVersion": cfg.Version.String()})
}

func saramaFailed(pes sarama.ProducerErrors, m *sarama.ProducerMessage) bool {
	for _, pe := range pes {
		if pe.Msg == m {
			return true
		}
	}
	return false
}

// saramaGroup is a sarama.ConsumerGroupHandler printing records and assignment events.
type saramaGroup struct {
	mu    sync.Mutex
	n     int
	count int
	done  context.CancelFunc
}

func (g *saramaGroup) Setup(s sarama.ConsumerGroupSession) error {
	emit(map[string]any{"type": "assigned", "partitions": partitionsJSON(s.Claims())})
	return nil
}

func (g *saramaGroup) Cleanup(s sarama.ConsumerGroupSession) error {
	emit(map[string]any{"type": "revoked", "partitions": partitionsJSON(s.Claims()), "commitError": nil})
	return nil
}

func (g *saramaGroup) ConsumeClaim(s sarama.ConsumerGroupSession, c sarama.ConsumerGroupClaim) error {
	for m := range c.Messages() {
		var key *string
		if m.Key != nil {
			k := string(m.Key)
			key = &k
		}
		h := map[string]string{}
		for _, x := range m.Headers {
			h[string(x.Key)] = string(x.Value)
		}
		emit(record{Type: "record", Topic: m.Topic, Partition: m.Partition, Offset: m.Offset, Key: key, Value: string(m.Value), Headers: h})
		s.MarkMessage(m, "")
		g.mu.Lock()
		g.n++
		if g.count > 0 && g.n >= g.count {
			g.done()
		}
		g.mu.Unlock()
	}
	return nil
}

// saramaConsume joins the group (classic protocol, sarama's range assignor) from the earliest
// offset and prints every record until count records, SIGTERM or --max-ms; sarama commits the
// marked offsets when the session ends, then the group is closed (LeaveGroup).
func saramaConsume(ctx context.Context, cfg *sarama.Config, brokers []string, topic, group string, count int) {
	cfg.Consumer.Offsets.Initial = sarama.OffsetOldest
	cfg.Consumer.Return.Errors = true
	cfg.Consumer.MaxWaitTime = 500 * time.Millisecond
	start := time.Now()
	cg, err := sarama.NewConsumerGroup(brokers, group, cfg)
	if err != nil {
		emit(map[string]any{"type": "done", "count": 0, "commitError": nil, "leaveError": nil, "lastError": saramaErrJSON(err),
			"elapsedMs": time.Since(start).Milliseconds(), "requests": map[string][]int{}, "kafkaVersion": cfg.Version.String()})
		return
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	h := &saramaGroup{count: count, done: cancel}
	var lastErr error
	var errMu sync.Mutex
	go func() {
		for e := range cg.Errors() {
			errMu.Lock()
			lastErr = e
			errMu.Unlock()
			emit(map[string]any{"type": "error", "topic": topic, "partition": -1, "error": saramaErrJSON(e)})
		}
	}()
	for ctx.Err() == nil {
		if err := cg.Consume(ctx, []string{topic}, h); err != nil && !errors.Is(err, sarama.ErrClosedConsumerGroup) {
			errMu.Lock()
			lastErr = err
			errMu.Unlock()
			time.Sleep(200 * time.Millisecond)
		}
	}
	leaveErr := cg.Close()
	h.mu.Lock()
	n := h.n
	h.mu.Unlock()
	errMu.Lock()
	defer errMu.Unlock()
	emit(map[string]any{"type": "done", "count": n, "commitError": nil, "leaveError": saramaErrJSON(leaveErr), "lastError": saramaErrJSON(lastErr),
		"elapsedMs": time.Since(start).Milliseconds(), "requests": map[string][]int{}, "kafkaVersion": cfg.Version.String()})
}

// saramaAdmin prints DescribeCluster as sarama's ClusterAdmin sees it (the DescribeCluster API
// from Kafka 2.8 on, Metadata before).
func saramaAdmin(cfg *sarama.Config, brokers []string) {
	ca, err := sarama.NewClusterAdmin(brokers, cfg)
	if err != nil {
		emit(map[string]any{"type": "admin", "cluster": map[string]any{"error": saramaErrJSON(err)}, "requests": map[string][]int{}, "kafkaVersion": cfg.Version.String()})
		return
	}
	defer ca.Close()
	bs, controller, err := ca.DescribeCluster()
	list := []map[string]any{}
	for _, b := range bs {
		host, port, _ := strings.Cut(b.Addr(), ":")
		p, _ := strconv.Atoi(port)
		list = append(list, map[string]any{"nodeId": b.ID(), "host": host, "port": p})
	}
	sort.Slice(list, func(i, j int) bool { return list[i]["nodeId"].(int32) < list[j]["nodeId"].(int32) })
	emit(map[string]any{"type": "admin", "cluster": map[string]any{"controllerId": controller, "brokers": list, "error": saramaErrJSON(err)},
		"requests": map[string][]int{}, "kafkaVersion": cfg.Version.String()})
}

// saramaTxn makes a transactional, idempotent SyncProducer (sarama runs FindCoordinator and
// InitProducerId inside NewSyncProducer), then begins a transaction, sends one record and
// commits.
func saramaTxn(cfg *sarama.Config, brokers []string, topic, id string) {
	cfg.Producer.RequiredAcks = sarama.WaitForAll
	cfg.Producer.Idempotent = true
	cfg.Net.MaxOpenRequests = 1
	cfg.Producer.Return.Successes = true
	cfg.Producer.Transaction.ID = id
	if !cfg.Version.IsAtLeast(sarama.V0_11_0_0) {
		cfg.Version = sarama.V0_11_0_0
	}
	start := time.Now()
	p, err := sarama.NewSyncProducer(brokers, cfg)
	if err == nil {
		err = p.BeginTxn()
		if err == nil {
			_, _, err = p.SendMessage(&sarama.ProducerMessage{Topic: topic, Value: sarama.StringEncoder("in a transaction")})
		}
		if err == nil {
			err = p.CommitTxn()
		}
		_ = p.Close()
	}
	emit(map[string]any{"type": "txn", "ok": err == nil, "error": saramaErrJSON(err), "elapsedMs": time.Since(start).Milliseconds(),
		"requests": map[string][]int{}, "kafkaVersion": cfg.Version.String()})
}
