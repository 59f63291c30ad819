// Test support: librdkafka's in-process mock cluster (rdkafka_mock.h, an
// experimental API without stability promise — kept to this one file).
#pragma once

#include <memory>
#include <string>
#include <vector>

namespace cnx::bus::testing {

class MockCluster {
 public:
  explicit MockCluster(int brokers = 3);
  ~MockCluster();
  MockCluster(const MockCluster&) = delete;
  MockCluster& operator=(const MockCluster&) = delete;

  const std::string& bootstraps() const { return bootstraps_; }
  void CreateTopic(const std::string& topic, int partitions = 6, int replication = 3);
  // The next `errors.size()` Produce requests fail with these broker error codes.
  void PushProduceErrors(const std::vector<int>& errors);
  void PushRequestErrors(int api_key, const std::vector<int>& errors);
  void SetBrokerDown(int broker);
  void SetBrokerUp(int broker);
  void SetLeader(const std::string& topic, int partition, int broker);
  void SetGroupCoordinator(const std::string& group, int broker);

  // Error codes used by the tests (rd_kafka_resp_err_t values).
  static int NotLeader();
  static int RequestTimedOut();
  static int NotEnoughReplicas();
  static int Transport();
  static int NotCoordinator();
  static int MsgSizeTooLarge();
  static int ApiProduce();
  static int ApiOffsetCommit();

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
  std::string bootstraps_;
};

}  // namespace cnx::bus::testing
