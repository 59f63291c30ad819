#include "bus/tests/kafka_mock.h"

#include <librdkafka/rdkafka.h>
#include <librdkafka/rdkafka_mock.h>

#include <stdexcept>

namespace cnx::bus::testing {

struct MockCluster::Impl {
  rd_kafka_t* rk = nullptr;
  rd_kafka_mock_cluster_t* mc = nullptr;
};

MockCluster::MockCluster(int brokers) : impl_(std::make_unique<Impl>()) {
  rd_kafka_conf_t* conf = rd_kafka_conf_new();
  char errstr[256];
  rd_kafka_conf_set(conf, "log_level", "0", errstr, sizeof errstr);  // no "No bootstrap.servers" noise
  impl_->rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, errstr, sizeof errstr);
  if (impl_->rk == nullptr) throw std::runtime_error(errstr);
  impl_->mc = rd_kafka_mock_cluster_new(impl_->rk, brokers);
  if (impl_->mc == nullptr) throw std::runtime_error("rd_kafka_mock_cluster_new failed");
  bootstraps_ = rd_kafka_mock_cluster_bootstraps(impl_->mc);
}

MockCluster::~MockCluster() {
  rd_kafka_mock_cluster_destroy(impl_->mc);
  rd_kafka_destroy(impl_->rk);
}

void MockCluster::CreateTopic(const std::string& topic, int partitions, int replication) {
  if (rd_kafka_mock_topic_create(impl_->mc, topic.c_str(), partitions, replication) != RD_KAFKA_RESP_ERR_NO_ERROR) {
    throw std::runtime_error("mock topic create failed: " + topic);
  }
}

void MockCluster::PushProduceErrors(const std::vector<int>& errors) {
  PushRequestErrors(ApiProduce(), errors);
}

void MockCluster::PushRequestErrors(int api_key, const std::vector<int>& errors) {
  std::vector<rd_kafka_resp_err_t> e;
  for (int x : errors) e.push_back(static_cast<rd_kafka_resp_err_t>(x));
  rd_kafka_mock_push_request_errors_array(impl_->mc, static_cast<int16_t>(api_key), e.size(), e.data());
}

void MockCluster::SetBrokerDown(int broker) {
  rd_kafka_mock_broker_set_down(impl_->mc, broker);
}
void MockCluster::SetBrokerUp(int broker) {
  rd_kafka_mock_broker_set_up(impl_->mc, broker);
}
void MockCluster::SetLeader(const std::string& topic, int partition, int broker) {
  rd_kafka_mock_partition_set_leader(impl_->mc, topic.c_str(), partition, broker);
}
void MockCluster::SetGroupCoordinator(const std::string& group, int broker) {
  rd_kafka_mock_coordinator_set(impl_->mc, "group", group.c_str(), broker);
}

int MockCluster::NotLeader() {
  return RD_KAFKA_RESP_ERR_NOT_LEADER_FOR_PARTITION;
}
int MockCluster::RequestTimedOut() {
  return RD_KAFKA_RESP_ERR_REQUEST_TIMED_OUT;
}
int MockCluster::NotEnoughReplicas() {
  return RD_KAFKA_RESP_ERR_NOT_ENOUGH_REPLICAS;
}
int MockCluster::Transport() {
  return RD_KAFKA_RESP_ERR__TRANSPORT;
}
int MockCluster::NotCoordinator() {
  return RD_KAFKA_RESP_ERR_NOT_COORDINATOR;
}
int MockCluster::MsgSizeTooLarge() {
  return RD_KAFKA_RESP_ERR_MSG_SIZE_TOO_LARGE;
}
int MockCluster::ApiProduce() {
  return 0;
}
int MockCluster::ApiOffsetCommit() {
  return 8;
}

}  // namespace cnx::bus::testing
