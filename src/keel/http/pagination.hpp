#pragma once
// The contract's lists: ?limit= (default 50, max 500) and an opaque ?cursor=; bodies {"items",
// "next_cursor"}.
#include <boost/json/array.hpp>
#include <boost/json/object.hpp>
#include <optional>
#include <string>

#include "keel/http/request.hpp"

namespace keel::http {

struct Page {
  int limit = 50;
  std::optional<std::string> after;  // the decoded cursor: the key of the last item already returned
};

// 422 for a limit that is not an integer from 1 to 500, 400 for a cursor we did not issue.
Page parse_page(const Request& req);
std::string encode_cursor(const std::string& key);
// {"items": items, "next_cursor": cursor of last_key when the page is full, else null}.
boost::json::object page_body(boost::json::array items, const Page& page, const std::string& last_key);
// page_body over rows: each becomes to_json(row); key_of(row) of the last one is the next cursor.
template <class Rows, class ToJson, class KeyOf>
boost::json::object page_of(const Rows& rows, const Page& page, ToJson&& to_json, KeyOf&& key_of) {
  boost::json::array items;
  std::string last;
  for (const auto& row : rows) {
    items.push_back(to_json(row));
    last = key_of(row);
  }
  return page_body(std::move(items), page, last);
}

}  // namespace keel::http
