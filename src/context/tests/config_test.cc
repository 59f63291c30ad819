// Configuration of the context routes, the assembler and the chat client.
#include <gtest/gtest.h>

#include "context/chat_client.h"
#include "context/routes.h"

namespace cnx::context {
namespace {

Config Make(std::map<std::string, std::string> flags) {
  auto c = Config::Load(std::move(flags), "", [](const std::string&) { return std::optional<std::string>(); });
  EXPECT_TRUE(c.has_value());
  return *c;
}

const char* NoEnv(const char*) {
  return nullptr;
}

TEST(ContextConfigTest, Defaults) {
  auto d = RouteDefaultsFromConfig(Make({}));
  ASSERT_TRUE(d.has_value());
  EXPECT_EQ(d->model, "gpt-4o");
  EXPECT_EQ(d->budget, 8192u);
  auto a = AssemblerOptionsFromConfig(Make({}));
  ASSERT_TRUE(a.has_value());
  EXPECT_EQ(a->candidates, 40u);
  EXPECT_EQ(a->encodings.EncodingFor("mistral").first, "o200k_base");
  auto chat = ChatConfigFromConfig(Make({}), NoEnv);
  ASSERT_TRUE(chat.has_value());
  EXPECT_FALSE(chat->has_value());  // no provider configured
}

TEST(ContextConfigTest, Values) {
  auto cfg = Make({{"llm.model", "llama3:8b"},
                   {"context.default_budget", "4000"},
                   {"context.encodings", "llama=cl100k_base"},
                   {"context.default_encoding", "cl100k_base"},
                   {"context.candidates", "20"},
                   {"llm.base_url", "http://127.0.0.1:11434/v1"},
                   {"llm.api_key_env", "TEST_LLM_KEY"},
                   {"llm.timeout", "5s"},
                   {"llm.max_attempts", "2"}});
  auto d = RouteDefaultsFromConfig(cfg);
  ASSERT_TRUE(d.has_value());
  EXPECT_EQ(d->model, "llama3:8b");
  EXPECT_EQ(d->budget, 4000u);
  auto a = AssemblerOptionsFromConfig(cfg);
  ASSERT_TRUE(a.has_value());
  EXPECT_EQ(a->candidates, 20u);
  EXPECT_EQ(a->encodings.EncodingFor("llama3:8b").first, "cl100k_base");
  EXPECT_EQ(a->encodings.EncodingFor("qwen2").first, "cl100k_base");
  auto chat = ChatConfigFromConfig(cfg, [](const char* name) -> const char* {
    return std::string(name) == "TEST_LLM_KEY" ? "sk-from-env" : nullptr;
  });
  ASSERT_TRUE(chat.has_value());
  ASSERT_TRUE(chat->has_value());
  EXPECT_EQ((*chat)->api_key, "sk-from-env");
  EXPECT_EQ((*chat)->model, "llama3:8b");
  EXPECT_EQ((*chat)->timeout, std::chrono::seconds(5));
  EXPECT_EQ((*chat)->retry.max_attempts, 2);
  EXPECT_EQ(ChatClient(**chat).Endpoint(), "http://127.0.0.1:11434/v1/chat/completions");
  (*chat)->base_url = "http://h:1/";
  EXPECT_EQ(ChatClient(**chat).Endpoint(), "http://h:1/v1/chat/completions");
}

TEST(ContextConfigTest, Errors) {
  EXPECT_FALSE(RouteDefaultsFromConfig(Make({{"context.default_budget", "5"}})).has_value());
  EXPECT_FALSE(RouteDefaultsFromConfig(Make({{"llm.model", "bad model"}})).has_value());
  EXPECT_FALSE(AssemblerOptionsFromConfig(Make({{"context.encodings", "x=gpt2"}})).has_value());
  EXPECT_FALSE(AssemblerOptionsFromConfig(Make({{"context.default_encoding", "r50k_base"}})).has_value());
  EXPECT_FALSE(AssemblerOptionsFromConfig(Make({{"context.candidates", "0"}})).has_value());
  EXPECT_FALSE(ChatConfigFromConfig(Make({{"llm.base_url", "https://api.openai.com"}}), NoEnv).has_value());
  EXPECT_FALSE(
      ChatConfigFromConfig(Make({{"llm.base_url", "http://h:1"}, {"llm.max_attempts", "0"}}), NoEnv).has_value());
}

}  // namespace
}  // namespace cnx::context
