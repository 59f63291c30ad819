// `cnx cdc ...`: change-capture tools.
//   cnx cdc decode   reads a pgoutput stream in the golden-file input format on
//                    stdin (one hex message or hex CopyData frame per line) and
//                    prints one JSON object per decoded message.
//   cnx cdc tail     prints live decoded messages from the database through a
//                    temporary slot (a debugging tool like pg_recvlogical).
#include <unistd.h>

#include <atomic>
#include <csignal>
#include <cstdio>
#include <iostream>
#include <string>

#include "cdc/event_json.h"
#include "cdc/frames.h"
#include "cdc/pgoutput.h"
#include "cdc/replication.h"
#include "cli/command.h"
#include "cli/settings.h"

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

std::atomic<bool> g_interrupted{false};
extern "C" void OnTailSignal(int) {
  g_interrupted.store(true);
}

struct TailOptions {
  std::string publication = "cnx_outbox";
  bool messages = false;
  long limit = 0;        // stop after this many messages (0: no limit)
  double idle_exit = 0;  // stop after this many idle seconds (0: never)
};

int RunTail(const FlagSet& flags, const TailOptions& o) {
  auto config = flags.Resolve();
  if (!config) return Fail(config.error());
  auto db = OpenDatabase(*config);
  if (!db) return Fail(db.error());
  auto stream = cdc::ReplicationStream::Connect(db->admin_url, std::chrono::seconds(10));
  if (!stream) return Fail(stream.error());
  // A temporary slot disappears with the connection: tail never holds WAL back.
  const std::string slot = "cnx_tail_" + std::to_string(getpid());
  auto created = (*stream)->Command("CREATE_REPLICATION_SLOT " + cdc::QuoteIdent(slot) +
                                    " TEMPORARY LOGICAL pgoutput (SNAPSHOT 'nothing')");
  if (!created) return Fail(created.error());
  auto st = (*stream)->Start({.slot = slot, .publication = o.publication, .messages = o.messages});
  if (!st) return Fail(st.error());
  std::signal(SIGINT, OnTailSignal);
  std::signal(SIGTERM, OnTailSignal);
  std::fprintf(stderr, "cnx: tailing publication %s (Ctrl-C to stop)\n", o.publication.c_str());

  cdc::Decoder decoder;
  cdc::Message msg;
  cdc::FeedbackPolicy policy(0, {.interval = std::chrono::seconds(10), .coalesce = std::chrono::milliseconds(200)});
  std::string out;
  long printed = 0;
  auto last_activity = std::chrono::steady_clock::now();
  while (!g_interrupted.load()) {
    auto next = (*stream)->Next(std::chrono::milliseconds(200));
    if (!next) return Fail(next.error());
    const auto now = std::chrono::steady_clock::now();
    if (*next) {
      auto frame = cdc::ParseFrame(**next);
      if (!frame) return Fail(frame.error());
      if (frame->kind == cdc::Frame::Kind::kKeepalive) {
        policy.OnKeepalive(frame->keepalive, now);
      } else {
        auto d = decoder.Decode(frame->xlog.message, msg);
        if (!d) return Fail(d.error());
        policy.OnMessage(msg);
        // Nothing downstream to wait for: what is printed is done.
        if (msg.type == cdc::MessageType::kCommit) policy.OnDurable(msg.end_lsn);
        out.clear();
        cdc::AppendMessageJson(out, msg, decoder);
        out.push_back('\n');
        std::fwrite(out.data(), 1, out.size(), stdout);
        std::fflush(stdout);
        last_activity = now;
        if (o.limit > 0 && ++printed >= o.limit) break;
      }
    } else if (o.idle_exit > 0 && now - last_activity > std::chrono::duration<double>(o.idle_exit)) {
      break;
    }
    const int64_t client_us = cdc::UnixMicrosToPgMicros(
        std::chrono::duration_cast<std::chrono::microseconds>(std::chrono::system_clock::now().time_since_epoch())
            .count());
    if (auto status = policy.Poll(now, client_us)) {
      if (auto sent = (*stream)->SendStatus(*status); !sent) return Fail(sent.error());
    }
  }
  (*stream)->Stop();
  return 0;
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

  static FlagSet tail_flags;
  static TailOptions tail_options;
  auto* tail = cdc->add_subcommand(
      "tail", "Print live decoded changes of a publication as JSON lines (temporary slot; like pg_recvlogical)");
  AddDatabaseFlags(tail, tail_flags);
  tail->add_option("--publication", tail_options.publication, "Publication to stream (default cnx_outbox)");
  tail->add_flag("--messages", tail_options.messages, "Also print pg_logical_emit_message() messages");
  tail->add_option("--limit", tail_options.limit, "Stop after this many messages");
  tail->add_option("--idle-exit", tail_options.idle_exit, "Stop after this many seconds without a message");
  OnRun(tail, [] { return RunTail(tail_flags, tail_options); });
}

}  // namespace
CNX_REGISTER_COMMANDS(cdc, AddCdc);
}  // namespace cnx::cli
