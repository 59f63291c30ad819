#include "sync/change.h"

#include <charconv>
#include <cmath>
#include <cstdlib>
#include <optional>
#include <string_view>

namespace cnx::sync {

namespace {
Error Bad(std::string msg) {
  return Error(Module::kSync, ErrorCode::kInvalidArgument, "outbox payload: " + msg);
}
}  // namespace

namespace {

// Builds the Change from a parsed payload, moving the row objects out of it.
Result<Change> Build(nlohmann::json& p) {
  if (!p.is_object()) return std::unexpected(Bad("not an object"));
  Change c;
  auto str = [&](const char* k) -> Result<std::string> {
    auto it = p.find(k);
    if (it == p.end() || !it->is_string()) return std::unexpected(Bad(std::string("missing string '") + k + "'"));
    return it->get<std::string>();
  };
  std::string op = CNX_TRY(str("op"));
  if (op == "c") {
    c.op = Change::Op::kInsert;
  } else if (op == "u") {
    c.op = Change::Op::kUpdate;
  } else if (op == "d") {
    c.op = Change::Op::kDelete;
  } else {
    return std::unexpected(Bad("unknown op '" + op + "'"));
  }
  c.table = CNX_TRY(str("table"));
  c.id = CNX_TRY(str("id"));
  if (auto it = p.find("tenant_id"); it != p.end() && it->is_string()) c.tenant_id = it->get<std::string>();
  auto v = p.find("pg_version");
  if (v == p.end() || !v->is_number_integer() || v->get<int64_t>() < 0) {
    return std::unexpected(Bad("missing or negative 'pg_version'"));
  }
  c.version = v->get<uint64_t>();
  if (auto it = p.find("schemaVersion"); it != p.end() && it->is_number_integer()) c.schema_version = it->get<int>();
  if (auto rows = p.find("rows"); rows != p.end()) {
    // A batch event: the rows of one statement for one aggregate.
    if (c.op == Change::Op::kUpdate) return std::unexpected(Bad("a batch of updates"));
    if (!rows->is_array()) return std::unexpected(Bad("'rows' is not an array"));
    auto shared = p.find("shared");
    if (shared == p.end() || !shared->is_object()) return std::unexpected(Bad("batch without 'shared'"));
    c.rows.reserve(rows->size());
    for (auto& r : *rows) {
      if (!r.is_object()) return std::unexpected(Bad("an element of 'rows' is not an object"));
      c.rows.push_back(std::move(r));
    }
    (c.op == Change::Op::kDelete ? c.old : c.row) = std::move(*shared);
    c.batch = true;
    return c;
  }
  if (auto it = p.find("row"); it != p.end()) c.row = std::move(*it);
  if (auto it = p.find("old"); it != p.end()) c.old = std::move(*it);
  if (!c.Subject().is_object())
    return std::unexpected(Bad(c.op == Change::Op::kDelete ? "delete without 'old'" : "missing 'row'"));
  return c;
}

}  // namespace

Result<Change> ParseOutboxPayload(const nlohmann::json& p) {
  nlohmann::json copy = p;
  return Build(copy);
}

Result<Change> ParseOutboxPayloadText(std::string_view text) {
  auto j = nlohmann::json::parse(text, nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded()) return std::unexpected(Bad("invalid JSON"));
  return Build(j);
}

Result<Change> BatchRow(const Change& batch, size_t i) {
  if (i >= batch.rows.size()) {
    return std::unexpected(Error(Module::kSync, ErrorCode::kInvalidArgument, "batch row out of range"));
  }
  const nlohmann::json& element = batch.rows[i];
  auto id = element.find("id");
  if (id == element.end() || !id->is_string()) {
    return std::unexpected(
        Error(Module::kSync, ErrorCode::kInvalidArgument, "row " + std::to_string(i) + " has no string 'id'"));
  }
  Change c;
  c.op = batch.op;
  c.table = batch.table;
  c.id = id->get<std::string>();
  c.tenant_id = batch.tenant_id;
  c.version = 1;
  if (auto v = element.find("pg_version"); v != element.end() && v->is_number_integer() && v->get<int64_t>() >= 0) {
    c.version = v->get<uint64_t>();
  }
  c.schema_version = batch.schema_version;
  nlohmann::json row = batch.Subject().is_object() ? batch.Subject() : nlohmann::json::object();
  for (const auto& [k, v] : element.items()) row[k] = v;
  (c.op == Change::Op::kDelete ? c.old : c.row) = std::move(row);
  return c;
}

namespace {

// A forward scanner over JSON text that checks what it skips as strictly as
// nlohmann's parser does (structure, string escapes and control characters,
// UTF-8, number grammar), but builds nothing. Any surprise makes the fast path
// give up and leave the text to nlohmann, so errors are reported as before.
class Skimmer {
 public:
  explicit Skimmer(std::string_view s) : s_(s) {}

