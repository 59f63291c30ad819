#include "crdt/doc.h"

#include "base/assert.h"

#include <algorithm>
#include <random>
#include <set>

namespace cnx::crdt {

struct TypeChanges {
  bool child_list = false;
  std::vector<std::string> keys;
};

struct Transaction {
  Doc* doc = nullptr;
  bool local = true;
  StateVector before_state;
  StateVector after_state;
  DeleteSet delete_set;
  std::vector<Id> merge_structs;
  std::vector<std::pair<Type*, TypeChanges>> changed;
  bool want_update = false;

  uint64_t Before(uint32_t client) const {
    auto it = before_state.find(client);
    return it == before_state.end() ? 0 : it->second;
  }
};

namespace {

constexpr int kMaxTypeDepth = 2000;

Error DataLoss(const std::string& m) {
  return Error(Module::kCrdt, ErrorCode::kDataLoss, m);
}
Error BadArg(const std::string& m) {
  return Error(Module::kCrdt, ErrorCode::kInvalidArgument, m);
}

uint32_t RandomClientId() {
  std::random_device rd;
  return static_cast<uint32_t>(rd());
}

int TypeDepth(const Type* t) {
  int d = 0;
  while (t->item != nullptr && t->item->parent != nullptr) {
    t = t->item->parent;
    ++d;
  }
  return d;
}

}  // namespace

// All struct-store and integration logic; a friend of Doc.
struct DocInternals {
  Doc& doc;

  std::vector<Item*>* Structs(uint32_t client) {
    auto it = doc.clients_.find(client);
    return it == doc.clients_.end() ? nullptr : &it->second;
  }

  uint64_t GetState(uint32_t client) {
    auto* s = Structs(client);
    if (s == nullptr || s->empty()) return 0;
    Item* last = s->back();
    return last->id.clock + last->length;
  }

  static size_t FindIndex(const std::vector<Item*>& structs, uint64_t clock) {
    size_t left = 0;
    size_t right = structs.size() - 1;
    Item* mid = structs[right];
    if (mid->id.clock == clock) return right;
    uint64_t denom = mid->id.clock + mid->length - 1;
    size_t midindex = denom == 0 ? 0
                                 : static_cast<size_t>((static_cast<double>(clock) / static_cast<double>(denom)) *
                                                       static_cast<double>(right));
    if (midindex > right) midindex = right;
    while (left <= right) {
      mid = structs[midindex];
      if (mid->id.clock <= clock) {
        if (clock < mid->id.clock + mid->length) return midindex;
        left = midindex + 1;
      } else {
        if (midindex == 0) break;
        right = midindex - 1;
      }
      midindex = (left + right) / 2;
    }
    CNX_ASSERT(false, "struct not found");
    return 0;
  }

  Item* Find(Id id) {
    auto& s = *Structs(id.client);
    return s[FindIndex(s, id.clock)];
  }

  void AddStruct(Item* s) {
    auto& v = doc.clients_[s->id.client];
    if (!v.empty()) {
      Item* last = v.back();
      CNX_ASSERT(last->id.clock + last->length == s->id.clock, "struct store gap");
    }
    s->in_store = true;
    v.push_back(s);
  }

  void AddChanged(Transaction& t, Type* type, const std::string* parent_sub) {
    Item* item = type->item;
    if (item == nullptr || (item->id.clock < t.Before(item->id.client) && !item->deleted)) {
      TypeChanges* tc = nullptr;
      for (auto& [ty, ch] : t.changed) {
        if (ty == type) {
          tc = &ch;
          break;
        }
      }
      if (tc == nullptr) {
        t.changed.emplace_back(type, TypeChanges{});
        tc = &t.changed.back().second;
      }
      if (parent_sub == nullptr) {
        tc->child_list = true;
      } else if (std::find(tc->keys.begin(), tc->keys.end(), *parent_sub) == tc->keys.end()) {
        tc->keys.push_back(*parent_sub);
      }
    }
  }

  Item* SplitItem(Transaction& t, Item* left, uint64_t diff) {
    Item* right = new Item();
    right->id = Id{left->id.client, left->id.clock + diff};
    right->length = left->length - diff;
    right->left = left;
    right->has_origin = true;
    right->origin = Id{left->id.client, left->id.clock + diff - 1};
    right->right = left->right;
    right->has_right_origin = left->has_right_origin;
    right->right_origin = left->right_origin;
    right->parent_kind = left->parent_kind;
    right->parent = left->parent;
    right->has_parent_sub = left->has_parent_sub;
    right->parent_sub = left->parent_sub;
    right->content = left->content.Splice(diff);
    right->deleted = left->deleted;
    right->keep = left->keep;
    left->right = right;
    if (right->right != nullptr) right->right->left = right;
    t.merge_structs.push_back(right->id);
    if (right->has_parent_sub && right->right == nullptr && right->parent != nullptr) {
      right->parent->map[right->parent_sub] = right;
    }
    left->length = diff;
    return right;
  }

  size_t FindIndexCleanStart(Transaction& t, std::vector<Item*>& structs, uint64_t clock) {
    size_t index = FindIndex(structs, clock);
    Item* s = structs[index];
    if (s->id.clock < clock && s->is_item()) {
      structs.insert(structs.begin() + static_cast<ptrdiff_t>(index) + 1, SplitItem(t, s, clock - s->id.clock));
      return index + 1;
    }
    return index;
  }

  Item* GetItemCleanStart(Transaction& t, Id id) {
    auto& s = *Structs(id.client);
    return s[FindIndexCleanStart(t, s, id.clock)];
  }

  Item* GetItemCleanEnd(Transaction& t, Id id) {
    auto& structs = *Structs(id.client);
    size_t index = FindIndex(structs, id.clock);
    Item* s = structs[index];
    if (id.clock != s->id.clock + s->length - 1 && !s->is_gc()) {
      structs.insert(structs.begin() + static_cast<ptrdiff_t>(index) + 1, SplitItem(t, s, id.clock - s->id.clock + 1));
    }
    return s;
  }

  static void InvalidateMarker(Type* t) { t->marker = nullptr; }

  // ------------------------------------------------------------ delete / gc

  void DeleteItem(Transaction& t, Item* item) {
    if (item->deleted) return;
    Type* parent = item->parent;
    if (item->countable() && !item->has_parent_sub) parent->length -= item->length;
    item->deleted = true;
    InvalidateMarker(parent);
    t.delete_set.Add(item->id.client, item->id.clock, item->length);
    AddChanged(t, parent, item->has_parent_sub ? &item->parent_sub : nullptr);
    if (item->content.ref == ContentRef::kType) DeleteTypeContent(t, item->content.type.get());
  }

  void DeleteTypeContent(Transaction& t, Type* type) {
    for (Item* it = type->start; it != nullptr; it = it->right) {
      if (!it->deleted) {
        DeleteItem(t, it);
      } else if (it->id.clock < t.Before(it->id.client)) {
        t.merge_structs.push_back(it->id);
      }
    }
    for (auto& [k, it] : type->map) {
      if (!it->deleted) {
        DeleteItem(t, it);
      } else if (it->id.clock < t.Before(it->id.client)) {
        t.merge_structs.push_back(it->id);
      }
    }
    std::erase_if(t.changed, [&](auto& e) { return e.first == type; });
  }

  void GcItem(Item* item, bool parent_gcd) {
    if (item->content.ref == ContentRef::kType) {
      Type* type = item->content.type.get();
      for (Item* it = type->start; it != nullptr;) {
        Item* next = it->right;
        GcItem(it, true);
        it = next;
      }
      type->start = nullptr;
      for (auto& [k, head] : type->map) {
        for (Item* it = head; it != nullptr;) {
          Item* prev = it->left;
          GcItem(it, true);
          it = prev;
        }
      }
      type->map.clear();
    }
    if (parent_gcd) {
      item->content = Content();
      item->content.ref = ContentRef::kGc;
      item->content.len = item->length;
      item->parent_kind = ParentKind::kNone;
      item->parent = nullptr;
      item->has_parent_sub = false;
      item->parent_sub.clear();
      item->has_origin = item->has_right_origin = false;
      item->deleted = true;
    } else {
      item->content = Content();
      item->content.ref = ContentRef::kDeleted;
      item->content.len = item->length;
    }
  }

