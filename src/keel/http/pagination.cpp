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
  if (auto limit = req.query_param("limit")) {
    int v = 0;
    auto r = std::from_chars(limit->data(), limit->data() + limit->size(), v);
    if (r.ec != std::errc() || r.ptr != limit->data() + limit->size() || v < 1 || v > 500)
      throw Error::validation({{"limit", "must be an integer from 1 to 500"}});
    p.limit = v;
  }
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
