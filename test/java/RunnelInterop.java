// The Apache Kafka Java client against a Runnel broker. Single file, compiled by
// test/java/fetch-clients.sh and run by test/interop-java.test.ts:
//
//   java -cp <classpath> RunnelInterop <bootstrap> <admin|produce-consume|static-member|rebalance|offsets|groups-admin|any-node>
//
// Every check happens here, in Java, and ends as one line on stdout: `OK ...` lines for what worked,
// `FAIL <step>: <exception class>: <message>` for what did not (then exit code 1). A watchdog exits
// with code 4 and a `FAIL timeout` line, so the test never hangs on a client that keeps retrying.
import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Collection;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.Properties;
import java.util.Set;
import java.util.TreeMap;
import java.util.concurrent.Callable;
import java.util.concurrent.Future;
import java.util.concurrent.TimeUnit;
import org.apache.kafka.clients.admin.Admin;
import org.apache.kafka.clients.admin.AdminClientConfig;
import org.apache.kafka.clients.admin.Config;
import org.apache.kafka.clients.admin.DescribeClusterResult;
import org.apache.kafka.clients.admin.NewPartitions;
import org.apache.kafka.clients.admin.NewTopic;
import org.apache.kafka.clients.admin.TopicDescription;
import org.apache.kafka.clients.consumer.ConsumerConfig;
import org.apache.kafka.clients.consumer.ConsumerRecord;
import org.apache.kafka.clients.consumer.ConsumerRecords;
import org.apache.kafka.clients.consumer.KafkaConsumer;
import org.apache.kafka.clients.consumer.OffsetAndMetadata;
import org.apache.kafka.clients.producer.KafkaProducer;
import org.apache.kafka.clients.producer.ProducerConfig;
import org.apache.kafka.clients.producer.ProducerRecord;
import org.apache.kafka.clients.producer.RecordMetadata;
import org.apache.kafka.common.Node;
import org.apache.kafka.common.TopicPartition;
import org.apache.kafka.common.config.ConfigResource;
import org.apache.kafka.common.header.Header;
import org.apache.kafka.common.serialization.StringDeserializer;
import org.apache.kafka.common.serialization.StringSerializer;

public final class RunnelInterop {
  private static final long CALL_TIMEOUT_S = 20;
  private static String bootstrap;
  private static boolean failed;

  public static void main(String[] args) throws Exception {
    if (args.length != 2) {
      System.err.println("usage: RunnelInterop <bootstrap> <admin|produce-consume|static-member|rebalance|offsets|groups-admin|any-node>");
      System.exit(2);
    }
    bootstrap = args[0];
    watchdog(Long.getLong("runnel.timeout.ms", 90_000L));
    switch (args[1]) {
      case "admin" -> admin();
      case "produce-consume" -> produceConsume();
      case "static-member" -> staticMember();
      case "rebalance" -> rebalance();
      case "offsets" -> {
        offsets();
        nulls();
      }
      case "groups-admin" -> groupsAdmin();
      case "any-node" -> anyNode();
      default -> {
        System.err.println("unknown scenario " + args[1]);
        System.exit(2);
      }
    }
    System.out.println(failed ? "DONE with failures" : "DONE");
    System.out.flush();
    // Client threads (metadata refresh, heartbeats) must not keep the JVM alive after a failure.
    System.exit(failed ? 1 : 0);
  }

  // ---------------------------------------------------------------- admin

  private static void admin() {
    String topic = "java-admin";
    try (Admin admin = Admin.create(adminProps())) {
      step("createTopics", () -> {
        NewTopic t = new NewTopic(topic, 3, (short) 1).configs(Map.of("retention.ms", "3600000", "cleanup.policy", "delete"));
        admin.createTopics(List.of(t)).all().get(CALL_TIMEOUT_S, TimeUnit.SECONDS);
        return "OK createTopics " + topic;
      });
      step("listTopics", () -> {
        Set<String> names = admin.listTopics().names().get(CALL_TIMEOUT_S, TimeUnit.SECONDS);
        check(names.contains(topic), "listTopics does not contain " + topic + ": " + names);
        return "OK listTopics contains " + topic;
      });
      step("describeTopics", () -> {
        TopicDescription d = describe(admin, topic);
        for (var p : d.partitions()) {
          check(p.leader() != null && p.leader().id() >= 0, "partition " + p.partition() + " has no leader: " + p);
          check(p.replicas().size() == 1 && p.isr().size() == 1, "partition " + p.partition() + " replicas/isr: " + p);
        }
        return "OK describeTopics " + topic + " partitions=" + d.partitions().size() + " internal=" + d.isInternal();
      });
      step("describeConfigs", () -> {
        ConfigResource r = new ConfigResource(ConfigResource.Type.TOPIC, topic);
        Config c = admin.describeConfigs(List.of(r)).all().get(CALL_TIMEOUT_S, TimeUnit.SECONDS).get(r);
        var retention = c.get("retention.ms");
        check(retention != null, "retention.ms missing from " + c.entries().size() + " entries");
        return "OK describeConfigs retention.ms=" + retention.value() + " cleanup.policy=" + c.get("cleanup.policy").value();
      });
      step("createPartitions", () -> {
        admin.createPartitions(Map.of(topic, NewPartitions.increaseTo(5))).all().get(CALL_TIMEOUT_S, TimeUnit.SECONDS);
        return "OK createPartitions " + topic + " partitions=" + describe(admin, topic).partitions().size();
      });
      step("deleteTopics", () -> {
        admin.deleteTopics(List.of(topic)).all().get(CALL_TIMEOUT_S, TimeUnit.SECONDS);
        // Kafka deletes asynchronously; the topic disappears from listings shortly after.
        long deadline = System.currentTimeMillis() + 10_000;
        while (admin.listTopics().names().get(CALL_TIMEOUT_S, TimeUnit.SECONDS).contains(topic)) {
          check(System.currentTimeMillis() < deadline, topic + " still listed 10 s after deleteTopics");
          Thread.sleep(100);
        }
        return "OK deleteTopics " + topic;
      });
      step("describeCluster", () -> {
        DescribeClusterResult c = admin.describeCluster();
        Collection<Node> nodes = c.nodes().get(CALL_TIMEOUT_S, TimeUnit.SECONDS);
        Node controller = c.controller().get(CALL_TIMEOUT_S, TimeUnit.SECONDS);
        String clusterId = c.clusterId().get(CALL_TIMEOUT_S, TimeUnit.SECONDS);
        check(clusterId != null && !clusterId.isEmpty(), "no cluster id");
        return "OK describeCluster nodes=" + nodes.size() + " controller=" + controller.id() + " port=" + controller.port();
      });
    }
  }

