// The Java client's part of test/security-matrix.test.ts: for each case `<name>=<client properties
// file>` (security.protocol, ssl.*, sasl.* as a Java application would set them), in parallel, an
// idempotent producer writes 20 records to topic `<prefix>-<name>` and a group consumer reads them
// back in order. One line per case: `OK <name> <count>` or `FAIL <name>: <reason>`.
// Run as a single-file source program on Kafka's tools classpath (kafka-clients is on it):
//   java -cp '.cache/kafka-tools/4.3.1/libs/*' test/java/RunnelSecurity.java <bootstrap> <prefix> ssl=/tmp/ssl.properties ...
import java.io.FileReader;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Properties;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import org.apache.kafka.clients.consumer.ConsumerRecord;
import org.apache.kafka.clients.consumer.KafkaConsumer;
import org.apache.kafka.clients.producer.KafkaProducer;
import org.apache.kafka.clients.producer.ProducerRecord;
import org.apache.kafka.common.serialization.StringDeserializer;
import org.apache.kafka.common.serialization.StringSerializer;

public class RunnelSecurity {
  static final int COUNT = 20;

  static String run(String bootstrap, String topic, String name, String file) throws Exception {
    Properties base = new Properties();
    try (FileReader r = new FileReader(file)) { base.load(r); }
    base.put("bootstrap.servers", bootstrap);
    Properties p = new Properties();
    p.putAll(base);
    p.put("key.serializer", StringSerializer.class.getName());
    p.put("value.serializer", StringSerializer.class.getName());
    p.put("delivery.timeout.ms", "40000");
    try (KafkaProducer<String, String> producer = new KafkaProducer<>(p)) {
      for (int i = 0; i < COUNT; i++) producer.send(new ProducerRecord<>(topic, "k" + i, name + "-" + i)).get();
    }
    Properties c = new Properties();
    c.putAll(base);
    c.put("key.deserializer", StringDeserializer.class.getName());
    c.put("value.deserializer", StringDeserializer.class.getName());
    c.put("group.id", topic + "-group");
    c.put("auto.offset.reset", "earliest");
    List<String> got = new ArrayList<>();
    try (KafkaConsumer<String, String> consumer = new KafkaConsumer<>(c)) {
      consumer.subscribe(List.of(topic));
      long deadline = System.currentTimeMillis() + 40_000;
      while (got.size() < COUNT && System.currentTimeMillis() < deadline) {
        for (ConsumerRecord<String, String> rec : consumer.poll(Duration.ofMillis(200))) got.add(rec.value());
      }
      consumer.commitSync();
    }
    for (int i = 0; i < COUNT; i++) {
      if (got.size() <= i || !got.get(i).equals(name + "-" + i)) return "FAIL " + name + ": read " + got;
    }
    return "OK " + name + " " + got.size();
  }

  public static void main(String[] args) throws Exception {
    String bootstrapSpec = args[0];
    String prefix = args[1];
    List<CompletableFuture<String>> runs = new ArrayList<>();
    // Its own threads: the common pool has one worker on a 2-core machine, which would run the cases in turn.
    ExecutorService pool = Executors.newCachedThreadPool();
    for (int i = 2; i < args.length; i++) {
      String[] kv = args[i].split("=", 2);
      // `<name>=<file>`; the bootstrap spec maps each name to its listener: `ssl@127.0.0.1:1,plain@...`.
      String bootstrap = null;
      for (String b : bootstrapSpec.split(",")) if (b.startsWith(kv[0] + "@")) bootstrap = b.substring(kv[0].length() + 1);
      final String bs = bootstrap;
      runs.add(CompletableFuture.supplyAsync(() -> {
        try {
          return run(bs, prefix + "-" + kv[0], kv[0], kv[1]);
        } catch (Throwable t) {
          return "FAIL " + kv[0] + ": " + t;
        }
      }, pool));
    }
    for (CompletableFuture<String> r : runs) System.out.println(r.get());
    System.out.println("DONE");
    System.exit(0);
  }
}
