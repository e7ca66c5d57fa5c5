// Kafka's Admin.electLeaders (what kafka-leader-election.sh sends: ElectLeaders, key 43) and
// Admin.alterPartitionReassignments / listPartitionReassignments (kafka-reassign-partitions.sh:
// keys 45, 46) against Runnel. One line per step: `OK ...`, or `FAIL <step>: ...` and exit 1.
//   java -cp <classpath> RunnelElect <bootstrap> <single|create|preferred|reassign> [topic] [preferred broker id | target ids a,b]
import java.time.Duration;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.Properties;
import java.util.Set;
import org.apache.kafka.clients.admin.Admin;
import org.apache.kafka.clients.admin.AdminClientConfig;
import org.apache.kafka.clients.admin.NewPartitionReassignment;
import org.apache.kafka.clients.admin.NewTopic;
import org.apache.kafka.clients.admin.PartitionReassignment;
import org.apache.kafka.clients.consumer.ConsumerConfig;
import org.apache.kafka.clients.consumer.ConsumerRecord;
import org.apache.kafka.clients.consumer.KafkaConsumer;
import org.apache.kafka.clients.producer.KafkaProducer;
import org.apache.kafka.clients.producer.ProducerConfig;
import org.apache.kafka.clients.producer.ProducerRecord;
import org.apache.kafka.common.serialization.StringDeserializer;
import org.apache.kafka.common.serialization.StringSerializer;
import org.apache.kafka.clients.admin.TopicDescription;
import org.apache.kafka.common.ElectionType;
import org.apache.kafka.common.TopicPartition;
import org.apache.kafka.common.TopicPartitionInfo;

public class RunnelElect {
  public static void main(String[] args) throws Exception {
    Properties props = new Properties();
    props.put(AdminClientConfig.BOOTSTRAP_SERVERS_CONFIG, args[0]);
    props.put(AdminClientConfig.DEFAULT_API_TIMEOUT_MS_CONFIG, "30000");
    try (Admin admin = Admin.create(props)) {
      switch (args[1]) {
        case "single" -> single(admin);
        case "create" -> create(admin, args[2]);
        case "preferred" -> preferred(admin, args[2], args[3]);
        case "reassign" -> reassign(admin, args[0], args[2], args[3]);
        case "assign" -> assign(admin, args[2]);
        default -> fail("args", "unknown scenario " + args[1]);
      }
    }
    System.out.println("DONE");
  }

  /** One broker: every partition already has its preferred (only) leader. */
  static void single(Admin admin) throws Exception {
    admin.createTopics(List.of(new NewTopic("elect-one", 2, (short) 1))).all().get();
    TopicPartition p0 = new TopicPartition("elect-one", 0);
    TopicPartition missing = new TopicPartition("elect-missing", 0);
    Map<TopicPartition, Optional<Throwable>> preferred = admin.electLeaders(ElectionType.PREFERRED, Set.of(p0, missing)).partitions().get();
    System.out.println("OK preferred " + name(preferred.get(p0)) + " " + name(preferred.get(missing)));
    Map<TopicPartition, Optional<Throwable>> unclean = admin.electLeaders(ElectionType.UNCLEAN, Set.of(p0)).partitions().get();
    System.out.println("OK unclean " + name(unclean.get(p0)));
    // Every partition (null): those that need no election are left out.
    Map<TopicPartition, Optional<Throwable>> all = admin.electLeaders(ElectionType.PREFERRED, null).partitions().get();
    System.out.println("OK all " + all.size());
    // An explicit assignment naming a broker that does not exist.
    try {
      admin.createTopics(List.of(new NewTopic("elect-bad", Map.of(0, List.of(9))))).all().get();
      System.out.println("OK assignment to 9 accepted");
    } catch (java.util.concurrent.ExecutionException e) {
      System.out.println("OK assignment to 9 " + e.getCause().getClass().getSimpleName());
    }
  }

  /** A topic of one partition with two replicas (the controller places them). */
  static void create(Admin admin, String topic) throws Exception {
    admin.createTopics(List.of(new NewTopic(topic, 1, (short) 2))).all().get();
    System.out.println("OK created " + describe(admin, topic));
  }

  /** The preferred replica is back in the ISR but does not lead: elect it. */
  static void preferred(Admin admin, String topic, String preferred) throws Exception {
    TopicPartition tp = new TopicPartition(topic, 0);
    System.out.println("OK before " + describe(admin, topic));
    Map<TopicPartition, Optional<Throwable>> result = admin.electLeaders(ElectionType.PREFERRED, Set.of(tp)).partitions().get();
    System.out.println("OK elected " + name(result.get(tp)));
    // Metadata follows the controller's commit on every broker within a moment.
    String after = "";
    for (int i = 0; i < 100; i++) {
      after = describe(admin, topic);
      if (after.startsWith("leader=" + preferred + " ")) break;
      Thread.sleep(100);
    }
    System.out.println("OK after " + after);
    Map<TopicPartition, Optional<Throwable>> again = admin.electLeaders(ElectionType.PREFERRED, Set.of(tp)).partitions().get();
    System.out.println("OK again " + name(again.get(tp)));
  }

