#include "crdt/relative_position.h"

#include <cmath>

#include "crdt/doc.h"
#include "crdt/lib0.h"

namespace cnx::crdt {
namespace {

constexpr double kMaxSafeInteger = 9007199254740991.0;

Error DataLoss(const std::string& m) {
  return Error(Module::kCrdt, ErrorCode::kDataLoss, m);
}
Error BadArg(const std::string& m) {
  return Error(Module::kCrdt, ErrorCode::kInvalidArgument, m);
}

RelativePosition ForType(const Type* type, std::optional<Id> item, double assoc) {
  RelativePosition p;
  if (type->item == nullptr) {
    p.tname = type->root_name;
  } else {
    p.type = type->item->id;
  }
  p.item = item;
  p.assoc = assoc;
  return p;
}

Result<Id> ReadId(Decoder& d) {
  uint64_t client = d.VarUint();
  uint64_t clock = d.VarUint();
  if (!d.ok()) return std::unexpected(DataLoss("relative position: " + d.error()));
  if (client > 0xFFFFFFFFULL) return std::unexpected(DataLoss("relative position: client id out of range"));
  return Id{static_cast<uint32_t>(client), clock};
}

void WriteId(Encoder& e, const Id& id) {
  e.VarUint(id.client);
  e.VarUint(id.clock);
}

nlohmann::ordered_json IdJson(const Id& id) {
  nlohmann::ordered_json j;
  j["client"] = id.client;
  j["clock"] = id.clock;
  return j;
}

Result<std::optional<Id>> IdFromJson(const nlohmann::json& j, const char* key) {
  auto it = j.find(key);
  if (it == j.end() || it->is_null()) return std::optional<Id>();
  if (!it->is_object()) return std::unexpected(BadArg(std::string("relative position: ") + key + " is not an object"));
  auto num = [&](const char* k, double max) -> Result<uint64_t> {
    auto f = it->find(k);
    if (f == it->end() || !f->is_number()) {
      return std::unexpected(BadArg(std::string("relative position: ") + key + "." + k + " is not a number"));
    }
    double v = f->get<double>();
    if (!(v >= 0) || v > max || std::floor(v) != v) {
      return std::unexpected(BadArg(std::string("relative position: ") + key + "." + k + " is out of range"));
    }
    return static_cast<uint64_t>(v);
  };
  auto client = num("client", 4294967295.0);
  if (!client) return std::unexpected(client.error());
  auto clock = num("clock", kMaxSafeInteger);
  if (!clock) return std::unexpected(clock.error());
  return std::optional<Id>(Id{static_cast<uint32_t>(*client), *clock});
}

}  // namespace

RelativePosition CreateRelativePositionFromTypeIndex(const Type* type, uint64_t index, double assoc) {
  if (assoc < 0) {
    // Attached to the unit before the index, or to the start of the type.
    if (index == 0) return ForType(type, std::nullopt, assoc);
    --index;
  }
  for (const Item* t = type->start; t != nullptr; t = t->right) {
    if (!t->deleted && t->countable()) {
      if (t->length > index) return ForType(type, Id{t->id.client, t->id.clock + index}, assoc);
      index -= t->length;
    }
    if (t->right == nullptr && assoc < 0) return ForType(type, t->last_id(), assoc);
  }
  return ForType(type, std::nullopt, assoc);
}

Result<std::vector<uint8_t>> EncodeRelativePosition(const RelativePosition& pos) {
  Encoder e;
  if (pos.item) {
    e.VarUint(0);
    WriteId(e, *pos.item);
  } else if (pos.tname) {
    e.U8(1);
    e.String(*pos.tname);
  } else if (pos.type) {
    e.U8(2);
    WriteId(e, *pos.type);
  } else {
    return std::unexpected(BadArg("relative position names neither an item nor a type"));
  }
  e.VarInt(pos.assoc);
  return e.Take();
}

Result<RelativePosition> DecodeRelativePosition(std::span<const uint8_t> bytes) {
  Decoder d(bytes);
  RelativePosition p;
  uint64_t kind = d.VarUint();
  if (!d.ok()) return std::unexpected(DataLoss("relative position: " + d.error()));
  switch (kind) {
    case 0: {
      auto id = ReadId(d);
      if (!id) return std::unexpected(id.error());
      p.item = *id;
      break;
    }
    case 1: {
      std::string name = d.String();
      if (!d.ok()) return std::unexpected(DataLoss("relative position: " + d.error()));
      p.tname = std::move(name);
      break;
    }
    case 2: {
      auto id = ReadId(d);
      if (!id) return std::unexpected(id.error());
      p.type = *id;
      break;
    }
    default:
      return std::unexpected(DataLoss("relative position: unknown kind " + std::to_string(kind)));
  }
  if (!d.done()) {
    p.assoc = d.VarInt();
    if (!d.ok()) return std::unexpected(DataLoss("relative position: " + d.error()));
  }
  return p;
}

nlohmann::ordered_json RelativePositionToJson(const RelativePosition& pos) {
  nlohmann::ordered_json j = nlohmann::ordered_json::object();
  if (pos.type) j["type"] = IdJson(*pos.type);
  if (pos.tname && !pos.tname->empty()) j["tname"] = *pos.tname;  // JS: `if (rpos.tname)`
  if (pos.item) j["item"] = IdJson(*pos.item);
  // JSON.stringify writes -0 as 0.
  if (pos.assoc == 0) {
    j["assoc"] = 0;
  } else {
    j["assoc"] = static_cast<int64_t>(pos.assoc);
  }
  return j;
}

Result<RelativePosition> RelativePositionFromJson(const nlohmann::json& j) {
  if (!j.is_object()) return std::unexpected(BadArg("relative position is not a JSON object"));
  RelativePosition p;
  auto type = IdFromJson(j, "type");
  if (!type) return std::unexpected(type.error());
  auto item = IdFromJson(j, "item");
  if (!item) return std::unexpected(item.error());
  p.type = *type;
  p.item = *item;
  if (auto it = j.find("tname"); it != j.end() && !it->is_null()) {
    if (!it->is_string()) return std::unexpected(BadArg("relative position: tname is not a string"));
    p.tname = it->get<std::string>();
  }
  if (auto it = j.find("assoc"); it != j.end() && !it->is_null()) {
    if (!it->is_number()) return std::unexpected(BadArg("relative position: assoc is not a number"));
    double a = it->get<double>();
    if (!std::isfinite(a) || std::floor(a) != a || std::fabs(a) > kMaxSafeInteger) {
      return std::unexpected(BadArg("relative position: assoc is not an integer"));
    }
    p.assoc = a;
  }
  if (!p.item && !p.tname && !p.type) {
    return std::unexpected(BadArg("relative position names neither an item nor a type"));
  }
  return p;
}

std::optional<AbsolutePosition> CreateAbsolutePositionFromRelativePosition(const RelativePosition& pos, Doc& doc) {
  AbsolutePosition abs;
  abs.assoc = pos.assoc;
  if (pos.item) {
    const Item* right = doc.FindStruct(*pos.item);
    if (right == nullptr || !right->is_item() || right->parent_kind != ParentKind::kType || right->parent == nullptr) {
      return std::nullopt;
    }
    abs.type = right->parent;
    const Item* holder = abs.type->item;
    if (holder == nullptr || !holder->deleted) {
      uint64_t index = 0;
      if (!right->deleted && right->countable()) index = (pos.item->clock - right->id.clock) + (pos.assoc >= 0 ? 0 : 1);
      for (const Item* n = right->left; n != nullptr; n = n->left) {
        if (!n->deleted && n->countable()) index += n->length;
      }
      abs.index = index;
    }
    return abs;
  }
  if (pos.tname) {
    abs.type = doc.Root(*pos.tname, TypeRef::kUnknown);
  } else if (pos.type) {
    const Item* it = doc.FindStruct(*pos.type);
    if (it == nullptr || !it->is_item() || it->content.ref != ContentRef::kType || !it->content.type) {
      return std::nullopt;
    }
    abs.type = it->content.type.get();
  } else {
    return std::nullopt;
  }
  abs.index = pos.assoc >= 0 ? abs.type->length : 0;
  return abs;
}

}  // namespace cnx::crdt