  void Ws() {
    while (i_ < s_.size() && (s_[i_] == ' ' || s_[i_] == '\n' || s_[i_] == '\t' || s_[i_] == '\r')) ++i_;
  }
  bool Eat(char c) {
    Ws();
    if (i_ < s_.size() && s_[i_] == c) {
      ++i_;
      return true;
    }
    return false;
  }
  bool AtEnd() {
    Ws();
    return i_ == s_.size();
  }
  size_t pos() const { return i_; }

  // A key without escapes (every key of an outbox payload); false otherwise.
  bool Key(std::string_view& key) {
    Ws();
    if (i_ >= s_.size() || s_[i_] != '"') return false;
    const size_t b = ++i_;
    while (i_ < s_.size() && s_[i_] != '"') {
      const auto c = static_cast<unsigned char>(s_[i_]);
      if (c == '\\' || c < 0x20 || c >= 0x80) return false;
      ++i_;
    }
    if (i_ >= s_.size()) return false;
    key = s_.substr(b, i_ - b);
    ++i_;
    return Eat(':');
  }

  // Skips one value; [b, e) is its text.
  bool Value(size_t& b, size_t& e, int depth = 0) {
    Ws();
    b = i_;
    if (i_ >= s_.size() || depth > 64) return false;
    bool ok = false;
    switch (s_[i_]) {
      case '"':
        ok = String();
        break;
      case '{':
        ok = Container('}', true, depth);
        break;
      case '[':
        ok = Container(']', false, depth);
        break;
      case 't':
        ok = Literal("true");
        break;
      case 'f':
        ok = Literal("false");
        break;
      case 'n':
        ok = Literal("null");
        break;
      default:
        ok = Number();
    }
    e = i_;
    return ok;
  }

