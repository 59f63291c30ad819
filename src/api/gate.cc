#include "api/gate.h"

#include <cmath>

#include "api/rest.h"
#include "text/chunker.h"

namespace cnx::api {

double RateLimiter::Take(const std::string& key) {
  if (rate_ <= 0) return 0;
  auto now = std::chrono::steady_clock::now();
  std::lock_guard lock(mu_);
  if (buckets_.size() > 100'000) buckets_.clear();
  auto [it, fresh] = buckets_.try_emplace(key, Bucket{burst_, now});
  Bucket& b = it->second;
  if (!fresh) {
    double elapsed = std::chrono::duration<double>(now - b.last).count();
    b.tokens = std::min(burst_, b.tokens + elapsed * rate_);
    b.last = now;
  }
  if (b.tokens >= 1) {
    b.tokens -= 1;
    return 0;
  }
  return (1 - b.tokens) / rate_;
}

Response TooManyRequests(double wait_seconds) {
  Response r = Problem(429, "rate-limited", "too many requests: slow down");
  r.SetHeader(http::field::retry_after, std::to_string(static_cast<int64_t>(std::ceil(std::max(wait_seconds, 0.001)))));
  return r;
}

std::shared_ptr<Gate> SharedOrOwn(Gate* shared, domain::Store& store, Gate::Options own) {
  if (shared) return std::shared_ptr<Gate>(shared, [](Gate*) {});
  return std::make_shared<Gate>(store, own);
}

Gate::Gate(domain::Store& store, Options options)
    : store_(store), limiter_(options.rate_per_second, options.burst), credential_cache_(options.credential_cache) {}

std::optional<Response> Gate::Throttle(const Request& req) {
  if (double wait = limiter_.Take("ip:" + req.remote().address().to_string()); wait > 0) return TooManyRequests(wait);
  return std::nullopt;
}

namespace {

std::optional<std::string_view> BearerToken(const Request& req) {
  std::string_view auth = req.Header(http::field::authorization);
  if (auth.size() < 7 || !(auth.substr(0, 7) == "Bearer " || auth.substr(0, 7) == "bearer ")) return std::nullopt;
  return auth.substr(7);
}

}  // namespace

std::optional<Response> Gate::Charge(const std::string& hash_hex) {
  // The bucket is keyed by the token's hash, so unknown tokens are limited too.
  if (double wait = limiter_.Take("t:" + hash_hex.substr(0, 32)); wait > 0) return TooManyRequests(wait);
  return std::nullopt;
}

std::variant<std::string, Response> Gate::Token(const Request& req, std::string* hash_hex, bool charged) {
  auto bearer = BearerToken(req);
  if (!bearer) {
    if (auto busy = Throttle(req)) return std::move(*busy);
    Response r = Problem(401, "unauthenticated", "send Authorization: Bearer <token>");
    r.SetHeader(http::field::www_authenticate, "Bearer");
    return r;
  }
  std::string token(*bearer);
  *hash_hex = text::Sha256Hex(token);
  if (!charged) {
    if (auto busy = Charge(*hash_hex)) return std::move(*busy);
  }
  return token;
}

std::optional<domain::Principal> Gate::Lookup(const std::string& hash_hex, std::string_view token) {
  if (credential_cache_.count() <= 0) return std::nullopt;
  std::lock_guard lock(mu_);
  auto it = cache_.find(hash_hex);
  if (it == cache_.end() || std::chrono::steady_clock::now() - it->second.authenticated_at >= credential_cache_) {
    return std::nullopt;
  }
  return domain::Store::Unconfirmed(it->second.principal, token);
}

std::optional<std::pair<domain::Principal, std::string>> Gate::CachedPrincipal(const Request& req) {
  auto bearer = BearerToken(req);
  if (!bearer || credential_cache_.count() <= 0) return std::nullopt;
  std::string hash = text::Sha256Hex(*bearer);
  auto principal = Lookup(hash, *bearer);
  if (!principal) return std::nullopt;
  return std::pair{std::move(*principal), std::move(hash)};
}

std::variant<domain::Principal, Response> Gate::Fresh(const std::string& token, const std::string& hash_hex) {
  auto principal = store_.Authenticate(token);
  std::lock_guard lock(mu_);
  if (!principal) {
    cache_.erase(hash_hex);
    return FaultResponse(principal.error());
  }
  if (credential_cache_.count() > 0) {
    if (cache_.size() >= 100'000) cache_.clear();  // bounded; a miss only costs a round trip
    cache_.insert_or_assign(hash_hex, Cached{*principal, std::chrono::steady_clock::now()});
  }
  return *principal;
}

std::variant<domain::Principal, Response> Gate::Admit(const Request& req) {
  std::string hash;
  auto token = Token(req, &hash);
  if (auto* refused = std::get_if<Response>(&token)) return std::move(*refused);
  return Fresh(std::get<std::string>(token), hash);
}

Response Gate::Serve(const Request& req, const std::function<Response(const domain::Principal&)>& handler,
                     bool charged) {
  std::string hash;
  auto token_or = Token(req, &hash, charged);
  if (auto* refused = std::get_if<Response>(&token_or)) return std::move(*refused);
  const std::string& token = std::get<std::string>(token_or);
  std::optional<domain::Principal> cached = Lookup(hash, token);
  if (cached) {
    Response r = handler(*cached);
    if (cached->pending->confirmed) return r;
    // The Store refused the credential (401), or never checked it.
    if (static_cast<int>(r.status()) != 401) {
      auto fresh = Fresh(token, hash);
      if (auto* refused = std::get_if<Response>(&fresh)) return std::move(*refused);
      return r;
    }
  }
  auto fresh = Fresh(token, hash);
  if (auto* refused = std::get_if<Response>(&fresh)) return std::move(*refused);
  return handler(std::get<domain::Principal>(fresh));
}

}  // namespace cnx::api
