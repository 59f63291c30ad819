// `cnx embed`: JSON lines {"text": ...} on stdin → {"model", "embedding"} lines
// on stdout, with the built-in lexical-hash-v1 embedder or an OpenAI-compatible
// endpoint (--base-url). `cnx embed similarity A B` prints the cosine of two
// texts. Meant for trying embedders from the shell; the server's worker uses the
// same classes.
#include <nlohmann/json.hpp>

#include <cmath>
#include <cstdio>
#include <iostream>
#include <memory>
#include <string>
#include <vector>

#include "cli/command.h"
#include "embed/lexical_embedder.h"
#include "embed/openai_embedder.h"

namespace cnx::cli {
namespace {

struct EmbedFlags {
  size_t dimension = 384;
  std::string base_url;  // empty: lexical-hash-v1
  std::string model;
  std::string api_key_env;
  size_t batch_size = 64;
};

Result<std::unique_ptr<embed::Embedder>> MakeEmbedder(const EmbedFlags& f) {
  if (f.base_url.empty()) {
    auto e = CNX_TRY(embed::LexicalHashEmbedder::Create({.dimension = f.dimension}));
    return std::unique_ptr<embed::Embedder>(std::move(e));
  }
  auto e = CNX_TRY(embed::OpenAiEmbedder::Create({.base_url = f.base_url,
                                                  .model = f.model,
                                                  .dimension = f.dimension,
                                                  .api_key_env = f.api_key_env,
                                                  .batch_size = f.batch_size}));
  return std::unique_ptr<embed::Embedder>(std::move(e));
}

int RunEmbed(const EmbedFlags& f) {
  auto embedder = MakeEmbedder(f);
  if (!embedder) return Fail(embedder.error());
  std::vector<std::string> texts;
  std::string line;
  size_t line_no = 0;
  while (std::getline(std::cin, line)) {
    ++line_no;
    if (line.empty()) continue;
    auto j = nlohmann::json::parse(line, nullptr, false);
    if (j.is_discarded() || !j.is_object() || !j.contains("text") || !j["text"].is_string())
      return Fail(Error(Module::kCli, ErrorCode::kInvalidArgument,
                        "line " + std::to_string(line_no) + R"(: expected {"text": "..."})"));
    texts.push_back(j["text"].get<std::string>());
  }
  auto vectors = (*embedder)->Embed(texts);
  if (!vectors) return Fail(vectors.error());
  std::string tag = (*embedder)->ModelTag();
  for (const auto& v : *vectors) std::cout << nlohmann::json{{"model", tag}, {"embedding", v}}.dump() << '\n';
  return 0;
}

int RunSimilarity(const EmbedFlags& f, const std::string& a, const std::string& b) {
  auto embedder = MakeEmbedder(f);
  if (!embedder) return Fail(embedder.error());
  std::vector<std::string> texts{a, b};
  auto v = (*embedder)->Embed(texts);
  if (!v) return Fail(v.error());
  double dot = 0, na = 0, nb = 0;
  for (size_t i = 0; i < (*v)[0].size(); ++i) {
    dot += double((*v)[0][i]) * (*v)[1][i];
    na += double((*v)[0][i]) * (*v)[0][i];
    nb += double((*v)[1][i]) * (*v)[1][i];
  }
  std::printf("%.4f\n", na > 0 && nb > 0 ? dot / std::sqrt(na * nb) : 0.0);
  return 0;
}

void AddEmbed(CLI::App& app) {
  auto flags = std::make_shared<EmbedFlags>();
  auto* group =
      app.add_subcommand("embed", R"(embed {"text": ...} JSON lines from stdin (lexical-hash-v1 by default))");
  group->add_option("--dimension", flags->dimension, "vector size (lexical: any >= 8; provider: the model's)");
  group->add_option("--base-url", flags->base_url, "OpenAI-compatible endpoint, e.g. http://127.0.0.1:11434");
  group->add_option("--model", flags->model, "provider model name");
  group->add_option("--api-key-env", flags->api_key_env, "environment variable holding the API key");
  group->add_option("--batch-size", flags->batch_size, "inputs per provider request");
  auto texts = std::make_shared<std::vector<std::string>>();
  auto* sim = group->add_subcommand("similarity", "print the cosine similarity of two texts");
  sim->add_option("texts", *texts, "two texts")->expected(2)->required();
  OnRun(sim, [flags, texts] { return RunSimilarity(*flags, (*texts)[0], (*texts)[1]); });
  OnRun(group, [flags, group] {
    if (group->got_subcommand("similarity")) return ExitCode();
    return RunEmbed(*flags);
  });
}

}  // namespace
CNX_REGISTER_COMMANDS(embed, AddEmbed);
}  // namespace cnx::cli