  // Item.mergeWith / GC.mergeWith on integrated structs.
  bool MergeWith(Item* left, Item* right) {
    if (left->is_gc() || right->is_gc()) {
      if (!(left->is_gc() && right->is_gc())) return false;
      left->length += right->length;
      left->content.len = left->length;
      return true;
    }
    if (left->content.ref != right->content.ref) return false;
    if (!right->has_origin || !(right->origin == left->last_id())) return false;
    if (left->right != right) return false;
    if (left->has_right_origin != right->has_right_origin) return false;
    if (left->has_right_origin && !(left->right_origin == right->right_origin)) return false;
    if (left->id.client != right->id.client || left->id.clock + left->length != right->id.clock) return false;
    if (left->deleted != right->deleted) return false;
    if (!left->content.Mergeable()) return false;
    Type* parent = left->parent;
    if (parent != nullptr && parent->marker == right) {
      parent->marker = left;
      if (!left->deleted && left->countable()) parent->marker_index -= left->length;
    }
    if (right->keep) left->keep = true;
    left->right = right->right;
    if (left->right != nullptr) left->right->left = left;
    left->length += right->length;
    left->content.Append(std::move(right->content));
    return true;
  }

  size_t TryToMergeWithLefts(std::vector<Item*>& structs, size_t pos) {
    Item* right = structs[pos];
    Item* left = structs[pos - 1];
    size_t i = pos;
    for (; i > 0; right = left, left = i >= 2 ? structs[i - 2] : nullptr, --i) {
      if (left->deleted == right->deleted && left->is_gc() == right->is_gc() && MergeWith(left, right)) {
        if (right->is_item() && right->has_parent_sub && right->parent != nullptr &&
            right->parent->map[right->parent_sub] == right) {
          right->parent->map[right->parent_sub] = left;
        }
        delete right;
        structs[i] = nullptr;
        continue;
      }
      break;
    }
    size_t merged = pos - i;
    if (merged) {
      structs.erase(structs.begin() + static_cast<ptrdiff_t>(pos + 1 - merged),
                    structs.begin() + static_cast<ptrdiff_t>(pos + 1));
    }
    return merged;
  }

  void TryGcDeleteSet(const DeleteSet& ds) {
    for (auto& [client, dels] : ds.clients) {
      auto* sp = Structs(client);
      if (sp == nullptr) continue;
      auto& structs = *sp;
      for (size_t di = dels.size(); di-- > 0;) {
        const DeleteRange& d = dels[di];
        uint64_t end = d.clock + d.len;
        for (size_t si = FindIndex(structs, d.clock); si < structs.size() && structs[si]->id.clock < end; ++si) {
          Item* s = structs[si];
          if (s->is_item() && s->deleted && !s->keep) GcItem(s, false);
        }
      }
    }
  }

  void TryMergeDeleteSet(const DeleteSet& ds) {
    for (auto& [client, dels] : ds.clients) {
      auto* sp = Structs(client);
      if (sp == nullptr) continue;
      auto& structs = *sp;
      for (size_t di = dels.size(); di-- > 0;) {
        const DeleteRange& d = dels[di];
        size_t most_right = std::min(structs.size() - 1, 1 + FindIndex(structs, d.clock + d.len - 1));
        for (int64_t si = static_cast<int64_t>(most_right);
             si > 0 && structs[static_cast<size_t>(si)]->id.clock >= d.clock;) {
          si -= 1 + static_cast<int64_t>(TryToMergeWithLefts(structs, static_cast<size_t>(si)));
        }
      }
    }
  }

  // ------------------------------------------------------------ integrate

  // Item.getMissing: the client whose structs are missing, or nullopt after
  // resolving left/right/parent.
  std::optional<uint32_t> GetMissing(Transaction& t, Item* s) {
    if (s->is_gc()) return std::nullopt;
    if (s->has_origin && s->origin.client != s->id.client && s->origin.clock >= GetState(s->origin.client)) {
      return s->origin.client;
    }
    if (s->has_right_origin && s->right_origin.client != s->id.client &&
        s->right_origin.clock >= GetState(s->right_origin.client)) {
      return s->right_origin.client;
    }
    if (s->parent_kind == ParentKind::kId && s->id.client != s->parent_id.client &&
        s->parent_id.clock >= GetState(s->parent_id.client)) {
      return s->parent_id.client;
    }
    if (s->has_origin) {
      s->left = GetItemCleanEnd(t, s->origin);
      s->origin = s->left->last_id();
    }
    if (s->has_right_origin) {
      s->right = GetItemCleanStart(t, s->right_origin);
      s->right_origin = s->right->id;
    }
    if ((s->left != nullptr && s->left->is_gc()) || (s->right != nullptr && s->right->is_gc())) {
      s->parent_kind = ParentKind::kNone;
      s->parent = nullptr;
    } else if (s->parent_kind == ParentKind::kNone) {
      Item* src = s->left != nullptr ? s->left : s->right;
      if (src != nullptr && src->is_item()) {
        s->parent_kind = ParentKind::kType;
        s->parent = src->parent;
        s->has_parent_sub = src->has_parent_sub;
        s->parent_sub = src->parent_sub;
      }
    } else if (s->parent_kind == ParentKind::kId) {
      Item* p = Find(s->parent_id);
      if (p->is_gc() || p->content.ref != ContentRef::kType) {
        s->parent_kind = ParentKind::kNone;
        s->parent = nullptr;
      } else {
        s->parent_kind = ParentKind::kType;
        s->parent = p->content.type.get();
      }
    }
    if (s->parent_kind == ParentKind::kType && s->content.ref == ContentRef::kType &&
        TypeDepth(s->parent) >= kMaxTypeDepth) {
      s->parent_kind = ParentKind::kNone;  // absurd nesting: keep as GC
      s->parent = nullptr;
    }
    return std::nullopt;
  }

  static bool SameOptId(bool ha, Id a, bool hb, Id b) { return ha == hb && (!ha || a == b); }

  // Item.integrate. Takes ownership of `s`.
  void Integrate(Transaction& t, Item* s, uint64_t offset) {
    if (s->is_gc()) {
      if (offset > 0) {
        s->id.clock += offset;
        s->length -= offset;
        s->content.len = s->length;
      }
      s->deleted = true;
      AddStruct(s);
      return;
    }
    if (offset > 0) {
      s->id.clock += offset;
      s->left = GetItemCleanEnd(t, Id{s->id.client, s->id.clock - 1});
      s->has_origin = true;
      s->origin = s->left->last_id();
      s->content = s->content.Splice(offset);
      s->length -= offset;
    }
    if (s->parent_kind != ParentKind::kType || s->parent == nullptr) {
      // Parent unknown (garbage-collected): integrate as a GC struct.
      Item* gc = s;
      gc->content = Content();
      gc->content.ref = ContentRef::kGc;
      gc->content.len = gc->length;
      gc->left = gc->right = nullptr;
      gc->has_origin = gc->has_right_origin = gc->has_parent_sub = false;
      gc->parent_kind = ParentKind::kNone;
      gc->parent = nullptr;
      gc->deleted = true;
      AddStruct(gc);
      return;
    }
    Type* parent = s->parent;
    if ((s->left == nullptr && (s->right == nullptr || s->right->left != nullptr)) ||
        (s->left != nullptr && s->left->right != s->right)) {
      Item* left = s->left;
      Item* o;
      if (left != nullptr) {
        o = left->right;
      } else if (s->has_parent_sub) {
        auto it = parent->map.find(s->parent_sub);
        o = it == parent->map.end() ? nullptr : it->second;
        while (o != nullptr && o->left != nullptr) o = o->left;
      } else {
        o = parent->start;
      }
      std::set<Item*> conflicting;
      std::set<Item*> before_origin;
      while (o != nullptr && o != s->right) {
        before_origin.insert(o);
        conflicting.insert(o);
        if (SameOptId(s->has_origin, s->origin, o->has_origin, o->origin)) {
          if (o->id.client < s->id.client) {
            left = o;
            conflicting.clear();
          } else if (SameOptId(s->has_right_origin, s->right_origin, o->has_right_origin, o->right_origin)) {
            break;
          }
        } else if (o->has_origin && before_origin.count(Find(o->origin)) != 0) {
          if (conflicting.count(Find(o->origin)) == 0) {
            left = o;
            conflicting.clear();
          }
        } else {
          break;
        }
        o = o->right;
      }
      s->left = left;
    }
    if (s->left != nullptr) {
      s->right = s->left->right;
      s->left->right = s;
    } else {
      Item* r;
      if (s->has_parent_sub) {
        auto it = parent->map.find(s->parent_sub);
        r = it == parent->map.end() ? nullptr : it->second;
        while (r != nullptr && r->left != nullptr) r = r->left;
      } else {
        r = parent->start;
        parent->start = s;
      }
      s->right = r;
    }
    if (s->right != nullptr) {
      s->right->left = s;
    } else if (s->has_parent_sub) {
      parent->map[s->parent_sub] = s;
      if (s->left != nullptr) DeleteItem(t, s->left);
    }
    if (!s->has_parent_sub && s->countable() && !s->deleted) parent->length += s->length;
    InvalidateMarker(parent);
    AddStruct(s);
    // ContentX.integrate
    switch (s->content.ref) {
      case ContentRef::kDeleted:
        t.delete_set.Add(s->id.client, s->id.clock, s->content.len);
        s->deleted = true;
        break;
      case ContentRef::kFormat:
        parent->has_formatting = true;
        break;
      case ContentRef::kType: {
        Type* nt = s->content.type.get();
        nt->doc = &doc;
        nt->item = s;
        break;
      }
      default:
        break;
    }
    AddChanged(t, parent, s->has_parent_sub ? &s->parent_sub : nullptr);
    if ((parent->item != nullptr && parent->item->deleted) || (s->has_parent_sub && s->right != nullptr)) {
      DeleteItem(t, s);
    }
  }

