#include "crdt/item.h"

namespace cnx::crdt {
namespace {

constexpr std::string_view kReplacement = "\xEF\xBF\xBD";

void WriteTypeBody(Encoder& e, const Type& t) {
  e.VarUint(static_cast<uint8_t>(t.ref == TypeRef::kUnknown ? TypeRef::kMap : t.ref));
  if (t.ref == TypeRef::kXmlElement || t.ref == TypeRef::kXmlHook) e.String(t.name);
}

}  // namespace

uint64_t Content::Length() const {
  switch (ref) {
    case ContentRef::kDeleted:
    case ContentRef::kGc:
    case ContentRef::kSkip:
      return len;
    case ContentRef::kString:
      return Utf16Length(str);
    case ContentRef::kAny:
    case ContentRef::kJson:
      return values.size();
    default:
      return 1;
  }
}

Content Content::Splice(uint64_t offset) {
  Content right;
  right.ref = ref;
  switch (ref) {
    case ContentRef::kDeleted:
    case ContentRef::kGc:
    case ContentRef::kSkip:
      right.len = len - offset;
      len = offset;
      break;
    case ContentRef::kString: {
      bool inside = false;
      size_t at = Utf8OffsetOfUtf16(str, offset, &inside);
      if (inside) {
        // The pair's two halves both become U+FFFD (ContentString.splice).
        right.str = std::string(kReplacement) + str.substr(at + 4);
        str.resize(at);
        str += kReplacement;
      } else {
        right.str = str.substr(at);
        str.resize(at);
      }
      break;
    }
    case ContentRef::kAny:
    case ContentRef::kJson:
      right.values.assign(std::make_move_iterator(values.begin() + static_cast<ptrdiff_t>(offset)),
                          std::make_move_iterator(values.end()));
      values.resize(offset);
      break;
    default:
      break;  // length-1 contents are never split
  }
  return right;
}

void Content::Append(Content&& r) {
  switch (ref) {
    case ContentRef::kDeleted:
    case ContentRef::kGc:
    case ContentRef::kSkip:
      len += r.len;
      break;
    case ContentRef::kString:
      str += r.str;
      break;
    case ContentRef::kAny:
    case ContentRef::kJson:
      values.insert(values.end(), std::make_move_iterator(r.values.begin()), std::make_move_iterator(r.values.end()));
      break;
    default:
      break;
  }
}

Content Content::Clone() const {
  Content c;
  c.ref = ref;
  c.len = len;
  c.str = str;
  c.values = values;
  if (type) {
    c.type = std::make_unique<Type>();
    c.type->ref = type->ref;
    c.type->name = type->name;
  }
  return c;
}

void Content::Write(Encoder& e, uint64_t offset) const {
  switch (ref) {
    case ContentRef::kGc:
    case ContentRef::kSkip:
    case ContentRef::kDeleted:
      e.VarUint(len - offset);
      break;
    case ContentRef::kJson:
      e.VarUint(values.size() - offset);
      for (size_t i = offset; i < values.size(); ++i) {
        e.String(values[i].kind == Any::Kind::kUndefined ? std::string("undefined") : JsonStringify(values[i]));
      }
      break;
    case ContentRef::kBinary:
      e.Bytes(str);
      break;
    case ContentRef::kString: {
      if (offset == 0) {
        e.String(str);
      } else {
        bool inside = false;
        size_t at = Utf8OffsetOfUtf16(str, offset, &inside);
        if (inside) {
          // A lone low surrogate is written by TextEncoder as U+FFFD.
          e.String(std::string(kReplacement) + str.substr(at + 4));
        } else {
          e.String(std::string_view(str).substr(at));
        }
      }
      break;
    }
    case ContentRef::kEmbed:
      e.String(JsonStringify(values[0]));
      break;
    case ContentRef::kFormat:
      e.String(str);
      e.String(JsonStringify(values[0]));
      break;
    case ContentRef::kType:
      WriteTypeBody(e, *type);
      break;
    case ContentRef::kAny:
      e.VarUint(values.size() - offset);
      for (size_t i = offset; i < values.size(); ++i) e.Any(values[i]);
      break;
    case ContentRef::kDoc:
      e.String(str);
      e.Any(values[0]);
      break;
  }
}

void Item::Write(Encoder& e, uint64_t offset) const {
  if (is_gc() || is_skip()) {
    e.U8(static_cast<uint8_t>(content.ref));
    e.VarUint(length - offset);
    return;
  }
  bool o = offset > 0 || has_origin;
  Id org = offset > 0 ? Id{id.client, id.clock + offset - 1} : origin;
  uint8_t info = static_cast<uint8_t>(static_cast<uint8_t>(content.ref) & 0x1F) | (o ? 0x80 : 0) |
                 (has_right_origin ? 0x40 : 0) | (has_parent_sub ? 0x20 : 0);
  e.U8(info);
  if (o) {
    e.VarUint(org.client);
    e.VarUint(org.clock);
  }
  if (has_right_origin) {
    e.VarUint(right_origin.client);
    e.VarUint(right_origin.clock);
  }
  if (!o && !has_right_origin) {
    switch (parent_kind) {
      case ParentKind::kType:
        if (parent->item == nullptr) {
          e.VarUint(1);
          e.String(parent->root_name);
        } else {
          e.VarUint(0);
          e.VarUint(parent->item->id.client);
          e.VarUint(parent->item->id.clock);
        }
        break;
      case ParentKind::kRootName:
        e.VarUint(1);
        e.String(parent_name);
        break;
      case ParentKind::kId:
      case ParentKind::kNone:  // not reachable for valid structs
        e.VarUint(0);
        e.VarUint(parent_id.client);
        e.VarUint(parent_id.clock);
        break;
    }
    if (has_parent_sub) e.String(parent_sub);
  }
  content.Write(e, offset);
}

Content ReadContent(Decoder& d, uint8_t info) {
  Content c;
  uint8_t ref = info & 0x1F;
  switch (ref) {
    case 1:
      c.ref = ContentRef::kDeleted;
      c.len = d.VarUint();
      if (d.ok() && c.len == 0) d.Fail("empty Deleted content");
      break;
    case 2: {
      c.ref = ContentRef::kJson;
      uint64_t n = d.Count();
      for (uint64_t i = 0; i < n && d.ok(); ++i) {
        std::string s = d.String();
        if (!d.ok()) break;
        if (s == "undefined") {
          c.values.push_back(Any::Undefined());
        } else {
          auto v = JsonParse(s);
          if (!v) {
            d.Fail(v.error().message());
            break;
          }
          c.values.push_back(std::move(*v));
        }
      }
      if (d.ok() && c.values.empty()) d.Fail("empty JSON content");
      break;
    }
    case 3:
      c.ref = ContentRef::kBinary;
      c.str = d.Bytes();
      break;
    case 4:
      c.ref = ContentRef::kString;
      c.str = d.String();
      if (d.ok() && c.str.empty()) d.Fail("empty String content");
      break;
    case 5: {
      c.ref = ContentRef::kEmbed;
      std::string s = d.String();
      if (!d.ok()) break;
      auto v = JsonParse(s);
      if (!v) {
        d.Fail(v.error().message());
        break;
      }
      c.values.push_back(std::move(*v));
      break;
    }
    case 6: {
      c.ref = ContentRef::kFormat;
      c.str = d.String();
      std::string s = d.String();
      if (!d.ok()) break;
      auto v = JsonParse(s);
      if (!v) {
        d.Fail(v.error().message());
        break;
      }
      c.values.push_back(std::move(*v));
      break;
    }
    case 7: {
      c.ref = ContentRef::kType;
      uint64_t tr = d.VarUint();
      if (!d.ok()) break;
      if (tr > 6) {
        d.Fail("unknown type ref " + std::to_string(tr));
        break;
      }
      c.type = std::make_unique<Type>();
      c.type->ref = static_cast<TypeRef>(tr);
      if (tr == 3 || tr == 5) c.type->name = d.String();
      break;
    }
    case 8: {
      c.ref = ContentRef::kAny;
      uint64_t n = d.Count();
      c.values.reserve(n);
      for (uint64_t i = 0; i < n && d.ok(); ++i) c.values.push_back(d.Any());
      if (d.ok() && c.values.empty()) d.Fail("empty Any content");
      break;
    }
    case 9: {
      c.ref = ContentRef::kDoc;
      c.str = d.String();
      Any opts = d.Any();
      if (d.ok() && opts.kind != Any::Kind::kObject) d.Fail("subdocument options must be an object");
      c.values.push_back(std::move(opts));
      break;
    }
    default:
      d.Fail("unknown content ref " + std::to_string(ref));
      break;
  }
  return c;
}

std::unique_ptr<Item> ReadStruct(Decoder& d, uint32_t client, uint64_t clock) {
  auto s = std::make_unique<Item>();
  s->id = Id{client, clock};
  uint8_t info = d.U8();
  if (!d.ok()) return nullptr;
  uint8_t ref = info & 0x1F;
  if (ref == 0 || ref == 10) {
    if (info != ref) {
      d.Fail("GC/Skip struct with flag bits");
      return nullptr;
    }
    s->content.ref = ref == 0 ? ContentRef::kGc : ContentRef::kSkip;
    s->content.len = d.VarUint();
    s->length = s->content.len;
    if (d.ok() && s->length == 0) d.Fail("empty GC/Skip struct");
    return d.ok() ? std::move(s) : nullptr;
  }
  if ((info & 0x80) != 0) {
    s->has_origin = true;
    uint64_t c = d.VarUint();
    s->origin = Id{static_cast<uint32_t>(c), d.VarUint()};
    if (c > 0xFFFFFFFFULL) d.Fail("client id out of range");
  }
  if ((info & 0x40) != 0) {
    s->has_right_origin = true;
    uint64_t c = d.VarUint();
    s->right_origin = Id{static_cast<uint32_t>(c), d.VarUint()};
    if (c > 0xFFFFFFFFULL) d.Fail("client id out of range");
  }
  if ((info & 0xC0) == 0) {
    uint64_t parent_info = d.VarUint();
    if (parent_info == 1) {
      s->parent_kind = ParentKind::kRootName;
      s->parent_name = d.String();
    } else {
      s->parent_kind = ParentKind::kId;
      uint64_t c = d.VarUint();
      s->parent_id = Id{static_cast<uint32_t>(c), d.VarUint()};
      if (c > 0xFFFFFFFFULL) d.Fail("client id out of range");
    }
    if ((info & 0x20) != 0) {
      s->has_parent_sub = true;
      s->parent_sub = d.String();
    }
  }
  s->content = ReadContent(d, info);
  if (!d.ok()) return nullptr;
  s->length = s->content.Length();
  return s;
}

std::unique_ptr<Item> SliceWireStruct(const Item& s, uint64_t diff) {
  auto r = std::make_unique<Item>();
  r->id = Id{s.id.client, s.id.clock + diff};
  r->length = s.length - diff;
  if (s.is_gc() || s.is_skip()) {
    r->content.ref = s.content.ref;
    r->content.len = r->length;
    return r;
  }
  r->has_origin = true;
  r->origin = Id{s.id.client, s.id.clock + diff - 1};
  r->has_right_origin = s.has_right_origin;
  r->right_origin = s.right_origin;
  r->parent_kind = s.parent_kind;
  r->parent = s.parent;
  r->parent_id = s.parent_id;
  r->parent_name = s.parent_name;
  r->has_parent_sub = s.has_parent_sub;
  r->parent_sub = s.parent_sub;
  Content copy = s.content.Clone();
  r->content = copy.Splice(diff);
  return r;
}

}  // namespace cnx::crdt