  // ---------------------------------------------------------------- produce-consume

  private static final int RECORDS = 300;

  private static void produceConsume() {
    List<String> codecs = List.of("none", "gzip", "snappy", "lz4", "zstd");
    // The codecs run at once (own topic, producer and group each); lines are printed in codec order.
    java.util.concurrent.ExecutorService pool = java.util.concurrent.Executors.newFixedThreadPool(codecs.size());
    try (Admin admin = Admin.create(adminProps())) {
      List<Future<String>> results = new ArrayList<>();
      for (String codec : codecs) results.add(pool.submit(() -> roundTrip(admin, codec)));
      for (int i = 0; i < codecs.size(); i++) {
        Future<String> result = results.get(i);
        step("produce-consume " + codecs.get(i), () -> result.get(60, TimeUnit.SECONDS));
      }
      step("transactional.id", RunnelInterop::transactional);
    } finally {
      pool.shutdownNow();
    }
  }

  /** Produce RECORDS keyed records with headers, read them back with a group, commit, re-check. */
  private static String roundTrip(Admin admin, String codec) throws Exception {
    String topic = "java-codec-" + codec;
    String group = "java-group-" + codec;
    admin.createTopics(List.of(new NewTopic(topic, 3, (short) 1))).all().get(CALL_TIMEOUT_S, TimeUnit.SECONDS);

    // Per partition, the indexes in the order the broker assigned offsets, with those offsets.
    Map<Integer, List<long[]>> sent = new TreeMap<>();
    Properties pp = producerProps();
    pp.put(ProducerConfig.COMPRESSION_TYPE_CONFIG, codec);
    try (KafkaProducer<String, String> producer = new KafkaProducer<>(pp)) {
      List<Future<RecordMetadata>> futures = new ArrayList<>();
      for (int i = 0; i < RECORDS; i++) {
        ProducerRecord<String, String> r = new ProducerRecord<>(topic, key(i), value(codec, i));
        r.headers().add("index", Integer.toString(i).getBytes(StandardCharsets.UTF_8));
        r.headers().add("codec", codec.getBytes(StandardCharsets.UTF_8));
        futures.add(producer.send(r));
      }
      producer.flush();
      for (int i = 0; i < RECORDS; i++) {
        RecordMetadata m = futures.get(i).get(CALL_TIMEOUT_S, TimeUnit.SECONDS);
        sent.computeIfAbsent(m.partition(), p -> new ArrayList<>()).add(new long[] { i, m.offset() });
      }
    }
    for (var e : sent.entrySet()) {
      List<long[]> l = e.getValue();
      for (int j = 0; j < l.size(); j++) {
        check(l.get(j)[1] == j, "partition " + e.getKey() + ": record " + l.get(j)[0] + " got offset " + l.get(j)[1] + ", expected " + j);
      }
    }
    check(sent.size() > 1, "all records went to one partition: " + sent.keySet());

    Map<Integer, List<ConsumerRecord<String, String>>> received = new TreeMap<>();
    int count = 0;
    try (KafkaConsumer<String, String> consumer = new KafkaConsumer<>(consumerProps(group, null))) {
      consumer.subscribe(List.of(topic));
      long deadline = System.currentTimeMillis() + 30_000;
      while (count < RECORDS) {
        check(System.currentTimeMillis() < deadline, "consumed " + count + " of " + RECORDS + " within 30 s; assignment " + consumer.assignment());
        for (ConsumerRecord<String, String> r : consumer.poll(Duration.ofMillis(200))) {
          received.computeIfAbsent(r.partition(), p -> new ArrayList<>()).add(r);
          count++;
        }
      }
      check(consumer.assignment().size() == 3, "assignment " + consumer.assignment());
      // A little longer: nothing beyond what was produced may arrive.
      count += consumer.poll(Duration.ofMillis(300)).count();
      check(count == RECORDS, "consumed " + count + " records, produced " + RECORDS);
      consumer.commitSync(Duration.ofSeconds(CALL_TIMEOUT_S));
      Map<TopicPartition, OffsetAndMetadata> committed = consumer.committed(consumer.assignment(), Duration.ofSeconds(CALL_TIMEOUT_S));
      for (var e : sent.entrySet()) {
        OffsetAndMetadata c = committed.get(new TopicPartition(topic, e.getKey()));
        check(c != null && c.offset() == e.getValue().size(), "committed offset for partition " + e.getKey() + " is " + c + ", expected " + e.getValue().size());
      }
    }
    for (var e : sent.entrySet()) {
      List<long[]> want = e.getValue();
      List<ConsumerRecord<String, String>> got = received.getOrDefault(e.getKey(), List.of());
      check(got.size() == want.size(), "partition " + e.getKey() + ": consumed " + got.size() + ", produced " + want.size());
      for (int j = 0; j < want.size(); j++) {
        int i = (int) want.get(j)[0];
        ConsumerRecord<String, String> r = got.get(j);
        String where = "partition " + e.getKey() + " offset " + r.offset() + ": ";
        check(r.offset() == want.get(j)[1], where + "expected offset " + want.get(j)[1]);
        check(key(i).equals(r.key()), where + "key " + r.key() + ", expected " + key(i));
        check(value(codec, i).equals(r.value()), where + "value " + r.value() + ", expected " + value(codec, i));
        check(header(r, "index").equals(Integer.toString(i)) && header(r, "codec").equals(codec) && r.headers().toArray().length == 2,
            where + "headers " + r.headers());
        check(r.timestamp() > 0, where + "timestamp " + r.timestamp());
      }
    }

    // Same group again: the committed offsets are where it starts, so nothing is left to read.
    int again = 0;
    try (KafkaConsumer<String, String> consumer = new KafkaConsumer<>(consumerProps(group, null))) {
      consumer.subscribe(List.of(topic));
      long deadline = System.currentTimeMillis() + 20_000;
      while (consumer.assignment().isEmpty()) {
        check(System.currentTimeMillis() < deadline, "second consumer got no assignment within 20 s");
        again += consumer.poll(Duration.ofMillis(200)).count();
      }
      again += consumer.poll(Duration.ofMillis(500)).count();
      for (var tp : consumer.assignment()) {
        long pos = consumer.position(tp, Duration.ofSeconds(CALL_TIMEOUT_S));
        int want = sent.getOrDefault(tp.partition(), List.of()).size();
        check(pos == want, "second consumer position " + tp + " = " + pos + ", expected " + want);
      }
    }
    check(again == 0, "second consumer in the same group read " + again + " records after commitSync");
    return "OK " + codec + " " + count + " partitions=" + sent.size() + " resumed=0";
  }

