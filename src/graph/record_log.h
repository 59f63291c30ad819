// Framed, checksummed records: the on-disk unit of the embedded store's log
// and snapshot files (format in docs/graph.md).
//
//   record := length u32 LE | crc32c(payload) u32 LE | payload (length bytes)
//
// A reader walks records from the start and stops at the first one that is
// truncated, longer than kMaxRecordBytes or fails its CRC: everything before
// it is the valid prefix, everything from it on is a torn tail (a write that
// was not acknowledged) and is ignored. Stateless; thread-safe.
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <span>
#include <string>
#include <string_view>

#include "base/result.h"

namespace cnx::graph {

inline constexpr size_t kRecordHeaderBytes = 8;
inline constexpr size_t kMaxRecordBytes = size_t{1} << 30;

// CRC-32C (Castagnoli), as used by iSCSI/ext4; `crc` continues a previous value.
uint32_t Crc32c(const void* data, size_t n, uint32_t crc = 0);
// The table-driven form (what Crc32c() uses without the SSE4.2 instruction); for tests.
uint32_t Crc32cPortable(const void* data, size_t n, uint32_t crc = 0);

// Appends one framed record holding `payload` to `out`.
void AppendRecord(std::string& out, std::string_view payload);

// Calls `fn(payload)` for every valid record in order; stops at the first
// invalid one or when fn returns an error (which is returned). Returns the byte
// length of the valid prefix.
Result<size_t> ReadRecords(std::span<const uint8_t> data, const std::function<Status(std::span<const uint8_t>)>& fn);

}  // namespace cnx::graph
