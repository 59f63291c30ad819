#include "vector/internal/checkpoint_io.h"

#include <fcntl.h>
#include <unistd.h>

#include <boost/crc.hpp>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <string>
#include <vector>

namespace cnx::vector::internal {
namespace fs = std::filesystem;

namespace {

std::unexpected<Error> Unavailable(std::string msg) {
  return Err(Module::kVector, ErrorCode::kUnavailable, std::move(msg));
}

Result<std::pair<uint32_t, uint64_t>> CrcOf(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return Unavailable("cannot open " + path.string());
  boost::crc_32_type crc;
  std::vector<char> buf(1 << 20);
  uint64_t bytes = 0;
  while (in) {
    in.read(buf.data(), std::streamsize(buf.size()));
    auto n = in.gcount();
    crc.process_bytes(buf.data(), size_t(n));
    bytes += uint64_t(n);
  }
  if (in.bad()) return Unavailable("cannot read " + path.string());
  return std::pair{crc.checksum(), bytes};
}

Status WriteSmallFile(const fs::path& path, const std::string& text) {
  {
    std::ofstream out(path, std::ios::binary | std::ios::trunc);
    out << text;
    out.flush();
    if (!out) return Unavailable("cannot write " + path.string());
  }
  return SyncPath(path);
}

constexpr std::string_view kPrefix = "ckpt-";

// Sequence number of a "ckpt-N" or "ckpt-N.tmp" name, or -1.
long long SequenceOf(const std::string& name) {
  if (!name.starts_with(kPrefix)) return -1;
  std::string rest = name.substr(kPrefix.size());
  if (rest.ends_with(".tmp")) rest.resize(rest.size() - 4);
  if (rest.empty() || rest.find_first_not_of("0123456789") != std::string::npos) return -1;
  return std::stoll(rest);
}

}  // namespace

Status SyncPath(const fs::path& path) {
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return Unavailable("cannot open " + path.string() + ": " + std::strerror(errno));
  int rc = ::fsync(fd);
  int err = errno;
  ::close(fd);
  if (rc != 0) return Unavailable("fsync " + path.string() + ": " + std::strerror(err));
  return Ok();
}

Status CommitCheckpoint(const fs::path& dir, const std::function<Result<nlohmann::json>(const fs::path&)>& write) {
  std::error_code ec;
  fs::create_directories(dir, ec);
  if (ec) return Unavailable("cannot create " + dir.string() + ": " + ec.message());

  long long next = 1;
  for (const auto& e : fs::directory_iterator(dir, ec)) next = std::max(next, SequenceOf(e.path().filename()) + 1);
  if (ec) return Unavailable("cannot list " + dir.string() + ": " + ec.message());
  char name[32];
  std::snprintf(name, sizeof name, "ckpt-%06lld", next);
  fs::path tmp = dir / (std::string(name) + ".tmp");
  fs::path final_dir = dir / name;
  fs::remove_all(tmp, ec);
  fs::create_directory(tmp, ec);
  if (ec) return Unavailable("cannot create " + tmp.string() + ": " + ec.message());

  auto manifest = write(tmp);
  if (!manifest) {
    fs::remove_all(tmp, ec);
    return std::unexpected(manifest.error());
  }
  nlohmann::json files = nlohmann::json::object();
  for (const auto& e : fs::directory_iterator(tmp, ec)) {
    auto crc = CrcOf(e.path());
    if (!crc) return std::unexpected(crc.error());
    CNX_TRY(SyncPath(e.path()));
    files[e.path().filename().string()] = {{"crc32", crc->first}, {"bytes", crc->second}};
  }
  if (ec) return Unavailable("cannot list " + tmp.string() + ": " + ec.message());
  (*manifest)["files"] = std::move(files);
  CNX_TRY(WriteSmallFile(tmp / "manifest.json", manifest->dump(1)));
  CNX_TRY(SyncPath(tmp));
  fs::rename(tmp, final_dir, ec);
  if (ec) return Unavailable("cannot rename " + tmp.string() + ": " + ec.message());
  CNX_TRY(SyncPath(dir));
  CNX_TRY(WriteSmallFile(dir / "CURRENT.tmp", std::string(name) + "\n"));
  fs::rename(dir / "CURRENT.tmp", dir / "CURRENT", ec);
  if (ec) return Unavailable("cannot rename CURRENT in " + dir.string() + ": " + ec.message());
  CNX_TRY(SyncPath(dir));

  // Older checkpoints and abandoned temporaries are garbage now.
  std::vector<fs::path> old;
  for (const auto& e : fs::directory_iterator(dir, ec)) {
    long long seq = SequenceOf(e.path().filename());
    if (seq >= 0 && seq != next) old.push_back(e.path());
  }
  for (const auto& p : old) fs::remove_all(p, ec);
  return Ok();
}

Result<std::pair<fs::path, nlohmann::json>> OpenCheckpoint(const fs::path& dir) {
  std::ifstream current(dir / "CURRENT");
  if (!current) return Err(Module::kVector, ErrorCode::kNotFound, "no checkpoint in " + dir.string());
  std::string name;
  std::getline(current, name);
  if (SequenceOf(name) < 0 || name.ends_with(".tmp"))
    return Err(Module::kVector, ErrorCode::kDataLoss, "bad CURRENT in " + dir.string());
  fs::path ckpt = dir / name;
  std::ifstream in(ckpt / "manifest.json");
  if (!in) return Err(Module::kVector, ErrorCode::kDataLoss, "checkpoint " + ckpt.string() + " has no manifest");
  nlohmann::json manifest = nlohmann::json::parse(in, nullptr, /*allow_exceptions=*/false);
  if (manifest.is_discarded() || !manifest.is_object() || !manifest.contains("files") || !manifest["files"].is_object())
    return Err(Module::kVector, ErrorCode::kDataLoss, "corrupt manifest in " + ckpt.string());
  for (const auto& [file, info] : manifest["files"].items()) {
    auto crc = CrcOf(ckpt / file);
    if (!crc) return Err(Module::kVector, ErrorCode::kDataLoss, "checkpoint file missing: " + file);
    if (!info.is_object() || info.value("crc32", uint64_t(0)) != crc->first ||
        info.value("bytes", uint64_t(0)) != crc->second)
      return Err(Module::kVector, ErrorCode::kDataLoss, "checkpoint file " + file + " fails its checksum");
  }
  return std::pair{ckpt, std::move(manifest)};
}

}  // namespace cnx::vector::internal
