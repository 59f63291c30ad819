// `cnx ingest PATH... --project P`: sends files to a running server as content
// items, through the same API as any client (POST /v1/projects/{P}/content
// with sourceUrl = file://<absolute path>, upsert by source), so re-ingesting
// an unchanged file is a no-op and a changed file becomes a new version.
// Directories are walked recursively; hidden entries, symlinked directories,
// binary files (a NUL byte in the first 8 KiB, or not UTF-8) and files over
// --max-size are skipped and counted. N workers send in parallel; a progress
// bar on a terminal (stderr), plain lines otherwise; a summary at the end
// (--json: one JSON object on stdout). The exit code is 1 when a file failed.
// Details: docs/ingestion.md.
#include <fnmatch.h>
#include <unistd.h>

#include <nlohmann/json.hpp>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "base/uuid.h"
#include "cli/command.h"
#include "net/http_client.h"
#include "text/tokenizer.h"

namespace cnx::cli {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;

struct IngestFlags {
  std::vector<std::string> paths;
  std::string project;
  std::string server;
  std::string token;
  size_t jobs = 4;
  std::vector<std::string> include;
  std::vector<std::string> exclude;
  uint64_t max_size = 4ull * 1024 * 1024;  // the API's limit for a content body
  bool json_summary = false;
  bool progress = true;
  bool prune = false;
};

// File extension (lower case, with the dot) or whole file name -> content type.
const std::map<std::string, std::string>& ContentTypes() {
  static const std::map<std::string, std::string> kTypes = {
      {".md", "text/markdown"},
      {".markdown", "text/markdown"},
      {".mdx", "text/markdown"},
      {".txt", "text/plain"},
      {".text", "text/plain"},
      {".rst", "text/x-rst"},
      {".adoc", "text/x-asciidoc"},
      {".org", "text/x-org"},
      {".tex", "text/x-tex"},
      {".html", "text/html"},
      {".htm", "text/html"},
      {".xhtml", "application/xhtml+xml"},
      {".c", "text/x-c"},
      {".h", "text/x-c"},
      {".cc", "text/x-c++"},
      {".cpp", "text/x-c++"},
      {".cxx", "text/x-c++"},
      {".hh", "text/x-c++"},
      {".hpp", "text/x-c++"},
      {".hxx", "text/x-c++"},
      {".ipp", "text/x-c++"},
      {".inc", "text/x-c++"},
      {".cs", "text/x-csharp"},
      {".java", "text/x-java"},
      {".kt", "text/x-kotlin"},
      {".scala", "text/x-scala"},
      {".go", "text/x-go"},
      {".rs", "text/x-rust"},
      {".py", "text/x-python"},
      {".pyi", "text/x-python"},
      {".rb", "text/x-ruby"},
      {".php", "text/x-php"},
      {".pl", "text/x-perl"},
      {".pm", "text/x-perl"},
      {".lua", "text/x-lua"},
      {".swift", "text/x-swift"},
      {".m", "text/x-objcsrc"},
      {".mm", "text/x-objcsrc"},
      {".r", "text/x-r"},
      {".jl", "text/x-julia"},
      {".hs", "text/x-haskell"},
      {".ml", "text/x-ocaml"},
      {".ex", "text/x-elixir"},
      {".exs", "text/x-elixir"},
      {".erl", "text/x-erlang"},
      {".clj", "text/x-clojure"},
      {".dart", "text/x-dart"},
      {".zig", "text/x-zig"},
      {".js", "application/javascript"},
      {".mjs", "application/javascript"},
      {".cjs", "application/javascript"},
      {".jsx", "application/javascript"},
      {".ts", "application/typescript"},
      {".tsx", "application/typescript"},
      {".json", "application/json"},
      {".jsonl", "application/x-ndjson"},
      {".ndjson", "application/x-ndjson"},
      {".xml", "application/xml"},
      {".svg", "application/xml"},
      {".yaml", "application/yaml"},
      {".yml", "application/yaml"},
      {".toml", "application/toml"},
      {".ini", "text/plain"},
      {".cfg", "text/plain"},
      {".conf", "text/plain"},
      {".sql", "application/sql"},
      {".sh", "application/x-sh"},
      {".bash", "application/x-sh"},
      {".zsh", "application/x-sh"},
      {".css", "text/css"},
      {".scss", "text/x-scss"},
      {".csv", "text/csv"},
      {".tsv", "text/tab-separated-values"},
      {".proto", "text/x-protobuf"},
      {".graphql", "application/graphql"},
      {".cmake", "text/x-cmake"},
      {".mk", "text/x-makefile"},
      {".diff", "text/x-diff"},
      {".patch", "text/x-diff"},
      {"Makefile", "text/x-makefile"},
      {"CMakeLists.txt", "text/x-cmake"},
      {"Dockerfile", "text/x-dockerfile"},
  };
  return kTypes;
}

std::string ContentTypeFor(const fs::path& file) {
  const auto& types = ContentTypes();
  if (auto it = types.find(file.filename().string()); it != types.end()) return it->second;
  std::string ext = file.extension().string();
  for (auto& c : ext) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  if (auto it = types.find(ext); it != types.end()) return it->second;
  return "text/plain";  // any other text file (README, LICENSE, .log, ...)
}

bool Matches(const std::vector<std::string>& globs, const std::string& rel) {
  for (const auto& g : globs) {
    if (fnmatch(g.c_str(), rel.c_str(), 0) == 0) return true;
    // A pattern without '/' also matches the file name alone ("*.md").
    if (g.find('/') == std::string::npos && fnmatch(g.c_str(), fs::path(rel).filename().string().c_str(), 0) == 0) {
      return true;
    }
  }
  return false;
}

// POSTs content to the server, retrying what is worth retrying (429 with its
// Retry-After, 5xx, connection errors) with the shared provider policy.
class IngestClient {
 public:
  struct Reply {
    unsigned status = 0;
    std::string body;
    std::string write;  // Cnx-Write: created | updated | unchanged
  };