  // ------------------------------------------------------------ updates

  struct ClientRefs {
    std::vector<Item*> refs;
    size_t i = 0;
    bool removed = false;
  };

  // integrateStructs: returns the structs that could not be integrated,
  // encoded as an update, and fills `missing`. Takes ownership of `structs`.
  std::vector<uint8_t> IntegrateStructs(Transaction& t, std::vector<std::unique_ptr<Item>>&& structs,
                                        StateVector& missing) {
    std::vector<Item*> all;
    all.reserve(structs.size());
    for (auto& s : structs) all.push_back(s.release());
    structs.clear();
    std::map<uint32_t, ClientRefs> client_refs;
    {
      // A client appearing in several blocks: the last block wins (as in Yjs).
      uint32_t cur = 0;
      bool have = false;
      for (Item* s : all) {
        if (!have || s->id.client != cur) {
          cur = s->id.client;
          have = true;
          client_refs[cur] = ClientRefs{};
        }
        client_refs[cur].refs.push_back(s);
      }
    }
    auto lookup = [&](uint32_t client) -> ClientRefs* {
      auto it = client_refs.find(client);
      return (it == client_refs.end() || it->second.removed) ? nullptr : &it->second;
    };
    std::vector<uint32_t> ids;
    for (auto& [c, r] : client_refs) ids.push_back(c);  // ascending
    std::map<uint32_t, std::vector<Item*>> rest;
    auto finish = [&]() -> std::vector<uint8_t> {
      std::vector<uint8_t> out;
      if (!rest.empty()) {
        Encoder e;
        e.VarUint(rest.size());
        for (auto it = rest.rbegin(); it != rest.rend(); ++it) {
          auto& v = it->second;
          e.VarUint(v.size());
          e.VarUint(it->first);
          e.VarUint(v.front()->id.clock);
          for (Item* s : v) s->Write(e, 0);
        }
        e.VarUint(0);
        out = e.Take();
      }
      for (Item* p : all) {
        if (!p->in_store) delete p;
      }
      return out;
    };
    auto next_target = [&]() -> ClientRefs* {
      while (!ids.empty()) {
        ClientRefs* r = lookup(ids.back());
        if (r != nullptr && r->i < r->refs.size()) return r;
        ids.pop_back();
      }
      return nullptr;
    };
    ClientRefs* cur_target = next_target();
    if (cur_target == nullptr) return finish();

    auto update_missing = [&](uint32_t client, uint64_t clock) {
      auto it = missing.find(client);
      if (it == missing.end() || it->second > clock) missing[client] = clock;
    };
    std::vector<Item*> stack;
    std::unordered_map<uint32_t, uint64_t> state;
    auto add_stack_to_rest = [&]() {
      for (Item* item : stack) {
        uint32_t client = item->id.client;
        ClientRefs* cr = lookup(client);
        if (cr != nullptr) {
          cr->i--;
          rest[client].assign(cr->refs.begin() + static_cast<ptrdiff_t>(cr->i), cr->refs.end());
          cr->removed = true;
          cr->refs.clear();
          cr->i = 0;
        } else {
          rest[client] = {item};
        }
        std::erase(ids, client);
      }
      stack.clear();
    };
    auto local_clock = [&](uint32_t client) {
      auto it = state.find(client);
      if (it != state.end()) return it->second;
      uint64_t c = GetState(client);
      state[client] = c;
      return c;
    };

    Item* head = cur_target->refs[cur_target->i++];
    while (true) {
      if (!head->is_skip()) {
        uint64_t lc = local_clock(head->id.client);
        if (lc < head->id.clock) {
          stack.push_back(head);
          update_missing(head->id.client, head->id.clock - 1);
          add_stack_to_rest();
        } else {
          uint64_t offset = lc - head->id.clock;
          auto miss = GetMissing(t, head);
          if (miss.has_value()) {
            stack.push_back(head);
            ClientRefs* r = lookup(*miss);
            if (r == nullptr || r->refs.size() == r->i) {
              update_missing(*miss, GetState(*miss));
              add_stack_to_rest();
            } else {
              head = r->refs[r->i++];
              continue;
            }
          } else if (offset == 0 || offset < head->length) {
            Integrate(t, head, offset);
            state[head->id.client] = head->id.clock + head->length;
          }
        }
      }
      if (!stack.empty()) {
        head = stack.back();
        stack.pop_back();
      } else if (cur_target != nullptr && cur_target->i < cur_target->refs.size()) {
        head = cur_target->refs[cur_target->i++];
      } else {
        cur_target = next_target();
        if (cur_target == nullptr) break;
        head = cur_target->refs[cur_target->i++];
      }
    }
    return finish();
  }

  // readAndApplyDeleteSet: returns the part of `ds` beyond the local state.
  std::optional<DeleteSet> ApplyDeleteSet(Transaction& t, const DeleteSet& ds) {
    DeleteSet unapplied;
    for (auto it = ds.clients.rbegin(); it != ds.clients.rend(); ++it) {
      uint32_t client = it->first;
      uint64_t state = GetState(client);
      auto* sp = Structs(client);
      for (const DeleteRange& r : it->second) {
        uint64_t clock = r.clock;
        uint64_t clock_end = r.clock + r.len;
        if (r.len == 0) continue;
        if (clock < state) {
          if (state < clock_end) unapplied.Add(client, state, clock_end - state);
          auto& structs = *sp;
          size_t index = FindIndex(structs, clock);
          Item* s = structs[index];
          if (!s->deleted && s->id.clock < clock) {
            structs.insert(structs.begin() + static_cast<ptrdiff_t>(index) + 1, SplitItem(t, s, clock - s->id.clock));
            ++index;
          }
          while (index < structs.size()) {
            s = structs[index++];
            if (s->id.clock < clock_end) {
              if (!s->deleted) {
                if (clock_end < s->id.clock + s->length) {
                  structs.insert(structs.begin() + static_cast<ptrdiff_t>(index),
                                 SplitItem(t, s, clock_end - s->id.clock));
                }
                DeleteItem(t, s);
              }
            } else {
              break;
            }
          }
        } else {
          unapplied.Add(client, clock, clock_end - clock);
        }
      }
    }
    if (unapplied.empty()) return std::nullopt;
    return unapplied;
  }

  void ResolveRoots(std::vector<std::unique_ptr<Item>>& structs) {
    for (auto& s : structs) {
      if (s->parent_kind == ParentKind::kRootName) {
        s->parent = doc.Root(s->parent_name, TypeRef::kUnknown);
        s->parent_kind = ParentKind::kType;
        s->parent_name.clear();
      }
    }
  }

