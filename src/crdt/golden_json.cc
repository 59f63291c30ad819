#include "crdt/golden_json.h"

#include <cmath>

namespace cnx::crdt {

using nlohmann::json;

const char* TypeRefName(TypeRef ref) {
  switch (ref) {
    case TypeRef::kArray:
      return "YArray";
    case TypeRef::kMap:
      return "YMap";
    case TypeRef::kText:
      return "YText";
    case TypeRef::kXmlElement:
      return "YXmlElement";
    case TypeRef::kXmlFragment:
      return "YXmlFragment";
    case TypeRef::kXmlHook:
      return "YXmlHook";
    case TypeRef::kXmlText:
      return "YXmlText";
    default:
      return "AbstractType";
  }
}

json AnyToJson(const Any& v) {
  switch (v.kind) {
    case Any::Kind::kUndefined:
      return json{{"$undefined", true}};
    case Any::Kind::kNull:
      return nullptr;
    case Any::Kind::kNumber: {
      double d = v.number;
      if (!std::isfinite(d)) return json{{"$number", JsNumberToString(d)}};
      if (d == 0 && std::signbit(d)) return json{{"$number", "-0"}};
      if (std::trunc(d) == d && std::fabs(d) < 9007199254740992.0) return static_cast<int64_t>(d);
      return d;
    }
    case Any::Kind::kBigInt:
      return v.bigint;
    case Any::Kind::kBool:
      return v.boolean;
    case Any::Kind::kString:
      return v.str;
    case Any::Kind::kBinary:
      return json{{"$binary", Base64Encode(std::span<const uint8_t>(reinterpret_cast<const uint8_t*>(v.str.data()),
                                                                    v.str.size()))}};
    case Any::Kind::kArray: {
      json a = json::array();
      for (auto& e : v.array) a.push_back(AnyToJson(e));
      return a;
    }
    case Any::Kind::kObject: {
      json o = json::object();
      for (auto& [k, e] : v.object) o[k] = AnyToJson(e);
      return o;
    }
  }
  return nullptr;
}

json ValueToJson(const Value& v) {
  if (v.type != nullptr) return json{{"$ytype", TypeRefName(v.type->ref)}, {"value", TypeToJson(v.type)}};
  if (v.is_subdoc) return json{{"$subdoc", {{"guid", v.subdoc_guid}}}};
  return AnyToJson(v.any);
}

json DeltaToJson(const std::vector<DeltaOp>& delta) {
  json out = json::array();
  for (auto& op : delta) {
    json o;
    if (!op.is_embed) {
      o["insert"] = op.text;
    } else if (op.type != nullptr) {
      Value v;
      v.type = op.type;
      o["insert"] = ValueToJson(v);
    } else {
      o["insert"] = AnyToJson(op.embed);
    }
    if (!op.attributes.empty()) {
      json a = json::object();
      for (auto& [k, val] : op.attributes) a[k] = AnyToJson(val);
      o["attributes"] = a;
    }
    out.push_back(o);
  }
  return out;
}

namespace {

json MapJson(const Type* t) {
  json o = json::object();
  for (auto& [k, v] : MapEntries(t)) o[k] = ValueToJson(v);
  return o;
}

json XmlJson(const Type* t) {
  switch (t->ref) {
    case TypeRef::kXmlText:
      return json{{"kind", "text"}, {"delta", DeltaToJson(TypeDelta(t))}, {"attributes", MapJson(t)}};
    case TypeRef::kXmlHook:
      return json{{"kind", "hook"}, {"hookName", t->name}, {"entries", MapJson(t)}};
    default:
      break;
  }
  json children = json::array();
  for (auto& v : ListValues(t)) {
    children.push_back(v.type != nullptr ? XmlJson(v.type) : ValueToJson(v));
  }
  if (t->ref == TypeRef::kXmlElement) {
    return json{{"kind", "element"}, {"nodeName", t->name}, {"attributes", MapJson(t)}, {"children", children}};
  }
  return json{{"kind", "fragment"}, {"children", children}};
}

}  // namespace

json TypeToJson(const Type* t) {
  switch (t->ref) {
    case TypeRef::kText:
      return TypeString(t);
    case TypeRef::kArray: {
      json a = json::array();
      for (auto& v : ListValues(t)) a.push_back(ValueToJson(v));
      return a;
    }
    case TypeRef::kXmlElement:
    case TypeRef::kXmlFragment:
    case TypeRef::kXmlHook:
    case TypeRef::kXmlText:
      return XmlJson(t);
    default:
      return MapJson(t);
  }
}

namespace {

// JSON.stringify with the inspector's replacer: binary/bigint/undefined tagged,
// other numbers as JSON numbers (-0 prints as 0, non-finite as null).
json InspectAny(const Any& v) {
  switch (v.kind) {
    case Any::Kind::kUndefined:
      return json{{"$undefined", true}};
    case Any::Kind::kBigInt:
      return json{{"$bigint", std::to_string(v.bigint)}};
    case Any::Kind::kNumber: {
      double d = v.number;
      if (!std::isfinite(d)) return nullptr;
      if (std::trunc(d) == d && std::fabs(d) < 9007199254740992.0) return static_cast<int64_t>(d);
      return d;
    }
    case Any::Kind::kArray: {
      json a = json::array();
      for (auto& e : v.array) a.push_back(InspectAny(e));
      return a;
    }
    case Any::Kind::kObject: {
      json o = json::object();
      for (auto& [k, e] : v.object) o[k] = InspectAny(e);
      return o;
    }
    default:
      return AnyToJson(v);
  }
}

json ContentJson(const Content& c, uint64_t length) {
  json o;
  switch (c.ref) {
    case ContentRef::kDeleted:
      o = {{"type", "Deleted"}};
      break;
    case ContentRef::kJson:
    case ContentRef::kAny: {
      json vals = json::array();
      for (auto& v : c.values) vals.push_back(InspectAny(v));
      o = {{"type", c.ref == ContentRef::kJson ? "JSON" : "Any"}, {"values", vals}};
      break;
    }
    case ContentRef::kBinary:
      o = {{"type", "Binary"}, {"value", AnyToJson(Any::Binary(c.str))}};
      break;
    case ContentRef::kString:
      o = {{"type", "String"}, {"value", c.str}};
      break;
    case ContentRef::kEmbed:
      o = {{"type", "Embed"}, {"value", InspectAny(c.values[0])}};
      break;
    case ContentRef::kFormat:
      o = {{"type", "Format"}, {"key", c.str}, {"value", InspectAny(c.values[0])}};
      break;
    case ContentRef::kType:
      o = {{"type", "Type"}, {"typeRef", static_cast<int>(c.type->ref)}, {"typeName", TypeRefName(c.type->ref)}};
      if (c.type->ref == TypeRef::kXmlElement) o["nodeName"] = c.type->name;
      if (c.type->ref == TypeRef::kXmlHook) o["hookName"] = c.type->name;
      break;
    case ContentRef::kDoc:
      o = {{"type", "Doc"}, {"guid", c.str}, {"opts", InspectAny(c.values[0])}};
      break;
    default:
      break;
  }
  o["length"] = length;
  return o;
}

}  // namespace

Result<json> InspectUpdate(std::span<const uint8_t> update) {
  Decoder d(update);
  json clients = json::array();
  uint64_t blocks = d.Count();
  for (uint64_t b = 0; b < blocks && d.ok(); ++b) {
    uint64_t n = d.Count();
    uint64_t client = d.VarUint();
    uint64_t clock = d.VarUint();
    json block = {{"client", client}, {"clock", clock}, {"structs", json::array()}};
    for (uint64_t i = 0; i < n && d.ok(); ++i) {
      size_t at = d.pos();
      auto s = ReadStruct(d, static_cast<uint32_t>(client), clock);
      if (!s) break;
      uint8_t info = update[at];
      json st = {{"at", at}, {"info", info}, {"clock", clock}, {"length", s->length}};
      if (s->is_gc() || s->is_skip()) {
        st["kind"] = s->is_gc() ? "GC" : "Skip";
      } else {
        st["kind"] = "Item";
        if (s->has_origin) st["origin"] = json::array({s->origin.client, s->origin.clock});
        if (s->has_right_origin) st["rightOrigin"] = json::array({s->right_origin.client, s->right_origin.clock});
        if (s->parent_kind == ParentKind::kRootName) st["parent"] = {{"root", s->parent_name}};
        if (s->parent_kind == ParentKind::kId) {
          st["parent"] = {{"item", json::array({s->parent_id.client, s->parent_id.clock})}};
        }
        if (s->has_parent_sub) st["parentSub"] = s->parent_sub;
        if ((info & 0xC0) != 0 && (info & 0x20) != 0) st["parentSubFlagOnly"] = true;
        st["content"] = ContentJson(s->content, s->length);
      }
      clock += s->length;
      block["structs"].push_back(st);
    }
    clients.push_back(block);
  }
  json ds = json::array();
  uint64_t nc = d.Count();
  for (uint64_t i = 0; i < nc && d.ok(); ++i) {
    uint64_t client = d.VarUint();
    uint64_t k = d.Count();
    json ranges = json::array();
    for (uint64_t j = 0; j < k && d.ok(); ++j) {
      uint64_t c = d.VarUint();
      uint64_t l = d.VarUint();
      ranges.push_back(json::array({c, l}));
    }
    ds.push_back({{"client", client}, {"ranges", ranges}});
  }
  if (d.ok() && !d.done()) d.Fail("trailing bytes");
  if (!d.ok()) return Err(Module::kCrdt, ErrorCode::kDataLoss, "update: " + d.error());
  return json{{"clients", clients}, {"deleteSet", ds}};
}

json DeleteSetToJson(const DeleteSet& ds) {
  json o = json::object();
  for (auto& [client, ranges] : ds.clients) {
    if (ranges.empty()) continue;
    json a = json::array();
    for (auto& r : ranges) a.push_back(json::array({r.clock, r.len}));
    o[std::to_string(client)] = a;
  }
  return o;
}

json StateVectorToJson(const StateVector& sv) {
  json o = json::object();
  for (auto& [c, k] : sv) o[std::to_string(c)] = k;
  return o;
}

}  // namespace cnx::crdt