  IngestClient(std::string server, std::string token) : server_(std::move(server)), token_(std::move(token)) {
    while (!server_.empty() && server_.back() == '/') server_.pop_back();
  }

  Status CheckProject(const std::string& project) const {
    net::HttpRequest req;
    req.url = server_ + "/v1/projects/" + project;
    req.headers = {{"Authorization", "Bearer " + token_}};
    req.timeout = std::chrono::seconds(10);
    auto res = net::Fetch(req);
    if (!res) return std::unexpected(res.error().WithContext("cannot reach " + server_));
    if (res->status == 401) return Err(Module::kCli, ErrorCode::kUnauthenticated, "the server refused the token");
    if (res->status == 404)
      return Err(Module::kCli, ErrorCode::kNotFound, "no such project (or not yours): " + project);
    if (res->status != 200) {
      return Err(Module::kCli, ErrorCode::kUnavailable,
                 "GET /v1/projects/" + project + ": HTTP " + std::to_string(res->status));
    }
    return Ok();
  }

  // One page of the project's content items: (items, next cursor or "").
  Result<std::pair<json, std::string>> ListContent(const std::string& project, const std::string& cursor) const {
    net::HttpRequest req;
    req.url = server_ + "/v1/projects/" + project + "/content?limit=200" + (cursor.empty() ? "" : "&cursor=" + cursor);
    req.headers = {{"Authorization", "Bearer " + token_}};
    req.timeout = std::chrono::seconds(60);
    auto res = CNX_TRY(net::Fetch(req));
    if (res.status != 200) {
      return Err(Module::kCli, ErrorCode::kUnavailable,
                 "listing the project's content: HTTP " + std::to_string(res.status));
    }
    json page = json::parse(res.body, nullptr, false);
    if (!page.is_object() || !page["items"].is_array()) {
      return Err(Module::kCli, ErrorCode::kInternal, "listing the project's content: unexpected answer");
    }
    std::string next = page["nextCursor"].is_string() ? page["nextCursor"].get<std::string>() : "";
    return std::pair{std::move(page["items"]), next};
  }

