// JSON rendering of decoded pgoutput messages in the shape of the golden files
// (testdata/pgoutput/README.md): one compact object per message, keys in a fixed
// order, non-ASCII kept as UTF-8, LSNs as "X/X", times as ISO UTC plus the raw
// microseconds. Used by `cnx cdc decode`, the golden tests and `cnx cdc tail`.
// Pure functions; thread-safe.
#pragma once

#include <string>
#include <string_view>

#include "cdc/pgoutput.h"

namespace cnx::cdc {

// Appends `m` as one JSON object (no newline). `decoder` supplies relation names
// for Truncate; it must be the decoder that produced `m`.
void AppendMessageJson(std::string& out, const Message& m, const Decoder& decoder);

// One line of the golden input format (testdata/pgoutput/README.md): the hex of a
// pgoutput message, or of a whole CopyData payload ('w' XLogData including its
// 25-byte header, or a 'k' keepalive). Appends the decoded message's JSON to
// `out` and returns true; returns false (appending nothing) for blank lines and
// keepalives. `scratch` is reused between calls.
Result<bool> DecodeHexLineToJson(std::string_view line, Decoder& decoder, Message& scratch, std::string& out);

// A JSON string literal with quotes, escaped like Python's json.dumps(ensure_ascii=False).
void AppendJsonString(std::string& out, std::string_view s);

// Strict UTF-8 check (no overlong forms, surrogates or code points above U+10FFFF).
bool IsValidUtf8(std::string_view s);

void AppendHex(std::string& out, std::string_view bytes);
// Lower- or upper-case hex digits to bytes; surrounding whitespace is ignored.
Result<std::string> DecodeHex(std::string_view hex);

}  // namespace cnx::cdc