namespace cnx::crdt {

namespace {

std::string B64(std::span<const uint8_t> b) {
  return Base64Encode(b);
}

bool ContainsHook(const Type* t) {
  if (t->ref == TypeRef::kXmlHook) return true;
  for (auto& v : ListValues(t)) {
    if (v.type != nullptr && ContainsHook(v.type)) return true;
  }
  return false;
}

Type* RootOf(Doc& doc, const std::string& name, const std::string& kind) {
  if (kind == "text") return doc.GetText(name).type();
  if (kind == "array") return doc.GetArray(name).type();
  if (kind == "xmlFragment") return doc.GetXmlFragment(name).type();
  return doc.GetMap(name).type();
}

}  // namespace

void CreateRoots(Doc& doc, const json& roots) {
  for (auto& [name, kind] : roots.items()) RootOf(doc, name, kind.get<std::string>());
}

json RootsJson(Doc& doc, const json& roots) {
  json out = json::object();
  for (auto& [name, kind] : roots.items()) out[name] = TypeToJson(RootOf(doc, name, kind.get<std::string>()));
  return out;
}

json RootsTextDelta(Doc& doc, const json& roots) {
  json out = json::object();
  for (auto& [name, kind] : roots.items()) {
    if (kind == "text") out[name] = DeltaToJson(TypeDelta(RootOf(doc, name, "text")));
  }
  return out;
}

Result<json> ReplayGoldenCase(const json& c, json* steps) {
  try {
    const json& roots = c.at("roots");
    DocOptions opts;
    opts.gc = c.value("gc", true);
    opts.client_id = 4242424242u;
    Doc doc(opts);
    CreateRoots(doc, roots);
    std::vector<std::vector<uint8_t>> updates;
    for (auto& u : c.at("updates")) {
      auto bytes = Base64Decode(u.get<std::string>());
      if (!bytes) return Err(bytes.error());
      updates.push_back(std::move(*bytes));
    }
    bool has_text = false;
    for (auto& [n, k] : roots.items()) has_text |= (k == "text");
    if (steps != nullptr) *steps = json::array();
    for (size_t i = 0; i < updates.size(); ++i) {
      auto st = doc.ApplyUpdate(updates[i]);
      if (!st) return Err(st.error().WithContext("update " + std::to_string(i)));
      if (steps != nullptr) {
        json s;
        s["after"] = i;
        s["json"] = RootsJson(doc, roots);
        s["stateVector"] = B64(doc.EncodeStateVector());
        s["pendingStructs"] = doc.HasPendingStructs();
        s["pendingDeleteSet"] = doc.HasPendingDeleteSet();
        if (has_text) s["textDelta"] = RootsTextDelta(doc, roots);
        steps->push_back(s);
      }
    }
    json e;
    e["json"] = RootsJson(doc, roots);
    if (has_text) e["textDelta"] = RootsTextDelta(doc, roots);
    json xml_strings = json::object();
    for (auto& [name, kind] : roots.items()) {
      if (kind == "xmlFragment" && !ContainsHook(doc.GetXmlFragment(name).type())) {
        xml_strings[name] = doc.GetXmlFragment(name).ToString();
      }
    }
    if (!xml_strings.empty()) e["xmlString"] = xml_strings;
    e["stateVector"] = B64(doc.EncodeStateVector());
    e["stateVectorMap"] = StateVectorToJson(doc.GetStateVector());
    DeleteSet ds = doc.DeleteSetFromStore();
    e["deleteSet"] = DeleteSetToJson(ds);
    e["pending"] =
        json{{"structs", doc.HasPendingStructs()},
             {"deleteSet", doc.HasPendingDeleteSet()},
             {"missing", doc.HasPendingStructs() ? StateVectorToJson(doc.PendingMissing()) : json::object()}};
    auto merged = doc.EncodeStateAsUpdate();
    if (!merged) return Err(merged.error());
    e["mergedUpdate"] = B64(*merged);
    auto decoded = InspectUpdate(*merged);
    if (!decoded) return Err(decoded.error());
    e["mergedUpdateDecoded"] = std::move(*decoded);
    std::vector<std::span<const uint8_t>> spans(updates.begin(), updates.end());
    auto mu = MergeUpdates(spans);
    if (!mu) return Err(mu.error());
    e["mergeUpdates"] = B64(*mu);
    auto musv = EncodeStateVectorFromUpdate(*mu);
    if (!musv) return Err(musv.error());
    e["mergeUpdatesStateVector"] = B64(*musv);
    if (c.contains("expected") && c["expected"].contains("diff")) {
      const json& d = c["expected"]["diff"];
      auto sv = Base64Decode(d.at("stateVector").get<std::string>());
      if (!sv) return Err(sv.error());
      json diff;
      diff["stateVector"] = d.at("stateVector");
      diff["afterUpdates"] = d.at("afterUpdates");
      auto esu = doc.EncodeStateAsUpdate(*sv);
      if (!esu) return Err(esu.error());
      diff["encodeStateAsUpdate"] = B64(*esu);
      auto du = DiffUpdate(*merged, *sv);
      if (!du) return Err(du.error());
      diff["diffUpdate"] = B64(*du);
      e["diff"] = diff;
    }
    return e;
  } catch (const json::exception& ex) {
    return Err(Module::kCrdt, ErrorCode::kInvalidArgument, std::string("golden case: ") + ex.what());
  }
}

}  // namespace cnx::crdt