  /**
   * Transactions (docs/transactions.md): an aborted transaction, then a committed one with the
   * consumer's offsets (sendOffsetsToTransaction); a read_committed consumer sees exactly the
   * committed records, in order, and the group's offset only after the commit; a second producer
   * with the same transactional.id fences the first (its commit throws ProducerFencedException).
   */
  private static String transactional() throws Exception {
    String topic = "java-tx";
    String group = "java-tx-group";
    TopicPartition tp = new TopicPartition(topic, 0);
    try (Admin admin = Admin.create(adminProps())) {
      admin.createTopics(List.of(new NewTopic(topic, 1, (short) 1))).all().get(CALL_TIMEOUT_S, TimeUnit.SECONDS);
    }
    Properties pp = producerProps();
    pp.put(ProducerConfig.TRANSACTIONAL_ID_CONFIG, "java-tx");
    pp.put(ProducerConfig.MAX_BLOCK_MS_CONFIG, "30000");
    KafkaProducer<String, String> first = new KafkaProducer<>(pp);
    try {
      first.initTransactions();
      first.beginTransaction();
      for (int i = 0; i < 5; i++) first.send(new ProducerRecord<>(topic, key(i), "aborted-" + i));
      first.flush();
      first.abortTransaction();
      first.beginTransaction();
      for (int i = 0; i < 5; i++) first.send(new ProducerRecord<>(topic, key(i), "committed-" + i));
      first.sendOffsetsToTransaction(Map.of(tp, new OffsetAndMetadata(42)), new org.apache.kafka.clients.consumer.ConsumerGroupMetadata(group));
      first.commitTransaction();

      Properties cp = consumerProps(group + "-reader", null);
      cp.put(ConsumerConfig.ISOLATION_LEVEL_CONFIG, "read_committed");
      List<String> seen = new ArrayList<>();
      try (KafkaConsumer<String, String> c = new KafkaConsumer<>(cp)) {
        c.assign(List.of(tp));
        c.seekToBeginning(List.of(tp));
        long deadline = System.currentTimeMillis() + 30_000;
        while (seen.size() < 5 && System.currentTimeMillis() < deadline) {
          for (ConsumerRecord<String, String> r : c.poll(Duration.ofMillis(200))) seen.add(r.value());
        }
        for (ConsumerRecord<String, String> r : c.poll(Duration.ofMillis(300))) seen.add(r.value());
      }
      check(seen.equals(List.of("committed-0", "committed-1", "committed-2", "committed-3", "committed-4")), "read_committed saw " + seen);
      try (Admin admin = Admin.create(adminProps())) {
        Map<TopicPartition, OffsetAndMetadata> offsets = admin.listConsumerGroupOffsets(group).partitionsToOffsetAndMetadata().get(CALL_TIMEOUT_S, TimeUnit.SECONDS);
        check(offsets.get(tp) != null && offsets.get(tp).offset() == 42, "the transaction's offset commit is " + offsets);
      }

      // Zombie fencing: a new producer with the same id bumps the epoch.
      try (KafkaProducer<String, String> second = new KafkaProducer<>(pp)) {
        second.initTransactions();
        first.beginTransaction();
        first.send(new ProducerRecord<>(topic, "zombie"));
        try {
          first.commitTransaction();
          return "FAIL transactional: the fenced producer committed";
        } catch (org.apache.kafka.common.KafkaException e) {
          // expected: the old epoch is refused (ProducerFencedException, possibly as the cause)
          Throwable t = e;
          while (t != null && !(t instanceof org.apache.kafka.common.errors.ProducerFencedException) && !(t instanceof org.apache.kafka.common.errors.InvalidProducerEpochException)) t = t.getCause();
          if (t == null) return "FAIL transactional: the fenced producer's commit threw " + e;
        }
      }
      return "OK transactional: 5 aborted hidden, 5 committed read in order with read_committed, offsets committed, zombie fenced";
    } finally {
      first.close(Duration.ofSeconds(5));
    }
  }

