import java.time.Duration;
import java.util.ArrayList;
import java.util.Collection;
import java.util.List;
import java.util.Properties;
import org.apache.kafka.clients.consumer.ConsumerRebalanceListener;
import org.apache.kafka.clients.consumer.ConsumerRecord;
import org.apache.kafka.clients.consumer.ConsumerRecords;
import org.apache.kafka.clients.consumer.KafkaConsumer;
import org.apache.kafka.common.TopicPartition;
import org.apache.kafka.common.serialization.StringDeserializer;

/**
 * A KIP-848 consumer (group.protocol=consumer) for test/kip848-java.test.ts: it subscribes to one
 * topic, prints `ASSIGNED <partitions>` / `REVOKED <partitions>` / `LOST <partitions>` from its
 * rebalance listener and `REC <partition> <offset> <value>` per record, and commits synchronously
 * after every poll that returned records. It runs until killed (the test kills it with -9 or TERM)
 * or until its stdin closes, then closes the consumer (leaving the group).
 *
 *   java -cp ... RunnelKip848Consumer <bootstrap> <group> <topic> [assignor]
 */
public final class RunnelKip848Consumer {
  private static String list(Collection<TopicPartition> parts) {
    List<Integer> ps = new ArrayList<>();
    for (TopicPartition tp : parts) ps.add(tp.partition());
    ps.sort(null);
    StringBuilder sb = new StringBuilder();
    for (int p : ps) sb.append(sb.length() == 0 ? "" : ",").append(p);
    return sb.toString();
  }

  public static void main(String[] args) throws Exception {
    Properties props = new Properties();
    props.put("bootstrap.servers", args[0]);
    props.put("group.id", args[1]);
    props.put("group.protocol", "consumer");
    if (args.length > 3) props.put("group.remote.assignor", args[3]);
    props.put("auto.offset.reset", "earliest");
    props.put("enable.auto.commit", "false");
    props.put("client.id", "kip848-" + ProcessHandle.current().pid());
    props.put("key.deserializer", StringDeserializer.class.getName());
    props.put("value.deserializer", StringDeserializer.class.getName());
    final boolean[] stop = {false};
    Thread stdin = new Thread(() -> {
      try {
        while (System.in.read() >= 0) { }
      } catch (Exception ignored) { }
      synchronized (stop) { stop[0] = true; }
    });
    stdin.setDaemon(true);
    stdin.start();
    try (KafkaConsumer<String, String> consumer = new KafkaConsumer<>(props)) {
      consumer.subscribe(List.of(args[2]), new ConsumerRebalanceListener() {
        @Override public void onPartitionsRevoked(Collection<TopicPartition> parts) {
          // Commit what was processed before giving partitions up, as an at-least-once consumer does.
          consumer.commitSync();
          System.out.println("REVOKED " + list(parts));
          System.out.flush();
        }
        @Override public void onPartitionsAssigned(Collection<TopicPartition> parts) {
          System.out.println("ASSIGNED " + list(parts));
          System.out.flush();
        }
        @Override public void onPartitionsLost(Collection<TopicPartition> parts) {
          System.out.println("LOST " + list(parts));
          System.out.flush();
        }
      });
      System.out.println("STARTED");
      System.out.flush();
      while (true) {
        synchronized (stop) { if (stop[0]) break; }
        ConsumerRecords<String, String> records = consumer.poll(Duration.ofMillis(200));
        for (ConsumerRecord<String, String> r : records) System.out.println("REC " + r.partition() + " " + r.offset() + " " + r.value());
        System.out.flush();
        if (!records.isEmpty()) consumer.commitSync();
      }
    }
    System.out.println("CLOSED");
    System.out.flush();
  }
}
