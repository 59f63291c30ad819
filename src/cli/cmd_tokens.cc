// `cnx tokens encode|count|decode`: JSON lines in on stdin, one JSON line out per
// input line, in order. A bad line (not JSON, no "text"/"ids", invalid UTF-8,
// unknown id, disallowed special token) gets {"error": {...}, "line": N} and
// processing continues; the exit code is then 1. Lines are processed in batches
// on all cores.
#include <nlohmann/json.hpp>

#include <atomic>
#include <charconv>
#include <cstdio>
#include <iostream>
#include <string>
#include <thread>
#include <vector>

#include "base/log.h"
#include "cli/command.h"
#include "text/tokenizer.h"

namespace cnx::cli {
namespace {

using text::TokenId;
using text::Tokenizer;

enum class Mode { kEncode, kCount, kDecode };

struct TokensFlags {
  std::string encoding = "o200k_base";
  std::string model;
  std::string allowed_special = "none";
  std::string disallowed_special = "none";
  bool lossy = false;
  unsigned threads = 0;
};

std::string ErrorLine(std::string_view code, std::string_view message, size_t line_no) {
  std::string out = R"({"error":{"code":")";
  AppendJsonEscaped(out, code);
  out += R"(","message":")";
  AppendJsonEscaped(out, text::ToValidUtf8Lossy(message));  // may quote the bad input
  out += R"("},"line":)";
  out += std::to_string(line_no);
  out += '}';
  return out;
}

std::string ErrorLine(const Error& e, size_t line_no) {
  std::string code(ErrorCodeName(e.code()));
  const std::string& m = e.message();
  if (m.starts_with("disallowed_special")) code = "disallowed_special";
  if (m.starts_with("invalid_token")) code = "invalid_token";
  if (m.starts_with("text is not valid UTF-8")) code = "invalid_utf8";
  return ErrorLine(code, m, line_no);
}

void AppendNumber(std::string& out, uint64_t v) {
  char buf[24];
  auto [end, ec] = std::to_chars(buf, buf + sizeof buf, v);
  out.append(buf, end);
}

// Handles one input line; returns the output line (without newline) and sets
// *failed for an error line.
std::string HandleLine(const Tokenizer& tok, Mode mode, const text::EncodeOptions& opt, bool lossy,
                       const std::string& line, size_t line_no, bool* failed) {
  *failed = true;
  nlohmann::json j;
  try {
    j = nlohmann::json::parse(line);
  } catch (const nlohmann::json::exception& e) {
    return ErrorLine("invalid_json", e.what(), line_no);
  }
  if (mode == Mode::kDecode) {
    if (!j.is_object() || !j.contains("ids") || !j["ids"].is_array()) {
      return ErrorLine("invalid_argument", R"(expected {"ids": [...]})", line_no);
    }
    std::vector<TokenId> ids;
    ids.reserve(j["ids"].size());
    for (const auto& v : j["ids"]) {
      if (!v.is_number_unsigned() || v.get<uint64_t>() > 0xFFFFFFFFull) {
        return ErrorLine("invalid_token", "ids must be non-negative integers: " + v.dump(), line_no);
      }
      ids.push_back(static_cast<TokenId>(v.get<uint64_t>()));
    }
    auto decoded = tok.Decode(ids);
    if (!decoded) return ErrorLine(decoded.error(), line_no);
    *failed = false;
    std::string out = R"({"text":")";
    AppendJsonEscaped(out, *decoded);
    out += "\"}";
    return out;
  }
  if (!j.is_object() || !j.contains("text") || !j["text"].is_string()) {
    return ErrorLine("invalid_argument", R"(expected {"text": "..."})", line_no);
  }
  const auto& s = j["text"].get_ref<const std::string&>();
  if (mode == Mode::kCount) {
    auto n = lossy ? tok.Count(text::ToValidUtf8Lossy(s), opt) : tok.Count(s, opt);
    if (!n) return ErrorLine(n.error(), line_no);
    *failed = false;
    std::string out = R"({"count":)";
    AppendNumber(out, *n);
    out += '}';
    return out;
  }
  auto ids = lossy ? tok.EncodeLossy(s, opt) : tok.Encode(s, opt);
  if (!ids) return ErrorLine(ids.error(), line_no);
  *failed = false;
  std::string out = R"({"ids":[)";
  out.reserve(out.size() + ids->size() * 7 + 4);
  for (size_t i = 0; i < ids->size(); ++i) {
    if (i != 0) out += ',';
    AppendNumber(out, (*ids)[i]);
  }
  out += "]}";
  return out;
}

Result<text::SpecialSet> ParseSpecial(const std::string& v, const char* flag) {
  if (v == "all") return text::SpecialSet::All();
  if (v == "none" || v.empty()) return text::SpecialSet();
  return Err(Module::kCli, ErrorCode::kInvalidArgument, std::string(flag) + " must be all or none");
}

