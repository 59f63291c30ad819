#include "graph/mutation_codec.h"

#include <algorithm>
#include <cstdint>

#include "graph/packstream.h"

namespace cnx::graph::codec {
namespace {

Value U64(uint64_t v) {
  return Value(static_cast<int64_t>(v));
}

std::unexpected<Error> Bad(const char* what) {
  return Err(Module::kGraph, ErrorCode::kDataLoss, std::string("graph record: ") + what);
}

Result<std::string> Str(Value& v) {
  if (!v.is_string()) return Bad("expected a String");
  return std::move(v.as_string());
}
Result<uint64_t> Ver(const Value& v) {
  if (!v.is_int()) return Bad("expected an Integer");
  return static_cast<uint64_t>(v.as_int());
}
Result<Map> Props(Value& v) {
  if (!v.is_map()) return Bad("expected a Map");
  return std::move(v.as_map());
}

}  // namespace

Value EncodeMutation(const Mutation& m) {
  return std::visit(
      [](const auto& x) -> Value {
        using T = std::decay_t<decltype(x)>;
        if constexpr (std::is_same_v<T, UpsertNode>) {
          return Structure{kUpsertNodeTag, {x.label, x.id, x.properties, U64(x.version)}};
        } else if constexpr (std::is_same_v<T, DeleteNode>) {
          return Structure{kDeleteNodeTag, {x.label, x.id, U64(x.version)}};
        } else if constexpr (std::is_same_v<T, UpsertRelationship>) {
          return Structure{
              kUpsertRelTag,
              {x.type, x.id, x.start_label, x.start_id, x.end_label, x.end_id, x.properties, U64(x.version)}};
        } else {
          return Structure{kDeleteRelTag, {x.type, x.id, U64(x.version)}};
        }
      },
      m);
}

Result<Mutation> DecodeMutation(Value v) {
  if (!v.is_struct()) return Bad("mutation is not a Structure");
  auto& s = v.as_struct();
  auto& f = s.fields;
  switch (s.tag) {
    case kUpsertNodeTag:
      if (f.size() != 4) break;
      return UpsertNode{CNX_TRY(Str(f[0])), CNX_TRY(Str(f[1])), CNX_TRY(Props(f[2])), CNX_TRY(Ver(f[3]))};
    case kDeleteNodeTag:
      if (f.size() != 3) break;
      return DeleteNode{CNX_TRY(Str(f[0])), CNX_TRY(Str(f[1])), CNX_TRY(Ver(f[2]))};
    case kUpsertRelTag:
      if (f.size() != 8) break;
      return UpsertRelationship{CNX_TRY(Str(f[0])), CNX_TRY(Str(f[1])), CNX_TRY(Str(f[2])),   CNX_TRY(Str(f[3])),
                                CNX_TRY(Str(f[4])), CNX_TRY(Str(f[5])), CNX_TRY(Props(f[6])), CNX_TRY(Ver(f[7]))};
    case kDeleteRelTag:
      if (f.size() != 3) break;
      return DeleteRelationship{CNX_TRY(Str(f[0])), CNX_TRY(Str(f[1])), CNX_TRY(Ver(f[2]))};
    default:
      return Bad("unknown mutation tag");
  }
  return Bad("wrong field count");
}

std::string EncodeBatch(const MutationBatch& b, std::optional<uint32_t> written_s) {
  List muts;
  muts.reserve(b.mutations.size());
  for (const auto& m : b.mutations) muts.push_back(EncodeMutation(m));
  if (written_s) {
    return packstream::Encode(Value(List{U64(b.position), Value(std::move(muts)), Value(b.reproject), Value(b.force),
                                         Value(static_cast<int64_t>(*written_s))}));
  }
  // Format 1: a re-projection batch has a third element, `true`; a forced one
  // a fourth, `true`.
  if (b.force) {
    return packstream::Encode(Value(List{U64(b.position), Value(std::move(muts)), Value(b.reproject), Value(true)}));
  }
  if (b.reproject) return packstream::Encode(Value(List{U64(b.position), Value(std::move(muts)), Value(true)}));
  return packstream::Encode(Value(List{U64(b.position), Value(std::move(muts))}));
}

namespace {

Result<MutationBatch> BatchOf(Value& v, std::optional<uint32_t>* written_s) {
  auto& l = v.as_list();
  if (l.size() < 2 || l.size() > 5 || !l[1].is_list()) return Bad("batch shape");
  MutationBatch b;
  for (size_t i = 2; i < std::min<size_t>(l.size(), 4); ++i) {
    if (!l[i].is_bool()) return Bad("batch shape");
    (i == 2 ? b.reproject : b.force) = l[i].as_bool();
  }
  if (l.size() == 5) {
    if (!l[4].is_int() || l[4].as_int() < 0 || l[4].as_int() > UINT32_MAX) return Bad("batch time");
    if (written_s != nullptr) *written_s = static_cast<uint32_t>(l[4].as_int());
  }
  b.position = CNX_TRY(Ver(l[0]));
  b.mutations.reserve(l[1].as_list().size());
  for (auto& m : l[1].as_list()) b.mutations.push_back(CNX_TRY(DecodeMutation(std::move(m))));
  if (auto st = ValidateBatch(b); !st) return Err(Module::kGraph, ErrorCode::kDataLoss, st.error().message());
  return b;
}

Result<Purge> PurgeOf(Value& v) {
  auto& f = v.as_struct().fields;
  if (f.size() != 2 || !f[0].is_list() || !f[1].is_list()) return Bad("purge shape");
  Purge p;
  for (int k = 0; k < 2; ++k) {
    auto& ids = k == 0 ? p.nodes : p.relationships;
    ids.reserve(f[k].as_list().size());
    for (auto& id : f[k].as_list()) {
      if (!id.is_string() || id.as_string().empty()) return Bad("purge id");
      ids.push_back(std::move(id.as_string()));
    }
  }
  return p;
}

}  // namespace

Result<MutationBatch> DecodeBatch(std::span<const uint8_t> bytes, std::optional<uint32_t>* written_s) {
  Value v = CNX_TRY(packstream::Decode(bytes));
  if (!v.is_list()) return Bad("batch shape");
  return BatchOf(v, written_s);
}

std::string EncodePurge(const Purge& p) {
  List nodes, rels;
  nodes.reserve(p.nodes.size());
  rels.reserve(p.relationships.size());
  for (const auto& id : p.nodes) nodes.push_back(Value(id));
  for (const auto& id : p.relationships) rels.push_back(Value(id));
  return packstream::Encode(Value(Structure{kPurgeTag, {Value(std::move(nodes)), Value(std::move(rels))}}));
}

Result<std::variant<LoggedBatch, Purge>> DecodeLogRecord(std::span<const uint8_t> bytes) {
  Value v = CNX_TRY(packstream::Decode(bytes));
  if (v.is_struct() && v.as_struct().tag == kPurgeTag) return CNX_TRY(PurgeOf(v));
  if (!v.is_list()) return Bad("log record shape");
  LoggedBatch lb;
  lb.batch = CNX_TRY(BatchOf(v, &lb.written_s));
  return lb;
}

}  // namespace cnx::graph::codec