 private:
  bool Container(char close, bool object, int depth) {
    ++i_;
    if (Eat(close)) return true;
    for (;;) {
      size_t b, e;
      if (object) {
        Ws();
        if (i_ >= s_.size() || s_[i_] != '"' || !String() || !Eat(':')) return false;
      }
      if (!Value(b, e, depth + 1)) return false;
      if (Eat(close)) return true;
      if (!Eat(',')) return false;
    }
  }
  bool Literal(std::string_view word) {
    if (s_.substr(i_, word.size()) != word) return false;
    i_ += word.size();
    return true;
  }
  bool Digits() {
    const size_t b = i_;
    while (i_ < s_.size() && s_[i_] >= '0' && s_[i_] <= '9') ++i_;
    return i_ > b;
  }
  bool Number() {
    const size_t b = i_;
    if (!NumberSyntax()) return false;
    // nlohmann rejects a number whose value overflows a double (1e999).
    if (i_ - b > 18 || s_.substr(b, i_ - b).find_first_of(".eE") != std::string_view::npos) {
      const std::string copy(s_.substr(b, i_ - b));
      if (!std::isfinite(std::strtod(copy.c_str(), nullptr))) return false;
    }
    return true;
  }
  bool NumberSyntax() {
    if (i_ < s_.size() && s_[i_] == '-') ++i_;
    if (i_ < s_.size() && s_[i_] == '0') {
      ++i_;
    } else if (!Digits()) {
      return false;
    }
    if (i_ < s_.size() && s_[i_] == '.') {
      ++i_;
      if (!Digits()) return false;
    }
    if (i_ < s_.size() && (s_[i_] == 'e' || s_[i_] == 'E')) {
      ++i_;
      if (i_ < s_.size() && (s_[i_] == '+' || s_[i_] == '-')) ++i_;
      if (!Digits()) return false;
    }
    return true;
  }
  static bool Hex(char c) { return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F'); }
  bool String() {
    ++i_;  // the opening quote
    const size_t n = s_.size();
    while (i_ < n) {
      const auto c = static_cast<unsigned char>(s_[i_]);
      if (c == '"') {
        ++i_;
        return true;
      }
      if (c < 0x20) return false;
      if (c == '\\') {
        if (i_ + 1 >= n) return false;
        const char x = s_[i_ + 1];
        if (x == 'u') {
          if (i_ + 6 > n || !Hex(s_[i_ + 2]) || !Hex(s_[i_ + 3]) || !Hex(s_[i_ + 4]) || !Hex(s_[i_ + 5])) return false;
          // Surrogates must pair up; leave them to the full parser.
          if (s_[i_ + 2] == 'd' || s_[i_ + 2] == 'D') return false;
          i_ += 6;
        } else if (x == '"' || x == '\\' || x == '/' || x == 'b' || x == 'f' || x == 'n' || x == 'r' || x == 't') {
          i_ += 2;
        } else {
          return false;
        }
        continue;
      }
      if (c < 0x80) {
        ++i_;
        continue;
      }
      if (!Utf8()) return false;
    }
    return false;
  }
  // One multi-byte UTF-8 sequence (RFC 3629: no overlongs, no surrogates, at most U+10FFFF).
  bool Utf8() {
    const auto b = [&](size_t k) -> unsigned {
      return i_ + k < s_.size() ? static_cast<unsigned char>(s_[i_ + k]) : 0u;
    };
    const unsigned c = b(0);
    const auto cont = [&](size_t k, unsigned lo = 0x80, unsigned hi = 0xBF) { return b(k) >= lo && b(k) <= hi; };
    size_t len = 0;
    if (c >= 0xC2 && c <= 0xDF) {
      len = cont(1) ? 2 : 0;
    } else if (c == 0xE0) {
      len = cont(1, 0xA0) && cont(2) ? 3 : 0;
    } else if ((c >= 0xE1 && c <= 0xEC) || c == 0xEE || c == 0xEF) {
      len = cont(1) && cont(2) ? 3 : 0;
    } else if (c == 0xED) {
      len = cont(1, 0x80, 0x9F) && cont(2) ? 3 : 0;
    } else if (c == 0xF0) {
      len = cont(1, 0x90) && cont(2) && cont(3) ? 4 : 0;
    } else if (c >= 0xF1 && c <= 0xF3) {
      len = cont(1) && cont(2) && cont(3) ? 4 : 0;
    } else if (c == 0xF4) {
      len = cont(1, 0x80, 0x8F) && cont(2) && cont(3) ? 4 : 0;
    }
    i_ += len;
    return len != 0;
  }

  std::string_view s_;
  size_t i_ = 0;
};

// One value already checked by the Skimmer. The common shapes (a string
// without escapes, a literal, a small integer) are built directly, as
// nlohmann's parser would build them (non-negative integers unsigned).
std::optional<nlohmann::json> ParseSmall(std::string_view text) {
  if (text.size() >= 2 && text.front() == '"' && text.find('\\') == std::string_view::npos) {
    return nlohmann::json(std::string(text.substr(1, text.size() - 2)));
  }
  if (text == "null") return nlohmann::json(nullptr);
  if (text == "true") return nlohmann::json(true);
  if (text == "false") return nlohmann::json(false);
  if (!text.empty() && text.size() <= 18 && text.find_first_not_of("-0123456789") == std::string_view::npos) {
    int64_t v = 0;
    auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), v);
    if (ec == std::errc() && end == text.data() + text.size()) {
      return text.front() == '-' ? nlohmann::json(v) : nlohmann::json(static_cast<uint64_t>(v));
    }
  }
  auto j = nlohmann::json::parse(text, nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded()) return std::nullopt;
  return j;
}

// The value at the skimmer (an object: only the columns in `keep`; anything
// else in full); nullopt when the text is not what the outbox writes.
std::optional<nlohmann::json> SkimRow(Skimmer& sk, std::string_view text,
                                      const std::set<std::string, std::less<>>& keep) {
  size_t b, e;
  if (!sk.Eat('{')) {
    if (!sk.Value(b, e)) return std::nullopt;
    return ParseSmall(text.substr(b, e - b));
  }
  nlohmann::json obj = nlohmann::json::object();
  if (sk.Eat('}')) return obj;
  for (;;) {
    std::string_view col;
    if (!sk.Key(col) || !sk.Value(b, e)) return std::nullopt;
    if (keep.contains(col)) {
      auto v = ParseSmall(text.substr(b, e - b));
      if (!v) return std::nullopt;
      obj[std::string(col)] = std::move(*v);
    }
    if (sk.Eat('}')) return obj;
    if (!sk.Eat(',')) return std::nullopt;
  }
}

// The payload with only what ParseOutboxPayload reads, and in `row` / `old` /
// `shared` and each object of `rows` only the columns in `keep`; nullopt when
// the text is not what the outbox writes (the caller then parses it in full).
std::optional<nlohmann::json> SkimPayload(std::string_view text, const std::set<std::string, std::less<>>& keep) {
  static const std::set<std::string_view> kTop = {"op", "table", "id", "tenant_id", "pg_version", "schemaVersion"};
  Skimmer sk(text);
  if (!sk.Eat('{')) return std::nullopt;
  nlohmann::json out = nlohmann::json::object();
  if (sk.Eat('}')) return sk.AtEnd() ? std::optional(out) : std::nullopt;
  for (;;) {
    std::string_view key;
    if (!sk.Key(key)) return std::nullopt;
    size_t b, e;
    if (key == "row" || key == "old" || key == "shared") {
      auto v = SkimRow(sk, text, keep);
      if (!v) return std::nullopt;
      out[std::string(key)] = std::move(*v);
    } else if (key == "rows") {
      if (sk.Eat('[')) {
        nlohmann::json rows = nlohmann::json::array();
        if (!sk.Eat(']')) {
          for (;;) {
            auto v = SkimRow(sk, text, keep);
            if (!v) return std::nullopt;
            rows.push_back(std::move(*v));
            if (sk.Eat(']')) break;
            if (!sk.Eat(',')) return std::nullopt;
          }
        }
        out["rows"] = std::move(rows);
      } else {
        auto v = SkimRow(sk, text, keep);
        if (!v) return std::nullopt;
        out["rows"] = std::move(*v);
      }
    } else {
      if (!sk.Value(b, e)) return std::nullopt;
      if (kTop.contains(key)) {
        auto v = ParseSmall(text.substr(b, e - b));
        if (!v) return std::nullopt;
        out[std::string(key)] = std::move(*v);
      }
    }
    if (sk.Eat('}')) break;
    if (!sk.Eat(',')) return std::nullopt;
  }
  if (!sk.AtEnd()) return std::nullopt;
  return out;
}

}  // namespace

