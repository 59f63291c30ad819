// Gate: what every authenticated /v1 route does before its own work — read the
// bearer token, take a token from the credential's rate-limit bucket, and
// authenticate it (domain::Store::Authenticate). One Gate is shared by all
// route groups of a server (REST resources, graph, search, context), so the
// limit holds per credential across the whole API, not per route group.
//
// Thread safety: all members are safe to call concurrently. The Store must
// outlive the Gate.
#pragma once

#include <chrono>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <unordered_map>
#include <variant>

#include "api/http.h"
#include "domain/store.h"

namespace cnx::api {

// A token bucket per key: `rate` tokens a second up to `burst`. Memory is
// bounded (100,000 keys; beyond that the buckets are reset, which only forgives).
class RateLimiter {
 public:
  RateLimiter(double rate, double burst) : rate_(rate), burst_(burst) {}
  // Seconds to wait, or 0 when a token was taken (always 0 when rate <= 0).
  double Take(const std::string& key);

 private:
  struct Bucket {
    double tokens;
    std::chrono::steady_clock::time_point last;
  };
  double rate_, burst_;
  std::mutex mu_;
  std::unordered_map<std::string, Bucket> buckets_;
};

class Gate {
 public:
  struct Options {
    double rate_per_second = 100;  // per credential (or client address before login); 0 disables
    double burst = 200;
  };
  Gate(domain::Store& store, Options options);

  // The principal, or the response to send: 401 (no or bad token, with a
  // Bearer challenge), 429 (with Retry-After), 503 or 500.
  std::variant<domain::Principal, Response> Admit(const Request& req);
  // For public routes (signup, login): a 429 when the client address is over
  // its limit, nullopt to go on.
  std::optional<Response> Throttle(const Request& req);

 private:
  domain::Store& store_;
  RateLimiter limiter_;
};

// `shared`, or when it is null a Gate of the route group's own (by default
// authentication only, no limit) that lives as long as the returned pointer.
std::shared_ptr<Gate> SharedOrOwn(Gate* shared, domain::Store& store, Gate::Options own = {0, 0});

// 429 with Retry-After (whole seconds, at least 1).
Response TooManyRequests(double wait_seconds);

}  // namespace cnx::api
