// Access to the rank files compiled into the binary (see ranks_data.cc).
#pragma once

#include <string_view>

namespace cnx::text::internal {

// The uncompressed .tiktoken file of `encoding` ("cl100k_base", "o200k_base"),
// or an empty view for any other name. Static storage; never freed.
std::string_view EmbeddedRanks(std::string_view encoding);

}  // namespace cnx::text::internal
