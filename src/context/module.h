// The error module of cnx_context.
#pragma once

#include "base/result.h"

namespace cnx::context {

// Module::kContext once base has it; until then errors say "search", the
// module that context assembly was split from.
inline constexpr Module kModule = Module::kSearch;

}  // namespace cnx::context
