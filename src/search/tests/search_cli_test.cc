// `cnx search` against a real `cnx serve`: content goes in through the REST
// API, the embedding worker indexes it, and the CLI prints what
// POST /v1/search answers (as JSON and as text), with CNX_TOKEN/CNX_SERVER
// defaults and clear failures.
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <regex>

#include "base/subprocess.h"
#include "net/http_client.h"

namespace cnx {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;
const std::string kCnx = std::string(CNX_BINARY_DIR) + "/src/cli/cnx";

std::string ReadAll(const fs::path& p) {
  std::ifstream in(p);
  return std::string((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
}

class SearchCliTest : public ::testing::Test {
 protected:
  void SetUp() override {
    root_ = fs::temp_directory_path() / ("cnx-search-cli-" + std::to_string(getpid()));
    fs::remove_all(root_);
    fs::create_directories(root_);
    log_ = root_ / "serve.log";
    auto pid = SpawnProcess({"/bin/sh", "-c",
                             "exec " + kCnx + " serve --data-dir " + (root_ / "data").string() +
                                 " --listen 127.0.0.1:0 > " + log_.string() + " 2>&1"});
    ASSERT_TRUE(pid.has_value());
    pid_ = *pid;
    std::smatch m;
    for (int i = 0; i < 600; ++i) {
      std::string log = ReadAll(log_);
      static const std::regex kUp("is up: (http://[0-9.]+:[0-9]+)");
      if (std::regex_search(log, m, kUp)) {
        server_ = m[1];
        break;
      }
      usleep(100'000);
    }
    ASSERT_FALSE(server_.empty()) << ReadAll(log_);
  }
  void TearDown() override {
    if (pid_ > 0) {
      kill(pid_, SIGTERM);
      int status = 0;
      waitpid(pid_, &status, 0);
    }
    fs::remove_all(root_);
  }

  json Call(const std::string& method, const std::string& path, const json& body, const std::string& token = "") {
    net::HttpRequest r;
    r.method = method;
    r.url = server_ + path;
    r.headers = {{"Content-Type", "application/json"}};
    if (!token.empty()) r.headers.push_back({"Authorization", "Bearer " + token});
    r.body = body.dump();
    auto res = net::Fetch(r);
    EXPECT_TRUE(res.has_value()) << (res ? "" : res.error().ToString());
    if (!res) return json();
    EXPECT_LT(res->status, 300u) << path << ": " << res->body;
    return json::parse(res->body, nullptr, false);
  }

  fs::path root_, log_;
  pid_t pid_ = -1;
  std::string server_;
};

TEST_F(SearchCliTest, PrintsHitsFromARunningServer) {
  json signup =
      Call("POST", "/v1/signup",
           {{"tenantName", "Cli"}, {"email", "cli@example.com"}, {"password", "correct horse"}, {"displayName", "C"}});
  std::string token = signup.value("token", "");
  ASSERT_FALSE(token.empty());
  std::string program = Call("POST", "/v1/programs", {{"name", "Docs"}}, token)["id"];
  std::string project = Call("POST", "/v1/projects", {{"programId", program}, {"name", "Manual"}}, token)["id"];
  std::string wal =
      Call("POST", "/v1/projects/" + project + "/content",
           {{"title", "WAL guide"},
            {"contentType", "text/markdown"},
            {"sourceUrl", "https://example.com/wal"},
            {"body", "# WAL\n\nWrite-ahead logging ensures durability. WAL archiving copies segments.\n"}},
           token)["id"];
  Call("POST", "/v1/projects/" + project + "/content",
       {{"title", "Vacuum"}, {"contentType", "text/plain"}, {"body", "Vacuum reclaims storage of dead tuples."}},
       token);

  // Wait until the embedding worker has indexed both items (vector mode finds them).
  std::vector<std::string> args = {
      kCnx, "search", "archived wal segments", "--project", project, "--json", "--server", server_, "--token", token};
  json out;
  for (int i = 0; i < 100; ++i) {
    std::vector<std::string> vec = {kCnx,        "search",  "wal archiving vacuum storage",
                                    "--project", project,   "--json",
                                    "--mode",    "vector",  "--server",
                                    server_,     "--token", token};
    auto r = RunProcess(vec);
    ASSERT_TRUE(r.has_value());
    ASSERT_EQ(r->exit_code, 0) << r->output;
    out = json::parse(r->output, nullptr, false);
    if (out.is_object() && out["results"].size() == 2) break;
    usleep(100'000);
  }
  ASSERT_TRUE(out.is_object());
  ASSERT_EQ(out["results"].size(), 2u) << out.dump();
  EXPECT_EQ(out["mode"], "vector");
  for (const auto& r : out["results"]) EXPECT_EQ(r["scores"].size(), 1u);

  auto hybrid = RunProcess(args);
  ASSERT_TRUE(hybrid.has_value());
  ASSERT_EQ(hybrid->exit_code, 0) << hybrid->output;
  json h = json::parse(hybrid->output, nullptr, false);
  ASSERT_TRUE(h.is_object()) << hybrid->output;
  EXPECT_EQ(h["mode"], "hybrid");
  EXPECT_EQ(h["results"][0]["content"]["id"], wal);
  EXPECT_EQ(h["results"][0]["content"]["title"], "WAL guide");
  EXPECT_TRUE(h["results"][0]["scores"].contains("lexical"));

  // Text output, with the token and server from the environment.
  auto text = RunProcess({"/usr/bin/env", "CNX_TOKEN=" + token, "CNX_SERVER=" + server_, kCnx, "search", "wal",
                          "archiving", "--project", project, "--k", "1"});
  ASSERT_TRUE(text.has_value());
  ASSERT_EQ(text->exit_code, 0) << text->output;
  EXPECT_NE(text->output.find("1 result for \"wal archiving\" (hybrid"), std::string::npos) << text->output;
  EXPECT_NE(text->output.find(" 1. WAL guide  [text/markdown, chunk 0"), std::string::npos) << text->output;
  EXPECT_NE(text->output.find("https://example.com/wal"), std::string::npos) << text->output;
  EXPECT_NE(text->output.find("WAL archiving copies segments."), std::string::npos) << text->output;
  EXPECT_NE(text->output.find("lexical#1"), std::string::npos) << text->output;

  // Failures: an unknown project (404), a bad token (401), no token, no server.
  auto missing = RunProcess({kCnx, "search", "wal", "--project", "00000000-0000-4000-8000-000000000000", "--server",
                             server_, "--token", token});
  ASSERT_TRUE(missing.has_value());
  EXPECT_EQ(missing->exit_code, 1);
  EXPECT_NE(missing->output.find("HTTP 404"), std::string::npos) << missing->output;
  auto bad = RunProcess({kCnx, "search", "wal", "--project", project, "--server", server_, "--token", "cnxs_nope"});
  ASSERT_TRUE(bad.has_value());
  EXPECT_EQ(bad->exit_code, 1);
  EXPECT_NE(bad->output.find("HTTP 401"), std::string::npos) << bad->output;
  auto none =
      RunProcess({"/usr/bin/env", "-u", "CNX_TOKEN", kCnx, "search", "wal", "--project", project, "--server", server_});
  ASSERT_TRUE(none.has_value());
  EXPECT_NE(none->exit_code, 0);
  EXPECT_NE(none->output.find("CNX_TOKEN"), std::string::npos) << none->output;
  auto down =
      RunProcess({kCnx, "search", "wal", "--project", project, "--server", "http://127.0.0.1:1", "--token", token});
  ASSERT_TRUE(down.has_value());
  EXPECT_EQ(down->exit_code, 1);
  EXPECT_NE(down->output.find("http://127.0.0.1:1"), std::string::npos) << down->output;
}

}  // namespace
}  // namespace cnx
