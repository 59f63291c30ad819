#include "vector/internal/flat_store.h"

#include <cstring>
#include <fstream>
#include <string>

namespace cnx::vector::internal {

void FlatStore::Put(const RowMeta& meta, const float* values) {
  auto it = row_of_.find(meta.id);
  size_t r;
  if (it != row_of_.end()) {
    r = it->second;
    meta_[r] = meta;
  } else {
    r = meta_.size();
    meta_.push_back(meta);
    data_.resize(data_.size() + dim_);
    row_of_.emplace(meta.id, uint32_t(r));
  }
  std::memcpy(data_.data() + r * dim_, values, dim_ * sizeof(float));
}

bool FlatStore::Remove(const Uuid& id) {
  auto it = row_of_.find(id);
  if (it == row_of_.end()) return false;
  size_t r = it->second;
  size_t last = meta_.size() - 1;
  row_of_.erase(it);
  if (r != last) {
    meta_[r] = meta_[last];
    std::memcpy(data_.data() + r * dim_, data_.data() + last * dim_, dim_ * sizeof(float));
    row_of_[meta_[r].id] = uint32_t(r);
  }
  meta_.pop_back();
  data_.resize(last * dim_);
  return true;
}

void FlatStore::Clear() {
  data_ = {};
  meta_ = {};
  row_of_ = {};
}

namespace {
constexpr char kMagic[4] = {'C', 'N', 'X', 'F'};
constexpr uint32_t kVersion = 1;

std::unexpected<Error> IoError(const std::filesystem::path& path, std::string_view what) {
  return Err(Module::kVector, ErrorCode::kUnavailable, std::string(what) + " " + path.string());
}
}  // namespace

Status FlatStore::WriteTo(const std::filesystem::path& path) const {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  if (!out) return IoError(path, "cannot create");
  uint32_t dim = uint32_t(dim_);
  uint64_t rows = meta_.size();
  out.write(kMagic, 4);
  out.write(reinterpret_cast<const char*>(&kVersion), 4);
  out.write(reinterpret_cast<const char*>(&dim), 4);
  out.write(reinterpret_cast<const char*>(&rows), 8);
  for (size_t r = 0; r < rows; ++r) {
    out.write(reinterpret_cast<const char*>(meta_[r].id.bytes().data()), 16);
    out.write(reinterpret_cast<const char*>(meta_[r].tenant.bytes().data()), 16);
    out.write(reinterpret_cast<const char*>(meta_[r].project.bytes().data()), 16);
    out.write(reinterpret_cast<const char*>(row(r)), std::streamsize(dim_ * sizeof(float)));
  }
  out.flush();
  if (!out) return IoError(path, "cannot write");
  return Ok();
}

Result<FlatStore> FlatStore::ReadFrom(const std::filesystem::path& path, size_t dim) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return IoError(path, "cannot open");
  char magic[4];
  uint32_t version = 0, file_dim = 0;
  uint64_t rows = 0;
  in.read(magic, 4);
  in.read(reinterpret_cast<char*>(&version), 4);
  in.read(reinterpret_cast<char*>(&file_dim), 4);
  in.read(reinterpret_cast<char*>(&rows), 8);
  if (!in || std::memcmp(magic, kMagic, 4) != 0 || version != kVersion || file_dim != dim)
    return Err(Module::kVector, ErrorCode::kDataLoss, "bad flat vector file header " + path.string());
  std::error_code ec;
  uint64_t size = std::filesystem::file_size(path, ec);
  if (ec || size != 20 + rows * (48 + dim * sizeof(float)))
    return Err(Module::kVector, ErrorCode::kDataLoss, "flat vector file has the wrong size " + path.string());
  FlatStore store(dim);
  store.meta_.reserve(rows);
  store.data_.reserve(rows * dim);
  std::vector<float> values(dim);
  for (uint64_t r = 0; r < rows; ++r) {
    std::array<uint8_t, 16> b[3];
    for (auto& x : b) in.read(reinterpret_cast<char*>(x.data()), 16);
    in.read(reinterpret_cast<char*>(values.data()), std::streamsize(dim * sizeof(float)));
    if (!in) return Err(Module::kVector, ErrorCode::kDataLoss, "truncated flat vector file " + path.string());
    store.Put({Uuid(b[0]), Uuid(b[1]), Uuid(b[2])}, values.data());
  }
  return store;
}

}  // namespace cnx::vector::internal
