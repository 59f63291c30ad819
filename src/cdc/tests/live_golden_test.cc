// Live golden test (testdata/pgoutput/README.md, "How to use" step 2): replay
// set A's schema.sql and workload.sql against the test cluster, stream the
// publication through our replication connection (pinned walsender settings)
// and decoder, normalise the run-dependent values the way
// tools/pgo_golden.py does, and compare with v1.normalized.jsonl.
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include <cstdlib>
#include <filesystem>
#include <map>
#include <thread>

#include "base/uuid.h"
#include "cdc/event_json.h"
#include "cdc/pgoutput.h"
#include "cdc/replication.h"
#include "cdc/tests/test_util.h"
#include "schema/testing/test_database.h"

namespace cnx::cdc {
namespace {

using nlohmann::json;

// The same rules as pgo_golden.py normalize.
void Normalize(json& e, std::map<int64_t, std::string>& xids) {
  auto nx = [&](json& v) {
    const int64_t x = v.get<int64_t>();
    auto it = xids.find(x);
    if (it == xids.end()) it = xids.emplace(x, "X" + std::to_string(xids.size() + 1)).first;
    v = it->second;
  };
  for (const char* k : {"xid", "subxid"}) {
    if (e.contains(k)) nx(e[k]);
  }
  for (const char* k : {"final_lsn", "commit_lsn", "end_lsn", "lsn", "origin_lsn", "abort_lsn"}) {
    if (e.contains(k)) e[k] = "<lsn>";
  }
  for (const char* k : {"commit_time", "commit_time_us", "abort_time_us"}) {
    if (e.contains(k)) e[k] = "<time>";
  }
  if (e.contains("relid")) e["relid"] = "<relid>";
  if (e.contains("relids")) {
    for (auto& r : e["relids"]) r = "<relid>";
  }
  if (e["kind"] == "type") e["type_oid"] = "<user-oid>";
  if (e.contains("columns")) {
    for (auto& c : e["columns"]) {
      if (c["type_oid"].get<int64_t>() >= 16384) c["type_oid"] = "<user-oid>";
    }
  }
  for (const char* tup : {"new", "old", "columns"}) {
    if (!e.contains(tup) || !e[tup].is_array()) continue;
    for (auto& c : e[tup]) {
      if (c.contains("type") && c["type"].is_string()) {
        const std::string t = c["type"];
        if (t.rfind("oid:", 0) == 0 && std::stoll(t.substr(4)) >= 16384) c["type"] = "oid:<user>";
      }
    }
  }
}

int Psql(const std::string& url, const std::filesystem::path& file) {
  const std::string cmd = "/usr/lib/postgresql/15/bin/psql -X -q -v ON_ERROR_STOP=1 -d '" + url + "' -f '" +
                          file.string() + "' > /dev/null";
  return std::system(cmd.c_str());
}

TEST(LiveGolden, SetAWorkloadDecodesToNormalizedGolden) {
  const std::filesystem::path set = std::filesystem::path(CNX_SHARED_DIR) / "testdata/pgoutput/setA";
  auto expected = testing::ReadLines((set / "v1.normalized.jsonl").string());
  ASSERT_FALSE(expected.empty());

  const std::string db = "cdc_golden_" + Uuid::NewV4().ToString().substr(0, 8);
  auto admin = pg::Connection::Open(schema::testing::TestDatabase::ClusterUrl("postgres"));
  ASSERT_TRUE(admin.has_value()) << admin.error().ToString();
  ASSERT_TRUE(admin->Exec("CREATE DATABASE " + QuoteIdent(db) + " TEMPLATE template0 ENCODING 'UTF8'"));
  const std::string url = schema::testing::TestDatabase::ClusterUrl(db);
  ASSERT_EQ(Psql(url, set / "schema.sql"), 0);

  {
    auto stream = ReplicationStream::Connect(url, std::chrono::seconds(10));
    ASSERT_TRUE(stream.has_value()) << stream.error().ToString();
    // The slot exists before the workload, as in the capture; it is temporary.
    auto slot =
        (*stream)->Command("CREATE_REPLICATION_SLOT \"golden\" TEMPORARY LOGICAL pgoutput (SNAPSHOT 'nothing')");
    ASSERT_TRUE(slot.has_value()) << slot.error().ToString();
    ASSERT_EQ(Psql(url, set / "workload.sql"), 0);
    ASSERT_TRUE((*stream)->Start({.slot = "golden", .publication = "cnx_pub", .proto_version = 1, .messages = true}));

    Decoder decoder;
    Message msg;
    std::map<int64_t, std::string> xids;
    size_t line = 0;
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(60);
    while (line < expected.size() && std::chrono::steady_clock::now() < deadline) {
      auto next = (*stream)->Next(std::chrono::milliseconds(500));
      ASSERT_TRUE(next.has_value()) << next.error().ToString();
      if (!*next) continue;
      auto frame = ParseFrame(**next);
      ASSERT_TRUE(frame.has_value());
      if (frame->kind == Frame::Kind::kKeepalive) {
        if (frame->keepalive.reply_requested) {
          ASSERT_TRUE((*stream)->SendStatus({}));
        }
        continue;
      }
      ASSERT_TRUE(decoder.Decode(frame->xlog.message, msg)) << "message " << line + 1;
      std::string out;
      AppendMessageJson(out, msg, decoder);
      json got = json::parse(out);
      Normalize(got, xids);
      ASSERT_EQ(got, json::parse(expected[line])) << "line " << line + 1 << "\n got: " << got.dump();
      ++line;
    }
    EXPECT_EQ(line, expected.size());
    (*stream)->Stop();
  }
  // The temporary slot goes away with its walsender, which may take a moment.
  Status dropped = Ok();
  for (int i = 0; i < 50; ++i) {
    auto r = admin->Exec("DROP DATABASE " + QuoteIdent(db) + " WITH (FORCE)");
    dropped = r ? Ok() : Status(std::unexpected(r.error()));
    if (dropped) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  EXPECT_TRUE(dropped.has_value()) << dropped.error().ToString();
}

}  // namespace
}  // namespace cnx::cdc
