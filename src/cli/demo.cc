#include "cli/demo.h"

#include <sodium.h>
#include <sys/stat.h>

#include <algorithm>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>

#include "domain/resources.h"

namespace cnx::cli {
namespace {

using json = nlohmann::json;
namespace fs = std::filesystem;

constexpr const char* kEmail = "demo@example.com";
constexpr size_t kMaxDocumentBytes = 1u << 20;

Error FromFault(const domain::Fault& f, const std::string& what) {
  return Error(Module::kCli, f.code, what + ": " + f.detail);
}

std::string RandomPassword() {
  unsigned char raw[12];
  randombytes_buf(raw, sizeof raw);
  return domain::Base64Url(std::string(reinterpret_cast<char*>(raw), sizeof raw));
}

// README.md and every Markdown file under docs/, in a stable order.
std::vector<fs::path> DemoDocuments(const fs::path& root) {
  std::vector<fs::path> files;
  if (fs::is_regular_file(root / "README.md")) files.push_back(root / "README.md");
  std::error_code ec;
  if (fs::is_directory(root / "docs", ec)) {
    for (auto it = fs::recursive_directory_iterator(root / "docs", ec); !ec && it != fs::end(it); it.increment(ec)) {
      if (it->is_regular_file() && it->path().extension() == ".md") files.push_back(it->path());
    }
  }
  std::sort(files.begin(), files.end());
  return files;
}

Result<Uuid> IdOf(const domain::Outcome<domain::Entity>& e, const std::string& what) {
  if (!e) return std::unexpected(FromFault(e.error(), "demo: creating " + what));
  auto id = Uuid::Parse(e->body.value("id", std::string()));
  if (!id) return Err(Module::kCli, ErrorCode::kInternal, "demo: " + what + " without an id");
  return *id;
}

Result<Demo> Create(domain::Store& store, const fs::path& docs_root) {
  Demo demo;
  demo.email = kEmail;
  demo.password = RandomPassword();
  auto signup = store.Signup(
      {{"tenantName", "Demo"}, {"email", demo.email}, {"password", demo.password}, {"displayName", "Demo owner"}},
      "cnx-demo");
  if (!signup) return std::unexpected(FromFault(signup.error(), "demo: signing up"));
  auto principal = store.Authenticate((*signup)["token"].get<std::string>());
  if (!principal) return std::unexpected(FromFault(principal.error(), "demo: authenticating"));
  demo.tenant_id = principal->tenant_id;

  using domain::FindResource;
  auto program = CNX_TRY(IdOf(store.Create(*FindResource("program"), *principal, std::nullopt,
                                           {{"name", "Demo"}, {"description", "Created by cnx serve --demo"}}),
                              "the program"));
  demo.project_id = CNX_TRY(
      IdOf(store.Create(*FindResource("project"), *principal, std::nullopt,
                        {{"programId", program.ToString()},
                         {"name", "ContextNexus documentation"},
                         {"description", "The project's own documentation, to search and to assemble context from"}}),
           "the project"));
  demo.thread_id =
      CNX_TRY(IdOf(store.Create(*FindResource("thread"), *principal, demo.project_id, {{"title", "Getting started"}}),
                   "the thread"));
  for (const auto& file : DemoDocuments(docs_root)) {
    std::error_code ec;
    if (fs::file_size(file, ec) > kMaxDocumentBytes || ec) continue;
    std::ifstream in(file, std::ios::binary);
    std::stringstream text;
    text << in.rdbuf();
    auto abs = fs::absolute(file).lexically_normal();
    auto created = store.Create(*FindResource("content item"), *principal, demo.project_id,
                                {{"title", fs::relative(file, docs_root).string()},
                                 {"contentType", "text/markdown"},
                                 {"sourceUrl", "file://" + abs.string()},
                                 {"body", text.str()}});
    if (!created) return std::unexpected(FromFault(created.error(), "demo: ingesting " + file.string()));
    ++demo.documents;
  }
  return demo;
}

}  // namespace

Result<Demo> SetUpDemo(domain::Store& store, const fs::path& data_dir, const fs::path& docs_root) {
  const fs::path record = data_dir / "demo.json";
  Demo demo;
  if (fs::exists(record)) {
    std::ifstream in(record);
    json j = json::parse(in, nullptr, false);
    auto tenant = Uuid::Parse(j.value("tenantId", std::string()));
    auto project = Uuid::Parse(j.value("projectId", std::string()));
    auto thread = Uuid::Parse(j.value("threadId", std::string()));
    if (j.is_discarded() || !tenant || !project || !thread) {
      return Err(Module::kCli, ErrorCode::kDataLoss, record.string() + " is damaged; delete it to create a new demo");
    }
    demo.email = j.value("email", std::string(kEmail));
    demo.password = j.value("password", std::string());
    demo.tenant_id = *tenant;
    demo.project_id = *project;
    demo.thread_id = *thread;
  } else {
    demo = CNX_TRY(Create(store, docs_root));
    json j = {{"email", demo.email},
              {"password", demo.password},
              {"tenantId", demo.tenant_id.ToString()},
              {"projectId", demo.project_id.ToString()},
              {"threadId", demo.thread_id.ToString()}};
    const fs::path tmp = record.string() + ".tmp";
    {
      std::ofstream out(tmp, std::ios::trunc);
      out << j.dump(2) << "\n";
      if (!out.flush()) return Err(Module::kCli, ErrorCode::kInternal, "cannot write " + tmp.string());
    }
    ::chmod(tmp.c_str(), 0600);
    std::error_code ec;
    fs::rename(tmp, record, ec);
    if (ec) return Err(Module::kCli, ErrorCode::kInternal, "cannot write " + record.string() + ": " + ec.message());
  }
  auto login = store.Login({{"email", demo.email}, {"password", demo.password}, {"tenant", demo.tenant_id.ToString()}},
                           "cnx-demo");
  if (!login) return std::unexpected(FromFault(login.error(), "demo: logging in"));
  demo.token = (*login)["token"].get<std::string>();
  return demo;
}

std::string DemoBanner(const Demo& d, const std::string& base) {
  const std::string auth = "-H \"Authorization: Bearer $CNX_TOKEN\" -H 'Content-Type: application/json'";
  std::ostringstream o;
  o << "\nDemo tenant" << (d.documents ? " created (" + std::to_string(d.documents) + " documents ingested)" : "")
    << ": sign in as " << d.email << " / " << d.password << "\n"
    << "  export CNX_SERVER=" << base << " CNX_TOKEN=" << d.token << "\n\n"
    << "Search the project's documentation:\n"
    << "  curl -s " << auth << " " << base << "/v1/search \\\n"
    << "    -d '{\"projectId\":\"" << d.project_id.ToString()
    << "\",\"query\":\"how are changes captured from PostgreSQL\",\"k\":5}'\n\n"
    << "Assemble the context of an LLM call in the thread \"Getting started\":\n"
    << "  curl -s " << auth << " " << base << "/v1/threads/" << d.thread_id.ToString() << "/context \\\n"
    << "    -d '{\"message\":\"How is one tenant kept from reading the data of another?\",\"model\":\"gpt-4o\","
       "\"budget\":4000}'\n\n"
    << "Ask a model (configure an OpenAI-compatible provider first, see docs/context.md):\n"
    << "  cnx ask \"What does the relay acknowledge, and when?\" --thread " << d.thread_id.ToString() << "\n";
  return o.str();
}

}  // namespace cnx::cli