  // Deletes a content item at `version`; the HTTP status.
  Result<unsigned> DeleteContent(const std::string& id, int64_t version) const {
    net::HttpRequest req;
    req.method = "DELETE";
    req.url = server_ + "/v1/content/" + id;
    req.headers = {{"Authorization", "Bearer " + token_}, {"If-Match", "\"" + std::to_string(version) + "\""}};
    req.timeout = std::chrono::seconds(60);
    auto res = CNX_TRY(net::Fetch(req));
    return res.status;
  }

  Result<Reply> PostContent(const std::string& project, std::string body) const {
    net::HttpRequest req;
    req.method = "POST";
    req.url = server_ + "/v1/projects/" + project + "/content";
    req.headers = {{"Authorization", "Bearer " + token_}, {"Content-Type", "application/json"}};
    req.body = std::move(body);
    req.timeout = std::chrono::seconds(120);
    net::RetryPolicy policy;
    // Each worker thread keeps its connection to the server between files.
    thread_local net::HttpSession session;
    for (int attempt = 1;; ++attempt) {
      auto res = session.Fetch(req);
      bool last = attempt >= policy.max_attempts;
      if (!res) {
        bool retry = res.error().code() == ErrorCode::kUnavailable || res.error().code() == ErrorCode::kTimeout;
        if (!retry || last) return std::unexpected(res.error());
        std::this_thread::sleep_for(net::Backoff(policy, attempt));
        continue;
      }
      if (net::RetryableStatus(res->status) && !last) {
        std::this_thread::sleep_for(net::RetryDelay(policy, attempt, res->Header("Retry-After").value_or("")));
        continue;
      }
      return Reply{res->status, std::move(res->body), res->Header("Cnx-Write").value_or("")};
    }
  }

