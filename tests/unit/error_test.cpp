#include "keel/core/error.hpp"

#include <gtest/gtest.h>

#include <boost/json.hpp>

#include "keel/db/database.hpp"

using keel::Error;

TEST(Error, ProblemJsonHasTheRfc9457Members) {
  auto v = boost::json::parse(keel::problem_json(Error::not_found("no memory with that id")));
  EXPECT_EQ(v.at("status").as_int64(), 404);
  EXPECT_EQ(v.at("title").as_string(), "Not Found");
  EXPECT_EQ(v.at("detail").as_string(), "no memory with that id");
  EXPECT_EQ(v.at("type").as_string(), "about:blank");
  EXPECT_FALSE(v.as_object().contains("errors"));
}

TEST(Error, ValidationErrorsListFields) {
  auto e = Error::validation({{"email", "must be an email address"}, {"password", "too short"}});
  EXPECT_EQ(e.status(), 422);
  auto v = boost::json::parse(keel::problem_json(e));
  ASSERT_EQ(v.at("errors").as_array().size(), 2u);
  EXPECT_EQ(v.at("errors").at(0).at("field").as_string(), "email");
  EXPECT_EQ(v.at("errors").at(1).at("message").as_string(), "too short");
}

TEST(Error, UnauthorizedCarriesTheBearerChallenge) {
  auto e = Error::unauthorized();
  ASSERT_EQ(e.headers.size(), 1u);
  EXPECT_EQ(e.headers[0].first, "WWW-Authenticate");
  EXPECT_EQ(e.headers[0].second, "Bearer error=\"invalid_token\"");
}

TEST(Error, DatabaseFailuresMapWithoutLeakingTheDriversMessage) {
  using keel::db::DbError;
  auto down = keel::db::to_http_error(DbError(DbError::Kind::Unavailable, "PostgreSQL: password=hunter2"));
  EXPECT_EQ(down.status(), 503);
  EXPECT_EQ(keel::problem_json(down).find("hunter2"), std::string::npos);
  EXPECT_EQ(keel::db::to_http_error(DbError(DbError::Kind::UniqueViolation, "x")).status(), 409);
  auto other = keel::db::to_http_error(DbError(DbError::Kind::Other, "SELECT secret FROM t"));
  EXPECT_EQ(other.status(), 500);
  EXPECT_EQ(keel::problem_json(other).find("SELECT"), std::string::npos);
}
