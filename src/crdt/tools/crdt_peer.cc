// crdt_peer: a line protocol around cnx::crdt::Doc for differential tests
// against JavaScript Yjs (src/crdt/tests/differential.mjs). One command per
// line on stdin, one answer line on stdout:
//   new ID CLIENT GC       -> ok
//   apply ID B64           -> ok | err MESSAGE
//   edit ID SEED           -> B64 update of one random local edit (or "-")
//   state ID               -> {"json":{t,m,a},"sv":B64,"update":B64}
//   diff ID SVB64          -> B64 of EncodeStateAsUpdate(sv)
//   merge B64...           -> B64 of MergeUpdates
//   diffupdate B64 SVB64   -> B64 of DiffUpdate
//   relpos ID TYPE INDEX ASSOC -> B64 JSON of CreateRelativePositionFromTypeIndex
//                             (TYPE: root "t" or "nested" = the Y.Text at m["nested"]);
//                             "-" when that type does not exist
//   resolve ID B64         -> INDEX TYPE (TYPE: root name or CLIENT:CLOCK) | null
//   rpjson B64             -> JSON of the decoded position | err MESSAGE
//   rpfromjson JSON        -> B64 of the position read from JSON | err MESSAGE
#include <cstdio>
#include <fstream>
#include <iostream>
#include <map>
#include <memory>
#include <random>
#include <sstream>
#include <string>

#include "crdt/golden_json.h"
#include "crdt/relative_position.h"

using namespace cnx::crdt;

namespace {

std::vector<uint8_t> Unb64(const std::string& s) {
  auto r = Base64Decode(s);
  return r ? *r : std::vector<uint8_t>{};
}

// UTF-16 offsets of the code point boundaries of a text (embeds count 1).
std::vector<uint64_t> Boundaries(const Text& t) {
  std::vector<uint64_t> b{0};
  uint64_t u = 0;
  for (auto& op : t.ToDelta()) {
    if (op.is_embed) {
      b.push_back(++u);
      continue;
    }
    const std::string& s = op.text;
    for (size_t i = 0; i < s.size();) {
      unsigned char c = static_cast<unsigned char>(s[i]);
      size_t n = c < 0x80 ? 1 : c < 0xE0 ? 2 : c < 0xF0 ? 3 : 4;
      u += n == 4 ? 2 : 1;
      i += n;
      b.push_back(u);
    }
  }
  return b;
}

Any RandomValue(std::mt19937& rng) {
  switch (rng() % 8) {
    case 0:
      return Any::Number(static_cast<double>(static_cast<int>(rng() % 2001) - 1000));
    case 1:
      return Any::Number((rng() % 2) ? 0.5 : 1e10 + 0.25);
    case 2:
      return Any::String("s" + std::to_string(rng() % 100) + ((rng() % 3) == 0 ? "\xC3\xA9\xF0\x9F\x98\x80" : ""));
    case 3:
      return Any::Bool(rng() % 2);
    case 4:
      return Any::Null();
    case 5:
      return Any::Object({{"x", Any::Array({Any::Number(1), Any::String("y")})}, {"n", Any::Number(rng() % 50)}});
    case 6:
      return Any::Binary(std::string("\x01\x02\xff", 3));
    default:
      return Any::Array({Any::Number(rng() % 7), Any::Null()});
  }
}

std::string RandomText(std::mt19937& rng) {
  static const char* kPieces[] = {"a", "b",  "xyz",  "\xC3\xA9", "\xE4\xB8\xAD\xE6\x96\x87", "\xF0\x9F\x98\x80",
                                  " ", "\n", "hello"};
  std::string s;
  int n = 1 + static_cast<int>(rng() % 3);
  for (int i = 0; i < n; ++i) s += kPieces[rng() % 9];
  return s;
}

void RandomEdit(Doc& doc, uint32_t seed) {
  std::mt19937 rng(seed);
  auto t = doc.GetText("t");
  auto m = doc.GetMap("m");
  auto a = doc.GetArray("a");
  int op = static_cast<int>(rng() % 100);
  auto b = Boundaries(t);
  if (op < 35) {
    uint64_t at = b[rng() % b.size()];
    std::optional<Attributes> attrs;
    if (rng() % 5 == 0) attrs = Attributes{{"bold", Any::Bool(true)}};
    (void)t.Insert(at, RandomText(rng), attrs);
  } else if (op < 55) {
    if (b.size() < 2) return;
    size_t i = rng() % (b.size() - 1);
    size_t j = i + 1 + rng() % std::min<size_t>(4, b.size() - 1 - i);
    (void)t.Delete(b[i], b[j] - b[i]);
  } else if (op < 57) {
    Attributes attrs;
    if (rng() % 2) attrs = {{"bold", Any::Bool(true)}};
    (void)t.InsertEmbed(b[rng() % b.size()], Any::Object({{"image", Any::String("c" + std::to_string(rng() % 5))}}),
                        attrs);
  } else if (op < 63) {
    if (b.size() < 2) return;
    size_t i = rng() % (b.size() - 1);
    size_t j = i + 1 + rng() % (b.size() - 1 - i);
    Attributes attrs;
    switch (rng() % 3) {
      case 0:
        attrs = {{"bold", Any::Bool(true)}};
        break;
      case 1:
        attrs = {{"bold", Any::Null()}};
        break;
      default:
        attrs = {{"color", Any::String((rng() % 2) ? "#f00" : "#0f0")}};
        break;
    }
    (void)t.Format(b[i], b[j] - b[i], attrs);
  } else if (op < 76) {
    m.Set("k" + std::to_string(rng() % 6), RandomValue(rng));
  } else if (op < 78) {
    Type* nested = m.SetType("nested", TypeRef::kText);
    (void)Text(nested).Insert(0, "c" + std::to_string(rng() % 10));
  } else if (op < 83) {
    m.Delete("k" + std::to_string(rng() % 6));
  } else if (op < 94) {
    std::vector<Any> vals;
    int n = 1 + static_cast<int>(rng() % 3);
    for (int i = 0; i < n; ++i) vals.push_back(RandomValue(rng));
    (void)a.Insert(rng() % (a.Length() + 1), vals);
  } else {
    uint64_t len = a.Length();
    if (len == 0) return;
    uint64_t i = rng() % len;
    (void)a.Delete(i, 1 + rng() % std::min<uint64_t>(3, len - i));
  }
}

}  // namespace

