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
#include <functional>
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
    // How long Serve reuses a token's principal before authenticating it
    // afresh (which also writes last_seen_at); 0 authenticates every request.
    std::chrono::seconds credential_cache{60};
  };
  Gate(domain::Store& store, Options options);

  // The principal, or the response to send: 401 (no or bad token, with a
  // Bearer challenge), 429 (with Retry-After), 503 or 500. Always a fresh
  // authentication (one database round trip).
  std::variant<domain::Principal, Response> Admit(const Request& req);
  // Runs `handler` for the request's principal, for handlers that reach the
  // database only through domain::Store. A token seen in the last
  // `credential_cache` gets its principal from the cache, unconfirmed
  // (domain::Principal::pending): the Store re-checks the credential in the
  // first round trip of each transaction, so revocation and expiry still
  // hold for the very next request at no extra round trip. When the Store
  // refused it, the entry is dropped and the handler runs again after a fresh
  // authentication; a response the Store never confirmed (a 400 before any
  // database access) is sent only after a fresh authentication succeeded.
  // `charged`: the request's rate-limit token was already taken (Charge).
  Response Serve(const Request& req, const std::function<Response(const domain::Principal&)>& handler,
                 bool charged = false);
  // The cached principal of the request's bearer token, unconfirmed, with the
  // token's hash; nullopt without a token or a cache entry. Touches neither
  // the database nor the rate limiter. For a caller that runs its own guarded
  // read (PgLanes) and falls back to Serve(..., charged = true).
  std::optional<std::pair<domain::Principal, std::string>> CachedPrincipal(const Request& req);
  // Takes a token from the bucket of the credential with this hash: the 429
  // to send when it is empty.
  std::optional<Response> Charge(const std::string& hash_hex);
  // For public routes (signup, login): a 429 when the client address is over
  // its limit, nullopt to go on.
  std::optional<Response> Throttle(const Request& req);

 private:
  struct Cached {
    domain::Principal principal;
    std::chrono::steady_clock::time_point authenticated_at;
  };
  // The bearer token, or the response to send (401 without one, 429 unless
  // already `charged`).
  std::variant<std::string, Response> Token(const Request& req, std::string* hash_hex, bool charged = false);
  // The cached principal for the token with this hash, unconfirmed.
  std::optional<domain::Principal> Lookup(const std::string& hash_hex, std::string_view token);
  std::variant<domain::Principal, Response> Fresh(const std::string& token, const std::string& hash_hex);

  domain::Store& store_;
  RateLimiter limiter_;
  std::chrono::seconds credential_cache_;
  std::mutex mu_;
  std::unordered_map<std::string, Cached> cache_;  // by the token's SHA-256 (hex); bounded
};

// `shared`, or when it is null a Gate of the route group's own (by default
// authentication only, no limit) that lives as long as the returned pointer.
std::shared_ptr<Gate> SharedOrOwn(Gate* shared, domain::Store& store, Gate::Options own = {0, 0});

// 429 with Retry-After (whole seconds, at least 1).
Response TooManyRequests(double wait_seconds);

}  // namespace cnx::api
