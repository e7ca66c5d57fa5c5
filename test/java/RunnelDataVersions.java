// The Java client's data path at Kafka 4's versions (Produce 11, Fetch 17 by topic id, ListOffsets
// 10) against Runnel. Compiled and run by test/protocol-data-versions.test.ts, which also records
// the versions the client sent; this program does the client work and prints one `OK ...` line per
// step, or `FAIL <step>: ...` and exits 1.
//
//   java -cp <classpath> RunnelDataVersions <bootstrap> <topic>
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.Properties;
import java.util.TreeMap;
import java.util.concurrent.Future;
import java.util.concurrent.TimeUnit;
import org.apache.kafka.clients.admin.Admin;
import org.apache.kafka.clients.admin.AdminClientConfig;
import org.apache.kafka.clients.admin.ListOffsetsResult.ListOffsetsResultInfo;
import org.apache.kafka.clients.admin.NewTopic;
import org.apache.kafka.clients.admin.OffsetSpec;
import org.apache.kafka.clients.consumer.ConsumerConfig;
import org.apache.kafka.clients.consumer.ConsumerRecord;
import org.apache.kafka.clients.consumer.KafkaConsumer;
import org.apache.kafka.clients.producer.KafkaProducer;
import org.apache.kafka.clients.producer.ProducerConfig;
import org.apache.kafka.clients.producer.ProducerRecord;
import org.apache.kafka.clients.producer.RecordMetadata;
import org.apache.kafka.common.TopicPartition;
import org.apache.kafka.common.serialization.StringDeserializer;
import org.apache.kafka.common.serialization.StringSerializer;

public final class RunnelDataVersions {
  private static final int RECORDS = 40;
  private static final long T0 = 1_700_000_000_000L;

  public static void main(String[] args) throws Exception {
    Thread watchdog = new Thread(() -> {
      try {
        Thread.sleep(60_000);
        System.out.println("FAIL timeout: still running after 60 s");
        System.out.flush();
        Runtime.getRuntime().halt(4);
      } catch (InterruptedException e) {
        // finished in time
      }
    });
    watchdog.setDaemon(true);
    watchdog.start();
    String bootstrap = args[0];
    String topic = args[1];
    String step = "createTopics";
    try {
      Properties ap = new Properties();
      ap.put(AdminClientConfig.BOOTSTRAP_SERVERS_CONFIG, bootstrap);
      try (Admin admin = Admin.create(ap)) {
        admin.createTopics(List.of(new NewTopic(topic, 2, (short) 1))).all().get(20, TimeUnit.SECONDS);

        // The default producer: idempotent, acks=all. Record i goes to partition i % 2 with timestamp T0 + i.
        step = "produce";
        Properties pp = new Properties();
        pp.put(ProducerConfig.BOOTSTRAP_SERVERS_CONFIG, bootstrap);
        pp.put(ProducerConfig.KEY_SERIALIZER_CLASS_CONFIG, StringSerializer.class.getName());
        pp.put(ProducerConfig.VALUE_SERIALIZER_CLASS_CONFIG, StringSerializer.class.getName());
        Map<Integer, Integer> perPartition = new TreeMap<>();
        try (KafkaProducer<String, String> producer = new KafkaProducer<>(pp)) {
          List<Future<RecordMetadata>> sent = new ArrayList<>();
          for (int i = 0; i < RECORDS; i++) sent.add(producer.send(new ProducerRecord<>(topic, i % 2, T0 + i, "k" + i, "v" + i)));
          producer.flush();
          for (int i = 0; i < RECORDS; i++) {
            RecordMetadata m = sent.get(i).get(20, TimeUnit.SECONDS);
            check(m.offset() == i / 2, "record " + i + " got offset " + m.offset() + " of partition " + m.partition());
            perPartition.merge(m.partition(), 1, Integer::sum);
          }
        }
        System.out.println("OK produced " + RECORDS + " partitions=" + perPartition);

        // No group: assign and seek to the beginning (ListOffsets -2), then fetch by topic id.
        step = "consume";
        Properties cp = new Properties();
        cp.put(ConsumerConfig.BOOTSTRAP_SERVERS_CONFIG, bootstrap);
        cp.put(ConsumerConfig.KEY_DESERIALIZER_CLASS_CONFIG, StringDeserializer.class.getName());
        cp.put(ConsumerConfig.VALUE_DESERIALIZER_CLASS_CONFIG, StringDeserializer.class.getName());
        cp.put(ConsumerConfig.MAX_POLL_RECORDS_CONFIG, "7");
        TopicPartition p0 = new TopicPartition(topic, 0);
        TopicPartition p1 = new TopicPartition(topic, 1);
        Map<Integer, List<String>> got = new TreeMap<>();
        int count = 0;
        try (KafkaConsumer<String, String> consumer = new KafkaConsumer<>(cp)) {
          consumer.assign(List.of(p0, p1));
          consumer.seekToBeginning(List.of(p0, p1));
          long deadline = System.currentTimeMillis() + 30_000;
          while (count < RECORDS) {
            check(System.currentTimeMillis() < deadline, "consumed " + count + " of " + RECORDS + " within 30 s");
            for (ConsumerRecord<String, String> r : consumer.poll(Duration.ofMillis(200))) {
              int i = Integer.parseInt(r.key().substring(1));
              check(r.partition() == i % 2 && r.offset() == i / 2 && r.value().equals("v" + i) && r.timestamp() == T0 + i,
                  "unexpected record " + r);
              check(r.leaderEpoch().isPresent() && r.leaderEpoch().get() == 0, "record " + i + " leader epoch " + r.leaderEpoch());
              got.computeIfAbsent(r.partition(), p -> new ArrayList<>()).add(r.key());
              count++;
            }
          }
          check(consumer.position(p0) == RECORDS / 2 && consumer.position(p1) == RECORDS / 2, "positions " + consumer.position(p0) + "/" + consumer.position(p1));
        }
        System.out.println("OK consumed " + count + " in order p0=" + got.get(0).size() + " p1=" + got.get(1).size());

        // KIP-405/KIP-1005 specs need ListOffsets 8 and 9: with no tiered storage the earliest local
        // offset is the log start and there is no tiered offset (-1).
        step = "listOffsets";
        String specs = "";
        Map<String, OffsetSpec> named = new java.util.LinkedHashMap<>();
        named.put("earliest", OffsetSpec.earliest());
        named.put("latest", OffsetSpec.latest());
        named.put("max", OffsetSpec.maxTimestamp());
        named.put("earliestLocal", OffsetSpec.earliestLocal());
        named.put("latestTiered", OffsetSpec.latestTiered());
        named.put("time", OffsetSpec.forTimestamp(T0 + 21));
        for (var e : named.entrySet()) {
          ListOffsetsResultInfo info = admin.listOffsets(Map.of(p1, e.getValue())).partitionResult(p1).get(20, TimeUnit.SECONDS);
          specs += " " + e.getKey() + "=" + info.offset() + (info.timestamp() >= 0 ? "@" + (info.timestamp() - T0) : "");
        }
        System.out.println("OK listOffsets" + specs);
      }
    } catch (Throwable t) {
      Throwable cause = t instanceof java.util.concurrent.ExecutionException && t.getCause() != null ? t.getCause() : t;
      System.out.println("FAIL " + step + ": " + cause.getClass().getName() + ": " + cause.getMessage());
      System.out.flush();
      System.exit(1);
    }
    System.out.println("DONE");
    System.out.flush();
    System.exit(0);
  }

  private static void check(boolean ok, String message) {
    if (!ok) throw new IllegalStateException(message);
  }
}
