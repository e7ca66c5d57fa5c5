// runnel-franz drives a Kafka-compatible broker with franz-go (kgo and kadm), the Go client that
// negotiates the newest protocol versions, for Runnel's end-to-end tests
// (test/helpers/ecosystems.ts runs it; test/go/build.sh builds it into .cache/go-clients).
//
// Every subcommand prints JSON lines on stdout (machine-checked) and exits 0 once it has said
// what happened, even when the broker refused something: the test decides what is right. It
// exits 1 with one line on stderr only for bad arguments. Subcommands:
//
//	produce  --bootstrap B --topic T --count N [--compression none|gzip|snappy|lz4|zstd] [--prefix P]
//	consume  --bootstrap B --topic T --group G [--count N] [--max-ms MS] [--group-protocol classic|consumer]
//	admin    --bootstrap B [--groups g1,g2]
//	txn      --bootstrap B --topic T [--transactional-id ID] [--max-ms MS]
//	sarama produce|consume|admin|txn ...   (the same with IBM's sarama: sarama.go)
package main

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
	"github.com/twmb/franz-go/pkg/kversion"
)

var out = json.NewEncoder(os.Stdout)
var outMu sync.Mutex

// emit writes one JSON line; callbacks run on franz-go's goroutines, so writes are serialized.
func emit(v any) {
	outMu.Lock()
	defer outMu.Unlock()
	if err := out.Encode(v); err != nil {
		os.Exit(1)
	}
}

func fail(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "runnel-franz: "+format+"\n", args...)
	os.Exit(1)
}

// errJSON describes an error for the tests: the Kafka error name and whether franz-go treats it
// as retriable, when it is a Kafka error code.
func errJSON(err error) map[string]any {
	if err == nil {
		return nil
	}
	m := map[string]any{"message": err.Error()}
	var ke *kerr.Error
	if errors.As(err, &ke) {
		m["code"] = ke.Message
		m["errorCode"] = ke.Code
		m["retriable"] = ke.Retriable
	}
	return m
}

func codec(name string) kgo.CompressionCodec {
	switch name {
	case "none":
		return kgo.NoCompression()
	case "gzip":
		return kgo.GzipCompression()
	case "snappy":
		return kgo.SnappyCompression()
	case "lz4":
		return kgo.Lz4Compression()
	case "zstd":
		return kgo.ZstdCompression()
	}
	fail("unknown --compression %q (none, gzip, snappy, lz4, zstd)", name)
	panic("unreachable")
}

var codecNames = []string{"none", "gzip", "snappy", "lz4", "zstd"}

// sentLog is a kgo.Logger that records the version of every request franz-go writes (its debug
// line "wrote Fetch v17"), so each subcommand can report the versions it negotiated, and passes
// warnings and errors on to stderr.
type sentLog struct {
	mu   sync.Mutex
	sent map[string]map[int]bool
}

var sent = &sentLog{sent: map[string]map[int]bool{}}

func (l *sentLog) Level() kgo.LogLevel { return kgo.LogLevelDebug }