 private:
  std::string server_;
  std::string token_;
};

struct FileJob {
  fs::path path;      // absolute, normalised
  std::string title;  // relative to the root it was found under
};

struct Skipped {
  size_t hidden = 0, excluded = 0, binary = 0, too_large = 0, unreadable = 0, other = 0;
  size_t total() const { return hidden + excluded + binary + too_large + unreadable + other; }
  json ToJson() const {
    return {{"hidden", hidden},      {"excluded", excluded},     {"binary", binary},
            {"tooLarge", too_large}, {"unreadable", unreadable}, {"other", other}};
  }
};

bool Hidden(const fs::path& p) {
  std::string name = p.filename().string();
  return name.size() > 1 && name[0] == '.' && name != "..";
}

// Collects the files under every PATH; sizes and include/exclude are checked
// here, content (binary, UTF-8) when a worker reads the file.
Result<std::vector<FileJob>> Walk(const IngestFlags& f, Skipped& skipped) {
  std::vector<FileJob> files;
  auto consider = [&](const fs::path& abs, const std::string& rel) {
    if (!f.include.empty() && !Matches(f.include, rel)) {
      ++skipped.excluded;
      return;
    }
    if (Matches(f.exclude, rel)) {
      ++skipped.excluded;
      return;
    }
    std::error_code ec;
    auto size = fs::file_size(abs, ec);
    if (ec) {
      ++skipped.unreadable;
      return;
    }
    if (size > f.max_size) {
      ++skipped.too_large;
      return;
    }
    files.push_back({abs, rel});
  };
  for (const auto& arg : f.paths) {
    std::error_code ec;
    fs::path root = fs::weakly_canonical(fs::absolute(arg, ec), ec);
    if (ec || !fs::exists(root)) {
      return Err(Module::kCli, ErrorCode::kNotFound, "no such file or directory: " + arg);
    }
    if (fs::is_regular_file(root)) {
      consider(root, root.filename().string());
      continue;
    }
    if (!fs::is_directory(root)) return Err(Module::kCli, ErrorCode::kInvalidArgument, "not a file: " + arg);
    fs::recursive_directory_iterator it(root, fs::directory_options::skip_permission_denied, ec), end;
    if (ec) return Err(Module::kCli, ErrorCode::kUnavailable, "cannot read " + arg + ": " + ec.message());
    for (; it != end; it.increment(ec)) {
      if (ec) {
        ++skipped.unreadable;
        ec.clear();
        continue;
      }
      const fs::directory_entry& e = *it;
      std::string rel = e.path().lexically_relative(root).generic_string();
      if (Hidden(e.path())) {
        if (e.is_directory(ec) && !e.is_symlink(ec)) it.disable_recursion_pending();
        ++skipped.hidden;
        continue;
      }
      if (e.is_symlink(ec) && e.is_directory(ec)) continue;  // not followed: no cycles, no escapes
      if (e.is_directory(ec)) {
        if (Matches(f.exclude, rel)) {
          it.disable_recursion_pending();
          ++skipped.excluded;
        }
        continue;
      }
      if (!e.is_regular_file(ec)) {
        ++skipped.other;
        continue;
      }
      consider(fs::weakly_canonical(e.path(), ec), rel);
    }
  }
  // One item per file even when PATHs overlap.
  std::sort(files.begin(), files.end(), [](const FileJob& a, const FileJob& b) { return a.path < b.path; });
  files.erase(
      std::unique(files.begin(), files.end(), [](const FileJob& a, const FileJob& b) { return a.path == b.path; }),
      files.end());
  return files;
}

enum class FileOutcome { kCreated, kUpdated, kUnchanged, kSkippedBinary, kSkippedUnreadable, kFailed };

struct Totals {
  std::atomic<size_t> created{0}, updated{0}, unchanged{0}, failed{0}, done{0};
};

// Reads a file; nullopt with `why` set when it is to be skipped.
std::optional<std::string> ReadText(const fs::path& path, FileOutcome& why) {
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    why = FileOutcome::kSkippedUnreadable;
    return std::nullopt;
  }
  std::string data((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  if (in.bad()) {
    why = FileOutcome::kSkippedUnreadable;
    return std::nullopt;
  }
  std::string_view head(data.data(), std::min<size_t>(data.size(), 8192));
  if (head.find('\0') != std::string_view::npos || !text::IsValidUtf8(data)) {
    why = FileOutcome::kSkippedBinary;
    return std::nullopt;
  }
  return data;
}

FileOutcome IngestOne(const IngestClient& client, const IngestFlags& f, const FileJob& job, std::string& error) {
  FileOutcome why = FileOutcome::kFailed;
  auto data = ReadText(job.path, why);
  if (!data) return why;
  json body = {{"title", job.title.substr(0, 500)},
               {"contentType", ContentTypeFor(job.path)},
               {"sourceUrl", "file://" + job.path.string()},
               {"body", std::move(*data)}};
  auto reply = client.PostContent(f.project, body.dump());
  if (!reply) {
    error = reply.error().message();
    return FileOutcome::kFailed;
  }
  if (reply->status == 201) return FileOutcome::kCreated;
  if (reply->status == 200) return reply->write == "unchanged" ? FileOutcome::kUnchanged : FileOutcome::kUpdated;
  auto problem = json::parse(reply->body, nullptr, false);
  error = "HTTP " + std::to_string(reply->status);
  if (problem.is_object() && problem.contains("detail") && problem["detail"].is_string()) {
    error += ": " + problem["detail"].get<std::string>();
  }
  return FileOutcome::kFailed;
}

void DrawProgress(bool tty, size_t done, size_t total, const Totals& t, double seconds, bool final) {
  if (tty) {
    constexpr int kWidth = 30;
    int filled = total ? static_cast<int>(kWidth * done / total) : kWidth;
    std::string bar(static_cast<size_t>(filled), '=');
    if (filled < kWidth) bar += '>' + std::string(static_cast<size_t>(kWidth - filled - 1), ' ');
    std::fprintf(stderr, "\r[%s] %zu/%zu files  %.0f/s  created %zu updated %zu unchanged %zu failed %zu%s",
                 bar.c_str(), done, total, seconds > 0 ? static_cast<double>(done) / seconds : 0.0, t.created.load(),
                 t.updated.load(), t.unchanged.load(), t.failed.load(), final ? "\n" : "");
  } else {
    std::fprintf(stderr, "ingest: %zu/%zu files (%zu%%)\n", done, total, total ? 100 * done / total : 100);
  }
  std::fflush(stderr);
}

// --prune: deletes the project's content items whose source is a file under
// one of the directory PATHs that no longer exists. Files that still exist but
// are now excluded or skipped are kept. Returns (removed, failed).
std::pair<size_t, size_t> Prune(const IngestFlags& f, const IngestClient& client) {
  std::vector<std::string> prefixes;
  for (const auto& arg : f.paths) {
    std::error_code ec;
    fs::path root = fs::weakly_canonical(fs::absolute(arg, ec), ec);
    if (!ec && fs::is_directory(root)) prefixes.push_back("file://" + (root / "").string());
  }
  size_t removed = 0, failed = 0;
  std::vector<std::pair<std::string, int64_t>> stale;
  std::string cursor;
  do {
    auto page = client.ListContent(f.project, cursor);
    if (!page) {
      std::fprintf(stderr, "cnx ingest: --prune: %s\n", page.error().message().c_str());
      return {0, 1};
    }
    for (const auto& item : page->first) {
      if (!item["sourceUrl"].is_string() || !item["id"].is_string() || !item["version"].is_number_integer()) continue;
      std::string url = item["sourceUrl"].get<std::string>();
      bool under = std::any_of(prefixes.begin(), prefixes.end(), [&](const auto& p) { return url.starts_with(p); });
      std::error_code ec;
      if (under && !fs::exists(fs::path(url.substr(7)), ec) && !ec) {
        stale.emplace_back(item["id"].get<std::string>(), item["version"].get<int64_t>());
      }
    }
    cursor = page->second;
  } while (!cursor.empty());
  for (const auto& [id, version] : stale) {
    auto status = client.DeleteContent(id, version);
    if (status && (*status == 204 || *status == 404)) {
      ++removed;
    } else {
      ++failed;  // 412: changed meanwhile (kept), or the server failed
      std::fprintf(stderr, "cnx ingest: --prune: content %s not deleted (%s)\n", id.c_str(),
                   status ? ("HTTP " + std::to_string(*status)).c_str() : status.error().message().c_str());
    }
  }
  return {removed, failed};
}

int RunIngest(const IngestFlags& flags) {
  IngestFlags f = flags;
  if (f.token.empty()) {
    if (const char* t = std::getenv("CNX_TOKEN")) f.token = t;
  }
  if (f.server.empty()) {
    const char* s = std::getenv("CNX_SERVER");
    f.server = s && *s ? s : "http://127.0.0.1:8080";
  }
  if (f.token.empty()) {
    return Fail(Error(Module::kCli, ErrorCode::kInvalidArgument, "no token: pass --token or set CNX_TOKEN"));
  }
  if (!Uuid::Parse(f.project)) {
    return Fail(Error(Module::kCli, ErrorCode::kInvalidArgument, "--project must be a project id (UUID)"));
  }
  f.jobs = std::clamp<size_t>(f.jobs, 1, 64);

  // The server, the token and the project, checked once before any file.
  if (auto st = IngestClient(f.server, f.token).CheckProject(f.project); !st) return Fail(st.error());

  Skipped skipped;
  auto files = Walk(f, skipped);
  if (!files) return Fail(files.error());

  Totals totals;
  std::atomic<size_t> next{0};
  std::atomic<size_t> binary{0}, unreadable{0};
  std::mutex out_mu;
  const bool tty = f.progress && isatty(STDERR_FILENO);
  const auto start = std::chrono::steady_clock::now();
  auto elapsed = [&] { return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count(); };

  auto worker = [&] {
    IngestClient client(f.server, f.token);
    for (;;) {
      size_t i = next.fetch_add(1);
      if (i >= files->size()) return;
      std::string error;
      FileOutcome o = IngestOne(client, f, (*files)[i], error);
      switch (o) {
        case FileOutcome::kCreated:
          ++totals.created;
          break;
        case FileOutcome::kUpdated:
          ++totals.updated;
          break;
        case FileOutcome::kUnchanged:
          ++totals.unchanged;
          break;
        case FileOutcome::kSkippedBinary:
          ++binary;
          break;
        case FileOutcome::kSkippedUnreadable:
          ++unreadable;
          break;
        case FileOutcome::kFailed: {
          ++totals.failed;
          std::lock_guard lock(out_mu);
          std::fprintf(stderr, "%scnx ingest: %s: %s\n", tty ? "\r\033[K" : "", (*files)[i].path.c_str(),
                       error.c_str());
          break;
        }
      }
      ++totals.done;
    }
  };

  std::vector<std::thread> threads;
  for (size_t t = 0; t < std::min(f.jobs, std::max<size_t>(files->size(), 1)); ++t) threads.emplace_back(worker);
  // Progress: a bar redrawn every 100 ms on a terminal; otherwise a line per 10%.
  size_t last_decile = 0;
  for (;;) {
    size_t done = totals.done.load();
    bool finished = done >= files->size();
    if (f.progress) {
      std::lock_guard lock(out_mu);
      if (tty) {
        DrawProgress(true, done, files->size(), totals, elapsed(), false);
      } else if (!files->empty() && done * 10 / files->size() > last_decile) {
        last_decile = done * 10 / files->size();
        DrawProgress(false, done, files->size(), totals, elapsed(), false);
      }
    }
    if (finished) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  for (auto& t : threads) t.join();
  if (tty) DrawProgress(true, totals.done.load(), files->size(), totals, elapsed(), true);

  skipped.binary += binary.load();
  skipped.unreadable += unreadable.load();
  size_t removed = 0, prune_failed = 0;
  if (f.prune) std::tie(removed, prune_failed) = Prune(f, IngestClient(f.server, f.token));
  double seconds = elapsed();
  json summary = {{"files", totals.created.load() + totals.updated.load() + totals.unchanged.load() +
                                totals.failed.load() + skipped.total()},
                  {"created", totals.created.load()},
                  {"updated", totals.updated.load()},
                  {"unchanged", totals.unchanged.load()},
                  {"skipped", skipped.total()},
                  {"skippedBy", skipped.ToJson()},
                  {"failed", totals.failed.load()},
                  {"seconds", seconds}};
  if (f.prune) summary["removed"] = removed, summary["removeFailed"] = prune_failed;
  if (f.json_summary) {
    std::printf("%s\n", summary.dump().c_str());
  } else {
    std::printf(
        "ingested %zu file(s) in %.1f s: created %zu, updated %zu, unchanged %zu, skipped %zu "
        "(hidden %zu, excluded %zu, binary %zu, too large %zu, unreadable %zu, other %zu), failed %zu\n",
        totals.created.load() + totals.updated.load() + totals.unchanged.load(), seconds, totals.created.load(),
        totals.updated.load(), totals.unchanged.load(), skipped.total(), skipped.hidden, skipped.excluded,
        skipped.binary, skipped.too_large, skipped.unreadable, skipped.other, totals.failed.load());
    if (f.prune)
      std::printf("removed %zu content item(s) whose file is gone, %zu not removed\n", removed, prune_failed);
  }
  return totals.failed.load() > 0 || prune_failed > 0 ? 1 : 0;
}

void AddIngest(CLI::App& app) {
  auto flags = std::make_shared<IngestFlags>();
  auto* cmd = app.add_subcommand("ingest", "send files and directories to a server as content of a project");
  cmd->add_option("paths", flags->paths, "files or directories (walked recursively)")->required();
  cmd->add_option("--project", flags->project, "project id")->required();
  cmd->add_option("--server", flags->server, "server URL (default $CNX_SERVER, else http://127.0.0.1:8080)");
  cmd->add_option("--token", flags->token, "bearer token: session or API key (default $CNX_TOKEN)");
  cmd->add_option("--jobs,-j", flags->jobs, "files sent in parallel (default 4)");
  cmd->add_option("--include", flags->include, "only files matching this glob (repeatable; relative path or name)");
  cmd->add_option("--exclude", flags->exclude, "skip files and directories matching this glob (repeatable)");
  cmd->add_option("--max-size", flags->max_size, "skip files larger than this many bytes (default 4 MiB)");
  cmd->add_flag("--json", flags->json_summary, "print the summary as one JSON object");
  cmd->add_flag("!--no-progress", flags->progress, "no progress output");
  cmd->add_flag("--prune", flags->prune,
                "afterwards, delete the project's content whose file under a directory PATH no longer exists");
  OnRun(cmd, [flags] { return RunIngest(*flags); });
}

}  // namespace
CNX_REGISTER_COMMANDS(ingest, AddIngest);
}  // namespace cnx::cli
