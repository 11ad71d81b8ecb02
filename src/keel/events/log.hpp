#pragma once
// The event log's rows as readers get them: the row type, and the CloudEvent it becomes (GET /v1/events and
// the realtime stream answer with the same one).
#include <boost/json/object.hpp>
#include <string>

#include "keel/db/columns.hpp"
#include "keel/db/database.hpp"

namespace keel::events {

// An event's row (db/columns.hpp), which event_json reads, and its SELECT list.
inline constexpr db::Columns kEvent{"id", "seq", "type", "source", "subject", "time", "data", "traceparent"};
inline const std::string kEventColumns = kEvent.list();

// `admin`: whether the reader holds the admin role. keel.auth.login.failed says for admins only which user an
// attempt was for and why it failed (wrong password or unknown account): any other reader who tried an email
// could learn from it whether that email has an account. Others see that a login failed, and from where.
boost::json::object event_json(const db::Row& r, bool admin);

// The seqs the log holds: the last one given (from the counter, not from what is left: retention may have
// taken the newest events of an idle log), and the first one still kept (the oldest event's, or the next one
// to be given when none is kept).
struct LogBounds {
  int64_t last_given = 0;
  int64_t first_kept = 1;
};
LogBounds log_bounds(db::Session& s);

}  // namespace keel::events
