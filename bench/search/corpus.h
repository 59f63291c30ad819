// The PostgreSQL 15 documentation (Debian package postgresql-doc-15) as an
// evaluation corpus: every sect1/sect2 of the HTML pages becomes one section
// with its title and its own text (without its subsections, its table of
// contents, the page's navigation, and without the title itself).
#pragma once

#include <algorithm>
#include <cctype>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <map>
#include <sstream>
#include <string>
#include <string_view>
#include <vector>

namespace cnx::bench {

struct Section {
  std::string file;   // "continuous-archiving.html"
  std::string id;     // "BACKUP-ARCHIVING-WAL"
  std::string title;  // "Setting Up WAL Archiving" (numbering removed)
  std::string text;   // tags stripped, entities decoded, whitespace collapsed
};

inline void AppendUtf8(std::string& out, uint32_t cp) {
  if (cp < 0x80) {
    out += static_cast<char>(cp);
  } else if (cp < 0x800) {
    out += static_cast<char>(0xC0 | (cp >> 6));
    out += static_cast<char>(0x80 | (cp & 0x3F));
  } else if (cp < 0x10000) {
    out += static_cast<char>(0xE0 | (cp >> 12));
    out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
    out += static_cast<char>(0x80 | (cp & 0x3F));
  } else if (cp < 0x110000) {
    out += static_cast<char>(0xF0 | (cp >> 18));
    out += static_cast<char>(0x80 | ((cp >> 12) & 0x3F));
    out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
    out += static_cast<char>(0x80 | (cp & 0x3F));
  }
}

// Tags removed (block-level ones become a space), entities decoded,
// whitespace runs collapsed to one space.
inline std::string StripHtml(std::string_view html) {
  std::string raw;
  raw.reserve(html.size());
  for (size_t i = 0; i < html.size();) {
    char c = html[i];
    if (c == '<') {
      size_t end = html.find('>', i);
      if (end == std::string_view::npos) break;
      std::string_view tag = html.substr(i + 1, end - i - 1);
      // Inline tags join words ("<code>pg_wal</code>/"); block tags separate them.
      size_t n = tag.starts_with("/") ? 1 : 0;
      size_t m = n;
      while (m < tag.size() && std::isalnum(static_cast<unsigned char>(tag[m]))) ++m;
      std::string_view name = tag.substr(n, m - n);
      bool inline_tag = false;
      for (std::string_view t : {"span", "code", "em", "a", "strong", "i", "b", "sub", "sup", "acronym", "abbr"}) {
        inline_tag = inline_tag || name == t;
      }
      if (!inline_tag) raw += ' ';
      i = end + 1;
    } else if (c == '&') {
      size_t semi = html.find(';', i);
      if (semi == std::string_view::npos || semi - i > 10) {
        raw += c;
        ++i;
        continue;
      }
      std::string_view ent = html.substr(i + 1, semi - i - 1);
      if (ent == "lt") {
        raw += '<';
      } else if (ent == "gt") {
        raw += '>';
      } else if (ent == "amp") {
        raw += '&';
      } else if (ent == "quot") {
        raw += '"';
      } else if (ent == "apos") {
        raw += '\'';
      } else if (ent == "nbsp") {
        raw += ' ';
      } else if (!ent.empty() && ent[0] == '#') {
        uint32_t cp = 0;
        bool hex = ent.size() > 1 && (ent[1] == 'x' || ent[1] == 'X');
        for (char d : ent.substr(hex ? 2 : 1)) {
          cp = cp * (hex ? 16 : 10) +
               static_cast<uint32_t>(std::isdigit(static_cast<unsigned char>(d))
                                         ? d - '0'
                                         : (std::tolower(static_cast<unsigned char>(d)) - 'a' + 10));
        }
        AppendUtf8(raw, cp == 0xA0 ? 0x20 : cp);
      } else {
        raw += ' ';
      }
      i = semi + 1;
    } else {
      raw += c;
      ++i;
    }
  }
  std::string out;
  out.reserve(raw.size());
  bool space = true;
  for (char c : raw) {
    if (c == ' ' || c == '\n' || c == '\t' || c == '\r') {
      if (!space) out += ' ';
      space = true;
    } else {
      out += c;
      space = false;
    }
  }
  while (!out.empty() && out.back() == ' ') out.pop_back();
  return out;
}

// "26.3.1. Setting Up WAL Archiving" -> "Setting Up WAL Archiving";
// "F.2. adminpack — ..." -> "adminpack — ...".
inline std::string StripNumbering(std::string title) {
  size_t i = 0;
  while (i < title.size() && (std::isalnum(static_cast<unsigned char>(title[i])) || title[i] == '.')) {
    bool dot_follows = false;
    size_t j = i;
    while (j < title.size() && std::isalnum(static_cast<unsigned char>(title[j]))) ++j;
    if (j < title.size() && title[j] == '.') dot_follows = true;
    // A numbering token is digits (or one capital letter) followed by a dot.
    std::string_view tok(title.data() + i, j - i);
    bool numbering =
        dot_follows && !tok.empty() &&
        (std::all_of(tok.begin(), tok.end(), [](char c) { return std::isdigit(static_cast<unsigned char>(c)); }) ||
         (tok.size() == 1 && std::isupper(static_cast<unsigned char>(tok[0]))));
    if (!numbering) break;
    i = j + 1;
  }
  while (i < title.size() && title[i] == ' ') ++i;
  return title.substr(i);
}

// Removes every case-insensitive occurrence of `needle` from `text`.
inline std::string RemoveAll(const std::string& text, const std::string& needle) {
  if (needle.empty()) return text;
  auto lower = [](std::string s) {
    for (auto& c : s) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    return s;
  };
  std::string lt = lower(text), ln = lower(needle), out;
  size_t pos = 0;
  for (;;) {
    size_t hit = lt.find(ln, pos);
    if (hit == std::string::npos) break;
    out.append(text, pos, hit - pos);
    out += ' ';
    pos = hit + ln.size();
  }
  out.append(text, pos, std::string::npos);
  return out;
}

inline std::vector<Section> LoadPostgresDocs(const std::filesystem::path& dir) {
  std::vector<std::filesystem::path> files;
  for (const auto& e : std::filesystem::directory_iterator(dir)) {
    if (e.path().extension() == ".html") files.push_back(e.path());
  }
  std::sort(files.begin(), files.end());
  std::vector<Section> out;
  for (const auto& path : files) {
    std::ifstream in(path, std::ios::binary);
    std::stringstream ss;
    ss << in.rdbuf();
    std::string html = ss.str();
    // The page's sections in document order; each one's own text runs from
    // the end of its title to the start of the next section or the footer.
    struct Start {
      size_t div, body;
      std::string id, title;
    };
    std::vector<Start> starts;
    for (size_t pos = 0;;) {
      size_t a = html.find("<div class=\"sect", pos);
      if (a == std::string::npos) break;
      pos = a + 1;
      char level = a + 16 < html.size() ? html[a + 16] : 0;
      if ((level != '1' && level != '2') || html.compare(a + 17, 1, "\"") != 0) continue;
      size_t id_at = html.find("id=\"", a);
      size_t tag_end = html.find('>', a);
      std::string id;
      if (id_at != std::string::npos && id_at < tag_end) {
        size_t q = html.find('"', id_at + 4);
        id = html.substr(id_at + 4, q - id_at - 4);
      }
      size_t h = html.find("class=\"title\"", a);
      if (h == std::string::npos) continue;
      size_t h_open_end = html.find('>', h);
      size_t h_close = html.find("</h", h_open_end);
      if (h_open_end == std::string::npos || h_close == std::string::npos) continue;
      std::string title = StripNumbering(StripHtml(html.substr(h_open_end + 1, h_close - h_open_end - 1)));
      size_t body = html.find('>', h_close);
      starts.push_back({a, body == std::string::npos ? h_close : body + 1, id, title});
    }
    size_t footer = html.find("<div class=\"navfooter\"");
    if (footer == std::string::npos) footer = html.size();
    for (size_t i = 0; i < starts.size(); ++i) {
      size_t end = i + 1 < starts.size() ? starts[i + 1].div : footer;
      if (end <= starts[i].body) continue;
      std::string part = html.substr(starts[i].body, end - starts[i].body);
      // Drop the table of contents (it lists the subsections' titles).
      for (size_t t; (t = part.find("<div class=\"toc\">")) != std::string::npos;) {
        size_t e = part.find("</dl></div>", t);
        if (e == std::string::npos) break;
        part.erase(t, e + 11 - t);
      }
      Section s;
      s.file = path.filename().string();
      s.id = starts[i].id;
      s.title = starts[i].title;
      s.text = RemoveAll(StripHtml(part), s.title);
      out.push_back(std::move(s));
    }
  }
  return out;
}

}  // namespace cnx::bench
