// The first-five-minutes demo of `make run` (`cnx serve --demo`).
//
// On the first start with --demo, SetUpDemo() creates a demo tenant (owner
// demo@example.com with a random password), a program, a project "ContextNexus
// documentation" holding every Markdown file under `docs_root` (README.md and
// docs/**, ingested through the same path as POST /v1/projects/{id}/content)
// and a thread "Getting started", and records them in <data-dir>/demo.json
// (mode 0600). Later starts read that file and reuse the data.
//
// Every start logs in as the demo owner and returns what PrintDemo() shows:
// the credentials, a fresh token and copy-paste curl commands for a search and
// a context call (and `cnx ask`).
#pragma once

#include <filesystem>
#include <string>

#include "base/result.h"
#include "base/uuid.h"
#include "domain/store.h"

namespace cnx::cli {

struct Demo {
  std::string email;
  std::string password;
  Uuid tenant_id;
  Uuid project_id;
  Uuid thread_id;
  std::string token;     // a fresh session of the demo owner
  size_t documents = 0;  // ingested on this start (0 when reused)
};

Result<Demo> SetUpDemo(domain::Store& store, const std::filesystem::path& data_dir,
                       const std::filesystem::path& docs_root);

// The banner for a server listening on `base_url` (http://host:port).
std::string DemoBanner(const Demo& demo, const std::string& base_url);

}  // namespace cnx::cli
