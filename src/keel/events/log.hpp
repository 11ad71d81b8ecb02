#pragma once
// The event log's rows as readers get them: the row type, and the CloudEvent it becomes (GET /v1/events and
// the realtime stream answer with the same one).
#include <boost/json/object.hpp>
#include <string>
#include <string_view>

#include "keel/db/columns.hpp"
#include "keel/db/database.hpp"

namespace keel::events {

// An event's row (db/columns.hpp), which event_json reads, and its SELECT list.
inline constexpr db::Columns kEvent{"id", "seq", "type", "source", "subject", "time", "data", "traceparent"};
inline const std::string kEventColumns = kEvent.list();

// `admin`: whether the reader holds the admin role. keel.auth.login.failed says for admins only which user an
// attempt was for and why it failed (wrong password or unknown account): any other reader who tried an email
// could learn from it whether that email has an account. Others see that a login failed, and from where.
// `owner`: whether the reader is the event's subject. A memory's created and updated events carry the memory
// whole for its owner alone; other readers of the log (admins, services) see which memory changed (id,
// namespace, version), and an admin reads what it says through the memory routes, where each read is
// recorded (keel.memory.admin_read).
boost::json::object event_json(const db::Row& r, bool admin, bool owner);
// Whether `reader_user_id` (empty for a service) is the subject of the event in `r`.
bool owns(const db::Row& r, std::string_view reader_user_id);

// The seqs the log holds: the last one given (from the counter, not from what is left: retention may have
// taken the newest events of an idle log), and the first one still kept (the oldest event's, or the next one
// to be given when none is kept).
struct LogBounds {
  int64_t last_given = 0;
  int64_t first_kept = 1;
};
LogBounds log_bounds(db::Session& s);

}  // namespace keel::events
