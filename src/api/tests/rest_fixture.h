// A real /v1 API over HTTP for integration tests: a migrated test database, the
// Store on an application-role pool, and an api::Server on 127.0.0.1:0.
#pragma once

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <map>
#include <memory>
#include <string>

#include "api/rest.h"
#include "api/server.h"
#include "api/tests/test_client.h"
#include "domain/store.h"
#include "schema/testing/test_database.h"

namespace cnx::api::resttest {

using nlohmann::json;

struct Reply {
  int status = 0;
  json body;  // parsed when JSON, else null
  std::string raw;
  std::map<std::string, std::string> headers;  // lower-case names
  std::string Header(const std::string& name) const {
    auto it = headers.find(name);
    return it == headers.end() ? std::string() : it->second;
  }
};

class RestServer {
 public:
  explicit RestServer(RestConfig rest = DefaultRest()) {
    auto opts = db_.AppPoolOptions(8);
    opts.connect.on_connect.push_back("SET TimeZone = 'UTC'");
    pool_ = std::make_unique<pg::Pool>(opts);
    domain::StoreOptions so;
    so.pwhash_opslimit = 1;
    so.pwhash_memlimit = 8192;
    so.touch_after = std::chrono::hours(1);
    store_ = std::make_unique<domain::Store>(*pool_, so);
    Router router;
    auto st = RegisterRestRoutes(router, {*store_, rest});
    EXPECT_TRUE(st.has_value());
    ServerConfig config;
    config.listen = "127.0.0.1:0";
    config.io_threads = 2;
    config.blocking_threads = 6;
    config.access_log = false;
    config.shutdown_grace = std::chrono::seconds(2);
    server_ = std::make_unique<Server>(config, std::move(router), metrics_);
    auto ep = server_->Start();
    EXPECT_TRUE(ep.has_value());
    if (ep) ep_ = *ep;
  }
  ~RestServer() { server_->Shutdown(std::chrono::seconds(1)); }

  static RestConfig DefaultRest() {
    RestConfig c;
    c.rate_per_second = 0;
    return c;
  }

  const tcp::endpoint& endpoint() const { return ep_; }
  schema::testing::TestDatabase& db() { return db_; }
  domain::Store& store() { return *store_; }

 private:
  schema::testing::TestDatabase db_;
  std::unique_ptr<pg::Pool> pool_;
  std::unique_ptr<domain::Store> store_;
  MetricsRegistry metrics_;
  std::unique_ptr<Server> server_;
  tcp::endpoint ep_;
};

// A keep-alive HTTP client that reconnects when the server closed the connection.
class Client {
 public:
  explicit Client(const tcp::endpoint& ep) : ep_(ep) {}

  Reply Send(const std::string& bytes) {
    for (int attempt = 0; attempt < 2; ++attempt) {
      if (!conn_ || !conn_->connected()) conn_ = std::make_unique<testing::TestClient>(ep_);
      if (!conn_->Send(bytes)) {
        conn_.reset();
        continue;
      }
      auto r = conn_->Read(std::chrono::seconds(20), bytes.starts_with("HEAD "));
      if (!r) {
        conn_.reset();
        if (attempt == 0) continue;
        return Reply{};
      }
      Reply out;
      out.status = r->result_int();
      out.raw = r->body();
      for (const auto& h : *r) {
        std::string name(h.name_string());
        for (auto& c : name) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
        out.headers[name] = std::string(h.value());
      }
      out.body = json::parse(out.raw, nullptr, false);
      if (out.body.is_discarded()) out.body = nullptr;
      if (!r->keep_alive()) conn_.reset();
      return out;
    }
    return Reply{};
  }

  Reply Call(const std::string& method, const std::string& target, const std::string& token = "",
             const std::optional<json>& body = std::nullopt, const std::string& extra_headers = "") {
    std::string headers = extra_headers;
    if (!token.empty()) headers += "Authorization: Bearer " + token + "\r\n";
    std::string payload;
    if (body) {
      payload = body->dump();
      headers += "Content-Type: application/json\r\n";
    }
    std::string req = method + " " + target + " HTTP/1.1\r\nHost: test\r\n" + headers;
    if (body || method == "POST" || method == "PATCH")
      req += "Content-Length: " + std::to_string(payload.size()) + "\r\n";
    req += "\r\n" + payload;
    return Send(req);
  }

 private:
  tcp::endpoint ep_;
  std::unique_ptr<testing::TestClient> conn_;
};

}  // namespace cnx::api::resttest
