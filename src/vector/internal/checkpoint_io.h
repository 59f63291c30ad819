// Checkpoint directories shared by the index implementations.
//
// Layout of `dir`: CURRENT names the live checkpoint ("ckpt-000042"); each
// checkpoint is a sub-directory holding manifest.json and the data files it
// lists with their sizes and CRC-32s. A new checkpoint is written into
// "ckpt-N.tmp", every file and the directory are fsync'ed, the directory is
// renamed to "ckpt-N", and CURRENT is replaced by rename (then fsync of `dir`).
// A crash at any point leaves CURRENT naming a complete checkpoint; leftovers
// are removed by the next commit.
#pragma once

#include <filesystem>
#include <functional>
#include <nlohmann/json.hpp>
#include <utility>

#include "base/result.h"

namespace cnx::vector::internal {

Status SyncPath(const std::filesystem::path& path);

// Calls `write(tmp_dir)`, which writes its data files into tmp_dir and returns
// the manifest (without "files"); records every file of tmp_dir in the
// manifest, then commits as described above.
Status CommitCheckpoint(const std::filesystem::path& dir,
                        const std::function<Result<nlohmann::json>(const std::filesystem::path&)>& write);

// The live checkpoint's directory and manifest, after checking every listed
// file's size and CRC-32.
Result<std::pair<std::filesystem::path, nlohmann::json>> OpenCheckpoint(const std::filesystem::path& dir);

}  // namespace cnx::vector::internal
