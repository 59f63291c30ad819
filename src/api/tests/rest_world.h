// Builds a tenant holding one row of every resource through the API, so tests
// can walk every route generically.
#pragma once

#include <unistd.h>

#include <atomic>
#include <random>

#include "api/tests/rest_fixture.h"

namespace cnx::api::resttest {

inline std::string Unique(const std::string& stem) {
  static std::atomic<int> n{0};
  return stem + std::to_string(::getpid()) + "x" + std::to_string(n++);
}

struct Tenant {
  std::string token;
  std::string tenant_id;
  std::string user_id;
  std::string email;
  std::map<std::string, std::string> ids;  // spec name -> id of one row
};

inline Tenant Signup(Client& c, const std::string& name = "Acme") {
  Tenant t;
  t.email = Unique("owner") + "@example.com";
  auto r =
      c.Call("POST", "/v1/signup", "",
             json{{"tenantName", name}, {"email", t.email}, {"password", "correct horse"}, {"displayName", "Ada"}});
  EXPECT_EQ(r.status, 201) << r.raw;
  if (r.status != 201) return t;
  t.token = r.body["token"].get<std::string>();
  t.tenant_id = r.body["tenant"]["id"].get<std::string>();
  t.user_id = r.body["user"]["id"].get<std::string>();
  return t;
}

// A minimal valid value for a field, using rows made earlier for references.
inline std::optional<json> SampleValue(const domain::Field& f, const Tenant& t) {
  using domain::FieldType;
  if (!f.ref.empty()) {
    auto it = t.ids.find(f.ref);
    if (it == t.ids.end()) return std::nullopt;
    return json(it->second);
  }
  if (!f.enum_values.empty()) return json(f.enum_values.front());
  if (f.json == "email") return json(Unique("user") + "@example.com");
  if (f.json == "contentType") return json("text/markdown");
  if (f.json == "resourceId") return json(t.ids.at("project"));
  switch (f.type) {
    case FieldType::kText:
      return json("sample " + f.json);
    case FieldType::kInt:
      return json(f.min && *f.min > 1 ? static_cast<int64_t>(*f.min) : int64_t{1});
    case FieldType::kReal:
      return json(0.5);
    case FieldType::kBool:
      return json(true);
    case FieldType::kJson:
      return json::object();
    case FieldType::kPassword:
      return json("a long password");
    default:
      return std::nullopt;
  }
}

inline json SampleCreateBody(const domain::ResourceSpec& spec, const Tenant& t, bool with_parent) {
  json body = json::object();
  for (const auto& f : spec.fields) {
    if (!f.create || !f.required) continue;
    if (!with_parent && f.column == spec.parent_column) continue;
    if (auto v = SampleValue(f, t)) body[f.json] = *v;
  }
  if (spec.table == "content_items") body["body"] = "# Title\n\nSome text about context windows.\n\nMore text.\n";
  if (spec.table == "messages") body["content"] = "hello there, how many tokens is this?";
  return body;
}

// Creates one row of every creatable resource; fills t.ids.
inline void Populate(Client& c, Tenant& t) {
  for (const auto& spec : domain::Resources()) {
    if (spec.table == "resource_locks") {
      auto r = c.Call("POST", "/v1/locks", t.token,
                      json{{"resourceType", "project"}, {"resourceId", t.ids.at("project")}, {"ttlSeconds", 600}});
      EXPECT_EQ(r.status, 201) << r.raw;
      if (r.status == 201) t.ids[spec.name] = r.body["id"].get<std::string>();
      continue;
    }
    if (!spec.can_create) continue;
    const domain::ResourceSpec* parent = spec.parent.empty() ? nullptr : domain::FindResource(spec.parent);
    Reply r;
    if (parent && !spec.top_level_create) {
      r = c.Call("POST", "/v1/" + parent->path + "/" + t.ids.at(parent->name) + "/" + spec.nested, t.token,
                 SampleCreateBody(spec, t, false));
    } else {
      r = c.Call("POST", "/v1/" + spec.path, t.token, SampleCreateBody(spec, t, true));
    }
    EXPECT_EQ(r.status, 201) << spec.name << ": " << r.raw;
    if (r.status == 201) t.ids[spec.name] = r.body["id"].get<std::string>();
  }
  // Read-only resources: find a row through their parent's list.
  for (const auto& spec : domain::Resources()) {
    if (spec.can_create || spec.table == "resource_locks") continue;
    const domain::ResourceSpec* parent = domain::FindResource(spec.parent);
    auto r = c.Call("GET", "/v1/" + parent->path + "/" + t.ids.at(parent->name) + "/" + spec.nested, t.token);
    EXPECT_EQ(r.status, 200) << r.raw;
    if (r.status == 200 && !r.body["items"].empty()) t.ids[spec.name] = r.body["items"][0]["id"].get<std::string>();
  }
}

}  // namespace cnx::api::resttest
