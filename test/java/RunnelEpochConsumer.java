// A Java consumer (kafka-clients 4.3.1) that must survive a leader change without any offset reset:
// auto.offset.reset=none, so an OFFSET_OUT_OF_RANGE or a detected truncation throws instead of
// silently re-reading. After the change the client validates its position with the new leader
// (KIP-320: OffsetForLeaderEpoch, sent only to a broker advertising v3+).
//   java -cp <classpath> RunnelEpochConsumer <bootstrap> <topic> <records wanted> <deadline ms>
// Prints `READ <n>` after each poll that returned records, then `DONE <offset:value@epoch,...>`,
// or `FAIL <reason>` and exits 1.
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Properties;
import org.apache.kafka.clients.consumer.ConsumerConfig;
import org.apache.kafka.clients.consumer.ConsumerRecord;
import org.apache.kafka.clients.consumer.KafkaConsumer;
import org.apache.kafka.common.TopicPartition;
import org.apache.kafka.common.serialization.StringDeserializer;

public class RunnelEpochConsumer {
  public static void main(String[] args) {
    String topic = args[1];
    int wanted = Integer.parseInt(args[2]);
    long deadline = System.currentTimeMillis() + Long.parseLong(args[3]);
    Properties props = new Properties();
    props.put(ConsumerConfig.BOOTSTRAP_SERVERS_CONFIG, args[0]);
    props.put(ConsumerConfig.AUTO_OFFSET_RESET_CONFIG, "none");
    props.put(ConsumerConfig.ENABLE_AUTO_COMMIT_CONFIG, "false");
    props.put(ConsumerConfig.RECONNECT_BACKOFF_MAX_MS_CONFIG, "500");
    props.put(ConsumerConfig.KEY_DESERIALIZER_CLASS_CONFIG, StringDeserializer.class.getName());
    props.put(ConsumerConfig.VALUE_DESERIALIZER_CLASS_CONFIG, StringDeserializer.class.getName());
    List<String> seen = new ArrayList<>();
    try (KafkaConsumer<String, String> consumer = new KafkaConsumer<>(props)) {
      TopicPartition tp = new TopicPartition(topic, 0);
      consumer.assign(List.of(tp));
      consumer.seekToBeginning(List.of(tp));
      while (seen.size() < wanted) {
        if (System.currentTimeMillis() > deadline) fail("deadline passed with " + String.join(",", seen));
        int before = seen.size();
        for (ConsumerRecord<String, String> r : consumer.poll(Duration.ofMillis(200))) {
          seen.add(r.offset() + ":" + r.value() + "@" + r.leaderEpoch().orElse(-1));
        }
        if (seen.size() > before) {
          System.out.println("READ " + seen.size());
          System.out.flush();
        }
      }
    } catch (RuntimeException e) {
      // OffsetOutOfRangeException, LogTruncationException, NoOffsetForPartitionException: a reset was needed.
      fail(e.getClass().getSimpleName() + ": " + e.getMessage());
    }
    System.out.println("DONE " + String.join(",", seen));
  }

  static void fail(String reason) {
    System.out.println("FAIL " + reason);
    System.out.flush();
    System.exit(1);
  }
}