  /** 100 records in, the partition moved to `target`, the move finished, every record read back from its new leader. */
  static void reassign(Admin admin, String bootstrap, String topic, String target) throws Exception {
    TopicPartition tp = new TopicPartition(topic, 0);
    Properties pp = new Properties();
    pp.put(ProducerConfig.BOOTSTRAP_SERVERS_CONFIG, bootstrap);
    pp.put(ProducerConfig.ACKS_CONFIG, "all");
    try (KafkaProducer<String, String> producer = new KafkaProducer<>(pp, new StringSerializer(), new StringSerializer())) {
      for (int i = 0; i < 100; i++) producer.send(new ProducerRecord<>(topic, 0, null, "r" + i)).get();
    }
    System.out.println("OK produced 100");
    try {
      admin.alterPartitionReassignments(Map.of(tp, Optional.empty())).all().get();
      System.out.println("OK cancel none elected");
    } catch (java.util.concurrent.ExecutionException e) {
      System.out.println("OK cancel none " + e.getCause().getClass().getSimpleName());
    }
    List<Integer> replicas = Arrays.stream(target.split(",")).map(Integer::valueOf).toList();
    admin.alterPartitionReassignments(Map.of(tp, Optional.of(new NewPartitionReassignment(replicas)))).all().get();
    System.out.println("OK reassigning to " + target);
    Map<TopicPartition, PartitionReassignment> ongoing = Map.of();
    for (int i = 0; i < 600; i++) {
      ongoing = admin.listPartitionReassignments(Set.of(tp)).reassignments().get();
      if (ongoing.isEmpty()) break;
      Thread.sleep(100);
    }
    if (!ongoing.isEmpty()) fail("reassign", "still in progress: " + ongoing);
    String after = "";
    for (int i = 0; i < 100; i++) {
      after = describe(admin, topic);
      if (after.contains(" replicas=" + target + " ")) break;
      Thread.sleep(100);
    }
    System.out.println("OK done " + after);
    Properties cp = new Properties();
    cp.put(ConsumerConfig.BOOTSTRAP_SERVERS_CONFIG, bootstrap);
    cp.put(ConsumerConfig.AUTO_OFFSET_RESET_CONFIG, "earliest");
    List<String> values = new ArrayList<>();
    try (KafkaConsumer<String, String> consumer = new KafkaConsumer<>(cp, new StringDeserializer(), new StringDeserializer())) {
      consumer.assign(List.of(tp));
      consumer.seekToBeginning(List.of(tp));
      long deadline = System.currentTimeMillis() + 30000;
      while (values.size() < 100 && System.currentTimeMillis() < deadline) {
        for (ConsumerRecord<String, String> r : consumer.poll(Duration.ofMillis(200))) values.add(r.offset() + ":" + r.value());
      }
    }
    boolean inOrder = values.size() == 100;
    for (int i = 0; inOrder && i < 100; i++) inOrder = values.get(i).equals(i + ":r" + i);
    System.out.println("OK consumed " + values.size() + " inOrder=" + inOrder);
  }

  /** kafka-topics.sh --replica-assignment 2:3,3:1: explicit replica lists, preferred leader first. */
  static void assign(Admin admin, String topic) throws Exception {
    admin.createTopics(List.of(new NewTopic(topic, Map.of(0, List.of(2, 3), 1, List.of(3, 1))))).all().get();
    TopicDescription d = admin.describeTopics(List.of(topic)).allTopicNames().get().get(topic);
    for (TopicPartitionInfo p : d.partitions()) {
      System.out.println("OK p" + p.partition() + " leader=" + p.leader().id() + " replicas=" + ids(p.replicas()) + " isr=" + ids(p.isr()));
    }
  }

  static String describe(Admin admin, String topic) throws Exception {
    TopicDescription d = admin.describeTopics(List.of(topic)).allTopicNames().get().get(topic);
    TopicPartitionInfo p = d.partitions().get(0);
    return "leader=" + (p.leader() == null ? "none" : p.leader().id()) + " replicas=" + ids(p.replicas()) + " isr=" + ids(p.isr());
  }

  static String ids(List<org.apache.kafka.common.Node> nodes) {
    return nodes.stream().map(n -> String.valueOf(n.id())).reduce((a, b) -> a + "," + b).orElse("");
  }

  static String name(Optional<Throwable> error) {
    if (error == null) return "absent";
    return error.map(e -> e.getClass().getSimpleName()).orElse("elected");
  }

  static void fail(String step, String message) {
    System.out.println("FAIL " + step + ": " + message);
    System.exit(1);
  }
}
