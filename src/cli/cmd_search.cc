// `cnx search "query" --project P [--k N] [--mode M] [--json] [--server URL --token T]`:
// asks a running `cnx serve` (POST /v1/search) and prints the hits.
#include <cstdio>
#include <cstdlib>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "base/uuid.h"
#include "cli/command.h"
#include "net/http_client.h"

namespace cnx::cli {
namespace {

using nlohmann::json;

struct SearchFlags {
  std::vector<std::string> words;
  std::string project;
  int k = 10;
  std::string mode = "hybrid";
  bool json_out = false;
  std::string server;
  std::string token;
  double timeout_s = 30;
};

std::string EnvOr(const char* name, std::string fallback) {
  const char* v = std::getenv(name);
  return v && *v ? std::string(v) : fallback;
}

// One line of text: whitespace runs collapsed, at most `max` bytes (on a UTF-8 boundary).
std::string Snippet(const std::string& text, size_t max) {
  std::string out;
  bool space = false;
  for (char c : text) {
    if (c == ' ' || c == '\n' || c == '\t' || c == '\r') {
      space = !out.empty();
      continue;
    }
    if (space) out += ' ';
    space = false;
    out += c;
  }
  if (out.size() <= max) return out;
  size_t cut = max;
  while (cut > 0 && (static_cast<unsigned char>(out[cut]) & 0xC0) == 0x80) --cut;
  return out.substr(0, cut) + "...";
}

int Run(const SearchFlags& f) {
  if (f.words.empty()) return Fail(Err(Module::kCli, ErrorCode::kInvalidArgument, "give the query text").error());
  std::string query;
  for (const auto& w : f.words) query += (query.empty() ? "" : " ") + w;
  if (!Uuid::Parse(f.project)) {
    return Fail(Err(Module::kCli, ErrorCode::kInvalidArgument, "--project must be a project id (UUID)").error());
  }
  std::string token = f.token.empty() ? EnvOr("CNX_TOKEN", "") : f.token;
  if (token.empty()) {
    return Fail(Err(Module::kCli, ErrorCode::kUnauthenticated, "no token: pass --token or set CNX_TOKEN").error());
  }
  std::string server = f.server.empty() ? EnvOr("CNX_SERVER", "http://127.0.0.1:8080") : f.server;
  while (!server.empty() && server.back() == '/') server.pop_back();

  json body = {{"query", query}, {"projectId", f.project}, {"k", f.k}, {"mode", f.mode}};
  net::HttpRequest req;
  req.method = "POST";
  req.url = server + "/v1/search";
  req.headers = {
      {"Authorization", "Bearer " + token}, {"Content-Type", "application/json"}, {"Accept", "application/json"}};
  req.body = body.dump();
  req.timeout = std::chrono::milliseconds(static_cast<int64_t>(f.timeout_s * 1000));
  auto res = net::Fetch(req);
  if (!res) return Fail(res.error().WithContext("searching " + server));
  json answer = json::parse(res->body, nullptr, false);
  if (res->status != 200) {
    std::string detail = res->body.substr(0, 500);
    if (answer.is_object() && answer.contains("detail") && answer["detail"].is_string()) {
      detail = answer["detail"].get<std::string>();
    }
    ErrorCode code = res->status == 401   ? ErrorCode::kUnauthenticated
                     : res->status == 404 ? ErrorCode::kNotFound
                     : res->status == 400 ? ErrorCode::kInvalidArgument
                                          : ErrorCode::kUnavailable;
    return Fail(Err(Module::kCli, code, "search failed: HTTP " + std::to_string(res->status) + ": " + detail).error());
  }
  if (answer.is_discarded() || !answer.is_object() || !answer.contains("results") || !answer["results"].is_array()) {
    return Fail(Err(Module::kCli, ErrorCode::kDataLoss, "the server's answer is not a search result").error());
  }
  if (f.json_out) {
    std::printf("%s\n", answer.dump(2, ' ', false, json::error_handler_t::replace).c_str());
    return 0;
  }
  const auto& results = answer["results"];
  std::printf("%zu result%s for \"%s\" (%s", results.size(), results.size() == 1 ? "" : "s", query.c_str(),
              answer.value("mode", f.mode).c_str());
  if (answer.contains("tookMs") && answer["tookMs"].is_number()) {
    std::printf(", %.1f ms", answer["tookMs"].get<double>());
  }
  std::printf(")\n");
  int n = 0;
  for (const auto& r : results) {
    const json c = r.value("content", json::object());
    const json scored = r.value("scores", json::object());
    std::printf("\n%2d. %s  [%s, chunk %d, chars %d-%d]  score %.4f\n", ++n, c.value("title", "").c_str(),
                c.value("contentType", "").c_str(), r.value("chunkIndex", 0), r.value("startOffset", 0),
                r.value("endOffset", 0), r.value("score", 0.0));
    if (c.contains("sourceUrl") && c["sourceUrl"].is_string()) {
      std::printf("    %s\n", c["sourceUrl"].get<std::string>().c_str());
    }
    std::string scores;
    for (const auto& [name, s] : scored.items()) {
      char buf[96];
      std::snprintf(buf, sizeof buf, "%s#%d (%.4g)", name.c_str(), s.value("rank", 0), s.value("score", 0.0));
      scores += (scores.empty() ? "" : ", ") + std::string(buf);
    }
    std::printf("    content %s  chunk %s  ranked by %s\n", c.value("id", "").c_str(), r.value("chunkId", "").c_str(),
                scores.c_str());
    std::printf("    %s\n", Snippet(r.value("text", ""), 240).c_str());
  }
  return 0;
}

void AddSearch(CLI::App& app) {
  static SearchFlags flags;
  auto* sub = app.add_subcommand("search", "Search a project's content on a running server (POST /v1/search)");
  sub->add_option("query", flags.words, "the query text (words are joined with spaces)")->required();
  sub->add_option("--project,-p", flags.project, "project id")->required();
  sub->add_option("--k,-k", flags.k, "number of results, 1..200 (default 10)")->check(CLI::Range(1, 200));
  sub->add_option("--mode", flags.mode, "hybrid (default), vector or lexical")
      ->check(CLI::IsMember({"hybrid", "vector", "lexical"}));
  sub->add_flag("--json", flags.json_out, "print the server's JSON answer");
  sub->add_option("--server", flags.server, "server URL (default $CNX_SERVER or http://127.0.0.1:8080)");
  sub->add_option("--token", flags.token, "bearer token (default $CNX_TOKEN)");
  sub->add_option("--timeout", flags.timeout_s, "seconds to wait for the answer (default 30)");
  OnRun(sub, [] { return Run(flags); });
}

}  // namespace
CNX_REGISTER_COMMANDS(search, AddSearch);
}  // namespace cnx::cli
