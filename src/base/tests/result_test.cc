#include "base/result.h"

#include <gtest/gtest.h>

namespace cnx {
namespace {

Result<int> Half(int x) {
  if (x % 2 != 0) return Err(Module::kBase, ErrorCode::kInvalidArgument, "odd");
  return x / 2;
}

Result<int> Quarter(int x) {
  int h = CNX_TRY(Half(x));
  return CNX_TRY(Half(h));
}

Status CheckEven(int x) {
  CNX_TRY(Half(x));
  return Ok();
}

Status Chain(int x) {
  CNX_TRY(CheckEven(x));
  return Ok();
}

TEST(Result, TryPropagatesValuesAndErrors) {
  EXPECT_EQ(Quarter(8).value(), 2);
  auto r = Quarter(6);  // 6 -> 3 -> odd
  ASSERT_FALSE(r.has_value());
  EXPECT_EQ(r.error().code(), ErrorCode::kInvalidArgument);
  EXPECT_EQ(r.error().message(), "odd");
  EXPECT_TRUE(Chain(4).has_value());
  EXPECT_FALSE(Chain(5).has_value());
}

TEST(Result, ErrorFormattingAndRetryability) {
  Error e(Module::kPg, ErrorCode::kRetryable, "serialization failure");
  EXPECT_EQ(e.ToString(), "pg.retryable: serialization failure");
  EXPECT_TRUE(e.retryable());
  EXPECT_FALSE(Error(Module::kPg, ErrorCode::kConflict, "dup").retryable());
  EXPECT_EQ(e.WithContext("insert user").message(), "insert user: serialization failure");
}

}  // namespace
}  // namespace cnx
