// Tokenizer and chunker throughput on the make-corpus.sh corpus, beside the JS
// peers measured by bench-peers.mjs in the same run (passed with --peers).
//
//   tokenizer_bench --corpus DIR/all.txt [--peers peers.json] [--runs 5] [--out result.json]
//
// For each encoding: single-thread Encode and Count, all-core EncodeParallel,
// the pathological inputs ('a' x 1 MiB, ' ' x 1 MiB, '\n' x 1 MiB) as a ratio
// of per-byte time to ordinary text, and chunking throughput.
#include <nlohmann/json.hpp>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <ctime>
#include <fstream>
#include <functional>
#include <iterator>
#include <string>
#include <thread>
#include <vector>

#include "text/chunker.h"
#include "text/tokenizer.h"

namespace {

using cnx::text::Tokenizer;

// Wall time, and the CPU time of the calling thread (the latter is what one
// thread of ours costs even when other processes share the cores).
struct Timing {
  double wall = 0;
  double cpu = 0;
};

double ThreadCpu() {
  timespec ts;
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
  return static_cast<double>(ts.tv_sec) + static_cast<double>(ts.tv_nsec) * 1e-9;
}

Timing Measure(const std::function<void()>& f) {
  const double c0 = ThreadCpu();
  const auto t0 = std::chrono::steady_clock::now();
  f();
  return {std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count(), ThreadCpu() - c0};
}

double Median(std::vector<double> xs) {
  std::sort(xs.begin(), xs.end());
  return xs[xs.size() / 2];
}

Timing TimeMedianBoth(int runs, const std::function<void()>& f) {
  f();  // warm-up
  std::vector<double> wall, cpu;
  for (int i = 0; i < runs; ++i) {
    const Timing t = Measure(f);
    wall.push_back(t.wall);
    cpu.push_back(t.cpu);
  }
  return {Median(wall), Median(cpu)};
}

double TimeMedian(int runs, const std::function<void()>& f) {
  return TimeMedianBoth(runs, f).wall;
}

std::string Arg(int argc, char** argv, const std::string& name, const std::string& def) {
  for (int i = 1; i + 1 < argc; ++i) {
    if (argv[i] == "--" + name) return argv[i + 1];
  }
  return def;
}

}  // namespace

