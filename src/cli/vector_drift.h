// Drift between PostgreSQL and the vector index checkpoint in <data-dir>/vector,
// shared by `cnx vector verify|reconcile` and `cnx verify|reconcile --target vector`.
// Prints a JSON report; returns the process exit code (verify: 1 on drift).
#pragma once

#include "cli/settings.h"

namespace cnx::cli {

int VerifyOrReconcileVector(const FlagSet& db, bool fix);

}  // namespace cnx::cli
