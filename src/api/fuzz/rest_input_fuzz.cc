// Fuzzes the REST API's input decoding that runs before any SQL: the JSON body
// decoder (media type, nesting bound, RFC 8259), the validation of a create or
// update body against every resource spec, and the list-cursor decoder.
//
// Input: byte 0 picks the content type (bits 6-7), create/update (bit 5) and
// the resource spec (the rest, modulo the number of specs); the remaining bytes
// are the request body and, separately, a cursor. Findings: a crash, a
// sanitizer report, a problem that is not 4xx, or a validation refusal that is
// not kInvalidArgument.
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string_view>

#include "api/rest.h"
#include "domain/resources.h"
#include "domain/store.h"

namespace {

void Finding(const char* what) {
  std::fprintf(stderr, "rest_input_fuzz: %s\n", what);
  std::abort();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0) return 0;
  static constexpr std::string_view kTypes[] = {"application/json", "Application/JSON; charset=utf-8", "text/plain",
                                                ""};
  const uint8_t selector = data[0];
  const std::string_view input(reinterpret_cast<const char*>(data + 1), size - 1);
  const auto& specs = cnx::domain::Resources();

  cnx::api::RestConfig config;
  nlohmann::json body;
  if (auto problem = cnx::api::DecodeJsonBody(kTypes[selector >> 6], input, config, body)) {
    int status = static_cast<int>(problem->status());
    if (status < 400 || status >= 500) Finding("body decoding answered a non-4xx problem");
  } else {
    const auto& spec = specs[(selector & 0x1f) % specs.size()];
    auto valid = cnx::domain::ValidateBody(spec, body, (selector & 0x20) != 0);
    if (!valid && valid.error().code != cnx::ErrorCode::kInvalidArgument) {
      Finding("body validation refused with a code other than invalid_argument");
    }
  }

  auto cursor = cnx::domain::DecodeCursor(input);
  if (cursor) {
    // A cursor that decodes is "<micros>:<uuid>" re-encoded the same way.
    std::string again = cursor->first + ":" + cursor->second.ToString();
    auto round = cnx::domain::DecodeCursor(cnx::domain::Base64Url(again));
    if (!round || round->first != cursor->first || round->second != cursor->second) {
      Finding("cursor does not round-trip");
    }
  } else if (cursor.error().code != cnx::ErrorCode::kInvalidArgument) {
    Finding("cursor refused with a code other than invalid_argument");
  }
  return 0;
}
