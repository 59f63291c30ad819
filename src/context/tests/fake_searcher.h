// A Searcher that returns the hits it was given and records every query.
#pragma once

#include <mutex>
#include <optional>
#include <vector>

#include "context/module.h"
#include "search/search.h"

namespace cnx::context {

class FakeSearcher : public search::Searcher {
 public:
  Result<std::vector<search::Hit>> Search(const search::Query& query) override {
    std::lock_guard lock(mu);
    queries.push_back(query);
    if (fail) return Err(Module::kSearch, *fail, "fake search failure");
    std::vector<search::Hit> out;
    for (const auto& h : hits) {
      bool excluded = false;
      for (const auto& x : query.filters.exclude_content_ids) excluded |= x == h.content_id;
      if (!excluded && out.size() < query.k) out.push_back(h);
    }
    return out;
  }

  std::mutex mu;
  std::vector<search::Hit> hits;
  std::vector<search::Query> queries;
  std::optional<ErrorCode> fail;
};

}  // namespace cnx::context
