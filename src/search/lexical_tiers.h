// The tsquery text of a lexical tier (decision 1101): chunks holding at
// least `m` of the query's lexemes.
//
//   AtLeastTsQuery({"'a'", "'b'", "'c'"}, 2, 64)
//     == "('a' & ('b' | 'c')) | ('b' & 'c')"
//
// The expression is factored — the first lexeme and at least m - 1 of the
// rest, or at least m of the rest — instead of the OR of every m-combination
// ("('a' & 'b') | ('a' & 'c') | ('b' & 'c')"). Both match the same chunks,
// and ts_rank_cd gives both the same rank (it reads only which distinct
// lexemes a window of the chunk holds and whether the query is true of it),
// but the factored one has fewer nodes: the GIN consistent check and
// ts_rank_cd, which evaluate the whole query again for every candidate and
// every window, do less work (decision 1105).
//
// `lexemes` are quoted tsquery operands ('wal', as websearch_to_tsquery
// writes them); 1 <= m <= lexemes.size(). Returns "" when the OR of the
// m-combinations would have more than `max_combinations` terms (the tier is
// skipped, as before factoring). Pure function; thread-safe.
#pragma once

#include <cstddef>
#include <string>
#include <vector>

namespace cnx::search {

std::string AtLeastTsQuery(const std::vector<std::string>& lexemes, size_t m, size_t max_combinations);

}  // namespace cnx::search