  // ---------------------------------------------------------------- static-member

  private static void staticMember() {
    String topic = "java-static";
    String group = "java-static-group";
    try (Admin admin = Admin.create(adminProps())) {
      step("static-member", () -> {
        admin.createTopics(List.of(new NewTopic(topic, 2, (short) 1))).all().get(CALL_TIMEOUT_S, TimeUnit.SECONDS);
        produce(topic, 0, 20);
        // First incarnation reads everything and commits (OffsetCommit v7 carries group_instance_id).
        try (KafkaConsumer<String, String> c = new KafkaConsumer<>(consumerProps(group, "instance-1"))) {
          c.subscribe(List.of(topic));
          int n = pollUntil(c, 20);
          check(n == 20, "first incarnation read " + n + " of 20");
          c.commitSync(Duration.ofSeconds(CALL_TIMEOUT_S));
        }
        produce(topic, 20, 10);
        // Same group.instance.id again: it takes over the static member and resumes after the commit.
        try (KafkaConsumer<String, String> c = new KafkaConsumer<>(consumerProps(group, "instance-1"))) {
          c.subscribe(List.of(topic));
          int n = pollUntil(c, 10);
          check(n == 10, "second incarnation read " + n + " records, expected the 10 new ones");
          c.commitSync(Duration.ofSeconds(CALL_TIMEOUT_S));
        }
        var described = admin.describeConsumerGroups(List.of(group)).all().get(CALL_TIMEOUT_S, TimeUnit.SECONDS).get(group);
        var members = described.members();
        check(members.size() == 1, "group has " + members.size() + " members after the restart: " + members);
        return "OK static-member 20+10 members=1 instance=" + members.iterator().next().groupInstanceId().orElse("<none>");
      });
    }
  }

  // ---------------------------------------------------------------- rebalance

  /** Two members of one group split the partitions; when one leaves, the other gets them all. */
  private static void rebalance() {
    String topic = "java-rebalance";
    String group = "java-rebalance-group";
    try (Admin admin = Admin.create(adminProps())) {
      step("rebalance", () -> {
        admin.createTopics(List.of(new NewTopic(topic, 4, (short) 1))).all().get(CALL_TIMEOUT_S, TimeUnit.SECONDS);
        Map<String, Integer> seen = new HashMap<>();
        // Heartbeats every 300 ms instead of 3 s: members learn of each rebalance sooner.
        Properties props = consumerProps(group, null);
        props.put(ConsumerConfig.HEARTBEAT_INTERVAL_MS_CONFIG, "300");
        try (KafkaConsumer<String, String> a = new KafkaConsumer<>(props);
             KafkaConsumer<String, String> b = new KafkaConsumer<>(props)) {
          a.subscribe(List.of(topic));
          long deadline = System.currentTimeMillis() + 20_000;
          while (a.assignment().size() != 4) {
            check(System.currentTimeMillis() < deadline, "first member has " + a.assignment() + " after 20 s");
            count(a.poll(Duration.ofMillis(100)), seen);
          }
          b.subscribe(List.of(topic));
          // Both members poll in turn: the join of the second one completes once the first one rejoins.
          deadline = System.currentTimeMillis() + 30_000;
          while (a.assignment().isEmpty() || b.assignment().isEmpty() || a.assignment().size() + b.assignment().size() != 4) {
            check(System.currentTimeMillis() < deadline, "no split after 30 s: " + a.assignment() + " / " + b.assignment());
            count(a.poll(Duration.ofMillis(100)), seen);
            count(b.poll(Duration.ofMillis(100)), seen);
          }
          Set<TopicPartition> union = new java.util.HashSet<>(a.assignment());
          union.addAll(b.assignment());
          check(union.size() == 4, "overlapping assignments " + a.assignment() + " / " + b.assignment());
          String split = a.assignment().size() + "+" + b.assignment().size();
          // Produced only now, so each record is read once, by the member that owns its partition, and
          // the commits below cover everything (records read before the split would be re-read after
          // it, with nothing committed for them).
          produce(topic, 0, 40);
          deadline = System.currentTimeMillis() + 20_000;
          while (seen.size() < 40) {
            check(System.currentTimeMillis() < deadline, "two members read " + seen.size() + " of 40 distinct records");
            count(a.poll(Duration.ofMillis(100)), seen);
            count(b.poll(Duration.ofMillis(100)), seen);
          }
          a.commitSync(Duration.ofSeconds(CALL_TIMEOUT_S));
          b.commitSync(Duration.ofSeconds(CALL_TIMEOUT_S));
          a.close(Duration.ofSeconds(10)); // LeaveGroup: b takes over every partition
          deadline = System.currentTimeMillis() + 30_000;
          int extra = 0;
          while (b.assignment().size() != 4) {
            check(System.currentTimeMillis() < deadline, "remaining member has " + b.assignment() + " 30 s after the other left");
            extra += b.poll(Duration.ofMillis(100)).count();
          }
          extra += b.poll(Duration.ofMillis(300)).count();
          check(extra == 0, "remaining member re-read " + extra + " committed records");
          long dups = seen.values().stream().filter(v -> v > 1).count();
          check(dups == 0, dups + " records were read twice while the group was stable");
          return "OK rebalance split=" + split + " records=" + seen.size() + " after-leave=" + b.assignment().size();
        }
      });
    }
  }

