// The Java Admin (kafka-clients 4.x) against Runnel's admin APIs at Kafka 4's versions: CreateTopics 7
// (topic id, partitions, replication factor and configs in the answer), DescribeTopicPartitions
// (describeTopics by name, paged by partitionSizeLimitPerResponse), Metadata by topic id
// (describeTopics by id), DescribeConfigs 4 with documentation, DescribeLogDirs 4+ (total and usable
// bytes), DescribeCluster 2 (includeFencedBrokers), AlterPartitionReassignments 1
// (allowReplicationFactorChange) and DeleteTopics 6 (by id). One line per step, `OK ...`; a
// failure throws (exit 1).
//   java -cp <classpath> RunnelAdmin <bootstrap> <topic>
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.Properties;
import java.util.concurrent.ExecutionException;
import org.apache.kafka.clients.admin.Admin;
import org.apache.kafka.clients.admin.AdminClientConfig;
import org.apache.kafka.clients.admin.AlterPartitionReassignmentsOptions;
import org.apache.kafka.clients.admin.Config;
import org.apache.kafka.clients.admin.ConfigEntry;
import org.apache.kafka.clients.admin.CreateTopicsResult;
import org.apache.kafka.clients.admin.DescribeClusterOptions;
import org.apache.kafka.clients.admin.DescribeConfigsOptions;
import org.apache.kafka.clients.admin.DescribeTopicsOptions;
import org.apache.kafka.clients.admin.LogDirDescription;
import org.apache.kafka.clients.admin.NewPartitionReassignment;
import org.apache.kafka.clients.admin.NewTopic;
import org.apache.kafka.clients.admin.TopicDescription;
import org.apache.kafka.common.Node;
import org.apache.kafka.common.TopicCollection;
import org.apache.kafka.common.TopicPartition;
import org.apache.kafka.common.TopicPartitionInfo;
import org.apache.kafka.common.Uuid;
import org.apache.kafka.common.config.ConfigResource;

public class RunnelAdmin {
  public static void main(String[] args) throws Exception {
    Properties props = new Properties();
    props.put(AdminClientConfig.BOOTSTRAP_SERVERS_CONFIG, args[0]);
    props.put(AdminClientConfig.DEFAULT_API_TIMEOUT_MS_CONFIG, "30000");
    String topic = args[1];
    try (Admin admin = Admin.create(props)) {
      // CreateTopics v7: the answer carries the id, counts and every config with its source (KIP-525).
      CreateTopicsResult created = admin.createTopics(List.of(new NewTopic(topic, 5, (short) 1).configs(Map.of("retention.ms", "123456"))));
      Uuid id = created.topicId(topic).get();
      ConfigEntry retention = created.config(topic).get().get("retention.ms");
      System.out.println("OK create " + topic + " id=" + id + " partitions=" + created.numPartitions(topic).get() + " rf=" + created.replicationFactor(topic).get()
          + " retention.ms=" + retention.value() + " " + retention.source() + " configs=" + (created.config(topic).get().entries().size() > 10));

      // By name: DescribeTopicPartitions, two partitions per response (the client follows the cursor).
      TopicDescription byName = admin.describeTopics(List.of(topic), new DescribeTopicsOptions().partitionSizeLimitPerResponse(2)).allTopicNames().get().get(topic);
      System.out.println("OK describe " + byName.name() + " id=" + byName.topicId() + " partitions=" + partitions(byName) + " elr=" + byName.partitions().get(0).elr());
      // By id: Metadata v12+ with a null name.
      TopicDescription byId = admin.describeTopics(TopicCollection.ofTopicIds(List.of(id))).topicIdValues().get(id).get();
      System.out.println("OK describe-by-id " + byId.name() + " partitions=" + byId.partitions().size());

      // DescribeConfigs v4 with documentation and types.
      ConfigResource resource = new ConfigResource(ConfigResource.Type.TOPIC, topic);
      Config config = admin.describeConfigs(List.of(resource), new DescribeConfigsOptions().includeDocumentation(true)).all().get().get(resource);
      ConfigEntry r = config.get("retention.ms");
      long documented = config.entries().stream().filter(e -> e.documentation() != null && !e.documentation().isEmpty()).count();
      System.out.println("OK configs retention.ms=" + r.value() + " type=" + r.type() + " documented=" + (documented == config.entries().size()));

      // DescribeCluster v2 with fenced brokers, then DescribeLogDirs v4+ of every broker.
      List<Node> nodes = new ArrayList<>(admin.describeCluster(new DescribeClusterOptions().includeFencedBrokers(true)).nodes().get());
      System.out.println("OK cluster nodes=" + nodes.size() + " fenced=" + nodes.stream().anyMatch(Node::isFenced));
      int broker = nodes.get(0).id();
      Map<String, LogDirDescription> dirs = admin.describeLogDirs(List.of(broker)).descriptions().get(broker).get();
      for (LogDirDescription d : dirs.values()) {
        long total = d.totalBytes().orElse(-1), usable = d.usableBytes().orElse(-1);
        long held = d.replicaInfos().keySet().stream().filter(tp -> tp.topic().equals(topic)).count();
        System.out.println("OK logdir total>0=" + (total > 0) + " usable<=total=" + (usable >= 0 && usable <= total) + " " + topic + "=" + held);
      }

      // AlterPartitionReassignments v1: a target of another length is refused when the factor may not change.
      TopicPartition p0 = new TopicPartition(topic, 0);
      Map<TopicPartition, Optional<NewPartitionReassignment>> grow = Map.of(p0, Optional.of(new NewPartitionReassignment(List.of(broker, broker + 100))));
      System.out.println("OK reassign fixed-rf " + error(() -> admin.alterPartitionReassignments(grow, new AlterPartitionReassignmentsOptions().allowReplicationFactorChange(false)).all().get()));
      System.out.println("OK reassign any-rf " + error(() -> admin.alterPartitionReassignments(grow).all().get()));

      // DeleteTopics v6 by id; then the id is unknown.
      admin.deleteTopics(TopicCollection.ofTopicIds(List.of(id))).all().get();
      System.out.println("OK delete-by-id");
      System.out.println("OK delete-again " + error(() -> admin.deleteTopics(TopicCollection.ofTopicIds(List.of(id))).all().get()));
      System.out.println("OK describe-deleted " + error(() -> admin.describeTopics(TopicCollection.ofTopicIds(List.of(id))).allTopicIds().get()));
    }
    System.out.println("DONE");
  }

  static String partitions(TopicDescription d) {
    StringBuilder b = new StringBuilder();
    for (TopicPartitionInfo p : d.partitions()) b.append(b.length() == 0 ? "" : ",").append(p.partition());
    return b.toString();
  }

  interface Call { Object run() throws Exception; }

  /** The simple name of the exception a call fails with, or "none". */
  static String error(Call call) throws Exception {
    try {
      call.run();
      return "none";
    } catch (ExecutionException e) {
      return e.getCause().getClass().getSimpleName();
    }
  }
}
