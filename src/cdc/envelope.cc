#include "cdc/envelope.h"

#include <nlohmann/json.hpp>

#include "cdc/value.h"

namespace cnx::cdc {

namespace {
std::unexpected<Error> Invalid(std::string m) {
  return Err(Module::kCdc, ErrorCode::kInvalidArgument, std::move(m));
}

Result<std::string_view> RequiredText(const NamedColumns& cols, std::string_view name) {
  auto v = cols.Get(name);
  if (!v) return Invalid("outbox row has no column '" + std::string(name) + "'");
  if (!v->has_data()) return Invalid("outbox column '" + std::string(name) + "' is NULL");
  if (v->raw().empty() && name != "payload" && name != "type") {
    return Invalid("outbox column '" + std::string(name) + "' is empty");
  }
  return v->raw();
}

std::optional<std::string_view> OptionalText(const NamedColumns& cols, std::string_view name) {
  auto v = cols.Get(name);
  if (!v || !v->has_data()) return std::nullopt;
  return v->raw();
}

std::string_view TrimJson(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\n' || s.front() == '\t' || s.front() == '\r')) {
    s.remove_prefix(1);
  }
  while (!s.empty() && (s.back() == ' ' || s.back() == '\n' || s.back() == '\t' || s.back() == '\r')) {
    s.remove_suffix(1);
  }
  return s;
}
}  // namespace

bool IsOutboxRelation(const Relation* r, const OutboxOptions& o) {
  return r != nullptr && r->name == o.table && r->ns == o.schema;
}

std::string TopicFor(std::string_view prefix, std::string_view aggregate_type) {
  std::string t;
  t.reserve(prefix.size() + aggregate_type.size());
  t.append(prefix);
  for (char c : aggregate_type) {
    const bool ok =
        (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '.' || c == '_' || c == '-';
    t.push_back(ok ? c : '_');
  }
  return t;
}

Result<std::optional<OutboxRow>> ExtractOutboxRow(const Message& m, const OutboxOptions& options) {
  if (!m.IsChange() || !IsOutboxRelation(m.relation, options)) return std::nullopt;
  if (m.type == MessageType::kDelete) return std::nullopt;
  if (m.type == MessageType::kUpdate) {
    return Err(Module::kCdc, ErrorCode::kFailedPrecondition,
               "UPDATE of an outbox row: outbox rows are append-only (the change is not relayed)");
  }
  const NamedColumns cols{m.relation, &m.new_tuple};
  OutboxRow row;
  row.id = std::string(CNX_TRY(RequiredText(cols, "id")));
  row.aggregate_type = std::string(CNX_TRY(RequiredText(cols, "aggregatetype")));
  row.aggregate_id = std::string(CNX_TRY(RequiredText(cols, "aggregateid")));
  row.type = std::string(CNX_TRY(RequiredText(cols, "type")));
  row.payload = std::string(CNX_TRY(RequiredText(cols, "payload")));
  if (auto t = OptionalText(cols, "tenant_id")) row.tenant_id = std::string(*t);
  return row;
}

bus::Event MakeOutboxEvent(const OutboxRow& row, const CommitContext& commit, const OutboxOptions& options) {
  bus::Event e;
  e.topic = TopicFor(options.topic_prefix, row.aggregate_type);
  e.key = row.aggregate_id;
  e.headers.reserve(7);
  e.headers.push_back({"id", row.id});
  e.headers.push_back({"type", row.type});

  std::optional<std::string> tenant = row.tenant_id;
  // The value is the payload text as PostgreSQL printed it (numbers keep their
  // text, e.g. 9.50); "source" is spliced in rather than re-serialising.
  const std::string_view body = TrimJson(row.payload);
  const bool is_object = body.size() >= 2 && body.front() == '{' && body.back() == '}';
  if (!tenant && is_object) {
    auto parsed = nlohmann::json::parse(body, nullptr, /*allow_exceptions=*/false);
    if (parsed.is_object() && parsed.contains("tenant_id") && parsed["tenant_id"].is_string()) {
      tenant = parsed["tenant_id"].get<std::string>();
    }
  }
  if (tenant) e.headers.push_back({"tenant", *tenant});

  const std::string lsn = FormatLsn(commit.end_lsn);
  const int64_t unix_us = PgMicrosToUnixMicros(commit.commit_time_us);
  e.headers.push_back({"cnx.lsn", lsn});
  e.headers.push_back({"cnx.xid", std::to_string(commit.xid)});
  e.headers.push_back({"cnx.commit_time", FormatPgTime(commit.commit_time_us)});
  e.headers.push_back({"cnx.seq", std::to_string(commit.seq)});

  if (is_object) {
    std::string_view inner = TrimJson(body.substr(1, body.size() - 2));
    e.value.reserve(body.size() + 96);
    e.value.append("{");
    e.value.append(inner);
    if (!inner.empty()) e.value.append(", ");
    e.value.append("\"source\": {\"lsn\": \"").append(lsn).append("\", \"txId\": ").append(std::to_string(commit.xid));
    e.value.append(", \"ts_ms\": ").append(std::to_string(unix_us / 1000));
    e.value.append(", \"ts_us\": ").append(std::to_string(unix_us));
    e.value.append(", \"seq\": ").append(std::to_string(commit.seq)).append("}}");
  } else {
    e.value = std::string(body);
  }
  return e;
}

Result<std::optional<bus::Event>> BuildOutboxEvent(const Message& m, const CommitContext& commit,
                                                   const OutboxOptions& options) {
  auto row = CNX_TRY(ExtractOutboxRow(m, options));
  if (!row) return std::nullopt;
  return MakeOutboxEvent(*row, commit, options);
}

Result<OutboxValue> ParseOutboxValue(std::string_view value) {
  auto j = nlohmann::json::parse(value, nullptr, /*allow_exceptions=*/false);
  if (j.is_string()) j = nlohmann::json::parse(j.get<std::string>(), nullptr, false);
  if (!j.is_object()) return Invalid("outbox value is not a JSON object");
  auto text = [&](const char* k) -> std::string {
    if (!j.contains(k) || j[k].is_null()) return {};
    return j[k].is_string() ? j[k].get<std::string>() : j[k].dump();
  };
  OutboxValue v;
  v.op = text("op");
  if (v.op != "c" && v.op != "u" && v.op != "d") return Invalid("outbox value: op must be c, u or d");
  v.table = text("table");
  v.id = text("id");
  if (v.table.empty() || v.id.empty()) return Invalid("outbox value: table and id are required");
  v.tenant_id = text("tenant_id");
  if (j.contains("pg_version") && j["pg_version"].is_number_integer()) v.version = j["pg_version"].get<int64_t>();
  if (j.contains("schemaVersion") && j["schemaVersion"].is_number_integer()) {
    v.schema_version = j["schemaVersion"].get<int64_t>();
  }
  v.row = j.contains("row") ? j["row"].dump() : "null";
  v.old = j.contains("old") ? j["old"].dump() : "null";
  if (j.contains("source") && j["source"].is_object()) {
    const auto& s = j["source"];
    if (s.contains("lsn") && s["lsn"].is_string()) {
      auto l = ParseLsn(s["lsn"].get<std::string>());
      if (l) v.lsn = *l;
    }
    if (s.contains("ts_us") && s["ts_us"].is_number_integer()) {
      v.commit_time_us = UnixMicrosToPgMicros(s["ts_us"].get<int64_t>());
    }
  }
  return v;
}

}  // namespace cnx::cdc
