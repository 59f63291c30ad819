#include "sync/change.h"

namespace cnx::sync {

namespace {
Error Bad(std::string msg) {
  return Error(Module::kSync, ErrorCode::kInvalidArgument, "outbox payload: " + msg);
}
}  // namespace

Result<Change> ParseOutboxPayload(const nlohmann::json& p) {
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
  if (auto it = p.find("row"); it != p.end()) c.row = *it;
  if (auto it = p.find("old"); it != p.end()) c.old = *it;
  if (!c.Subject().is_object())
    return std::unexpected(Bad(c.op == Change::Op::kDelete ? "delete without 'old'" : "missing 'row'"));
  return c;
}

Result<Change> ParseOutboxPayloadText(std::string_view text) {
  auto j = nlohmann::json::parse(text, nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded()) return std::unexpected(Bad("invalid JSON"));
  return ParseOutboxPayload(j);
}

Result<Change> ParseOutboxPayloadText(std::string_view text, const std::set<std::string, std::less<>>& keep) {
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
  return ParseOutboxPayload(j);
}

}  // namespace cnx::sync