  // readUpdateV2 inside an open transaction; `u` is already validated.
  void ReadUpdate(Transaction& t, DecodedUpdate&& u) {
    ResolveRoots(u.structs);
    StateVector rest_missing;
    std::vector<uint8_t> rest = IntegrateStructs(t, std::move(u.structs), rest_missing);
    bool retry = false;
    if (!doc.pending_structs_.empty()) {
      for (auto& [client, clock] : doc.pending_missing_) {
        if (clock < GetState(client)) {
          retry = true;
          break;
        }
      }
      if (!rest.empty()) {
        for (auto& [client, clock] : rest_missing) {
          auto it = doc.pending_missing_.find(client);
          if (it == doc.pending_missing_.end() || it->second > clock) doc.pending_missing_[client] = clock;
        }
        auto merged = MergeUpdates({doc.pending_structs_, rest});
        CNX_ASSERT(merged.has_value(), "pending merge failed");
        doc.pending_structs_ = std::move(*merged);
      }
    } else {
      doc.pending_structs_ = std::move(rest);
      doc.pending_missing_ = rest_missing;
    }
    auto ds_rest = ApplyDeleteSet(t, u.ds);
    if (doc.pending_ds_) {
      DeleteSet prev = std::move(*doc.pending_ds_);
      doc.pending_ds_.reset();
      auto ds_rest2 = ApplyDeleteSet(t, prev);
      if (ds_rest && ds_rest2) {
        doc.pending_ds_ = DeleteSet::Merge({&*ds_rest, &*ds_rest2});
      } else {
        doc.pending_ds_ = ds_rest ? std::move(ds_rest) : std::move(ds_rest2);
      }
    } else {
      doc.pending_ds_ = std::move(ds_rest);
    }
    if (retry) {
      std::vector<uint8_t> pending = std::move(doc.pending_structs_);
      doc.pending_structs_.clear();
      doc.pending_missing_.clear();
      auto decoded = DecodeUpdate(pending);
      CNX_ASSERT(decoded.has_value(), "pending update corrupt");
      ReadUpdate(t, std::move(*decoded));
    }
  }

  // writeStructs / writeClientsStructs.
  void WriteClientsStructs(Encoder& e, const StateVector& sv) {
    std::map<uint32_t, uint64_t> sm;
    for (auto& [client, clock] : sv) {
      if (GetState(client) > clock) sm[client] = clock;
    }
    for (auto& [client, structs] : doc.clients_) {
      if (!structs.empty() && sv.find(client) == sv.end()) sm[client] = 0;
    }
    e.VarUint(sm.size());
    for (auto it = sm.rbegin(); it != sm.rend(); ++it) {
      auto& structs = doc.clients_[it->first];
      uint64_t clock = std::max(it->second, structs[0]->id.clock);
      size_t start = FindIndex(structs, clock);
      e.VarUint(structs.size() - start);
      e.VarUint(it->first);
      e.VarUint(clock);
      structs[start]->Write(e, clock - structs[start]->id.clock);
      for (size_t i = start + 1; i < structs.size(); ++i) structs[i]->Write(e, 0);
    }
  }

  StateVector StateVectorNow() {
    StateVector sv;
    for (auto& [client, structs] : doc.clients_) {
      if (!structs.empty()) sv[client] = structs.back()->id.clock + structs.back()->length;
    }
    return sv;
  }