int main(int argc, char** argv) {
  const std::string corpus_path = Arg(argc, argv, "corpus", "corpus/all.txt");
  const std::string peers_path = Arg(argc, argv, "peers", "");
  const std::string out_path = Arg(argc, argv, "out", "");
  const int runs = std::stoi(Arg(argc, argv, "runs", "5"));
  std::ifstream in(corpus_path, std::ios::binary);
  if (!in) {
    std::fprintf(stderr, "cannot read corpus %s\n", corpus_path.c_str());
    return 1;
  }
  const std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  const double mb = static_cast<double>(text.size()) / 1e6;
  const unsigned cores = std::max(1u, std::thread::hardware_concurrency());

  nlohmann::json peers;
  if (!peers_path.empty()) {
    std::ifstream pin(peers_path);
    if (pin) peers = nlohmann::json::parse(pin, nullptr, false);
  }

  nlohmann::json result = {{"corpus", {{"path", corpus_path}, {"bytes", text.size()}}}, {"cores", cores}};
  std::printf("corpus %s: %zu bytes; %u cores; median of %d runs after 1 warm-up\n\n", corpus_path.c_str(), text.size(),
              cores, runs);
  std::printf("| encoding | implementation | MB/s | Mtok/s | tokens | vs fastest peer | MB/s per CPU-second |\n");
  std::printf("|---|---|---:|---:|---:|---:|---:|\n");
  for (const std::string enc : {"cl100k_base", "o200k_base"}) {
    auto tok = *Tokenizer::ForEncoding(enc);
    double best_peer = 0;
    std::string best_peer_name;
    if (peers.is_object() && peers.contains("real")) {
      for (const auto& r : peers["real"]) {
        if (r.value("encoding", r.value("enc", "")) != enc) continue;
        const double s = r.value("median_s", r.value("seconds", 0.0));
        const double mbs = r.contains("mb_per_s") ? r["mb_per_s"].get<double>() : (s > 0 ? mb / s : 0);
        const std::string lib = r.value("library", r.value("lib", "?"));
        const size_t tokens = r.value("tokens", size_t{0});
        std::printf("| %s | %s | %.2f | %.2f | %zu | | |\n", enc.c_str(), lib.c_str(), mbs,
                    s > 0 ? tokens / s / 1e6 : 0.0, tokens);
        if (mbs > best_peer) {
          best_peer = mbs;
          best_peer_name = lib;
        }
      }
    }
    size_t n_tokens = 0;
    const Timing t_encode = TimeMedianBoth(runs, [&] { n_tokens = tok->Encode(text)->size(); });
    size_t n_count = 0;
    const Timing t_count = TimeMedianBoth(runs, [&] { n_count = *tok->Count(text); });
    size_t n_par = 0;
    const Timing t_par = TimeMedianBoth(runs, [&] { n_par = tok->EncodeParallel(text, cores)->size(); });
    if (n_count != n_tokens || n_par != n_tokens) {
      std::fprintf(stderr, "token counts disagree: %zu %zu %zu\n", n_tokens, n_count, n_par);
      return 1;
    }
    auto row = [&](const char* what, const Timing& timing, bool single) {
      const double t = timing.wall;
      const double mbs = mb / t;
      char cpu[32] = "";
      if (single) std::snprintf(cpu, sizeof cpu, "%.2f", mb / timing.cpu);
      char ratio[64] = "";
      if (best_peer > 0) std::snprintf(ratio, sizeof ratio, "%.2fx %s", mbs / best_peer, best_peer_name.c_str());
      std::printf("| %s | %s | %.2f | %.2f | %zu | %s | %s |\n", enc.c_str(), what, mbs, n_tokens / t / 1e6, n_tokens,
                  ratio, cpu);
      result["real"].push_back({{"encoding", enc},
                                {"implementation", what},
                                {"seconds", t},
                                {"thread_cpu_seconds", single ? timing.cpu : 0.0},
                                {"mb_per_s", mbs},
                                {"tokens", n_tokens},
                                {"vs_fastest_peer", best_peer > 0 ? mbs / best_peer : 0.0}});
    };
    row("cnx Encode, 1 thread", t_encode, true);
    row("cnx Count, 1 thread", t_count, true);
    char par_name[64];
    std::snprintf(par_name, sizeof par_name, "cnx EncodeParallel, %u threads", cores);
    row(par_name, t_par, false);
  }

  std::printf(
      "\nPathological inputs (1 MiB, one thread, Encode): seconds and per-byte time relative to the corpus\n\n");
  std::printf("| encoding | input | seconds | per-byte vs corpus (wall) | per-byte vs corpus (thread CPU) |\n");
  std::printf("|---|---|---:|---:|---:|\n");
  for (const std::string enc : {"cl100k_base", "o200k_base"}) {
    auto tok = *Tokenizer::ForEncoding(enc);
    const Timing corpus = TimeMedianBoth(std::max(1, runs / 2), [&] { (void)tok->Encode(text); });
    const double corpus_per_byte = corpus.wall / text.size();
    const double corpus_cpu_per_byte = corpus.cpu / text.size();
    for (const auto& [name, unit] : std::vector<std::pair<std::string, std::string>>{{"'a' x 1 MiB", "a"},
                                                                                     {"' ' x 1 MiB", " "},
                                                                                     {"'\\n' x 1 MiB", "\n"},
                                                                                     {"'ab' x 512 Ki", "ab"},
                                                                                     {"'-' x 1 MiB", "-"},
                                                                                     {"'7' x 1 MiB", "7"}}) {
      std::string s;
      while (s.size() < (1u << 20)) s += unit;
      const Timing tm = TimeMedianBoth(std::max(1, runs / 2), [&] { (void)tok->Encode(s); });
      const double ratio = (tm.wall / s.size()) / corpus_per_byte;
      const double cpu_ratio = (tm.cpu / s.size()) / corpus_cpu_per_byte;
      std::printf("| %s | %s | %.3f | %.2fx | %.2fx |\n", enc.c_str(), name.c_str(), tm.wall, ratio, cpu_ratio);
      result["pathological"].push_back({{"encoding", enc},
                                        {"input", name},
                                        {"seconds", tm.wall},
                                        {"per_byte_ratio", ratio},
                                        {"per_byte_ratio_cpu", cpu_ratio}});
    }
  }

  std::printf("\nChunking (Markdown/plain/code by structure, 512-token target, 64 overlap, o200k_base)\n\n");
  std::printf("| content type | MB/s | chunks |\n|---|---:|---:|\n");
  for (const std::string type : {"text/plain", "text/markdown", "text/x-code"}) {
    cnx::text::ChunkOptions opt;
    opt.max_tokens = 512;
    opt.overlap_tokens = 64;
    size_t chunks = 0;
    const double t = TimeMedian(std::max(1, runs / 2), [&] {
      auto r = cnx::text::ChunkDocument(text, type, opt);
      chunks = r.has_value() ? r->size() : 0;
    });
    std::printf("| %s | %.2f | %zu |\n", type.c_str(), mb / t, chunks);
    result["chunking"].push_back({{"content_type", type}, {"mb_per_s", mb / t}, {"chunks", chunks}});
  }
  if (!out_path.empty()) std::ofstream(out_path) << result.dump(2) << "\n";
  return 0;
}
