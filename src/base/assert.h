// CNX_ASSERT: invariants that must hold in every build. A failed assertion is a
// bug: it logs the condition and location to stderr and aborts.
#pragma once

namespace cnx::internal {
[[noreturn]] void AssertFail(const char* cond, const char* file, int line, const char* msg);
}

#define CNX_ASSERT(cond, ...)                                                 \
  do {                                                                        \
    if (!(cond)) [[unlikely]]                                                 \
      ::cnx::internal::AssertFail(#cond, __FILE__, __LINE__, "" __VA_ARGS__); \
  } while (0)
