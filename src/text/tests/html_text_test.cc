#include "text/html_text.h"

#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <iterator>
#include <random>

#include "text/chunker.h"
#include "text/tokenizer.h"

namespace cnx::text {
namespace {

TEST(TextHtml, TagsGoScriptAndStyleContentsAreDropped) {
  std::string html =
      "<!DOCTYPE html><html><head><meta charset=utf-8><style>p { color: red }</style>"
      "<script>var x = '<p>not text</p>';</script></head>"
      "<body><!-- a comment <p>hidden</p> --><p class=\"intro\" data-x='a>b'>Hello <b>bold</b> world</p>"
      "<noscript>enable JS</noscript><template><p>tpl</p></template></body></html>";
  EXPECT_EQ(HtmlToText(html), "Hello bold world\n");
}

TEST(TextHtml, EntitiesAreDecoded) {
  EXPECT_EQ(HtmlToText("<p>a &amp; b &lt;c&gt; &quot;d&quot; &#39;e&#39; caf&eacute; &#xE9;&#233; &mdash; x</p>"),
            "a & b <c> \"d\" 'e' café éé — x\n");
  // Unknown names stay; bad code points become U+FFFD; nbsp is a space.
  EXPECT_EQ(HtmlToText("&bogus; &#0; &#xD800; &#x110000; a&nbsp;&nbsp;b &"),
            "&bogus; \xEF\xBF\xBD \xEF\xBF\xBD "
            "\xEF\xBF\xBD a b &\n");
  // An entity cannot make markup: &lt;script&gt; is text.
  EXPECT_EQ(HtmlToText("&lt;script&gt;alert(1)&lt;/script&gt;"), "<script>alert(1)</script>\n");
}

TEST(TextHtml, BlocksBecomeParagraphsAndLines) {
  std::string html =
      "<h1>Title</h1><p>First   paragraph\n spans\tlines.</p><div>Second<br>line two<br/>three</div>"
      "<ul><li>one</li><li> two </li><li></li></ul><h3>Sub</h3><p>end</p>";
  EXPECT_EQ(HtmlToText(html),
            "# Title\n\nFirst paragraph spans lines.\n\nSecond\nline two\nthree\n\n- one\n- two\n\n### Sub\n\nend\n");
}

TEST(TextHtml, PreKeepsWhitespaceInAFence) {
  std::string html = "<p>Run:</p><pre>\n$ cnx serve\n  --listen  :8080\n\n# a comment &amp; more</pre><p>done</p>";
  EXPECT_EQ(HtmlToText(html), "Run:\n\n```\n$ cnx serve\n  --listen  :8080\n\n# a comment & more\n```\n\ndone\n");
}

TEST(TextHtml, TablesJoinCells) {
  std::string html = "<table><tr><th>Name</th><th>Type</th></tr><tr><td>id</td><td>uuid</td></tr></table>";
  EXPECT_EQ(HtmlToText(html), "Name | Type\nid | uuid\n");
}

TEST(TextHtml, TitleIsTextAndMalformedMarkupIsText) {
  EXPECT_EQ(HtmlToText("<title>A &amp; B</title><p>x < y and 3<4</p>"), "A & B\n\nx < y and 3<4\n");
  EXPECT_EQ(HtmlToText(""), "");
  EXPECT_EQ(HtmlToText("<p></p><div>  </div>"), "");
  // Unclosed constructs end the document without losing what came before.
  EXPECT_EQ(HtmlToText("<p>kept</p><script>never closed"), "kept\n");
  EXPECT_EQ(HtmlToText("<p>kept</p><!-- never closed"), "kept\n");
  EXPECT_EQ(HtmlToText("<p>kept</p><a href=\"x"), "kept\n");
  EXPECT_EQ(HtmlToText("<P>Upper</P><SCRIPT>x</SCRIPT><Br>Case"), "Upper\n\nCase\n");
}

TEST(TextHtml, ContentTypes) {
  EXPECT_TRUE(IsHtmlContentType("text/html"));
  EXPECT_TRUE(IsHtmlContentType("Text/HTML; charset=utf-8"));
  EXPECT_TRUE(IsHtmlContentType("application/xhtml+xml"));
  EXPECT_FALSE(IsHtmlContentType("text/plain"));
  EXPECT_FALSE(IsHtmlContentType("text/htmlx"));
}

// Random markup soup: the result is valid UTF-8 (the chunker accepts it) and
// contains no tag the input spelled with '<' + letter outside text.
TEST(TextHtml, RandomMarkupGivesChunkableText) {
  std::mt19937 rng(7);
  static const char* kPieces[] = {"<p>",       "</p>",  "<pre>", "</pre>",    "<script>", "</script>", "<li>",
                                  "<h2>",      "</h2>", "&amp;", "&#x1F600;", "&#xD800;", "<!--",      "-->",
                                  "text ",     "über ", "日本 ", "\n",        "<br>",     "<td>",      "<tr>",
                                  "<a href='", "'>",    "&",     "<",         ">",        "<![CDATA[", "]]>"};
  for (int n = 0; n < 500; ++n) {
    std::string html;
    int pieces = static_cast<int>(rng() % 60);
    for (int k = 0; k < pieces; ++k) html += kPieces[rng() % std::size(kPieces)];
    std::string out = HtmlToText(html);
    auto chunks = ChunkDocument(out, "text/markdown", {.max_tokens = 64});
    ASSERT_TRUE(chunks.has_value()) << html;
    EXPECT_EQ(out.find("<script>"), std::string::npos) << html;
  }
}

// A real manual page: the text is much smaller than the markup, keeps the
// prose and drops the navigation scripts.
TEST(TextHtml, RealDocumentationPage) {
  std::filesystem::path dir = "/usr/share/doc/postgresql-doc-15/html";
  std::filesystem::path page = dir / "sql-select.html";
  if (!std::filesystem::exists(page)) GTEST_SKIP() << "postgresql-doc-15 is not installed";
  std::ifstream in(page, std::ios::binary);
  std::string html((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  std::string out = HtmlToText(html);
  EXPECT_LT(out.size(), html.size());
  EXPECT_NE(out.find("SELECT"), std::string::npos);
  EXPECT_EQ(out.find("</"), std::string::npos);
  EXPECT_EQ(out.find("&lt;"), std::string::npos);
  auto chunks = ChunkDocument(out, "text/markdown", {.max_tokens = 512});
  ASSERT_TRUE(chunks.has_value());
  EXPECT_GT(chunks->size(), 5u);
}

}  // namespace
}  // namespace cnx::text