  private static void count(ConsumerRecords<String, String> records, Map<String, Integer> seen) {
    for (ConsumerRecord<String, String> r : records) seen.merge(r.key(), 1, Integer::sum);
  }

  // ---------------------------------------------------------------- offsets

  /** ListOffsets (earliest, latest, by timestamp), seek, and the group's committed offsets through Admin. */
  private static void offsets() {
    String topic = "java-offsets";
    String group = "java-offsets-group";
    TopicPartition tp = new TopicPartition(topic, 0);
    try (Admin admin = Admin.create(adminProps())) {
      step("offsets", () -> {
        admin.createTopics(List.of(new NewTopic(topic, 1, (short) 1))).all().get(CALL_TIMEOUT_S, TimeUnit.SECONDS);
        long t0 = System.currentTimeMillis();
        try (KafkaProducer<String, String> p = new KafkaProducer<>(producerProps())) {
          for (int i = 0; i < 10; i++) p.send(new ProducerRecord<>(topic, 0, t0 + i * 1000L, key(i), value("ts", i))).get(CALL_TIMEOUT_S, TimeUnit.SECONDS);
        }
        try (KafkaConsumer<String, String> c = new KafkaConsumer<>(consumerProps(group, null))) {
          long begin = c.beginningOffsets(List.of(tp), Duration.ofSeconds(CALL_TIMEOUT_S)).get(tp);
          long end = c.endOffsets(List.of(tp), Duration.ofSeconds(CALL_TIMEOUT_S)).get(tp);
          var byTime = c.offsetsForTimes(Map.of(tp, t0 + 4500L), Duration.ofSeconds(CALL_TIMEOUT_S)).get(tp);
          check(byTime != null, "offsetsForTimes found nothing at t0+4500");
          var none = c.offsetsForTimes(Map.of(tp, t0 + 60_000L), Duration.ofSeconds(CALL_TIMEOUT_S)).get(tp);
          c.assign(List.of(tp));
          c.seek(tp, 7);
          int n = pollUntil(c, 3);
          c.commitSync(Map.of(tp, new OffsetAndMetadata(8, "meta")), Duration.ofSeconds(CALL_TIMEOUT_S));
          var listed = admin.listConsumerGroupOffsets(group).partitionsToOffsetAndMetadata().get(CALL_TIMEOUT_S, TimeUnit.SECONDS).get(tp);
          check(listed != null, "listConsumerGroupOffsets has no offset for " + tp);
          var latest = admin.listOffsets(Map.of(tp, org.apache.kafka.clients.admin.OffsetSpec.latest())).all().get(CALL_TIMEOUT_S, TimeUnit.SECONDS).get(tp);
          return "OK offsets begin=" + begin + " end=" + end + " time=" + byTime.offset() + "@" + (byTime.timestamp() - t0)
              + " after-last=" + (none == null ? "null" : none.offset()) + " seek7=" + n + " committed=" + listed.offset() + "/" + listed.metadata()
              + " admin-latest=" + latest.offset();
        }
      });
    }
  }

