// The credential guard against the test cluster: a principal from a cache
// (Store::Unconfirmed) is re-checked by every transaction the Store runs for it.
#include <gtest/gtest.h>
#include <unistd.h>

#include "domain/store.h"
#include "schema/testing/test_database.h"

namespace cnx::domain {
namespace {

using schema::testing::TestDatabase;

TEST(CredentialGuard, RevocationStopsTheNextTransactionAndTheKeyIsReleased) {
  TestDatabase db;
  pg::Pool pool(db.AppPoolOptions(2));
  StoreOptions so;
  so.pwhash_opslimit = 1;
  so.pwhash_memlimit = 8192;
  Store store(pool, so);
  auto signup = store.Signup({{"tenantName", "G"},
                              {"email", "guard" + std::to_string(::getpid()) + "@example.com"},
                              {"password", "correct horse"},
                              {"displayName", "G"}},
                             "test");
  ASSERT_TRUE(signup.has_value());
  std::string token = (*signup)["token"];
  auto fresh = store.Authenticate(token);
  ASSERT_TRUE(fresh.has_value());
  EXPECT_FALSE(fresh->pending);
  Principal cached = Store::Unconfirmed(*fresh, token);
  ASSERT_TRUE(cached.pending);

  auto program = store.Create(*FindResource("program"), cached, std::nullopt, {{"name", "Before"}});
  ASSERT_TRUE(program.has_value()) << program.error().detail;
  EXPECT_TRUE(cached.pending->confirmed);
  auto begun = store.BeginIdempotent(cached, "k1", "POST", "/v1/programs", "h");
  ASSERT_TRUE(begun.has_value());
  EXPECT_EQ(begun->first, IdempotencyState::kNew);

  // Revoked in the middle of the request.
  ASSERT_TRUE(store.Logout(*fresh).has_value());
  Principal again = Store::Unconfirmed(*fresh, token);
  auto created = store.Create(*FindResource("program"), again, std::nullopt, {{"name", "After"}});
  ASSERT_FALSE(created.has_value());
  EXPECT_EQ(created.error().type, "unauthenticated");
  EXPECT_EQ(created.error().code, ErrorCode::kUnauthenticated);
  EXPECT_FALSE(again.pending->confirmed);
  auto got = store.Get(*FindResource("program"), again, *Uuid::Parse(program->body["id"].get<std::string>()));
  ASSERT_FALSE(got.has_value());
  EXPECT_EQ(got.error().type, "unauthenticated");
  EXPECT_FALSE(again.pending->confirmed);
  // The request's own unfinished idempotency record is released all the same.
  ASSERT_TRUE(store.AbandonIdempotent(again, "k1").has_value());

  auto admin = db.Admin();
  EXPECT_EQ(admin.Exec("SELECT count(*) FROM programs WHERE name = 'After'").value()[0].Get<int64_t>(0).value(), 0);
  EXPECT_EQ(admin.Exec("SELECT count(*) FROM idempotency_keys WHERE key = 'k1'").value()[0].Get<int64_t>(0).value(), 0);
  // A fresh authentication of the revoked token fails too.
  EXPECT_FALSE(store.Authenticate(token).has_value());
}

}  // namespace
}  // namespace cnx::domain
