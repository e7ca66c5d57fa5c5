import java.time.Duration;
import java.util.List;
import java.util.Map;
import java.util.Properties;
import org.apache.kafka.clients.consumer.ConsumerConfig;
import org.apache.kafka.clients.consumer.ConsumerRecord;
import org.apache.kafka.clients.consumer.ConsumerRecords;
import org.apache.kafka.clients.consumer.KafkaConsumer;
import org.apache.kafka.clients.consumer.OffsetAndMetadata;
import org.apache.kafka.clients.producer.KafkaProducer;
import org.apache.kafka.clients.producer.ProducerConfig;
import org.apache.kafka.clients.producer.ProducerRecord;
import org.apache.kafka.common.TopicPartition;
import org.apache.kafka.common.serialization.StringDeserializer;
import org.apache.kafka.common.serialization.StringSerializer;

/**
 * An exactly-once copier (Kafka's transactions_test / TransactionalMessageCopier): reads partition 0
 * of the input with read_committed from the group's committed offset, and per poll writes the
 * records to partition 0 of the output in one transaction together with the input offset
 * (sendOffsetsToTransaction), then commits. test/transactions-recovery.test.ts kills it with -9
 * mid-transaction and starts it again.
 *
 * Usage: RunnelEos bootstrap input output group transactionalId total pauseMs
 * Prints `READY` after initTransactions, `SENT <next offset>` once a transaction's records are
 * flushed to the log (from its second transaction on, it then waits pauseMs before committing: the
 * window in which the test kills it), `COMMITTED <next offset>` after each commit, and `DONE` (exit 0) once the input offset
 * reaches total.
 */
public final class RunnelEos {
  public static void main(String[] args) throws Exception {
    String bootstrap = args[0], input = args[1], output = args[2], group = args[3], txnId = args[4];
    long total = Long.parseLong(args[5]);
    long pauseMs = Long.parseLong(args[6]);

    Properties cp = new Properties();
    cp.put(ConsumerConfig.BOOTSTRAP_SERVERS_CONFIG, bootstrap);
    cp.put(ConsumerConfig.GROUP_ID_CONFIG, group);
    cp.put(ConsumerConfig.ENABLE_AUTO_COMMIT_CONFIG, "false");
    cp.put(ConsumerConfig.ISOLATION_LEVEL_CONFIG, "read_committed");
    cp.put(ConsumerConfig.AUTO_OFFSET_RESET_CONFIG, "earliest");
    cp.put(ConsumerConfig.MAX_POLL_RECORDS_CONFIG, "25");
    cp.put(ConsumerConfig.KEY_DESERIALIZER_CLASS_CONFIG, StringDeserializer.class.getName());
    cp.put(ConsumerConfig.VALUE_DESERIALIZER_CLASS_CONFIG, StringDeserializer.class.getName());
    Properties pp = new Properties();
    pp.put(ProducerConfig.BOOTSTRAP_SERVERS_CONFIG, bootstrap);
    pp.put(ProducerConfig.TRANSACTIONAL_ID_CONFIG, txnId);
    pp.put(ProducerConfig.KEY_SERIALIZER_CLASS_CONFIG, StringSerializer.class.getName());
    pp.put(ProducerConfig.VALUE_SERIALIZER_CLASS_CONFIG, StringSerializer.class.getName());
    pp.put(ProducerConfig.MAX_BLOCK_MS_CONFIG, "30000");

    TopicPartition in = new TopicPartition(input, 0);
    try (KafkaConsumer<String, String> consumer = new KafkaConsumer<>(cp);
         KafkaProducer<String, String> producer = new KafkaProducer<>(pp)) {
      // assign(): the position starts at the group's committed offset (the last committed transaction's).
      consumer.assign(List.of(in));
      // Fences the killed predecessor (same transactional.id) and aborts its open transaction.
      producer.initTransactions();
      System.out.println("READY");
      System.out.flush();
      long next = consumer.position(in);
      boolean committedOne = false;
      while (next < total) {
        ConsumerRecords<String, String> records = consumer.poll(Duration.ofMillis(200));
        if (records.isEmpty()) continue;
        producer.beginTransaction();
        for (ConsumerRecord<String, String> r : records) {
          producer.send(new ProducerRecord<>(output, 0, r.key(), r.value()));
          next = r.offset() + 1;
        }
        producer.flush();
        System.out.println("SENT " + next);
        System.out.flush();
        if (committedOne && pauseMs > 0) Thread.sleep(pauseMs);
        producer.sendOffsetsToTransaction(Map.of(in, new OffsetAndMetadata(next)), consumer.groupMetadata());
        producer.commitTransaction();
        committedOne = true;
        System.out.println("COMMITTED " + next);
        System.out.flush();
      }
      System.out.println("DONE");
      System.out.flush();
    }
  }
}