int main() {
  std::ios::sync_with_stdio(false);
  std::map<std::string, std::unique_ptr<Doc>> docs;
  std::string line;
  while (std::getline(std::cin, line)) {
    std::istringstream in(line);
    std::string cmd;
    in >> cmd;
    std::string out;
    if (cmd == "new") {
      std::string id;
      uint32_t client = 0;
      int gc = 1;
      in >> id >> client >> gc;
      docs[id] = std::make_unique<Doc>(DocOptions{.client_id = client, .gc = gc != 0});
      docs[id]->GetText("t");
      docs[id]->GetMap("m");
      docs[id]->GetArray("a");
      docs[id]->GetXmlFragment("x");
      out = "ok";
    } else if (cmd == "apply") {
      std::string id, b64;
      in >> id >> b64;
      auto st = docs.at(id)->ApplyUpdate(Unb64(b64));
      out = st ? "ok" : "err " + st.error().ToString();
    } else if (cmd == "edit") {
      std::string id;
      uint32_t seed = 0;
      in >> id >> seed;
      Doc& d = *docs.at(id);
      auto u = d.Transact([&] { RandomEdit(d, seed); });
      out = u.empty() ? "-" : Base64Encode(u);
    } else if (cmd == "state") {
      std::string id;
      in >> id;
      Doc& d = *docs.at(id);
      nlohmann::json j;
      j["json"] = {{"t", DeltaToJson(d.GetText("t").ToDelta())},
                   {"m", TypeToJson(d.GetMap("m").type())},
                   {"a", TypeToJson(d.GetArray("a").type())},
                   {"x", TypeToJson(d.GetXmlFragment("x").type())}};
      j["xmlString"] = d.GetXmlFragment("x").ToString();
      j["sv"] = Base64Encode(d.EncodeStateVector());
      j["update"] = Base64Encode(*d.EncodeStateAsUpdate());
      out = j.dump();
    } else if (cmd == "diff") {
      std::string id, sv;
      in >> id >> sv;
      auto u = docs.at(id)->EncodeStateAsUpdate(Unb64(sv));
      out = u ? Base64Encode(*u) : "err " + u.error().ToString();
    } else if (cmd == "merge") {
      std::vector<std::vector<uint8_t>> us;
      std::string b;
      while (in >> b) us.push_back(Unb64(b == "-" ? "" : b));
      std::vector<std::span<const uint8_t>> spans(us.begin(), us.end());
      auto r = MergeUpdates(spans);
      out = r ? Base64Encode(*r) : "err " + r.error().ToString();
    } else if (cmd == "diffupdate") {
      std::string u, sv;
      in >> u >> sv;
      auto r = DiffUpdate(Unb64(u), Unb64(sv));
      out = r ? Base64Encode(*r) : "err " + r.error().ToString();
    } else if (cmd == "relpos") {
      std::string id, type;
      uint64_t index = 0;
      double assoc = 0;
      in >> id >> type >> index >> assoc;
      Doc& d = *docs.at(id);
      const Type* t = nullptr;
      if (type == "nested") {
        auto v = d.GetMap("m").Get("nested");
        if (v && v->type != nullptr && v->type->ref == TypeRef::kText) t = v->type;
      } else {
        t = d.GetText(type).type();
      }
      if (t == nullptr) {
        out = "-";
      } else {
        auto rp = CreateRelativePositionFromTypeIndex(t, index, assoc);
        auto bytes = EncodeRelativePosition(rp);
        out = Base64Encode(*bytes) + " " + RelativePositionToJson(rp).dump();
      }
    } else if (cmd == "resolve") {
      std::string id, b64;
      in >> id >> b64;
      auto rp = DecodeRelativePosition(Unb64(b64));
      if (!rp) {
        out = "err " + rp.error().ToString();
      } else {
        auto abs = CreateAbsolutePositionFromRelativePosition(*rp, *docs.at(id));
        if (!abs) {
          out = "null";
        } else {
          const Type* t = abs->type;
          std::string name = t->item == nullptr
                                 ? t->root_name
                                 : std::to_string(t->item->id.client) + ":" + std::to_string(t->item->id.clock);
          out = std::to_string(abs->index) + " " + name;
        }
      }
    } else if (cmd == "rpjson") {
      std::string b64;
      in >> b64;
      auto rp = DecodeRelativePosition(Unb64(b64));
      out = rp ? RelativePositionToJson(*rp).dump() : "err " + rp.error().ToString();
    } else if (cmd == "rpfromjson") {
      std::string rest;
      std::getline(in, rest);
      auto j = nlohmann::json::parse(rest, nullptr, false);
      auto rp = RelativePositionFromJson(j);
      if (!rp) {
        out = "err " + rp.error().ToString();
      } else {
        auto bytes = EncodeRelativePosition(*rp);
        out = bytes ? Base64Encode(*bytes) : "err " + bytes.error().ToString();
      }
    } else if (cmd == "quit") {
      break;
    } else {
      out = "err unknown command";
    }
    std::cout << out << '\n' << std::flush;
  }
  return 0;
}
