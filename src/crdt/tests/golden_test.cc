// Golden cases produced by JavaScript Yjs (shared/testdata/yjs): every case
// replayed, compared field by field and byte by byte.
#include <gtest/gtest.h>

#include <algorithm>
#include <fstream>
#include <random>

#include "crdt/golden_json.h"

namespace cnx::crdt {
namespace {

using nlohmann::json;

const std::string kDir = std::string(CNX_SHARED_DIR) + "/testdata/yjs/";

json Load(const std::string& file) {
  std::ifstream in(kDir + file);
  return json::parse(in);
}

std::vector<std::string> CaseFiles() {
  std::vector<std::string> out;
  json index = Load("index.json");
  for (auto& c : index.at("cases")) out.push_back(c.at("file").get<std::string>());
  return out;
}

std::vector<uint8_t> Unb64(const json& s) {
  return *Base64Decode(s.get<std::string>());
}

class GoldenTest : public ::testing::TestWithParam<std::string> {};

TEST_P(GoldenTest, ReplayMatchesYjs) {
  json c = Load(GetParam());
  json steps;
  auto got = ReplayGoldenCase(c, &steps);
  ASSERT_TRUE(got.has_value()) << got.error().ToString();
  const json& e = c.at("expected");
  EXPECT_EQ((*got)["json"], e.at("json"));
  if (e.contains("textDelta")) {
    EXPECT_EQ((*got)["textDelta"], e["textDelta"]);
  }
  EXPECT_EQ((*got)["stateVector"], e.at("stateVector"));
  EXPECT_EQ((*got)["stateVectorMap"], e.at("stateVectorMap"));
  EXPECT_EQ((*got)["deleteSet"], e.at("deleteSet"));
  EXPECT_EQ((*got)["pending"], e.at("pending"));
  EXPECT_EQ((*got)["mergedUpdate"], e.at("mergedUpdate")) << "encodeStateAsUpdate bytes";
  EXPECT_EQ((*got)["mergeUpdates"], e.at("mergeUpdates")) << "mergeUpdates bytes";
  EXPECT_EQ((*got)["mergedUpdateDecoded"], e.at("mergedUpdateDecoded"));
  EXPECT_EQ((*got)["mergeUpdatesStateVector"], e.at("mergeUpdatesStateVector"));
  EXPECT_EQ((*got)["diff"]["encodeStateAsUpdate"], e["diff"]["encodeStateAsUpdate"]);
  EXPECT_EQ((*got)["diff"]["diffUpdate"], e["diff"]["diffUpdate"]);
  if (c.contains("steps")) {
    ASSERT_EQ(steps.size(), c["steps"].size());
    for (size_t i = 0; i < steps.size(); ++i) {
      const json& want = c["steps"][i];
      const json& have = steps[want.at("after").get<size_t>()];
      EXPECT_EQ(have["json"], want["json"]) << "step " << i;
      EXPECT_EQ(have["stateVector"], want["stateVector"]) << "step " << i;
      EXPECT_EQ(have["pendingStructs"], want["pendingStructs"]) << "step " << i;
      EXPECT_EQ(have["pendingDeleteSet"], want["pendingDeleteSet"]) << "step " << i;
      if (want.contains("textDelta")) {
        EXPECT_EQ(have["textDelta"], want["textDelta"]) << "step " << i;
      }
    }
  }
}

// Our struct-level decoder agrees with the independent JavaScript inspector.
TEST_P(GoldenTest, InspectMatchesDecodedForms) {
  json c = Load(GetParam());
  auto merged = InspectUpdate(Unb64(c["expected"]["mergedUpdate"]));
  ASSERT_TRUE(merged.has_value()) << merged.error().ToString();
  EXPECT_EQ(*merged, c["expected"]["mergedUpdateDecoded"]);
  // Cases with more than 60 updates carry no per-update decodings.
  size_t n = c.contains("updatesDecoded") ? c["updatesDecoded"].size() : 0;
  if (n > 0) {
    ASSERT_EQ(n, c["updates"].size());
  }
  for (size_t i = 0; i < n; ++i) {
    auto got = InspectUpdate(Unb64(c["updates"][i]));
    ASSERT_TRUE(got.has_value()) << got.error().ToString();
    EXPECT_EQ(*got, c["updatesDecoded"][i]) << "update " << i;
  }
}

// The merged forms load into fresh replicas with the same visible state.
TEST_P(GoldenTest, EncodedFormsLoad) {
  json c = Load(GetParam());
  const json& e = c.at("expected");
  for (const char* key : {"mergedUpdate", "mergeUpdates"}) {
    Doc doc(DocOptions{.client_id = 7, .gc = c.value("gc", true)});
    CreateRoots(doc, c["roots"]);
    ASSERT_TRUE(doc.ApplyUpdate(Unb64(e[key])).has_value()) << key;
    EXPECT_EQ(RootsJson(doc, c["roots"]), e["json"]) << key;
    EXPECT_EQ(doc.EncodeStateVector(), Unb64(e["stateVector"])) << key;
  }
  // diff: replica after the first afterUpdates updates + the diff = final state.
  for (const char* key : {"encodeStateAsUpdate", "diffUpdate"}) {
    Doc doc(DocOptions{.client_id = 7, .gc = c.value("gc", true)});
    CreateRoots(doc, c["roots"]);
    size_t n = e["diff"]["afterUpdates"].get<size_t>();
    for (size_t i = 0; i < n; ++i) ASSERT_TRUE(doc.ApplyUpdate(Unb64(c["updates"][i])).has_value());
    ASSERT_TRUE(doc.ApplyUpdate(Unb64(e["diff"][key])).has_value());
    EXPECT_EQ(RootsJson(doc, c["roots"]), e["json"]) << key;
  }
}

// Any delivery order converges to the same state (reverse and shuffled).
TEST_P(GoldenTest, OrderIndependent) {
  json c = Load(GetParam());
  const json& e = c.at("expected");
  std::vector<std::vector<uint8_t>> updates;
  for (auto& u : c["updates"]) updates.push_back(Unb64(u));
  std::mt19937 rng(42);
  for (int round = 0; round < 2; ++round) {
    auto order = updates;
    if (round == 0) {
      std::reverse(order.begin(), order.end());
    } else {
      std::shuffle(order.begin(), order.end(), rng);
    }
    Doc doc(DocOptions{.client_id = 7, .gc = c.value("gc", true)});
    CreateRoots(doc, c["roots"]);
    for (auto& u : order) ASSERT_TRUE(doc.ApplyUpdate(u).has_value());
    EXPECT_EQ(RootsJson(doc, c["roots"]), e["json"]) << "round " << round;
    EXPECT_EQ(doc.EncodeStateVector(), Unb64(e["stateVector"])) << "round " << round;
  }
}

INSTANTIATE_TEST_SUITE_P(crdt, GoldenTest, ::testing::ValuesIn(CaseFiles()), [](const auto& info) {
  std::string n = info.param.substr(0, info.param.size() - 5);
  return n;
});

}  // namespace
}  // namespace cnx::crdt
