// HtmlToText: the readable text of an HTML document, for chunking and
// embedding (content items of type text/html).
//
// - Tags are removed; the contents of script, style, noscript, template, svg
//   and iframe elements and comments are dropped; <title> and <textarea> text
//   is kept as text; <![CDATA[...]]> is dropped up to the first ">" (a bogus
//   comment, as browsers read it outside SVG and MathML).
// - Character references are decoded: numeric (&#233; &#xE9;) and the named
//   references in common use (&amp; &nbsp; &eacute; &mdash; ..., the table in
//   html_text.cc). An unknown name stays as written; a numeric reference to
//   NUL, a surrogate or beyond U+10FFFF becomes U+FFFD. &nbsp; is a space.
// - Layout becomes Markdown-like plain text, so the Markdown chunker cuts it
//   along its structure: block elements (p, div, li, tr, table, section, ...)
//   end a paragraph (a blank line), <br> ends a line, h1-h6 become "#" ..
//   "######" headings, li items start with "- ", table cells are joined by
//   " | ", and <pre> keeps its whitespace inside a ``` fence.
// - Outside <pre>, runs of whitespace collapse to one space (as a browser
//   renders them); lines carry no trailing spaces; the result ends with one
//   newline, or is empty when the document has no text.
//
// The input must be valid UTF-8 (the output then is too); malformed markup
// never fails: what cannot be read as a tag is text. Linear in the input size.
// Thread safety: a pure function.
#pragma once

#include <string>
#include <string_view>

namespace cnx::text {

std::string HtmlToText(std::string_view html);

// True for content types whose body is HTML: text/html, application/xhtml+xml
// (parameters such as "; charset=utf-8" and letter case are ignored).
bool IsHtmlContentType(std::string_view content_type);

}  // namespace cnx::text
