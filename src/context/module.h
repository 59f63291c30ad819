// The error module of cnx_context.
#pragma once

#include "base/result.h"

namespace cnx::context {

inline constexpr Module kModule = Module::kContext;

}  // namespace cnx::context
