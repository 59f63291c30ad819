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

Gate::Gate(domain::Store& store, Options options) : store_(store), limiter_(options.rate_per_second, options.burst) {}

std::optional<Response> Gate::Throttle(const Request& req) {
  if (double wait = limiter_.Take("ip:" + req.remote().address().to_string()); wait > 0) return TooManyRequests(wait);
  return std::nullopt;
}

std::variant<domain::Principal, Response> Gate::Admit(const Request& req) {
  std::string_view auth = req.Header(http::field::authorization);
  if (auth.size() < 7 || !(auth.substr(0, 7) == "Bearer " || auth.substr(0, 7) == "bearer ")) {
    if (auto busy = Throttle(req)) return std::move(*busy);
    Response r = Problem(401, "unauthenticated", "send Authorization: Bearer <token>");
    r.SetHeader(http::field::www_authenticate, "Bearer");
    return r;
  }
  std::string token(auth.substr(7));
  // The bucket is keyed by the token's hash, so unknown tokens are limited too.
  if (double wait = limiter_.Take("t:" + text::Sha256Hex(token).substr(0, 32)); wait > 0) {
    return TooManyRequests(wait);
  }
  auto principal = store_.Authenticate(token);
  if (!principal) return FaultResponse(principal.error());
  return *principal;
}

}  // namespace cnx::api