func (l *sentLog) Log(level kgo.LogLevel, msg string, keyvals ...any) {
	if level <= kgo.LogLevelWarn {
		fmt.Fprintln(os.Stderr, append([]any{level.String(), msg}, keyvals...)...)
		return
	}
	name, version, ok := strings.Cut(strings.TrimPrefix(msg, "wrote "), " v")
	if !strings.HasPrefix(msg, "wrote ") || !ok {
		return
	}
	v, err := strconv.Atoi(version)
	if err != nil {
		return
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.sent[name] == nil {
		l.sent[name] = map[int]bool{}
	}
	l.sent[name][v] = true
}

// requests returns {"Fetch":[17],...}: every request franz-go sent so far and its versions.
func (l *sentLog) requests() map[string][]int {
	l.mu.Lock()
	defer l.mu.Unlock()
	m := map[string][]int{}
	for name, vs := range l.sent {
		for v := range vs {
			m[name] = append(m[name], v)
		}
		sort.Ints(m[name])
	}
	return m
}

func seeds(bootstrap string) kgo.Opt { return kgo.SeedBrokers(strings.Split(bootstrap, ",")...) }

// base are the options of every client: the seeds and the request recorder.
func base(bootstrap string) []kgo.Opt { return []kgo.Opt{seeds(bootstrap), kgo.WithLogger(sent)} }

func main() {
	if len(os.Args) < 2 {
		fail("usage: runnel-franz produce|consume|admin|txn --bootstrap HOST:PORT ...")
	}
	if os.Args[1] == "sarama" {
		saramaMain(os.Args[2:]) // sarama.go: the same cases with IBM's sarama
		return
	}
	cmd, args := os.Args[1], os.Args[2:]
	fs := flag.NewFlagSet(cmd, flag.ExitOnError)
	bootstrap := fs.String("bootstrap", "", "bootstrap servers, comma-separated")
	topic := fs.String("topic", "", "topic")
	count := fs.Int("count", 0, "records to produce, or to consume before exiting (0: until SIGTERM or --max-ms)")
	compression := fs.String("compression", "none", "none, gzip, snappy, lz4 or zstd")
	prefix := fs.String("prefix", "franz", "value prefix")
	group := fs.String("group", "", "consumer group")
	groupProtocol := fs.String("group-protocol", "classic", "classic (JoinGroup/SyncGroup) or consumer (KIP-848)")
	maxMs := fs.Int("max-ms", 60_000, "give up after this long")
	groups := fs.String("groups", "", "groups to describe, comma-separated")
	txnID := fs.String("transactional-id", "runnel-franz-txn", "transactional id")
	if err := fs.Parse(args); err != nil {
		fail("%v", err)
	}
	if *bootstrap == "" {
		fail("%s: --bootstrap is required", cmd)
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	ctx, cancel := context.WithTimeout(ctx, time.Duration(*maxMs)*time.Millisecond)
	defer cancel()
	switch cmd {
	case "produce":
		if *topic == "" || *count <= 0 {
			fail("produce: --topic and --count > 0 are required")
		}
		produce(ctx, *bootstrap, *topic, *count, *compression, *prefix)
	case "consume":
		if *topic == "" || *group == "" {
			fail("consume: --topic and --group are required")
		}
		if *groupProtocol != "classic" && *groupProtocol != "consumer" {
			fail("consume: --group-protocol is classic or consumer, not %q", *groupProtocol)
		}
		consume(ctx, *bootstrap, *topic, *group, *groupProtocol, *count)
	case "admin":
		var gs []string
		if *groups != "" {
			gs = strings.Split(*groups, ",")
		}
		admin(ctx, *bootstrap, gs)
	case "txn":
		if *topic == "" {
			fail("txn: --topic is required")
		}
		txn(ctx, *bootstrap, *topic, *txnID)
	default:
		fail("unknown subcommand %q (produce, consume, admin, txn)", cmd)
	}
}

// produce sends count records with acks=all and idempotence (franz-go's default), values
// "<prefix>-<i>-" padded with a repeated pattern so that every codec shrinks the batch (a client
// may send a batch uncompressed when compression does not help), key "k-<i>", header i=<i>.
// Prints {"type":"produced",...}.
func produce(ctx context.Context, bootstrap, topic string, count int, compression, prefix string) {
	cl, err := kgo.NewClient(append(base(bootstrap), kgo.DefaultProduceTopic(topic),
		kgo.RequiredAcks(kgo.AllISRAcks()), kgo.ProducerBatchCompression(codec(compression)),
		kgo.ProducerLinger(5*time.Millisecond), kgo.AllowAutoTopicCreation())...)
	if err != nil {
		fail("produce: %v", err)
	}
	defer cl.Close()
	start := time.Now()
	recs := make([]*kgo.Record, count)
	pad := strings.Repeat("runnel-", 16)
	for i := range recs {
		recs[i] = &kgo.Record{
			Key:     []byte("k-" + strconv.Itoa(i)),
			Value:   []byte(fmt.Sprintf("%s-%d-%s", prefix, i, pad)),
			Headers: []kgo.RecordHeader{{Key: "i", Value: []byte(strconv.Itoa(i))}},
		}
	}
	results := cl.ProduceSync(ctx, recs...)
	perPartition := map[string]int{}
	var firstErr error
	failed := 0
	for _, r := range results {
		if r.Err != nil {
			failed++
			if firstErr == nil {
				firstErr = r.Err
			}
			continue
		}
		perPartition[strconv.Itoa(int(r.Record.Partition))]++
	}
	id, epoch, pidErr := cl.ProducerID(ctx)
	emit(map[string]any{
		"type": "produced", "acked": count - failed, "failed": failed, "error": errJSON(firstErr),
		"partitions": perPartition, "producerId": id, "producerEpoch": epoch, "producerIdError": errJSON(pidErr),
		"compression": compression, "elapsedMs": time.Since(start).Milliseconds(), "requests": sent.requests(),
	})
}

type record struct {
	Type      string            `json:"type"`
	Topic     string            `json:"topic"`
	Partition int32             `json:"partition"`
	Offset    int64             `json:"offset"`
	Key       *string           `json:"key"`
	Value     string            `json:"value"`
	Headers   map[string]string `json:"headers"`
	Codec     string            `json:"codec"`
}

func partitionsJSON(m map[string][]int32) map[string][]int32 {
	for _, ps := range m {
		sort.Slice(ps, func(i, j int) bool { return ps[i] < ps[j] })
	}
	return m
}

// consume joins the group and prints every record as a JSON line, plus assigned/revoked/lost
// events, until count records, SIGTERM or --max-ms; then it commits what it read, leaves the
// group and prints {"type":"done",...}. The classic protocol uses franz-go's default
// cooperative-sticky balancer; "consumer" asks for KIP-848 (ConsumerGroupHeartbeat).
func consume(ctx context.Context, bootstrap, topic, group, protocol string, count int) {
	opts := append(base(bootstrap), kgo.ConsumeTopics(topic), kgo.ConsumerGroup(group),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()),
		kgo.FetchMaxWait(500*time.Millisecond),
		kgo.OnPartitionsAssigned(func(_ context.Context, _ *kgo.Client, m map[string][]int32) {
			emit(map[string]any{"type": "assigned", "partitions": partitionsJSON(m)})
		}),
		kgo.OnPartitionsRevoked(func(ctx context.Context, cl *kgo.Client, m map[string][]int32) {
			// What was read from a revoked partition is committed before another member takes it.
			err := cl.CommitMarkedOffsets(ctx)
			emit(map[string]any{"type": "revoked", "partitions": partitionsJSON(m), "commitError": errJSON(err)})
		}),
		kgo.OnPartitionsLost(func(_ context.Context, _ *kgo.Client, m map[string][]int32) {
			emit(map[string]any{"type": "lost", "partitions": partitionsJSON(m)})
		}),
		// Offsets are marked as records are printed and committed every second, on revoke and at exit.
		kgo.AutoCommitMarks(), kgo.AutoCommitInterval(time.Second),
	)
	if protocol == "consumer" {
		opts = append(opts, kgo.ServerSideBalancer(), kgo.Balancers(kgo.CooperativeStickyBalancer()))
	}
	cl, err := kgo.NewClient(opts...)
	if err != nil {
		fail("consume: %v", err)
	}
	start := time.Now()
	n := 0
	var lastErr error
	for (count == 0 || n < count) && ctx.Err() == nil {
		fetches := cl.PollFetches(ctx)
		if fetches.IsClientClosed() {
			break
		}
		fetches.EachError(func(t string, p int32, err error) {
			if !errors.Is(err, context.Canceled) && !errors.Is(err, context.DeadlineExceeded) {
				lastErr = err
				emit(map[string]any{"type": "error", "topic": t, "partition": p, "error": errJSON(err)})
			}
		})
		fetches.EachRecord(func(r *kgo.Record) {
			var key *string
			if r.Key != nil {
				k := string(r.Key)
				key = &k
			}
			h := map[string]string{}
			for _, x := range r.Headers {
				h[x.Key] = string(x.Value)
			}
			emit(record{Type: "record", Topic: r.Topic, Partition: r.Partition, Offset: r.Offset, Key: key,
				Value: string(r.Value), Headers: h, Codec: codecNames[r.Attrs.CompressionType()]})
			cl.MarkCommitRecords(r)
			n++
		})
	}
	commitCtx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	commitErr := cl.CommitMarkedOffsets(commitCtx)
	leaveErr := cl.LeaveGroupContext(commitCtx)
	cl.Close()
	emit(map[string]any{"type": "done", "count": n, "commitError": errJSON(commitErr), "leaveError": errJSON(leaveErr),
		"lastError": errJSON(lastErr), "elapsedMs": time.Since(start).Milliseconds(), "requests": sent.requests()})
}

// admin prints one JSON object: per node the API versions it advertises, kversion's guess of the
// Kafka release they match and the version franz-go would use per API (min of its own maximum and
// the broker's); DescribeCluster; the topics with their ids (Metadata); every node's log dirs
// (DescribeLogDirs to every broker); and the given groups (DescribeGroups and, for KIP-848 groups,
// ConsumerGroupDescribe). Each part carries its own error.
func admin(ctx context.Context, bootstrap string, groups []string) {
	cl, err := kgo.NewClient(base(bootstrap)...)
	if err != nil {
		fail("admin: %v", err)
	}
	defer cl.Close()
	adm := kadm.NewClient(cl)
	result := map[string]any{"type": "admin"}

	type nodeVersions struct {
		Node        int32               `json:"node"`
		Guess       string              `json:"guess"`
		GuessServed string              `json:"guessServed"`
		Missing     []string            `json:"missing"`
		Versions    map[string][2]int16 `json:"versions"`
		Negotiated  map[string]int16    `json:"negotiated"`
		Error       map[string]any      `json:"error"`
	}
	var nodes []nodeVersions
	vs, err := adm.ApiVersions(ctx)
	result["apiVersionsError"] = errJSON(err)
	client := kversion.Stable()
	for _, v := range vs.Sorted() {
		nv := nodeVersions{Node: v.NodeID, Versions: map[string][2]int16{}, Negotiated: map[string]int16{}, Error: errJSON(v.Err)}
		if v.Err == nil {
			nv.Guess = v.VersionGuess()
			v.EachKeySorted(func(key, min, max int16) {
				name := kmsg.NameForKey(key)
				if name == "" {
					name = "key" + strconv.Itoa(int(key))
				}
				nv.Versions[name] = [2]int16{min, max}
				if ours, ok := client.LookupMaxKeyVersion(key); ok {
					nv.Negotiated[name] = min16(ours, max)
				}
			})
			// kversion counts any API a release has and the broker lacks (SaslHandshake, from
			// Kafka 0.10.0, for a PLAINTEXT-only broker) as "older than that release"; the served
			// guess also skips the APIs the broker does not advertise, so it says which Kafka
			// release the versions of the APIs it does serve match.
			skip := []int16{4, 5, 6, 7, 27, 56, 57, 58, 67, 71, 72} // kversion's own skip list
			defaults := len(skip)
			client.EachMaxKeyVersion(func(key, _ int16) {
				if _, ok := nv.Versions[kmsg.NameForKey(key)]; !ok && kmsg.NameForKey(key) != "" && !slices.Contains(skip[:defaults], key) {
					skip = append(skip, key)
					nv.Missing = append(nv.Missing, kmsg.NameForKey(key))
				}
			})
			nv.GuessServed = v.VersionGuess(kversion.SkipKeys(skip...))
		}
		nodes = append(nodes, nv)
	}
	result["apiVersions"] = nodes

	dc := kmsg.NewPtrDescribeClusterRequest()
	if resp, err := dc.RequestWith(ctx, cl); err != nil {
		result["cluster"] = map[string]any{"error": errJSON(err)}
	} else {
		var brokers []map[string]any
		for _, b := range resp.Brokers {
			brokers = append(brokers, map[string]any{"nodeId": b.NodeID, "host": b.Host, "port": b.Port, "rack": b.Rack})
		}
		result["cluster"] = map[string]any{"version": dc.GetVersion(), "clusterId": resp.ClusterID, "controllerId": resp.ControllerID,
			"brokers": brokers, "error": errJSON(kerr.ErrorForCode(resp.ErrorCode)), "errorMessage": resp.ErrorMessage}
	}

	topics, err := adm.ListTopics(ctx)
	result["topicsError"] = errJSON(err)
	var ts []map[string]any
	for _, t := range topics.Sorted() {
		// Kafka prints a topic id as URL-safe base64 without padding (Uuid.toString).
		ts = append(ts, map[string]any{"name": t.Topic, "id": base64.RawURLEncoding.EncodeToString(t.ID[:]), "internal": t.IsInternal,
			"partitions": len(t.Partitions), "error": errJSON(t.Err)})
	}
	result["topics"] = ts

	dirs, err := adm.DescribeAllLogDirs(ctx, nil)
	result["logDirsError"] = errJSON(err)
	var ds []map[string]any
	for _, d := range dirs.Sorted() {
		parts := map[string][]int32{}
		for t, ps := range d.Topics {
			for p := range ps {
				parts[t] = append(parts[t], p)
			}
		}
		ds = append(ds, map[string]any{"broker": d.Broker, "dir": d.Dir, "error": errJSON(d.Err), "partitions": partitionsJSON(parts)})
	}
	result["logDirs"] = ds

	if len(groups) > 0 {
		described, err := adm.DescribeGroups(ctx, groups...)
		result["groupsError"] = errJSON(err)
		var gs []map[string]any
		for _, g := range described.Sorted() {
			var members []map[string]any
			for _, m := range g.Members {
				assigned := map[string][]int32{}
				if c, ok := m.Assigned.AsConsumer(); ok {
					for _, t := range c.Topics {
						assigned[t.Topic] = t.Partitions
					}
				}
				members = append(members, map[string]any{"memberId": m.MemberID, "clientId": m.ClientID, "assigned": partitionsJSON(assigned)})
			}
			gs = append(gs, map[string]any{"group": g.Group, "state": g.State, "protocolType": g.ProtocolType,
				"protocol": g.Protocol, "members": members, "error": errJSON(g.Err)})
		}
		result["groups"] = gs

		cgs, err := adm.DescribeConsumerGroups(ctx, groups...)
		result["consumerGroupsError"] = errJSON(err)
		var cs []map[string]any
		for _, name := range groups {
			g, ok := cgs[name]
			if !ok {
				continue
			}
			var members []map[string]any
			for _, m := range g.Members {
				assigned := map[string][]int32{}
				for t, ps := range m.Assignment {
					for p := range ps {
						assigned[t] = append(assigned[t], p)
					}
				}
				members = append(members, map[string]any{"memberId": m.MemberID, "clientId": m.ClientID,
					"memberEpoch": m.MemberEpoch, "assigned": partitionsJSON(assigned)})
			}
			cs = append(cs, map[string]any{"group": g.Group, "state": g.State, "epoch": g.Epoch,
				"assignor": g.AssignorName, "members": members, "error": errJSON(g.Err)})
		}
		result["consumerGroups"] = cs
	}
	result["requests"] = sent.requests()
	emit(result)
}

func min16(a, b int16) int16 {
	if a < b {
		return a
	}
	return b
}

// txn begins a transaction, produces one record in it and commits. Prints
// {"type":"txn","ok":true|false,"error":...,"elapsedMs":...}.
func txn(ctx context.Context, bootstrap, topic, id string) {
	cl, err := kgo.NewClient(append(base(bootstrap), kgo.DefaultProduceTopic(topic), kgo.TransactionalID(id),
		kgo.AllowAutoTopicCreation())...)
	if err != nil {
		fail("txn: %v", err)
	}
	defer cl.Close()
	start := time.Now()
	err = cl.BeginTransaction()
	if err == nil {
		err = cl.ProduceSync(ctx, &kgo.Record{Value: []byte("in a transaction")}).FirstErr()
	}
	if err == nil {
		err = cl.EndTransaction(ctx, kgo.TryCommit)
	}
	elapsed := time.Since(start).Milliseconds()
	emit(map[string]any{"type": "txn", "ok": err == nil, "error": errJSON(err), "elapsedMs": elapsed, "requests": sent.requests()})
}