  /** Null keys, null values (tombstones), null and empty header values, empty strings. */
  private static void nulls() {
    String topic = "java-nulls";
    TopicPartition tp = new TopicPartition(topic, 0);
    try (Admin admin = Admin.create(adminProps())) {
      step("nulls", () -> {
        admin.createTopics(List.of(new NewTopic(topic, 1, (short) 1))).all().get(CALL_TIMEOUT_S, TimeUnit.SECONDS);
        try (KafkaProducer<String, String> p = new KafkaProducer<>(producerProps())) {
          p.send(new ProducerRecord<>(topic, 0, null, "no key"));
          p.send(new ProducerRecord<>(topic, 0, "tombstone", null));
          ProducerRecord<String, String> r = new ProducerRecord<>(topic, 0, "", "");
          r.headers().add("null", null).add("empty", new byte[0]).add("dup", new byte[] { 1 }).add("dup", new byte[] { 2 });
          p.send(r).get(CALL_TIMEOUT_S, TimeUnit.SECONDS);
        }
        try (KafkaConsumer<String, String> c = new KafkaConsumer<>(consumerProps("java-nulls-group", null))) {
          c.assign(List.of(tp));
          c.seekToBeginning(List.of(tp));
          List<ConsumerRecord<String, String>> got = new ArrayList<>();
          long deadline = System.currentTimeMillis() + 20_000;
          while (got.size() < 3 && System.currentTimeMillis() < deadline) c.poll(Duration.ofMillis(200)).forEach(got::add);
          check(got.size() == 3, "read " + got.size() + " of 3");
          check(got.get(0).key() == null && "no key".equals(got.get(0).value()), "record 0: " + got.get(0));
          check("tombstone".equals(got.get(1).key()) && got.get(1).value() == null, "record 1: " + got.get(1));
          var h = got.get(2).headers().toArray();
          check("".equals(got.get(2).key()) && "".equals(got.get(2).value()), "record 2: " + got.get(2));
          check(h.length == 4 && h[0].key().equals("null") && h[0].value() == null && h[1].value().length == 0
              && h[2].key().equals("dup") && h[2].value()[0] == 1 && h[3].value()[0] == 2, "record 2 headers: " + got.get(2).headers());
        }
        return "OK nulls";
      });
    }
  }

  // ---------------------------------------------------------------- groups-admin

  /** What kafka-consumer-groups.sh and kafka-delete-records.sh do through Admin. */
  @SuppressWarnings("deprecation") // listConsumerGroups: its 4.1 replacement (listGroups) is not in 3.9
  private static void groupsAdmin() {
    String topic = "java-ga";
    String group = "java-ga-group";
    TopicPartition p0 = new TopicPartition(topic, 0);
    TopicPartition p1 = new TopicPartition(topic, 1);
    try (Admin admin = Admin.create(adminProps())) {
      step("describe a live group", () -> {
        admin.createTopics(List.of(new NewTopic(topic, 2, (short) 1))).all().get(CALL_TIMEOUT_S, TimeUnit.SECONDS);
        try (KafkaProducer<String, String> p = new KafkaProducer<>(producerProps())) {
          for (int i = 0; i < 20; i++) p.send(new ProducerRecord<>(topic, i % 2, key(i), value("ga", i)));
        }
        try (KafkaConsumer<String, String> c = new KafkaConsumer<>(consumerProps(group, null))) {
          c.subscribe(List.of(topic));
          int n = pollUntil(c, 20);
          check(n == 20, "read " + n + " of 20");
          c.commitSync(Duration.ofSeconds(CALL_TIMEOUT_S));
          var listed = admin.listConsumerGroups().all().get(CALL_TIMEOUT_S, TimeUnit.SECONDS);
          check(listed.stream().anyMatch(g -> g.groupId().equals(group)), "listConsumerGroups lacks " + group + ": " + listed);
          var d = admin.describeConsumerGroups(List.of(group)).all().get(CALL_TIMEOUT_S, TimeUnit.SECONDS).get(group);
          check(d.members().size() == 1, "members " + d.members());
          var m = d.members().iterator().next();
          check(m.assignment().topicPartitions().equals(Set.of(p0, p1)), "member assignment " + m.assignment());
          check(d.coordinator() != null, "no coordinator for " + group);
          // The node FindCoordinator names (this broker in a single node, a coordinator node in a cluster).
          return "OK describeConsumerGroups members=1 assignor=" + d.partitionAssignor() + " partitions=2 simple=" + d.isSimpleConsumerGroup()
              + " coordinator=" + d.coordinator().id();
        }
      });
      step("alterConsumerGroupOffsets", () -> {
        admin.alterConsumerGroupOffsets(group, Map.of(p0, new OffsetAndMetadata(3))).all().get(CALL_TIMEOUT_S, TimeUnit.SECONDS);
        var offsets = admin.listConsumerGroupOffsets(group).partitionsToOffsetAndMetadata().get(CALL_TIMEOUT_S, TimeUnit.SECONDS);
        return "OK alterConsumerGroupOffsets p0=" + offsets.get(p0).offset() + " p1=" + offsets.get(p1).offset();
      });
      step("deleteConsumerGroupOffsets", () -> {
        admin.deleteConsumerGroupOffsets(group, Set.of(p1)).all().get(CALL_TIMEOUT_S, TimeUnit.SECONDS);
        var offsets = admin.listConsumerGroupOffsets(group).partitionsToOffsetAndMetadata().get(CALL_TIMEOUT_S, TimeUnit.SECONDS);
        return "OK deleteConsumerGroupOffsets left=" + offsets.keySet().stream().map(TopicPartition::partition).sorted().toList();
      });
      step("deleteRecords", () -> {
        var low = admin.deleteRecords(Map.of(p0, org.apache.kafka.clients.admin.RecordsToDelete.beforeOffset(5))).all().get(CALL_TIMEOUT_S, TimeUnit.SECONDS);
        var earliest = admin.listOffsets(Map.of(p0, org.apache.kafka.clients.admin.OffsetSpec.earliest())).all().get(CALL_TIMEOUT_S, TimeUnit.SECONDS).get(p0);
        return "OK deleteRecords earliest=" + earliest.offset();
      });
      step("describeLogDirs", () -> {
        // Asked of the broker that leads p1 (RF 1: its only replica; in a cluster not necessarily node 1).
        int leader = describe(admin, topic).partitions().get(1).leader().id();
        var dirs = admin.describeLogDirs(List.of(leader)).allDescriptions().get(CALL_TIMEOUT_S, TimeUnit.SECONDS).get(leader);
        check(dirs != null && !dirs.isEmpty(), "no log dirs for broker " + leader + ": " + dirs);
        long size = -1;
        for (var dir : dirs.values()) {
          check(dir.error() == null, "log dir error " + dir.error());
          var info = dir.replicaInfos().get(p1);
          if (info != null) size = info.size();
        }
        check(size > 0, "describeLogDirs reports size " + size + " for " + p1);
        return "OK describeLogDirs dirs=" + dirs.size() + " " + p1 + " has bytes";
      });
      step("deleteConsumerGroups", () -> {
        admin.deleteConsumerGroups(List.of(group)).all().get(CALL_TIMEOUT_S, TimeUnit.SECONDS);
        var listed = admin.listConsumerGroups().all().get(CALL_TIMEOUT_S, TimeUnit.SECONDS);
        check(listed.stream().noneMatch(g -> g.groupId().equals(group)), group + " still listed: " + listed);
        return "OK deleteConsumerGroups";
      });
      step("group.protocol=consumer", () -> {
        // KIP-848 (ConsumerGroupHeartbeat, server-side assignment): a lone member gets every partition.
        Properties props = consumerProps("java-848", null);
        props.put(ConsumerConfig.GROUP_PROTOCOL_CONFIG, "consumer");
        try (KafkaConsumer<String, String> c = new KafkaConsumer<>(props)) {
          c.subscribe(List.of(topic));
          long deadline = System.currentTimeMillis() + 30_000;
          while (System.currentTimeMillis() < deadline) {
            c.poll(Duration.ofMillis(200));
            if (!c.assignment().isEmpty()) return "OK group.protocol=consumer assigned partitions=" + c.assignment().size();
          }
          return "FAIL group.protocol=consumer: no assignment within 30 s";
        }
      });
    }
  }