  // Rejects updates Yjs itself cannot apply without corrupting its store.
  Status Validate(const DecodedUpdate& u) {
    for (auto& s : u.structs) {
      if (!s->is_item()) continue;
      if (s->has_origin && s->origin.client == s->id.client && s->origin.clock >= s->id.clock) {
        return Err(DataLoss("update: struct references a later clock of its own client (origin)"));
      }
      if (s->has_right_origin && s->right_origin.client == s->id.client && s->right_origin.clock >= s->id.clock) {
        return Err(DataLoss("update: struct references a later clock of its own client (right origin)"));
      }
      if (s->parent_kind == ParentKind::kId && s->parent_id.client == s->id.client &&
          s->parent_id.clock >= s->id.clock) {
        return Err(DataLoss("update: struct references a later clock of its own client (parent)"));
      }
    }
    return Ok();
  }
};

// ================================================================ Doc

namespace {

// YEvent.delta over positions: items added by `t` are inserts, items deleted
// by `t` (and not added by it) deletes, other visible items retains.
std::vector<ListChange> ListChanges(const Transaction& t, const Type* type) {
  std::vector<ListChange> out;
  auto push = [&](ListChange::Kind k, uint64_t n) {
    if (n == 0) return;
    if (!out.empty() && out.back().kind == k) {
      out.back().length += n;
    } else {
      out.push_back({k, n});
    }
  };
  for (const Item* it = type->start; it != nullptr; it = it->right) {
    if (!it->countable()) continue;
    bool adds = it->id.clock >= t.Before(it->id.client);
    if (it->deleted) {
      if (!adds && t.delete_set.Contains(it->id)) {
        push(ListChange::Kind::kDelete, it->length);
      }
    } else if (adds) {
      push(ListChange::Kind::kInsert, it->length);
    } else {
      push(ListChange::Kind::kRetain, it->length);
    }
  }
  if (!out.empty() && out.back().kind == ListChange::Kind::kRetain) out.pop_back();
  return out;
}

}  // namespace

Doc::Doc(DocOptions options) : client_id_(options.client_id.value_or(RandomClientId())), gc_(options.gc) {}

Doc::~Doc() {
  for (auto& [client, structs] : clients_) {
    for (Item* s : structs) delete s;
  }
}

Type* Doc::Root(std::string_view name, TypeRef ref) {
  auto it = roots_.find(name);
  if (it == roots_.end()) {
    auto t = std::make_unique<Type>();
    t->doc = this;
    t->ref = ref;
    t->root_name = std::string(name);
    it = roots_.emplace(std::string(name), std::move(t)).first;
  } else if (it->second->ref == TypeRef::kUnknown) {
    it->second->ref = ref;
  }
  return it->second.get();
}

Text Doc::GetText(std::string_view name) {
  return Text(Root(name, TypeRef::kText));
}
Map Doc::GetMap(std::string_view name) {
  return Map(Root(name, TypeRef::kMap));
}
Array Doc::GetArray(std::string_view name) {
  return Array(Root(name, TypeRef::kArray));
}
XmlFragment Doc::GetXmlFragment(std::string_view name) {
  return XmlFragment(Root(name, TypeRef::kXmlFragment));
}

StateVector Doc::GetStateVector() const {
  return DocInternals{const_cast<Doc&>(*this)}.StateVectorNow();
}

std::vector<uint8_t> Doc::EncodeStateVector() const {
  return crdt::EncodeStateVector(GetStateVector());
}

const Item* Doc::FindStruct(Id id) const {
  DocInternals in{const_cast<Doc&>(*this)};
  if (in.GetState(id.client) <= id.clock) return nullptr;
  return in.Find(id);
}

size_t Doc::StructCount() const {
  size_t n = 0;
  for (auto& [c, s] : clients_) n += s.size();
  return n;
}

DeleteSet Doc::DeleteSetFromStore() const {
  DeleteSet ds;
  for (auto& [client, structs] : clients_) {
    for (size_t i = 0; i < structs.size(); ++i) {
      if (!structs[i]->deleted) continue;
      uint64_t clock = structs[i]->id.clock;
      uint64_t len = structs[i]->length;
      while (i + 1 < structs.size() && structs[i + 1]->deleted) len += structs[++i]->length;
      ds.Add(client, clock, len);
    }
  }
  return ds;
}

Result<std::vector<uint8_t>> Doc::EncodeStateAsUpdate(std::span<const uint8_t> sv_bytes) const {
  static const uint8_t kEmptySv[1] = {0};
  std::span<const uint8_t> svb = sv_bytes.empty() ? std::span<const uint8_t>(kEmptySv, 1) : sv_bytes;
  auto sv = DecodeStateVector(svb);
  if (!sv) return Err(sv.error());
  DocInternals in{const_cast<Doc&>(*this)};
  Encoder e;
  in.WriteClientsStructs(e, *sv);
  DeleteSetFromStore().Write(e);
  if (!pending_ds_ && pending_structs_.empty()) return e.Take();
  std::vector<std::vector<uint8_t>> parts;
  parts.push_back(e.Take());
  if (pending_ds_) {
    Encoder pd;
    pd.VarUint(0);
    pending_ds_->Write(pd);
    parts.push_back(pd.Take());
  }
  if (!pending_structs_.empty()) {
    auto diff = DiffUpdate(pending_structs_, svb);
    if (!diff) return Err(diff.error());
    parts.push_back(std::move(*diff));
  }
  std::vector<std::span<const uint8_t>> spans(parts.begin(), parts.end());
  return MergeUpdates(spans);
}

Transaction* Doc::BeginOrJoin(bool* owner) {
  if (txn_ != nullptr) {
    *owner = false;
    return txn_;
  }
  *owner = true;
  txn_ = new Transaction();
  txn_->doc = this;
  txn_->before_state = GetStateVector();
  return txn_;
}

void Doc::End(Transaction* t, std::vector<uint8_t>* update_out) {
  std::unique_ptr<Transaction> owned(t);
  txn_ = nullptr;
  DocInternals in{*this};
  t->delete_set.SortAndMerge();
  t->after_state = in.StateVectorNow();

  // Describe the changes before garbage collection may free deleted types.
  std::vector<TypeChange> changes;
  if (!observers_.empty()) {
    for (auto& [type, ch] : t->changed) {
      if (type->item != nullptr && type->item->deleted) continue;
      TypeChange c;
      const Type* r = type;
      while (r->item != nullptr) r = r->item->parent;
      c.root = r->root_name;
      c.ref = type->ref;
      c.is_root = type->item == nullptr;
      c.child_list_changed = ch.child_list;
      c.keys_changed = ch.keys;
      if (ch.child_list) c.list_changes = ListChanges(*t, type);
      changes.push_back(std::move(c));
    }
  }

  if (gc_) in.TryGcDeleteSet(t->delete_set);
  in.TryMergeDeleteSet(t->delete_set);
  for (auto& [client, clock] : t->after_state) {
    uint64_t before = t->Before(client);
    if (before == clock) continue;
    auto& structs = clients_[client];
    size_t first = std::max<size_t>(DocInternals::FindIndex(structs, before), 1);
    for (int64_t i = static_cast<int64_t>(structs.size()) - 1; i >= static_cast<int64_t>(first);) {
      i -= 1 + static_cast<int64_t>(in.TryToMergeWithLefts(structs, static_cast<size_t>(i)));
    }
  }
  for (size_t k = t->merge_structs.size(); k-- > 0;) {
    Id id = t->merge_structs[k];
    auto& structs = clients_[id.client];
    size_t pos = DocInternals::FindIndex(structs, id.clock);
    if (pos + 1 < structs.size()) {
      if (in.TryToMergeWithLefts(structs, pos + 1) > 1) continue;
    }
    if (pos > 0) in.TryToMergeWithLefts(structs, pos);
  }
  if (!t->local) {
    auto a = t->after_state.find(client_id_);
    uint64_t after = a == t->after_state.end() ? 0 : a->second;
    if (after != t->Before(client_id_)) client_id_ = RandomClientId();  // another peer uses our id
  }

  bool changed = !t->delete_set.empty() || t->after_state != t->before_state;
  std::vector<uint8_t> update;
  if (changed && (update_out != nullptr || !observers_.empty())) {
    Encoder e;
    in.WriteClientsStructs(e, t->before_state);
    t->delete_set.Write(e);
    update = e.Take();
  }
  if (changed && !observers_.empty()) {
    TransactionEvent ev;
    ev.local = t->local;
    ev.changes = std::move(changes);
    ev.before = t->before_state;
    ev.after = t->after_state;
    ev.deletes = &t->delete_set;
    ev.update = update;
    auto obs = observers_;  // observers may unsubscribe while called
    for (auto& [id, fn] : obs) fn(ev);
  }
  if (update_out != nullptr) *update_out = std::move(update);
}

Status Doc::ApplyUpdate(std::span<const uint8_t> update) {
  return ApplyUpdate(update, nullptr);
}

Status Doc::ApplyUpdate(std::span<const uint8_t> update, std::vector<uint8_t>* produced) {
  if (produced != nullptr) produced->clear();
  auto decoded = DecodeUpdate(update);
  if (!decoded) return Err(decoded.error());
  DocInternals in{*this};
  CNX_TRY(in.Validate(*decoded));
  bool owner = false;
  Transaction* t = BeginOrJoin(&owner);
  t->local = false;
  in.ReadUpdate(*t, std::move(*decoded));
  if (owner) End(t, produced);
  return Ok();
}

std::vector<uint8_t> Doc::Transact(const std::function<void()>& fn) {
  bool owner = false;
  Transaction* t = BeginOrJoin(&owner);
  fn();
  std::vector<uint8_t> out;
  if (owner) End(t, &out);
  return out;
}

Doc::ObserverId Doc::Observe(std::function<void(const TransactionEvent&)> fn) {
  ObserverId id = next_observer_++;
  observers_.emplace_back(id, std::move(fn));
  return id;
}

void Doc::Unobserve(ObserverId id) {
  std::erase_if(observers_, [&](auto& e) { return e.first == id; });
}

// ================================================================ local edits

namespace {

// Runs `fn(txn, internals)` inside the current transaction or a new one.
template <typename F>
auto Edit(Type* type, F&& fn) {
  Doc* doc = type->doc;
  bool owner = false;
  Transaction* t = doc->BeginOrJoin(&owner);
  DocInternals in{*doc};
  auto r = fn(*t, in);
  if (owner) doc->End(t, nullptr);
  return r;
}

Item* NewLocalItem(Transaction& t, DocInternals& in, Type* parent, Item* left, Item* right,
                   const std::string* parent_sub, Content content) {
  Item* s = new Item();
  uint32_t client = t.doc->client_id();
  s->id = Id{client, in.GetState(client)};
  s->left = left;
  s->right = right;
  if (left != nullptr) {
    s->has_origin = true;
    s->origin = left->last_id();
  }
  if (right != nullptr) {
    s->has_right_origin = true;
    s->right_origin = right->id;
  }
  s->parent_kind = ParentKind::kType;
  s->parent = parent;
  if (parent_sub != nullptr) {
    s->has_parent_sub = true;
    s->parent_sub = *parent_sub;
  }
  s->content = std::move(content);
  s->length = s->content.Length();
  in.Integrate(t, s, 0);
  return s;
}

Content AnyContent(std::vector<Any> values) {
  Content c;
  c.ref = ContentRef::kAny;
  c.values = std::move(values);
  return c;
}

Content TypeContent(TypeRef ref, std::string_view name) {
  Content c;
  c.ref = ContentRef::kType;
  c.type = std::make_unique<Type>();
  c.type->ref = ref;
  c.type->name = std::string(name);
  return c;
}

// Finds an item at or before visible `index` and caches it as the marker.
Item* FindMarker(Type* t, uint64_t index, uint64_t* marker_index) {
  Item* p = t->marker != nullptr ? t->marker : t->start;
  uint64_t idx = t->marker != nullptr ? t->marker_index : 0;
  if (p == nullptr) return nullptr;
  while (p->right != nullptr && idx + (p->visible() ? p->length : 0) <= index) {
    idx += p->visible() ? p->length : 0;
    p = p->right;
  }
  while (idx > index) {
    p = p->left;
    if (p->visible()) idx -= p->length;
  }
  t->marker = p;
  t->marker_index = idx;
  *marker_index = idx;
  return p;
}

// ---- rich text (YText.js)

using AttrMap = std::vector<std::pair<std::string, Any>>;  // a JS Map: insertion order

const Any* MapGet(const AttrMap& m, std::string_view k) {
  for (auto& [key, v] : m) {
    if (key == k) return &v;
  }
  return nullptr;
}
void MapSet(AttrMap& m, std::string_view k, Any v) {
  for (auto& [key, val] : m) {
    if (key == k) {
      val = std::move(v);
      return;
    }
  }
  m.emplace_back(std::string(k), std::move(v));
}
void MapDelete(AttrMap& m, std::string_view k) {
  std::erase_if(m, [&](auto& e) { return e.first == k; });
}

struct TextPos {
  Item* left;
  Item* right;
  uint64_t index;
  AttrMap attrs;
};

void UpdateCurrentAttributes(AttrMap& attrs, const Content& format) {
  if (format.values[0].is_null()) {
    MapDelete(attrs, format.str);
  } else {
    MapSet(attrs, format.str, format.values[0]);
  }
}

void Forward(TextPos& pos) {
  Item* r = pos.right;
  if (r->content.ref == ContentRef::kFormat) {
    if (!r->deleted) UpdateCurrentAttributes(pos.attrs, r->content);
  } else if (!r->deleted) {
    pos.index += r->length;
  }
  pos.left = r;
  pos.right = r->right;
}

void FindNextPosition(Transaction& t, DocInternals& in, TextPos& pos, uint64_t count) {
  while (pos.right != nullptr && count > 0) {
    Item* r = pos.right;
    if (r->content.ref == ContentRef::kFormat) {
      if (!r->deleted) UpdateCurrentAttributes(pos.attrs, r->content);
    } else if (!r->deleted) {
      if (count < r->length) in.GetItemCleanStart(t, Id{r->id.client, r->id.clock + count});
      pos.index += r->length;
      count -= r->length;
    }
    pos.left = r;
    pos.right = r->right;
  }
}

TextPos FindPosition(Transaction& t, DocInternals& in, Type* type, uint64_t index, bool use_marker) {
  if (use_marker && !type->has_formatting) {
    uint64_t mi = 0;
    Item* m = FindMarker(type, index, &mi);
    if (m != nullptr) {
      TextPos pos{m->left, m, mi, {}};
      FindNextPosition(t, in, pos, index - mi);
      return pos;
    }
  }
  TextPos pos{nullptr, type->start, 0, {}};
  FindNextPosition(t, in, pos, index);
  return pos;
}

// `attributes` is a JS object: Any::Object order.
const Any* ObjGet(const Attributes& attrs, std::string_view k) {
  for (auto& [key, v] : attrs) {
    if (key == k) return &v;
  }
  return nullptr;
}

void MinimizeAttributeChanges(TextPos& pos, const Attributes& attrs) {
  static const Any kNull = Any::Null();
  while (pos.right != nullptr) {
    Item* r = pos.right;
    if (r->deleted) {
      // skip
    } else if (r->content.ref == ContentRef::kFormat) {
      const Any* a = ObjGet(attrs, r->content.str);
      const Any& av = (a == nullptr || a->kind == Any::Kind::kUndefined) ? kNull : *a;
      if (!EqualAttrs(av, r->content.values[0])) break;
    } else {
      break;
    }
    Forward(pos);
  }
}

Content FormatContent(std::string key, Any value) {
  Content c;
  c.ref = ContentRef::kFormat;
  c.str = std::move(key);
  c.values.push_back(std::move(value));
  return c;
}

AttrMap InsertAttributes(Transaction& t, DocInternals& in, Type* parent, TextPos& pos, const Attributes& attrs) {
  AttrMap negated;
  for (auto& [key, val] : attrs) {
    const Any* cur = MapGet(pos.attrs, key);
    Any current = cur != nullptr ? *cur : Any::Null();
    if (!EqualAttrs(current, val)) {
      MapSet(negated, key, current);
      pos.right = NewLocalItem(t, in, parent, pos.left, pos.right, nullptr, FormatContent(key, val));
      Forward(pos);
    }
  }
  return negated;
}

void InsertNegatedAttributes(Transaction& t, DocInternals& in, Type* parent, TextPos& pos, AttrMap& negated) {
  while (pos.right != nullptr && (pos.right->deleted || (pos.right->content.ref == ContentRef::kFormat && [&] {
                                    const Any* n = MapGet(negated, pos.right->content.str);
                                    Any nv = n != nullptr ? *n : Any::Undefined();
                                    return EqualAttrs(nv, pos.right->content.values[0]);
                                  }()))) {
    if (!pos.right->deleted) MapDelete(negated, pos.right->content.str);
    Forward(pos);
  }
  for (auto& [key, val] : negated) {
    pos.right = NewLocalItem(t, in, parent, pos.left, pos.right, nullptr, FormatContent(key, val));
    Forward(pos);
  }
}

void InsertText(Transaction& t, DocInternals& in, Type* parent, TextPos& pos, Content content, Attributes attrs) {
  for (auto& [key, v] : pos.attrs) {
    const Any* a = ObjGet(attrs, key);
    if (a == nullptr) attrs.emplace_back(key, Any::Null());
  }
  attrs = Any::Object(std::move(attrs)).object;
  MinimizeAttributeChanges(pos, attrs);
  AttrMap negated = InsertAttributes(t, in, parent, pos, attrs);
  uint64_t index = pos.index;
  Item* item = NewLocalItem(t, in, parent, pos.left, pos.right, nullptr, std::move(content));
  parent->marker = item;
  parent->marker_index = index;
  pos.right = item;
  pos.index = index;
  Forward(pos);
  InsertNegatedAttributes(t, in, parent, pos, negated);
}

int CleanupFormattingGap(Transaction& t, DocInternals& in, Item* start, Item* curr, const AttrMap& start_attrs,
                         AttrMap& curr_attrs) {
  Item* end = start;
  std::vector<std::pair<std::string, Item*>> end_formats;
  while (end != nullptr && (!end->countable() || end->deleted)) {
    if (!end->deleted && end->content.ref == ContentRef::kFormat) {
      bool found = false;
      for (auto& [k, it] : end_formats) {
        if (k == end->content.str) {
          it = end;
          found = true;
        }
      }
      if (!found) end_formats.emplace_back(end->content.str, end);
    }
    end = end->right;
  }
  int cleanups = 0;
  bool reached_curr = false;
  while (start != end) {
    if (curr == start) reached_curr = true;
    if (!start->deleted && start->content.ref == ContentRef::kFormat) {
      const std::string& key = start->content.str;
      const Any& value = start->content.values[0];
      const Any* sv = MapGet(start_attrs, key);
      Any start_val = sv != nullptr ? *sv : Any::Null();
      Item* ef = nullptr;
      for (auto& [k, it] : end_formats) {
        if (k == key) ef = it;
      }
      // Values are compared by identity in Yjs; primitives compare by value.
      auto same = [](const Any& a, const Any& b) {
        return a.kind != Any::Kind::kObject && a.kind != Any::Kind::kArray && a == b;
      };
      if (ef != start || same(start_val, value)) {
        in.DeleteItem(t, start);
        ++cleanups;
        const Any* cv = MapGet(curr_attrs, key);
        Any cur_val = cv != nullptr ? *cv : Any::Null();
        if (!reached_curr && same(cur_val, value) && !same(start_val, value)) {
          if (start_val.is_null()) {
            MapDelete(curr_attrs, key);
          } else {
            MapSet(curr_attrs, key, start_val);
          }
        }
      }
      if (!reached_curr && !start->deleted) UpdateCurrentAttributes(curr_attrs, start->content);
    }
    start = start->right;
  }
  return cleanups;
}

void DeleteText(Transaction& t, DocInternals& in, TextPos& pos, uint64_t length) {
  AttrMap start_attrs = pos.attrs;
  Item* start = pos.right;
  while (length > 0 && pos.right != nullptr) {
    Item* r = pos.right;
    if (!r->deleted) {
      switch (r->content.ref) {
        case ContentRef::kType:
        case ContentRef::kEmbed:
        case ContentRef::kString:
          if (length < r->length) in.GetItemCleanStart(t, Id{r->id.client, r->id.clock + length});
          length -= r->length;
          in.DeleteItem(t, r);
          break;
        default:
          break;
      }
    }
    Forward(pos);
  }
  if (start != nullptr) CleanupFormattingGap(t, in, start, pos.right, start_attrs, pos.attrs);
}

}  // namespace

// ---- Text

uint64_t Text::Length() const {
  return type_->length;
}

std::string Text::ToString() const {
  return TypeString(type_);
}

std::vector<DeltaOp> Text::ToDelta() const {
  return TypeDelta(type_);
}

Status Text::Insert(uint64_t index, std::string_view utf8, const std::optional<Attributes>& attributes) {
  if (utf8.empty()) return Ok();
  if (index > type_->length) return Err(BadArg("text insert index beyond length"));
  std::string s = IsValidUtf8(utf8) ? std::string(utf8) : SanitizeUtf8(utf8);
  return Edit(type_, [&](Transaction& t, DocInternals& in) -> Status {
    TextPos pos = FindPosition(t, in, type_, index, !attributes.has_value());
    Attributes attrs;
    if (attributes) {
      attrs = *attributes;
    } else {
      attrs = pos.attrs;
    }
    Content c;
    c.ref = ContentRef::kString;
    c.str = std::move(s);
    InsertText(t, in, type_, pos, std::move(c), std::move(attrs));
    return Ok();
  });
}

Status Text::InsertEmbed(uint64_t index, const Any& embed, const Attributes& attributes) {
  if (index > type_->length) return Err(BadArg("text insert index beyond length"));
  return Edit(type_, [&](Transaction& t, DocInternals& in) -> Status {
    TextPos pos = FindPosition(t, in, type_, index, attributes.empty());
    Content c;
    c.ref = ContentRef::kEmbed;
    c.values.push_back(embed);
    InsertText(t, in, type_, pos, std::move(c), attributes);
    return Ok();
  });
}

Status Text::Delete(uint64_t index, uint64_t length) {
  if (length == 0) return Ok();
  if (index + length > type_->length) return Err(BadArg("text delete range beyond length"));
  return Edit(type_, [&](Transaction& t, DocInternals& in) -> Status {
    TextPos pos = FindPosition(t, in, type_, index, true);
    DeleteText(t, in, pos, length);
    if (pos.right != nullptr && !type_->has_formatting) {
      type_->marker = pos.right;
      type_->marker_index = pos.index;
    }
    return Ok();
  });
}

Status Text::Format(uint64_t index, uint64_t length, const Attributes& attributes) {
  if (length == 0) return Ok();
  if (index > type_->length) return Err(BadArg("text format index beyond length"));
  Attributes attrs = Any::Object(attributes).object;
  return Edit(type_, [&](Transaction& t, DocInternals& in) -> Status {
    TextPos pos = FindPosition(t, in, type_, index, false);
    if (pos.right == nullptr) return Ok();
    // formatText
    MinimizeAttributeChanges(pos, attrs);
    AttrMap negated = InsertAttributes(t, in, type_, pos, attrs);
    uint64_t len = length;
    while (pos.right != nullptr &&
           (len > 0 || (!negated.empty() && (pos.right->deleted || pos.right->content.ref == ContentRef::kFormat)))) {
      Item* r = pos.right;
      bool stop = false;
      if (!r->deleted) {
        if (r->content.ref == ContentRef::kFormat) {
          const std::string key = r->content.str;
          const Any value = r->content.values[0];
          const Any* attr = ObjGet(attrs, key);
          if (attr != nullptr) {
            if (EqualAttrs(*attr, value)) {
              MapDelete(negated, key);
            } else {
              if (len == 0) {
                stop = true;
              } else {
                MapSet(negated, key, value);
              }
            }
            if (!stop) in.DeleteItem(t, r);
          } else {
            MapSet(pos.attrs, key, value);
          }
        } else {
          if (len < r->length) in.GetItemCleanStart(t, Id{r->id.client, r->id.clock + len});
          len -= std::min(len, r->length);
        }
      }
      if (stop) break;
      Forward(pos);
    }
    if (len > 0) {
      Content c;
      c.ref = ContentRef::kString;
      c.str.assign(len, '\n');
      pos.right = NewLocalItem(t, in, type_, pos.left, pos.right, nullptr, std::move(c));
      Forward(pos);
    }
    InsertNegatedAttributes(t, in, type_, pos, negated);
    return Ok();
  });
}

// ---- Map

namespace {
void AppendContentValues(const Item* it, std::vector<Value>& out);
}  // namespace

std::optional<Value> Map::Get(std::string_view key) const {
  auto it = type_->map.find(std::string(key));
  if (it == type_->map.end() || it->second->deleted) return std::nullopt;
  std::vector<Value> vals;
  AppendContentValues(it->second, vals);
  if (vals.empty()) return std::nullopt;
  return std::move(vals.back());
}

std::vector<std::string> Map::Keys() const {
  std::vector<std::string> keys;
  for (auto& [k, it] : type_->map) {
    if (!it->deleted) keys.push_back(k);
  }
  std::sort(keys.begin(), keys.end());
  return keys;
}

size_t Map::Size() const {
  return Keys().size();
}

void Map::Set(std::string_view key, const Any& value) {
  Edit(type_, [&](Transaction& t, DocInternals& in) {
    std::string k(key);
    auto it = type_->map.find(k);
    Item* left = it == type_->map.end() ? nullptr : it->second;
    Content c;
    if (value.kind == Any::Kind::kBinary) {
      c.ref = ContentRef::kBinary;
      c.str = value.str;
    } else {
      c = AnyContent({value});
    }
    NewLocalItem(t, in, type_, left, nullptr, &k, std::move(c));
    return 0;
  });
}

Type* Map::SetType(std::string_view key, TypeRef ref, std::string_view node_name) {
  return Edit(type_, [&](Transaction& t, DocInternals& in) {
    std::string k(key);
    auto it = type_->map.find(k);
    Item* left = it == type_->map.end() ? nullptr : it->second;
    Item* s = NewLocalItem(t, in, type_, left, nullptr, &k, TypeContent(ref, node_name));
    return s->content.type.get();
  });
}

void Map::Delete(std::string_view key) {
  Edit(type_, [&](Transaction& t, DocInternals& in) {
    auto it = type_->map.find(std::string(key));
    if (it != type_->map.end()) in.DeleteItem(t, it->second);
    return 0;
  });
}

// ---- Array

uint64_t Array::Length() const {
  return type_->length;
}

std::vector<Value> Array::ToVector() const {
  return ListValues(type_);
}

namespace {

// typeListInsertGenerics: returns the item after which to insert.
Item* ListInsertPosition(Transaction& t, DocInternals& in, Type* type, uint64_t index) {
  if (index == 0) return nullptr;
  uint64_t mi = 0;
  Item* n = FindMarker(type, index, &mi);
  index -= mi;
  if (index == 0) {
    n = n->left;
    while (n != nullptr && n->deleted) n = n->left;
    index += (n != nullptr && n->visible()) ? n->length : 0;
  }
  for (; n != nullptr; n = n->right) {
    if (n->visible()) {
      if (index <= n->length) {
        if (index < n->length) in.GetItemCleanStart(t, Id{n->id.client, n->id.clock + index});
        break;
      }
      index -= n->length;
    }
  }
  return n;
}

}  // namespace

Status Array::Insert(uint64_t index, const std::vector<Any>& values) {
  if (index > type_->length) return Err(BadArg("array insert index beyond length"));
  if (values.empty()) return Ok();
  return Edit(type_, [&](Transaction& t, DocInternals& in) -> Status {
    Item* left = ListInsertPosition(t, in, type_, index);
    Item* right = left == nullptr ? type_->start : left->right;
    std::vector<Any> run;
    auto flush = [&]() {
      if (run.empty()) return;
      left = NewLocalItem(t, in, type_, left, right, nullptr, AnyContent(std::move(run)));
      run.clear();
    };
    for (auto& v : values) {
      if (v.kind == Any::Kind::kBinary) {
        flush();
        Content c;
        c.ref = ContentRef::kBinary;
        c.str = v.str;
        left = NewLocalItem(t, in, type_, left, right, nullptr, std::move(c));
      } else {
        run.push_back(v);
      }
    }
    flush();
    return Ok();
  });
}

Result<Type*> Array::InsertType(uint64_t index, TypeRef ref, std::string_view node_name) {
  if (index > type_->length) return Err(BadArg("array insert index beyond length"));
  return Edit(type_, [&](Transaction& t, DocInternals& in) -> Result<Type*> {
    Item* left = ListInsertPosition(t, in, type_, index);
    Item* right = left == nullptr ? type_->start : left->right;
    Item* s = NewLocalItem(t, in, type_, left, right, nullptr, TypeContent(ref, node_name));
    return s->content.type.get();
  });
}

Status Array::Delete(uint64_t index, uint64_t length) {
  if (length == 0) return Ok();
  if (index + length > type_->length) return Err(BadArg("array delete range beyond length"));
  return Edit(type_, [&](Transaction& t, DocInternals& in) -> Status {
    uint64_t mi = 0;
    Item* n = FindMarker(type_, index, &mi);
    index -= mi;
    for (; n != nullptr && index > 0; n = n->right) {
      if (n->visible()) {
        if (index < n->length) in.GetItemCleanStart(t, Id{n->id.client, n->id.clock + index});
        index -= std::min(index, n->length);
      }
    }
    while (length > 0 && n != nullptr) {
      if (!n->deleted) {
        if (length < n->length) in.GetItemCleanStart(t, Id{n->id.client, n->id.clock + length});
        in.DeleteItem(t, n);
        length -= std::min(length, n->length);
      }
      n = n->right;
    }
    return Ok();
  });
}

std::vector<Value> XmlFragment::Children() const {
  return ListValues(type_);
}

// ================================================================ reading

namespace {

Value AnyValue(Any a) {
  Value v;
  v.any = std::move(a);
  return v;
}

void AppendContentValues(const Item* it, std::vector<Value>& out) {
  const Content& c = it->content;
  switch (c.ref) {
    case ContentRef::kAny:
    case ContentRef::kJson:
      for (auto& v : c.values) out.push_back(AnyValue(v));
      break;
    case ContentRef::kEmbed:
      out.push_back(AnyValue(c.values[0]));
      break;
    case ContentRef::kBinary:
      out.push_back(AnyValue(Any::Binary(c.str)));
      break;
    case ContentRef::kType: {
      Value v;
      v.type = c.type.get();
      out.push_back(v);
      break;
    }
    case ContentRef::kDoc: {
      Value v;
      v.is_subdoc = true;
      v.subdoc_guid = c.str;
      out.push_back(v);
      break;
    }
    case ContentRef::kString: {
      // One value per UTF-16 unit, as ContentString.getContent (pairs kept together here).
      size_t i = 0;
      while (i < c.str.size()) {
        unsigned char ch = static_cast<unsigned char>(c.str[i]);
        size_t n = ch < 0x80 ? 1 : ch < 0xE0 ? 2 : ch < 0xF0 ? 3 : 4;
        out.push_back(AnyValue(Any::String(c.str.substr(i, n))));
        i += n;
      }
      break;
    }
    default:
      break;
  }
}

}  // namespace

std::vector<Value> ListValues(const Type* t) {
  std::vector<Value> out;
  for (Item* it = t->start; it != nullptr; it = it->right) {
    if (it->visible()) AppendContentValues(it, out);
  }
  return out;
}

std::vector<std::pair<std::string, Value>> MapEntries(const Type* t) {
  std::vector<std::pair<std::string, Value>> out;
  for (auto& [k, it] : t->map) {
    if (it->deleted) continue;
    std::vector<Value> vals;
    AppendContentValues(it, vals);
    if (vals.empty()) continue;
    out.emplace_back(k, std::move(vals.back()));
  }
  std::sort(out.begin(), out.end(), [](auto& a, auto& b) { return a.first < b.first; });
  return out;
}

std::vector<DeltaOp> TypeDelta(const Type* t) {
  std::vector<DeltaOp> ops;
  AttrMap current;
  std::string str;
  auto pack = [&]() {
    if (str.empty()) return;
    DeltaOp op;
    op.text = std::move(str);
    op.attributes = current;
    ops.push_back(std::move(op));
    str.clear();
  };
  for (Item* n = t->start; n != nullptr; n = n->right) {
    if (n->deleted) continue;
    switch (n->content.ref) {
      case ContentRef::kString:
        str += n->content.str;
        break;
      case ContentRef::kType:
      case ContentRef::kEmbed: {
        pack();
        DeltaOp op;
        op.is_embed = true;
        if (n->content.ref == ContentRef::kType) {
          op.type = n->content.type.get();
        } else {
          op.embed = n->content.values[0];
        }
        op.attributes = current;
        ops.push_back(std::move(op));
        break;
      }
      case ContentRef::kFormat:
        pack();
        UpdateCurrentAttributes(current, n->content);
        break;
      default:
        break;
    }
  }
  pack();
  return ops;
}

namespace {

// JavaScript String(value) for attribute values.
std::string JsString(const Any& v) {
  switch (v.kind) {
    case Any::Kind::kUndefined:
      return "undefined";
    case Any::Kind::kNull:
      return "null";
    case Any::Kind::kNumber:
      return JsNumberToString(v.number);
    case Any::Kind::kBigInt:
      return std::to_string(v.bigint);
    case Any::Kind::kBool:
      return v.boolean ? "true" : "false";
    case Any::Kind::kString:
      return v.str;
    case Any::Kind::kBinary: {
      std::string out;
      for (size_t i = 0; i < v.str.size(); ++i) {
        if (i) out += ',';
        out += std::to_string(static_cast<uint8_t>(v.str[i]));
      }
      return out;
    }
    case Any::Kind::kArray: {
      std::string out;
      for (size_t i = 0; i < v.array.size(); ++i) {
        if (i) out += ',';
        const Any& e = v.array[i];
        if (e.kind != Any::Kind::kNull && e.kind != Any::Kind::kUndefined) out += JsString(e);
      }
      return out;
    }
    case Any::Kind::kObject:
      return "[object Object]";
  }
  return {};
}

std::string ValueString(const Value& v) {
  if (v.type != nullptr) return TypeString(v.type);
  if (v.is_subdoc) return "[object Object]";
  return JsString(v.any);
}

std::string AsciiLower(std::string s) {
  for (char& c : s) {
    if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
  }
  return s;
}

// YXmlText.toString: formatting attributes become nested tags.
std::string XmlTextString(const Type* t) {
  std::string out;
  for (auto& op : TypeDelta(t)) {
    std::vector<std::pair<std::string, const Any*>> nodes;
    for (auto& [name, val] : op.attributes) nodes.emplace_back(name, &val);
    std::sort(nodes.begin(), nodes.end(), [](auto& a, auto& b) { return a.first < b.first; });
    for (auto& [name, val] : nodes) {
      out += "<" + name;
      std::vector<std::pair<std::string, std::string>> attrs;
      if (val->kind == Any::Kind::kObject) {
        for (auto& [k, v] : val->object) attrs.emplace_back(k, JsString(v));
      } else if (val->kind == Any::Kind::kString) {
        size_t i = 0;
        for (size_t b = 0; b < val->str.size(); ++i) {  // for-in over a string: one key per UTF-16 unit
          unsigned char c = static_cast<unsigned char>(val->str[b]);
          size_t n = c < 0x80 ? 1 : c < 0xE0 ? 2 : c < 0xF0 ? 3 : 4;
          attrs.emplace_back(std::to_string(i), val->str.substr(b, n));
          b += n;
        }
      }
      std::sort(attrs.begin(), attrs.end(), [](auto& a, auto& b) { return a.first < b.first; });
      for (auto& [k, v] : attrs) out += " " + k + "=\"" + v + "\"";
      out += ">";
    }
    if (!op.is_embed) {
      out += op.text;
    } else if (op.type != nullptr) {
      out += TypeString(op.type);
    } else {
      out += JsString(op.embed);
    }
    for (auto it = nodes.rbegin(); it != nodes.rend(); ++it) out += "</" + it->first + ">";
  }
  return out;
}

}  // namespace

std::string TypeString(const Type* t) {
  switch (t->ref) {
    case TypeRef::kXmlText:
      return XmlTextString(t);
    case TypeRef::kXmlFragment:
    case TypeRef::kXmlElement: {
      std::string inner;
      for (auto& v : ListValues(t)) inner += ValueString(v);
      if (t->ref == TypeRef::kXmlFragment) return inner;
      std::string attrs;
      for (auto& [k, v] : MapEntries(t)) attrs += " " + k + "=\"" + ValueString(v) + "\"";
      std::string name = AsciiLower(t->name);
      return "<" + name + attrs + ">" + inner + "</" + name + ">";
    }
    case TypeRef::kXmlHook:
    case TypeRef::kMap:
      return "[object Object]";
    case TypeRef::kArray: {
      std::string out;
      auto vals = ListValues(t);
      for (size_t i = 0; i < vals.size(); ++i) {
        if (i) out += ',';
        out += ValueString(vals[i]);
      }
      return out;
    }
    default:
      break;
  }
  std::string s;
  for (Item* n = t->start; n != nullptr; n = n->right) {
    if (!n->deleted && n->content.ref == ContentRef::kString) s += n->content.str;
  }
  return s;
}

std::string XmlFragment::ToString() const {
  return TypeString(type_);
}

}  // namespace cnx::crdt