Result<Change> ParseOutboxPayloadText(std::string_view text, const std::set<std::string, std::less<>>& keep) {
  // Fast path: skim the text, parsing only the values that are kept (a
  // chunk's text, most of its event, is checked but never copied).
  if (auto skimmed = SkimPayload(text, keep)) return Build(*skimmed);
  // Depth 1: the payload's keys; depth 2: the keys of `row` and `old`. A
  // dropped key takes its value with it.
  bool in_row = false;
  auto filter = [&](int depth, nlohmann::json::parse_event_t event, nlohmann::json& parsed) {
    if (event == nlohmann::json::parse_event_t::key) {
      if (depth == 1) {
        in_row = parsed.is_string() &&
                 (parsed.get_ref<const std::string&>() == "row" || parsed.get_ref<const std::string&>() == "old");
      } else if (depth == 2 && in_row) {
        return keep.contains(parsed.get_ref<const std::string&>());
      }
    }
    return true;
  };
  auto j = nlohmann::json::parse(text, filter, /*allow_exceptions=*/false);
  if (j.is_discarded()) return std::unexpected(Bad("invalid JSON"));
  // A batch's columns (small: its rows never carry large ones) are filtered
  // after the parse.
  auto drop = [&](nlohmann::json& obj) {
    if (!obj.is_object()) return;
    for (auto it = obj.begin(); it != obj.end();) {
      it = keep.contains(it.key()) ? std::next(it) : obj.erase(it);
    }
  };
  if (j.is_object()) {
    if (auto it = j.find("shared"); it != j.end()) drop(*it);
    if (auto it = j.find("rows"); it != j.end() && it->is_array()) {
      for (auto& r : *it) drop(r);
    }
  }
  return Build(j);
}

}  // namespace cnx::sync
