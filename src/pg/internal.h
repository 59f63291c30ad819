// Shared by the connection types of this module; not part of its interface.
#pragma once

#include <span>
#include <vector>

#include "base/result.h"
#include "pg/connection.h"

struct pg_conn;
struct pg_result;

namespace cnx::pg::internal {

// Turns a failed PGresult (or, with `res` null, the connection's last error)
// into an Error carrying SQLSTATE, message and detail.
Error ResultError(pg_conn* conn, pg_result* res);

// A statement's parameters in the arrays libpq takes (text, or binary bytea).
struct Bound {
  std::vector<const char*> values;
  std::vector<int> lengths, formats;
  explicit Bound(std::span<const Param> params)
      : values(params.size()), lengths(params.size()), formats(params.size()) {
    for (size_t i = 0; i < params.size(); ++i) {
      values[i] = params[i].value ? params[i].value->data() : nullptr;
      lengths[i] = params[i].value ? static_cast<int>(params[i].value->size()) : 0;
      formats[i] = params[i].binary ? 1 : 0;
    }
  }
  int n() const { return static_cast<int>(values.size()); }
};

}  // namespace cnx::pg::internal