  // ---------------------------------------------------------------- any-node

  private static final int FRESH_ADMINS = 12;

  /**
   * Every node in the Metadata broker list must serve what Kafka clients send to "any node"
   * (NetworkClient.leastLoadedNode): an idempotent producer's InitProducerId, Admin's
   * DescribeConfigs for a topic. A producer bootstrapped from each listed node in turn sends its
   * InitProducerId to that node (its metadata is not in yet); a fresh Admin's first call goes to a
   * node picked at random among those not yet connected, so FRESH_ADMINS of them reach every node of
   * a 3-node list with probability 1 - 3 * (2/3)^12 (about 98 %).
   */
  private static void anyNode() {
    String topic = "java-any-node";
    try (Admin admin = Admin.create(adminProps())) {
      List<Node> nodes = new ArrayList<>();
      step("idempotent producer via each node", () -> {
        admin.createTopics(List.of(new NewTopic(topic, 2, (short) 1).configs(Map.of("retention.ms", "3600000")))).all().get(CALL_TIMEOUT_S, TimeUnit.SECONDS);
        nodes.addAll(admin.describeCluster().nodes().get(CALL_TIMEOUT_S, TimeUnit.SECONDS));
        List<String> failures = new ArrayList<>();
        for (Node n : nodes) {
          Properties pp = producerProps();
          pp.put(ProducerConfig.BOOTSTRAP_SERVERS_CONFIG, n.host() + ":" + n.port());
          try (KafkaProducer<String, String> p = new KafkaProducer<>(pp)) {
            p.send(new ProducerRecord<>(topic, key(n.id()), value("any", n.id()))).get(CALL_TIMEOUT_S, TimeUnit.SECONDS);
          } catch (Exception e) {
            Throwable c = e;
            while (c.getCause() != null && c.getCause() != c) c = c.getCause();
            failures.add("node " + n.id() + ": " + c.getClass().getSimpleName() + ": " + c.getMessage());
          }
        }
        check(failures.isEmpty(), "a producer bootstrapped from " + failures);
        return "OK idempotent producer via each of " + nodes.size() + " nodes";
      });
      step("describeConfigs from fresh admins", () -> {
        ConfigResource r = new ConfigResource(ConfigResource.Type.TOPIC, topic);
        Map<String, Integer> failures = new TreeMap<>();
        for (int i = 0; i < FRESH_ADMINS; i++) {
          try (Admin fresh = Admin.create(adminProps())) {
            Config c = fresh.describeConfigs(List.of(r)).all().get(CALL_TIMEOUT_S, TimeUnit.SECONDS).get(r);
            check("3600000".equals(c.get("retention.ms").value()), "retention.ms " + c.get("retention.ms"));
          } catch (java.util.concurrent.ExecutionException e) {
            failures.merge(e.getCause().getClass().getSimpleName() + ": " + e.getCause().getMessage(), 1, Integer::sum);
          }
        }
        check(failures.isEmpty(), "of " + FRESH_ADMINS + " fresh admins, failed: " + failures);
        return "OK describeConfigs fresh-admins=" + FRESH_ADMINS;
      });
    }
  }

