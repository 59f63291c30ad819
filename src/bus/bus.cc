#include "bus/bus.h"

#include <cstdio>
#include <ctime>

namespace cnx::bus {

std::optional<std::string_view> Event::FindHeader(std::string_view name) const {
  for (const auto& h : headers) {
    if (h.name == name) return std::string_view(h.value);
  }
  return std::nullopt;
}

Result<std::unique_ptr<Subscription>> Bus::Subscribe(SubscribeOptions options, Handler handler) {
  if (!handler) return SubscribeBatch(std::move(options), nullptr);
  options.max_batch = 1;
  return SubscribeBatch(std::move(options),
                        [h = std::move(handler)](std::span<const Delivery> d, std::span<HandlerResult> r) {
                          for (size_t i = 0; i < d.size(); ++i) r[i] = h(d[i]);
                        });
}

std::string DeadLetterTopic(std::string_view group) {
  return "dlq." + std::string(group);
}

Event MakeDeadLetter(const Delivery& d, std::string_view group, std::string_view error_class, std::string_view message,
                     std::chrono::system_clock::time_point first_failure) {
  Event e = d.event;
  e.topic = DeadLetterTopic(group);
  const auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(first_failure.time_since_epoch()).count();
  std::time_t secs = static_cast<std::time_t>(ms / 1000);
  std::tm tm{};
  gmtime_r(&secs, &tm);
  char when[96];
  std::snprintf(when, sizeof when, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday,
                tm.tm_hour, tm.tm_min, tm.tm_sec, static_cast<int>(ms % 1000));
  e.headers.push_back({std::string(kDlqOriginalTopic), d.event.topic});
  e.headers.push_back({std::string(kDlqOriginalPartition), std::to_string(d.partition)});
  e.headers.push_back({std::string(kDlqOriginalOffset), std::to_string(d.offset)});
  e.headers.push_back({std::string(kDlqErrorClass), std::string(error_class)});
  e.headers.push_back({std::string(kDlqErrorMessage), std::string(message)});
  e.headers.push_back({std::string(kDlqAttempts), std::to_string(d.attempt)});
  e.headers.push_back({std::string(kDlqFirstFailure), when});
  return e;
}

}  // namespace cnx::bus
