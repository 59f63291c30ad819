// The tiktoken rank files, embedded into the binary at build time so `cnx` works
// from any directory. CMake decompresses the .tiktoken.gz files from the shared
// test data into the build tree; .incbin copies their bytes verbatim, and the
// loader checks their sha256 before use.
#include "text/internal/ranks_data.h"

#ifndef CNX_TEXT_CL100K_FILE
#error "CNX_TEXT_CL100K_FILE must name the decompressed cl100k_base.tiktoken"
#endif
#ifndef CNX_TEXT_O200K_FILE
#error "CNX_TEXT_O200K_FILE must name the decompressed o200k_base.tiktoken"
#endif

__asm__(
    ".pushsection .rodata.cnx_text_ranks,\"a\",@progbits\n"
    ".balign 16\n"
    ".global cnx_text_cl100k_begin\n"
    "cnx_text_cl100k_begin:\n"
    ".incbin \"" CNX_TEXT_CL100K_FILE
    "\"\n"
    ".global cnx_text_cl100k_end\n"
    "cnx_text_cl100k_end:\n"
    ".balign 16\n"
    ".global cnx_text_o200k_begin\n"
    "cnx_text_o200k_begin:\n"
    ".incbin \"" CNX_TEXT_O200K_FILE
    "\"\n"
    ".global cnx_text_o200k_end\n"
    "cnx_text_o200k_end:\n"
    ".popsection\n");

extern "C" {
extern const char cnx_text_cl100k_begin[];
extern const char cnx_text_cl100k_end[];
extern const char cnx_text_o200k_begin[];
extern const char cnx_text_o200k_end[];
}

namespace cnx::text::internal {

std::string_view EmbeddedRanks(std::string_view encoding) {
  if (encoding == "cl100k_base") {
    return {cnx_text_cl100k_begin, static_cast<size_t>(cnx_text_cl100k_end - cnx_text_cl100k_begin)};
  }
  if (encoding == "o200k_base") {
    return {cnx_text_o200k_begin, static_cast<size_t>(cnx_text_o200k_end - cnx_text_o200k_begin)};
  }
  return {};
}

}  // namespace cnx::text::internal
