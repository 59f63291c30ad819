#include "search/request.h"

#include <algorithm>
#include <cctype>

#include "api/rest.h"

namespace cnx::search {
namespace {

using nlohmann::json;

std::unexpected<RequestIssue> Bad(std::string field, std::string message) {
  return std::unexpected(RequestIssue{std::move(field), std::move(message)});
}

std::expected<Uuid, RequestIssue> UuidField(const json& v, const std::string& field) {
  if (!v.is_string()) return Bad(field, "must be a UUID string");
  auto u = Uuid::Parse(v.get_ref<const std::string&>());
  if (!u) return Bad(field, "must be a UUID");
  return *u;
}

std::expected<std::vector<Uuid>, RequestIssue> UuidList(const json& v, const std::string& field) {
  if (!v.is_array()) return Bad(field, "must be an array of UUIDs");
  if (v.size() > kMaxListItems) return Bad(field, "has more than " + std::to_string(kMaxListItems) + " items");
  std::vector<Uuid> out;
  for (size_t i = 0; i < v.size(); ++i) {
    auto u = UuidField(v[i], field + "/" + std::to_string(i));
    if (!u) return std::unexpected(u.error());
    out.push_back(*u);
  }
  return out;
}

std::expected<std::vector<std::string>, RequestIssue> NameList(const json& v, const std::string& field) {
  if (!v.is_array()) return Bad(field, "must be an array of strings");
  if (v.size() > kMaxListItems) return Bad(field, "has more than " + std::to_string(kMaxListItems) + " items");
  std::vector<std::string> out;
  for (size_t i = 0; i < v.size(); ++i) {
    std::string f = field + "/" + std::to_string(i);
    if (!v[i].is_string()) return Bad(f, "must be a string");
    const auto& s = v[i].get_ref<const std::string&>();
    if (s.empty() || s.size() > kMaxNameBytes) return Bad(f, "must be 1.." + std::to_string(kMaxNameBytes) + " bytes");
    out.push_back(s);
  }
  return out;
}

std::expected<void, RequestIssue> DecodeFilters(const json& v, Filters& f) {
  if (!v.is_object()) return Bad("/filters", "must be an object");
  for (const auto& [key, val] : v.items()) {
    std::string field = "/filters/" + key.substr(0, 100);
    if (key == "tags") {
      auto l = NameList(val, field);
      if (!l) return std::unexpected(l.error());
      f.tags = std::move(*l);
    } else if (key == "contentTypes") {
      auto l = NameList(val, field);
      if (!l) return std::unexpected(l.error());
      f.content_types = std::move(*l);
    } else if (key == "threadId") {
      if (val.is_null()) continue;
      auto u = UuidField(val, field);
      if (!u) return std::unexpected(u.error());
      f.thread_id = *u;
    } else if (key == "contentIds") {
      auto l = UuidList(val, field);
      if (!l) return std::unexpected(l.error());
      f.content_ids = std::move(*l);
    } else if (key == "excludeContentIds") {
      auto l = UuidList(val, field);
      if (!l) return std::unexpected(l.error());
      f.exclude_content_ids = std::move(*l);
    } else {
      return Bad(field, "unknown field");
    }
  }
  return {};
}

bool Blank(std::string_view s) {
  return std::all_of(s.begin(), s.end(), [](char c) { return std::isspace(static_cast<unsigned char>(c)); });
}

}  // namespace

std::expected<SearchRequest, RequestIssue> DecodeSearchRequest(std::string_view body) {
  if (api::JsonDepth(body) > kMaxJsonDepth) {
    return std::unexpected(RequestIssue{"", "JSON nested deeper than " + std::to_string(kMaxJsonDepth), true});
  }
  json doc = json::parse(body, nullptr, false);
  if (doc.is_discarded()) return std::unexpected(RequestIssue{"", "the body is not valid JSON (UTF-8)", true});
  if (!doc.is_object()) return Bad("", "the body must be a JSON object");
  SearchRequest r;
  bool have_query = false, have_project = false;
  for (const auto& [key, v] : doc.items()) {
    std::string field = "/" + key.substr(0, 100);
    if (key == "query") {
      if (!v.is_string()) return Bad(field, "must be a string");
      r.query = v.get<std::string>();
      if (r.query.empty() || Blank(r.query)) return Bad(field, "must not be blank");
      if (r.query.size() > kMaxQueryBytes) {
        return Bad(field, "must be at most " + std::to_string(kMaxQueryBytes) + " bytes");
      }
      have_query = true;
    } else if (key == "projectId") {
      auto u = UuidField(v, field);
      if (!u) return std::unexpected(u.error());
      r.project_id = *u;
      have_project = true;
    } else if (key == "k") {
      std::string range = "must be an integer in 1.." + std::to_string(kMaxK);
      if (!v.is_number_integer()) return Bad(field, range);
      if (v.is_number_unsigned()) {
        uint64_t u = v.get<uint64_t>();
        if (u < 1 || u > kMaxK) return Bad(field, range);
        r.k = static_cast<size_t>(u);
      } else {
        int64_t i = v.get<int64_t>();
        if (i < 1 || i > static_cast<int64_t>(kMaxK)) return Bad(field, range);
        r.k = static_cast<size_t>(i);
      }
    } else if (key == "mode") {
      if (!v.is_string()) return Bad(field, "must be hybrid, vector or lexical");
      auto m = ParseMode(v.get_ref<const std::string&>());
      if (!m) return Bad(field, "must be hybrid, vector or lexical");
      r.mode = *m;
    } else if (key == "filters") {
      auto st = DecodeFilters(v, r.filters);
      if (!st) return std::unexpected(st.error());
    } else if (key == "boostNodeIds") {
      auto l = UuidList(v, field);
      if (!l) return std::unexpected(l.error());
      r.boost_node_ids = std::move(*l);
    } else {
      return Bad(field, "unknown field");
    }
  }
  if (!have_query) return Bad("/query", "is required");
  if (!have_project) return Bad("/projectId", "is required");
  return r;
}

json HitToJson(const Hit& h) {
  json scores = json::object();
  for (const auto& s : h.scores) scores[s.retriever] = {{"rank", s.rank}, {"score", s.score}};
  json content = {{"id", h.content_id.ToString()},
                  {"title", h.title},
                  {"sourceUrl", h.source_url.empty() ? json(nullptr) : json(h.source_url)},
                  {"contentType", h.content_type}};
  if (h.project_id) content["projectId"] = h.project_id->ToString();
  return {{"chunkId", h.chunk_id.ToString()}, {"content", std::move(content)}, {"text", h.text},
          {"chunkIndex", h.chunk_index},      {"startOffset", h.start_offset}, {"endOffset", h.end_offset},
          {"tokenCount", h.token_count},      {"contentHash", h.content_hash}, {"score", h.score},
          {"scores", std::move(scores)}};
}

json RelatedToJson(const RelatedItem& it) {
  return {{"id", it.content_id.ToString()},
          {"projectId", it.project_id.ToString()},
          {"title", it.title},
          {"sourceUrl", it.source_url.empty() ? json(nullptr) : json(it.source_url)},
          {"contentType", it.content_type},
          {"score", it.score},
          {"bestChunkId", it.best_chunk_id.ToString()}};
}

}  // namespace cnx::search
