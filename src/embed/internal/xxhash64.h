// XXH64 (xxHash, 64-bit variant): a fixed hash that gives the same value on
// every platform and run, so feature positions of the lexical embedder never
// change. Matches the reference implementation (checked in the tests against
// libxxhash when it is installed).
#pragma once

#include <cstddef>
#include <cstdint>
#include <string_view>

namespace cnx::embed::internal {

uint64_t XxHash64(const void* data, size_t size, uint64_t seed);
inline uint64_t XxHash64(std::string_view s, uint64_t seed) {
  return XxHash64(s.data(), s.size(), seed);
}

}  // namespace cnx::embed::internal
