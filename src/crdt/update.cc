#include "crdt/update.h"

#include <algorithm>

namespace cnx::crdt {
namespace {

Error DataLoss(const std::string& what) {
  return Error(Module::kCrdt, ErrorCode::kDataLoss, what);
}

constexpr uint64_t kMaxClock = (uint64_t{1} << 53);

}  // namespace

std::vector<uint8_t> EncodeStateVector(const StateVector& sv) {
  Encoder e;
  e.VarUint(sv.size());
  for (auto it = sv.rbegin(); it != sv.rend(); ++it) {
    e.VarUint(it->first);
    e.VarUint(it->second);
  }
  return e.Take();
}

Result<StateVector> DecodeStateVector(std::span<const uint8_t> bytes) {
  Decoder d(bytes);
  StateVector sv;
  uint64_t n = d.Count();
  for (uint64_t i = 0; i < n && d.ok(); ++i) {
    uint64_t client = d.VarUint();
    uint64_t clock = d.VarUint();
    if (client > 0xFFFFFFFFULL) d.Fail("client id out of range");
    if (d.ok()) sv[static_cast<uint32_t>(client)] = clock;
  }
  if (!d.ok()) return Err(DataLoss("state vector: " + d.error()));
  return sv;
}

void DeleteSet::SortAndMerge() {
  for (auto& [client, dels] : clients) {
    std::stable_sort(dels.begin(), dels.end(), [](auto& a, auto& b) { return a.clock < b.clock; });
    size_t j = 1;
    for (size_t i = 1; i < dels.size(); ++i) {
      DeleteRange& left = dels[j - 1];
      DeleteRange& right = dels[i];
      if (left.clock + left.len >= right.clock) {
        left.len = std::max(left.len, right.clock + right.len - left.clock);
      } else {
        dels[j++] = right;
      }
    }
    if (!dels.empty()) dels.resize(j);
  }
}

bool DeleteSet::Contains(Id id) const {
  auto it = clients.find(id.client);
  if (it == clients.end()) return false;
  auto& dels = it->second;
  auto p = std::upper_bound(dels.begin(), dels.end(), id.clock, [](uint64_t c, auto& r) { return c < r.clock; });
  if (p == dels.begin()) return false;
  --p;
  return id.clock < p->clock + p->len;
}

void DeleteSet::Write(Encoder& e) const {
  e.VarUint(clients.size());
  for (auto it = clients.rbegin(); it != clients.rend(); ++it) {
    e.VarUint(it->first);
    e.VarUint(it->second.size());
    for (auto& r : it->second) {
      e.VarUint(r.clock);
      e.VarUint(r.len);
    }
  }
}

DeleteSet DeleteSet::Read(Decoder& d) {
  DeleteSet ds;
  uint64_t n = d.Count();
  for (uint64_t i = 0; i < n && d.ok(); ++i) {
    uint64_t client = d.VarUint();
    uint64_t m = d.Count();
    if (client > 0xFFFFFFFFULL) d.Fail("client id out of range");
    for (uint64_t k = 0; k < m && d.ok(); ++k) {
      uint64_t clock = d.VarUint();
      uint64_t len = d.VarUint();
      if (clock + len > kMaxClock) d.Fail("delete range out of range");
      if (d.ok()) ds.clients[static_cast<uint32_t>(client)].push_back({clock, len});
    }
  }
  return ds;
}

DeleteSet DeleteSet::Merge(const std::vector<const DeleteSet*>& sets) {
  DeleteSet out;
  for (auto* s : sets) {
    for (auto& [client, dels] : s->clients) {
      auto& t = out.clients[client];
      t.insert(t.end(), dels.begin(), dels.end());
    }
  }
  out.SortAndMerge();
  return out;
}

Result<DecodedUpdate> DecodeUpdate(std::span<const uint8_t> update) {
  Decoder d(update);
  DecodedUpdate u;
  uint64_t blocks = d.Count();
  for (uint64_t b = 0; b < blocks && d.ok(); ++b) {
    uint64_t n = d.Count();
    uint64_t client = d.VarUint();
    uint64_t clock = d.VarUint();
    if (client > 0xFFFFFFFFULL) d.Fail("client id out of range");
    for (uint64_t i = 0; i < n && d.ok(); ++i) {
      auto s = ReadStruct(d, static_cast<uint32_t>(client), clock);
      if (!s) break;
      clock += s->length;
      if (clock > kMaxClock) {
        d.Fail("clock out of range");
        break;
      }
      u.structs.push_back(std::move(s));
    }
  }
  if (d.ok()) u.ds = DeleteSet::Read(d);
  if (!d.ok()) return Err(DataLoss("update: " + d.error()));
  return u;
}

void LazyStructWriter::Flush() {
  if (written_ > 0) {
    parts_.push_back({written_, cur_.Take()});
    cur_ = Encoder();
    written_ = 0;
  }
}

void LazyStructWriter::Write(const Item& s, uint64_t offset) {
  if (written_ > 0 && client_ != s.id.client) Flush();
  if (written_ == 0) {
    client_ = s.id.client;
    cur_.VarUint(s.id.client);
    cur_.VarUint(s.id.clock + offset);
  }
  s.Write(cur_, offset);
  ++written_;
}

void LazyStructWriter::Finish(Encoder& out) {
  Flush();
  out.VarUint(parts_.size());
  for (auto& p : parts_) {
    out.VarUint(p.written);
    out.Raw(p.bytes);
  }
}

namespace {

struct Reader {
  std::vector<std::unique_ptr<Item>>* structs;
  size_t i = 0;
  bool filter_skips = true;
  Item* curr() const { return i < structs->size() ? (*structs)[i].get() : nullptr; }
  void Next() {
    ++i;
    while (filter_skips && i < structs->size() && (*structs)[i]->is_skip()) ++i;
  }
  void SkipLeading() {
    while (filter_skips && i < structs->size() && (*structs)[i]->is_skip()) ++i;
  }
  std::unique_ptr<Item> Take() {
    auto p = std::move((*structs)[i]);
    Next();
    return p;
  }
};

// Item.mergeWith for structs read from updates: Items never merge there (their
// `right` is unset), GC merges with GC and Skip with Skip.
bool WireMergeWith(Item& left, const Item& right) {
  if (left.content.ref != right.content.ref) return false;
  if (left.is_gc() || left.is_skip()) {
    left.length += right.length;
    left.content.len += right.length;
    return true;
  }
  return false;
}

}  // namespace

Result<std::vector<uint8_t>> MergeUpdates(const std::vector<std::span<const uint8_t>>& updates) {
  std::vector<DecodedUpdate> decoded;
  decoded.reserve(updates.size());
  for (auto u : updates) {
    auto d = DecodeUpdate(u);
    if (!d) return Err(d.error());
    decoded.push_back(std::move(*d));
  }
  if (updates.size() == 1) return std::vector<uint8_t>(updates[0].begin(), updates[0].end());

  std::vector<Reader> readers;
  for (auto& d : decoded) {
    Reader r{&d.structs};
    r.SkipLeading();
    readers.push_back(r);
  }
  std::vector<Reader*> active;
  for (auto& r : readers) active.push_back(&r);

  std::unique_ptr<Item> curr_write;
  LazyStructWriter writer;

  while (true) {
    std::erase_if(active, [](Reader* r) { return r->curr() == nullptr; });
    std::stable_sort(active.begin(), active.end(), [](Reader* a, Reader* b) {
      const Item* x = a->curr();
      const Item* y = b->curr();
      if (x->id.client == y->id.client) return x->id.clock < y->id.clock;
      return x->id.client > y->id.client;
    });
    if (active.empty()) break;
    Reader* cur_dec = active[0];
    uint32_t first_client = cur_dec->curr()->id.client;

    if (curr_write) {
      Item* curr = cur_dec->curr();
      bool iterated = false;
      while (curr != nullptr && curr->id.clock + curr->length <= curr_write->id.clock + curr_write->length &&
             curr->id.client >= curr_write->id.client) {
        cur_dec->Next();
        curr = cur_dec->curr();
        iterated = true;
      }
      if (curr == nullptr || curr->id.client != first_client ||
          (iterated && curr->id.clock > curr_write->id.clock + curr_write->length)) {
        continue;
      }
      if (first_client != curr_write->id.client) {
        writer.Write(*curr_write, 0);
        curr_write = cur_dec->Take();
      } else if (curr_write->id.clock + curr_write->length < curr->id.clock) {
        if (curr_write->is_skip()) {
          curr_write->length = curr->id.clock + curr->length - curr_write->id.clock;
          curr_write->content.len = curr_write->length;
        } else {
          writer.Write(*curr_write, 0);
          uint64_t diff = curr->id.clock - curr_write->id.clock - curr_write->length;
          auto skip = std::make_unique<Item>();
          skip->id = Id{first_client, curr_write->id.clock + curr_write->length};
          skip->length = diff;
          skip->content.ref = ContentRef::kSkip;
          skip->content.len = diff;
          curr_write = std::move(skip);
        }
      } else {
        uint64_t diff = curr_write->id.clock + curr_write->length - curr->id.clock;
        std::unique_ptr<Item> sliced;
        Item* c = curr;
        if (diff > 0) {
          if (curr_write->is_skip()) {
            curr_write->length -= diff;
            curr_write->content.len = curr_write->length;
          } else {
            sliced = SliceWireStruct(*curr, diff);
            c = sliced.get();
          }
        }
        if (!WireMergeWith(*curr_write, *c)) {
          writer.Write(*curr_write, 0);
          if (sliced) {
            curr_write = std::move(sliced);
            cur_dec->Next();
          } else {
            curr_write = cur_dec->Take();
          }
        }
      }
    } else {
      curr_write = cur_dec->Take();
    }
    for (Item* next = cur_dec->curr(); next != nullptr && next->id.client == first_client &&
                                       next->id.clock == curr_write->id.clock + curr_write->length && !next->is_skip();
         next = cur_dec->curr()) {
      writer.Write(*curr_write, 0);
      curr_write = cur_dec->Take();
    }
  }
  if (curr_write) writer.Write(*curr_write, 0);
  Encoder out;
  writer.Finish(out);
  std::vector<const DeleteSet*> dss;
  for (auto& d : decoded) dss.push_back(&d.ds);
  DeleteSet::Merge(dss).Write(out);
  return out.Take();
}

Result<std::vector<uint8_t>> DiffUpdate(std::span<const uint8_t> update, std::span<const uint8_t> sv_bytes) {
  auto sv = DecodeStateVector(sv_bytes);
  if (!sv) return Err(sv.error());
  auto decoded = DecodeUpdate(update);
  if (!decoded) return Err(decoded.error());
  LazyStructWriter writer;
  auto& structs = decoded->structs;
  size_t i = 0;
  auto sv_clock = [&](uint32_t c) {
    auto it = sv->find(c);
    return it == sv->end() ? uint64_t{0} : it->second;
  };
  while (i < structs.size()) {
    Item* curr = structs[i].get();
    uint32_t client = curr->id.client;
    uint64_t svc = sv_clock(client);
    if (curr->is_skip()) {
      ++i;
      continue;
    }
    if (curr->id.clock + curr->length > svc) {
      writer.Write(*curr, svc > curr->id.clock ? svc - curr->id.clock : 0);
      ++i;
      while (i < structs.size() && structs[i]->id.client == client) {
        writer.Write(*structs[i], 0);
        ++i;
      }
    } else {
      while (i < structs.size() && structs[i]->id.client == client &&
             structs[i]->id.clock + structs[i]->length <= svc) {
        ++i;
      }
    }
  }
  Encoder out;
  writer.Finish(out);
  decoded->ds.Write(out);
  return out.Take();
}

Result<std::vector<uint8_t>> EncodeStateVectorFromUpdate(std::span<const uint8_t> update) {
  auto decoded = DecodeUpdate(update);
  if (!decoded) return Err(decoded.error());
  Encoder rest;
  uint64_t size = 0;
  auto& structs = decoded->structs;
  if (!structs.empty()) {
    uint32_t curr_client = structs[0]->id.client;
    bool stop = structs[0]->id.clock != 0;
    uint64_t curr_clock = stop ? 0 : structs[0]->id.clock + structs[0]->length;
    for (size_t i = 0; i < structs.size(); ++i) {
      Item* s = structs[i].get();
      if (curr_client != s->id.client) {
        if (curr_clock != 0) {
          ++size;
          rest.VarUint(curr_client);
          rest.VarUint(curr_clock);
        }
        curr_client = s->id.client;
        curr_clock = 0;
        stop = s->id.clock != 0;
      }
      if (s->is_skip()) stop = true;
      if (!stop) curr_clock = s->id.clock + s->length;
    }
    if (curr_clock != 0) {
      ++size;
      rest.VarUint(curr_client);
      rest.VarUint(curr_clock);
    }
  }
  Encoder out;
  out.VarUint(size);
  out.Raw(rest.bytes());
  return out.Take();
}

}  // namespace cnx::crdt