int Run(Mode mode, const TokensFlags& flags) {
  auto tok = flags.model.empty() ? Tokenizer::ForEncoding(flags.encoding) : Tokenizer::ForModel(flags.model);
  if (!tok) return Fail(tok.error());
  auto allowed = ParseSpecial(flags.allowed_special, "--allowed-special");
  if (!allowed) return Fail(allowed.error());
  auto disallowed = ParseSpecial(flags.disallowed_special, "--disallowed-special");
  if (!disallowed) return Fail(disallowed.error());
  const text::EncodeOptions opt{*allowed, *disallowed};
  const unsigned threads = flags.threads != 0 ? flags.threads : std::max(1u, std::thread::hardware_concurrency());

  std::ios::sync_with_stdio(false);
  constexpr size_t kBatchLines = 512;
  constexpr size_t kBatchBytes = 8 << 20;
  std::vector<std::string> lines;
  std::vector<std::string> outs;
  std::vector<char> failed;
  size_t line_no = 0;
  bool any_failed = false;
  bool eof = false;
  while (!eof) {
    lines.clear();
    size_t bytes = 0;
    std::string line;
    while (lines.size() < kBatchLines && bytes < kBatchBytes) {
      if (!std::getline(std::cin, line)) {
        eof = true;
        break;
      }
      if (!line.empty() && line.back() == '\r') line.pop_back();
      bytes += line.size();
      lines.push_back(std::move(line));
    }
    outs.assign(lines.size(), std::string());
    failed.assign(lines.size(), 0);
    const size_t base = line_no;
    std::atomic<size_t> next{0};
    auto work = [&] {
      for (size_t i = next.fetch_add(1); i < lines.size(); i = next.fetch_add(1)) {
        if (lines[i].find_first_not_of(" \t") == std::string::npos) continue;  // blank: skipped
        bool f = false;
        outs[i] = HandleLine(**tok, mode, opt, flags.lossy, lines[i], base + i + 1, &f);
        failed[i] = f;
      }
    };
    {
      std::vector<std::jthread> pool;
      const unsigned n = static_cast<unsigned>(std::min<size_t>(threads, lines.size()));
      for (unsigned t = 1; t < n; ++t) pool.emplace_back(work);
      work();
    }
    for (size_t i = 0; i < lines.size(); ++i) {
      if (outs[i].empty()) continue;
      std::fwrite(outs[i].data(), 1, outs[i].size(), stdout);
      std::fputc('\n', stdout);
      any_failed = any_failed || failed[i];
    }
    line_no += lines.size();
  }
  std::fflush(stdout);
  return any_failed ? 1 : 0;
}

void AddTokens(CLI::App& app) {
  auto* group = app.add_subcommand("tokens", "Tokenize JSON lines with a tiktoken-exact tokenizer");
  group->require_subcommand(1);
  auto flags = std::make_shared<TokensFlags>();
  auto add_common = [&](CLI::App* sub) {
    sub->add_option("--encoding", flags->encoding, "cl100k_base or o200k_base")
        ->check(CLI::IsMember({"cl100k_base", "o200k_base"}));
    sub->add_option("--model", flags->model, "pick the encoding of a model (gpt-4o, gpt-4, ...)");
    sub->add_option("--threads", flags->threads, "worker threads (default: all cores)");
  };
  auto add_encode = [&](CLI::App* sub) {
    sub->add_option("--allowed-special", flags->allowed_special,
                    "all: special-token text becomes its id; none: it is ordinary text")
        ->check(CLI::IsMember({"all", "none"}));
    sub->add_option("--disallowed-special", flags->disallowed_special,
                    "all: a line containing a special token that is not allowed is an error")
        ->check(CLI::IsMember({"all", "none"}));
    sub->add_flag("--lossy", flags->lossy, "replace ill-formed UTF-8 with U+FFFD instead of failing");
  };
  auto* encode = group->add_subcommand("encode", R"(read {"text": ...} lines, write {"ids": [...]} lines)");
  add_common(encode);
  add_encode(encode);
  OnRun(encode, [flags] { return Run(Mode::kEncode, *flags); });
  auto* count = group->add_subcommand("count", R"(read {"text": ...} lines, write {"count": n} lines)");
  add_common(count);
  add_encode(count);
  OnRun(count, [flags] { return Run(Mode::kCount, *flags); });
  auto* decode = group->add_subcommand("decode", R"(read {"ids": [...]} lines, write {"text": ...} lines)");
  add_common(decode);
  OnRun(decode, [flags] { return Run(Mode::kDecode, *flags); });
}

}  // namespace
CNX_REGISTER_COMMANDS(tokens, AddTokens);
}  // namespace cnx::cli