  private static void produce(String topic, int from, int n) throws Exception {
    try (KafkaProducer<String, String> p = new KafkaProducer<>(producerProps())) {
      for (int i = from; i < from + n; i++) p.send(new ProducerRecord<>(topic, key(i), value("static", i)));
      p.flush();
    }
  }

  /** Polls until `want` records arrived (or 30 s passed), then a little longer for extras. */
  private static int pollUntil(KafkaConsumer<String, String> c, int want) {
    int n = 0;
    long deadline = System.currentTimeMillis() + 30_000;
    while (n < want && System.currentTimeMillis() < deadline) n += c.poll(Duration.ofMillis(200)).count();
    return n + c.poll(Duration.ofMillis(300)).count();
  }

  // ---------------------------------------------------------------- helpers

  private static String key(int i) { return "key-" + i; }

  private static String value(String codec, int i) {
    return "value " + i + " " + codec + " " + "abcdefgh".repeat(i % 40);
  }

  private static String header(ConsumerRecord<?, ?> r, String name) {
    Header h = r.headers().lastHeader(name);
    return h == null ? "<missing>" : new String(h.value(), StandardCharsets.UTF_8);
  }

  private static Properties adminProps() {
    Properties p = new Properties();
    p.put(AdminClientConfig.BOOTSTRAP_SERVERS_CONFIG, bootstrap);
    p.put(AdminClientConfig.REQUEST_TIMEOUT_MS_CONFIG, "10000");
    p.put(AdminClientConfig.DEFAULT_API_TIMEOUT_MS_CONFIG, "20000");
    return p;
  }

  /** Java's defaults otherwise: acks=all, enable.idempotence=true (so InitProducerId), murmur2 partitioning. */
  private static Properties producerProps() {
    Properties p = new Properties();
    p.put(ProducerConfig.BOOTSTRAP_SERVERS_CONFIG, bootstrap);
    p.put(ProducerConfig.KEY_SERIALIZER_CLASS_CONFIG, StringSerializer.class.getName());
    p.put(ProducerConfig.VALUE_SERIALIZER_CLASS_CONFIG, StringSerializer.class.getName());
    p.put(ProducerConfig.LINGER_MS_CONFIG, "5");
    p.put(ProducerConfig.MAX_BLOCK_MS_CONFIG, "15000");
    p.put(ProducerConfig.REQUEST_TIMEOUT_MS_CONFIG, "10000");
    p.put(ProducerConfig.DELIVERY_TIMEOUT_MS_CONFIG, "20000");
    return p;
  }

  private static Properties consumerProps(String group, String instanceId) {
    Properties p = new Properties();
    p.put(ConsumerConfig.BOOTSTRAP_SERVERS_CONFIG, bootstrap);
    p.put(ConsumerConfig.GROUP_ID_CONFIG, group);
    if (instanceId != null) p.put(ConsumerConfig.GROUP_INSTANCE_ID_CONFIG, instanceId);
    p.put(ConsumerConfig.AUTO_OFFSET_RESET_CONFIG, "earliest");
    p.put(ConsumerConfig.ENABLE_AUTO_COMMIT_CONFIG, "false");
    p.put(ConsumerConfig.KEY_DESERIALIZER_CLASS_CONFIG, StringDeserializer.class.getName());
    p.put(ConsumerConfig.VALUE_DESERIALIZER_CLASS_CONFIG, StringDeserializer.class.getName());
    p.put(ConsumerConfig.REQUEST_TIMEOUT_MS_CONFIG, "10000");
    p.put(ConsumerConfig.DEFAULT_API_TIMEOUT_MS_CONFIG, "20000");
    return p;
  }

  private static TopicDescription describe(Admin admin, String topic) throws Exception {
    return admin.describeTopics(List.of(topic)).allTopicNames().get(CALL_TIMEOUT_S, TimeUnit.SECONDS).get(topic);
  }

  private static final class CheckFailed extends Exception {
    CheckFailed(String message) { super(message); }
  }

  private static void check(boolean ok, String message) throws CheckFailed {
    if (!ok) throw new CheckFailed(message);
  }

  /** Runs one step; prints its OK line, or a FAIL line with the root cause, and carries on. */
  private static void step(String name, Callable<String> body) {
    try {
      String line = body.call();
      if (line.startsWith("FAIL")) failed = true;
      System.out.println(line);
    } catch (Throwable t) {
      failed = true;
      Throwable cause = t;
      while (cause.getCause() != null && cause.getCause() != cause) cause = cause.getCause();
      String detail = cause instanceof CheckFailed ? cause.getMessage() : cause.getClass().getName() + ": " + cause.getMessage();
      System.out.println("FAIL " + name + ": " + detail.replace('\n', ' '));
      if (!(cause instanceof CheckFailed)) t.printStackTrace(System.err);
    }
    System.out.flush();
  }

  private static void watchdog(long ms) {
    Thread t = new Thread(() -> {
      try {
        Thread.sleep(ms);
      } catch (InterruptedException e) {
        return;
      }
      System.out.println("FAIL timeout: scenario still running after " + ms + " ms");
      System.out.flush();
      Runtime.getRuntime().halt(4);
    }, "runnel-watchdog");
    t.setDaemon(true);
    t.start();
  }
}
