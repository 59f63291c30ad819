// `cnx ingest` end to end against `cnx serve` on a temporary data directory:
// a directory tree is ingested (hidden, binary, oversized and excluded files
// skipped), re-ingesting is a no-op, a modified file becomes a new version, a
// refused file makes the exit code non-zero, and ingest-status reaches
// pending 0 with every chunk embedded.
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>
#include <nlohmann/json.hpp>

#include <filesystem>
#include <fstream>
#include <regex>
#include <set>
#include <thread>

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

void Write(const fs::path& p, const std::string& data) {
  fs::create_directories(p.parent_path());
  std::ofstream out(p, std::ios::binary);
  out << data;
}

class IngestCli : public ::testing::Test {
 protected:
  void SetUp() override {
    root_ = fs::temp_directory_path() / ("cnx-ingest-cli-" + std::to_string(getpid()));
    fs::remove_all(root_);
    fs::create_directories(root_);
    fs::path log = root_ / "serve.log";
    auto pid = SpawnProcess({"/bin/sh", "-c",
                             "exec " + kCnx + " serve --data-dir " + (root_ / "data").string() +
                                 " --listen 127.0.0.1:0 > " + log.string() + " 2>&1"});
    ASSERT_TRUE(pid.has_value());
    server_pid_ = *pid;
    std::smatch m;
    for (int i = 0; i < 600; ++i) {
      std::string text = ReadAll(log);
      if (std::regex_search(text, m, std::regex("is up: (http://[0-9.]+:[0-9]+)"))) {
        url_ = m[1];
        break;
      }
      usleep(100'000);
    }
    ASSERT_FALSE(url_.empty()) << ReadAll(log);
    auto signup = Call("POST", "/v1/signup",
                       json{{"tenantName", "Ingest"},
                            {"email", "ada@example.com"},
                            {"password", "correct horse"},
                            {"displayName", "Ada"}});
    ASSERT_EQ(signup.first, 201u) << signup.second;
    token_ = signup.second["token"];
    auto program = Call("POST", "/v1/programs", json{{"name", "Docs"}});
    ASSERT_EQ(program.first, 201u);
    auto project = Call("POST", "/v1/projects", json{{"programId", program.second["id"]}, {"name", "Docs"}});
    ASSERT_EQ(project.first, 201u);
    project_ = project.second["id"];
  }

  void TearDown() override {
    if (server_pid_ > 0) {
      kill(server_pid_, SIGTERM);
      int status = 0;
      waitpid(server_pid_, &status, 0);
      EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << ReadAll(root_ / "serve.log");
    }
    fs::remove_all(root_);
  }

  std::pair<unsigned, json> Call(const std::string& method, const std::string& path,
                                 const std::optional<json>& body = std::nullopt) {
    net::HttpRequest req;
    req.method = method;
    req.url = url_ + path;
    if (!token_.empty()) req.headers.push_back({"Authorization", "Bearer " + token_});
    if (body) {
      req.headers.push_back({"Content-Type", "application/json"});
      req.body = body->dump();
    }
    auto res = net::Fetch(req);
    EXPECT_TRUE(res.has_value()) << (res ? "" : res.error().ToString());
    if (!res) return {0, nullptr};
    return {res->status, json::parse(res->body, nullptr, false)};
  }

  // Runs cnx ingest with the token in CNX_TOKEN; returns the exit code and the JSON summary.
  std::pair<int, json> Ingest(std::vector<std::string> args) {
    std::vector<std::string> argv{kCnx, "ingest", "--project", project_, "--server", url_, "--json", "--no-progress"};
    argv.insert(argv.end(), args.begin(), args.end());
    RunOptions opts;
    opts.extra_env = {"CNX_TOKEN=" + token_};
    auto r = RunProcess(argv, opts);
    EXPECT_TRUE(r.has_value());
    if (!r) return {-1, nullptr};
    last_output_ = r->output;
    json summary;
    std::istringstream lines(r->output);
    for (std::string line; std::getline(lines, line);) {
      if (line.starts_with("{")) summary = json::parse(line, nullptr, false);
    }
    return {r->exit_code, summary};
  }

  fs::path root_;
  pid_t server_pid_ = -1;
  std::string url_, token_, project_, last_output_;
};

TEST_F(IngestCli, TreeReingestChangeAndStatus) {
  fs::path tree = root_ / "tree";
  std::string prose;
  for (int i = 0; i < 300; ++i) prose += "Paragraph " + std::to_string(i) + " on vacuum and the visibility map.\n\n";
  Write(tree / "guide.md", "# Guide\n\n" + prose);
  Write(tree / "src" / "main.py", "def main():\n    return 42\n");
  Write(tree / "src" / "page.html", "<html><body><h1>Page</h1><p>Hello &amp; welcome</p><script>x()</script></body>");
  Write(tree / ".git" / "config", "[core]\n");                            // hidden directory
  Write(tree / ".env", "SECRET=1\n");                                     // hidden file
  Write(tree / "image.png", std::string("\x89PNG\r\n\x1a\n\0\0\0", 11));  // binary
  Write(tree / "big.log", std::string(50000, 'x'));                       // over --max-size
  Write(tree / "vendor" / "lib.js", "module.exports = 1;\n");             // excluded
  std::vector<std::string> args{tree.string(), "--max-size", "40000", "--exclude", "vendor", "--jobs", "3"};

  auto [code, s] = Ingest(args);
  ASSERT_EQ(code, 0) << last_output_;
  EXPECT_EQ(s["created"], 3) << s;
  EXPECT_EQ(s["updated"], 0);
  EXPECT_EQ(s["unchanged"], 0);
  EXPECT_EQ(s["failed"], 0);
  EXPECT_EQ(s["skippedBy"]["hidden"], 2) << s;
  EXPECT_EQ(s["skippedBy"]["binary"], 1) << s;
  EXPECT_EQ(s["skippedBy"]["tooLarge"], 1) << s;
  EXPECT_EQ(s["skippedBy"]["excluded"], 1) << s;

  // Titles relative to the root, sourceUrl file:// + absolute path, types by extension.
  auto items = Call("GET", "/v1/projects/" + project_ + "/content");
  ASSERT_EQ(items.first, 200u);
  std::map<std::string, json> by_title;
  for (const auto& it : items.second["items"]) by_title[it["title"]] = it;
  ASSERT_EQ(by_title.size(), 3u) << items.second;
  EXPECT_EQ(by_title["src/main.py"]["sourceUrl"], "file://" + fs::canonical(tree / "src" / "main.py").string());
  EXPECT_EQ(by_title["src/main.py"]["contentType"], "text/x-python");
  EXPECT_EQ(by_title["src/page.html"]["contentType"], "text/html");
  EXPECT_EQ(by_title["guide.md"]["contentType"], "text/markdown");

  // Again: nothing changed.
  auto [code2, again] = Ingest(args);
  ASSERT_EQ(code2, 0) << last_output_;
  EXPECT_EQ(again["created"], 0) << again;
  EXPECT_EQ(again["updated"], 0) << again;
  EXPECT_EQ(again["unchanged"], 3) << again;

  // One file changed: one new version.
  Write(tree / "src" / "main.py", "def main():\n    return 43\n");
  auto [code3, changed] = Ingest(args);
  ASSERT_EQ(code3, 0) << last_output_;
  EXPECT_EQ(changed["updated"], 1) << changed;
  EXPECT_EQ(changed["unchanged"], 2) << changed;
  auto versions = Call("GET", "/v1/content/" + by_title["src/main.py"]["id"].get<std::string>() + "/versions");
  EXPECT_EQ(versions.second["items"].size(), 2u);

  // The worker embeds everything in the background.
  json status;
  for (int i = 0; i < 600; ++i) {
    status = Call("GET", "/v1/projects/" + project_ + "/ingest-status").second;
    if (status.is_object() && status["pending"] == 0 && status["chunks"] == status["embedded"]) break;
    usleep(100'000);
  }
  EXPECT_EQ(status["pending"], 0) << status;
  EXPECT_EQ(status["failed"], 0) << status;
  EXPECT_GE(status["chunks"].get<int>(), 3) << status;
  EXPECT_EQ(status["embedded"], status["chunks"]) << status;

  // A file removed from the tree: --prune deletes its content item; files
  // still on disk but skipped (the binary one, the excluded one) are not touched.
  fs::remove(tree / "src" / "page.html");
  Write(root_ / "elsewhere.md", "# Not under the tree\n");
  auto [code4, other] = Ingest({(root_ / "elsewhere.md").string()});
  ASSERT_EQ(code4, 0) << last_output_;
  args.push_back("--prune");
  auto [code5, pruned] = Ingest(args);
  ASSERT_EQ(code5, 0) << last_output_;
  EXPECT_EQ(pruned["removed"], 1) << pruned;
  EXPECT_EQ(pruned["removeFailed"], 0) << pruned;
  auto left = Call("GET", "/v1/projects/" + project_ + "/content");
  std::set<std::string> titles;
  for (const auto& it : left.second["items"]) titles.insert(it["title"]);
  EXPECT_EQ(titles, (std::set<std::string>{"guide.md", "src/main.py", "elsewhere.md"})) << left.second;
  auto [code6, again_pruned] = Ingest(args);
  ASSERT_EQ(code6, 0) << last_output_;
  EXPECT_EQ(again_pruned["removed"], 0) << again_pruned;
}

TEST_F(IngestCli, RefusedFileFailsTheRunAndBadProjectIsClear) {
  // A source URL over the API's 2048-byte limit is refused: the run goes on and exits 1.
  fs::path deep = root_ / "deep";
  for (int i = 0; i < 9; ++i) deep /= std::string(250, static_cast<char>('a' + i));
  Write(deep / "note.txt", "deep text\n");
  Write(root_ / "deep" / "ok.txt", "fine\n");
  auto [code, s] = Ingest({(root_ / "deep").string()});
  EXPECT_EQ(code, 1) << last_output_;
  EXPECT_EQ(s["failed"], 1) << last_output_;
  EXPECT_EQ(s["created"], 1) << last_output_;
  EXPECT_NE(last_output_.find("HTTP 400"), std::string::npos) << last_output_;

  // An unknown project is reported before any file is read.
  project_ = "00000000-0000-4000-8000-000000000000";
  auto [code2, s2] = Ingest({(root_ / "deep").string()});
  EXPECT_NE(code2, 0);
  EXPECT_NE(last_output_.find("no such project"), std::string::npos) << last_output_;
}

}  // namespace
}  // namespace cnx
