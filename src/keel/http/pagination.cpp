#include "keel/http/pagination.hpp"

#include <charconv>

#include "keel/core/base64.hpp"
#include "keel/core/error.hpp"

namespace keel::http {

namespace {
constexpr std::string_view kCursorTag = "k1:";
}

Page parse_page(const Request& req) {
  Page p;
  p.limit = static_cast<int>(req.query_int("limit", 1, 500).value_or(50));
  if (auto cursor = req.query_param("cursor"); cursor && !cursor->empty()) {
    auto raw = base64url_decode(*cursor);
    if (!raw || raw->rfind(kCursorTag, 0) != 0)
      throw Error::bad_request("the cursor is not one this server issued");
    p.after = raw->substr(kCursorTag.size());
  }
  return p;
}

std::string encode_cursor(const std::string& key) { return base64url_encode(std::string(kCursorTag) + key); }

boost::json::object page_body(boost::json::array items, const Page& page, const std::string& last_key) {
  const bool full = static_cast<int>(items.size()) >= page.limit && !last_key.empty();
  boost::json::object o;
  o["items"] = std::move(items);
  o["next_cursor"] = full ? boost::json::value(encode_cursor(last_key)) : boost::json::value(nullptr);
  return o;
}

}  // namespace keel::http
