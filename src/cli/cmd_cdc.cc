// `cnx cdc ...`: change-capture tools.
//   cnx cdc decode   reads a pgoutput stream in the golden-file input format on
//                    stdin (one hex message or hex CopyData frame per line) and
//                    prints one JSON object per decoded message.
#include <cstdio>
#include <iostream>
#include <string>

#include "cdc/event_json.h"
#include "cdc/pgoutput.h"
#include "cli/command.h"

namespace cnx::cli {
namespace {

int RunDecode(bool keep_going) {
  std::ios::sync_with_stdio(false);
  cdc::Decoder decoder;
  cdc::Message msg;
  std::string line, out;
  size_t lineno = 0, errors = 0;
  while (std::getline(std::cin, line)) {
    ++lineno;
    out.clear();
    auto r = cdc::DecodeHexLineToJson(line, decoder, msg, out);
    if (!r) {
      ++errors;
      std::fprintf(stderr, "cnx: line %zu: %s\n", lineno, r.error().ToString().c_str());
      if (!keep_going) return 1;
      continue;
    }
    if (*r) {
      out.push_back('\n');
      std::fwrite(out.data(), 1, out.size(), stdout);
    }
  }
  return errors == 0 ? 0 : 1;
}

void AddCdc(CLI::App& app) {
  auto* cdc = app.add_subcommand("cdc", "Change capture tools (pgoutput)");
  cdc->require_subcommand(1);
  auto* decode = cdc->add_subcommand(
      "decode",
      "Decode a pgoutput stream from stdin: one hex-encoded message per line, or hex CopyData frames "
      "('w' XLogData with header, 'k' keepalives are skipped); prints one JSON object per message");
  auto keep_going = std::make_shared<bool>(false);
  decode->add_flag("--keep-going", *keep_going,
                   "Report malformed lines on stderr and continue (exit code 1 at the end)");
  OnRun(decode, [keep_going] { return RunDecode(*keep_going); });
}

}  // namespace
CNX_REGISTER_COMMANDS(cdc, AddCdc);
}  // namespace cnx::cli
