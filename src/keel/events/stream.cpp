#include "keel/events/stream.hpp"

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/json/serialize.hpp>

#include "keel/core/error.hpp"
#include "keel/core/log.hpp"
#include "keel/events/log.hpp"

namespace keel::events {

namespace net = boost::asio;

namespace {

constexpr auto kKeepAlive = std::chrono::seconds(15);
constexpr auto kAccessCheck = std::chrono::milliseconds(250);
// With no subscriber, the hub only keeps up with the log's end, ten times a second.
constexpr auto kIdleFollow = std::chrono::milliseconds(100);
constexpr int64_t kPage = 500;              // events a backlog read takes at once
constexpr size_t kPieceBytes = 1 << 20;     // and what it sends at once, at most (one event past it)
constexpr size_t kKeptCapacity = 64 << 10;  // a buffer larger than this is let go once sent

constexpr std::string_view kMemoryTypes[] = {"keel.memory.created", "keel.memory.updated",
                                             "keel.memory.deleted"};
constexpr std::string_view kLedgerPosted = "keel.billing.ledger.posted";
constexpr std::string_view kRegistryPrefix = "keel.registry.";

bool starts_with(std::string_view s, std::string_view prefix) { return s.substr(0, prefix.size()) == prefix; }

std::string resync_message(std::string_view reason) {
  return "event: resync\ndata: " + boost::json::serialize(boost::json::object{{"reason", reason}}) + "\n\n";
}

}  // namespace

Topics Topics::parse(std::string_view list, const module::Principal* who) {
  Topics t;
  if (who) {
    t.user_id = who->user_id;
    t.admin = who->is_admin();
  }
  const bool log_reader = !who || who->is_admin() || who->is_service();
  size_t n = 0;
  while (!list.empty()) {
    const size_t comma = list.find(',');
    std::string_view topic = list.substr(0, comma);
    list = comma == std::string_view::npos ? std::string_view() : list.substr(comma + 1);
    if (topic.empty()) continue;
    ++n;
    if (topic == "memories" || topic == "billing") {
      if (who && who->user_id.empty())
        throw Error::forbidden("the '" + std::string(topic) +
                               "' topic is a user's own: it needs a user's token");
      (topic == "memories" ? t.memories : t.billing) = true;
    } else if (topic == "registry") {
      t.registry = true;
    } else if (topic == "events" || starts_with(topic, "events:")) {
      if (!log_reader)
        throw Error::forbidden("the event log's topics need the admin role or a service token");
      if (topic == "events")
        t.all = true;
      else if (topic.size() > 7 && topic.size() <= 7 + 256)
        t.prefixes.emplace_back(topic.substr(7));
      else
        throw Error::validation({{"topics", "events:<type prefix> needs a prefix of 1 to 256 characters"}});
    } else {
      throw Error::validation(
          {{"topics", "unknown topic '" + std::string(topic).substr(0, 64) +
                          "' (topics: memories, billing, registry, events, events:<type prefix>)"}});
    }
  }
  if (n == 0) throw Error::validation({{"topics", "is required: memories, billing, registry, events"}});
  if (n > 16) throw Error::validation({{"topics", "at most 16 topics"}});
  return t;
}

bool Topics::wants(std::string_view type, std::string_view subject) const {
  if (all) return true;
  if (registry && starts_with(type, kRegistryPrefix)) return true;
  for (const auto& p : prefixes)
    if (starts_with(type, p)) return true;
  if (subject.empty() || subject != user_id) return false;
  if (billing && type == kLedgerPosted) return true;
  if (memories)
    for (auto t : kMemoryTypes)
      if (type == t) return true;
  return false;
}

std::string Topics::condition(std::vector<db::Value>& params) const {
  if (all) return "TRUE";
  std::vector<std::string> any;
  auto param = [&](db::Value v) {
    params.push_back(std::move(v));
    return "$" + std::to_string(params.size());
  };
  // Prefixes are compared as text (substr), not with LIKE, whose '%' and '_' a prefix may hold.
  if (registry) any.push_back("substr(type, 1, 14) = " + param(std::string(kRegistryPrefix)));
  // length() counts characters, as substr() does (a prefix may hold non-ASCII characters).
  for (const auto& p : prefixes) {
    const std::string n = param(p);
    any.push_back("substr(type, 1, length(" + n + ")) = " + n);
  }
  if (!user_id.empty() && (memories || billing)) {
    std::string types;
    if (memories)
      for (auto t : kMemoryTypes) types += (types.empty() ? "" : ", ") + param(std::string(t));
    if (billing) types += (types.empty() ? "" : ", ") + param(std::string(kLedgerPosted));
    any.push_back("(subject = " + param(user_id) + " AND type IN (" + types + "))");
  }
  if (any.empty()) return "FALSE";
  std::string out = "(";
  for (size_t i = 0; i < any.size(); ++i) out += (i ? " OR " : "") + any[i];
  return out + ")";
}

std::string sse_message(int64_t seq, std::string_view type, std::string_view cloud_event) {
  std::string m;
  m.reserve(cloud_event.size() + type.size() + 40);
  m += "id: ";
  m += std::to_string(seq);
  m += "\nevent: ";
  m += type;
  m += "\ndata: ";
  m += cloud_event;  // serialized JSON is one line: newlines inside strings are escaped
  m += "\n\n";
  return m;
}

void Hub::load_sync() {
  position_.store(db_.read_sync([](db::Session& s) {
    return s.query("SELECT COALESCE(MAX(seq), 0) FROM observability_events").rows.at(0).int64(0);
  }));
}

net::awaitable<void> Hub::run(std::chrono::milliseconds period) {
  net::steady_timer timer(co_await net::this_coro::executor);
  auto checked = std::chrono::steady_clock::now(), followed = checked;
  while (!stopped()) {
    timer.expires_after(period);
    co_await timer.async_wait(net::as_tuple(net::use_awaitable));
    const auto now = std::chrono::steady_clock::now();
    if (now - checked >= kAccessCheck) {
      checked = now;
      check_access();
    }
    try {
      const int64_t from = position();
      if (subscribers() == 0) {
        if (now - followed < kIdleFollow) continue;
        followed = now;
        // Nobody to hand events to: keep up with the log's end, cheaply, so a subscriber starts from now.
        const int64_t end = co_await db_.read([](db::Session& s) {
          return s.query("SELECT COALESCE(MAX(seq), 0) FROM observability_events").rows.at(0).int64(0);
        });
        std::lock_guard lk(mu_);
        if (by_user_.empty() && shared_.empty() && end > position()) position_.store(end);
        continue;
      }
      const db::Result rows = co_await db_.read([from](db::Session& s) {
        return s.query("SELECT " + kEventColumns +
                           " FROM observability_events WHERE seq > $1 ORDER BY seq LIMIT " +
                           std::to_string(kMaxBehind),
                       {from});
      });
      if (!rows.empty()) fan_out(rows);
    } catch (const std::exception& e) {
      if (now - warned_ >=
          std::chrono::seconds(5)) {  // a database outage is one line every 5 s, not 100 a second
        warned_ = now;
        log::warn("realtime hub: reading the event log failed", {{"error", e.what()}});
      }
    }
  }
}

void Hub::fan_out(const db::Result& rows) {
  std::lock_guard lk(mu_);
  for (const db::Row& row : rows.rows) {
    const int64_t seq = row.int64(kEvent["seq"]);
    const std::string& type = row.text(kEvent["type"]);
    const std::string subject = row.opt_text(kEvent["subject"]).value_or("");
    // Formatted once per event and kind of reader (admin or not, the event's subject or not: event_json).
    std::string formatted[4];
    auto message = [&](const Subscriber& s) -> const std::string& {
      const bool admin = s.topics_.admin, owner = owns(row, s.topics_.user_id);
      std::string& m = formatted[(admin ? 2 : 0) + (owner ? 1 : 0)];
      if (m.empty()) m = sse_message(seq, type, boost::json::serialize(event_json(row, admin, owner)));
      return m;
    };
    if (!subject.empty()) {
      auto [it, end] = by_user_.equal_range(subject);
      for (; it != end; ++it)
        if (seq > it->second->after_ && it->second->topics_.wants(type, subject))
          push(it->second, seq, message(*it->second));
    }
    for (const auto& s : shared_)
      if (seq > s->after_ && s->topics_.wants(type, subject)) push(s, seq, message(*s));
    position_.store(seq, std::memory_order_release);
  }
}

void Hub::check_access() {
  std::vector<std::shared_ptr<Subscriber>> ended;
  {
    std::lock_guard lk(mu_);
    auto check = [&](const std::shared_ptr<Subscriber>& s) {
      if (authenticator_.still_valid(*s->who_)) return;
      std::lock_guard sl(s->mu_);
      if (!s->closed_) ended.push_back(s);  // closed already (and waiting to go): woken once, not every round
    };
    for (const auto& [user, s] : by_user_) check(s);
    for (const auto& s : shared_) check(s);
  }
  for (const auto& s : ended) close(s);
}

void Hub::close(const std::shared_ptr<Subscriber>& s) {
  {
    std::lock_guard sl(s->mu_);
    s->closed_ = true;
  }
  wake(s);
}

void Hub::push(const std::shared_ptr<Subscriber>& s, int64_t, const std::string& message) {
  {
    std::lock_guard lk(s->mu_);
    if (s->overflowed_ || s->closed_) return;
    if (++s->pending_count_ > kMaxBehind || s->pending_.size() + message.size() > kMaxBehindBytes) {
      s->overflowed_ = true;
      std::string().swap(s->pending_);  // its memory goes now, not when the slow client gets around to it
    } else {
      s->pending_ += message;
    }
    if (s->wake_posted_) return;
    s->wake_posted_ = true;
  }
  wake(s);
}

void Hub::wake(const std::shared_ptr<Subscriber>& s) {
  net::post(s->ex_, [s] { s->timer_.cancel(); });
}

std::shared_ptr<Subscriber> Hub::join(Topics topics, std::shared_ptr<const module::Principal> who,
                                      const net::any_io_executor& ex, int64_t after) {
  std::lock_guard lk(mu_);
  const bool own_only = !topics.all && !topics.registry && topics.prefixes.empty();
  auto s = std::make_shared<Subscriber>(std::move(topics), std::move(who), ex, std::max(after, position()));
  if (stopped()) s->closed_ = true;
  if (own_only)
    by_user_.emplace(s->topics_.user_id, s);
  else
    shared_.push_back(s);
  return s;
}

void Hub::leave(const std::shared_ptr<Subscriber>& s) {
  std::lock_guard lk(mu_);
  auto [it, end] = by_user_.equal_range(s->topics_.user_id);
  for (; it != end; ++it)
    if (it->second == s) {
      by_user_.erase(it);
      return;
    }
  std::erase(shared_, s);
}

size_t Hub::subscribers() const {
  std::lock_guard lk(mu_);
  return by_user_.size() + shared_.size();
}

void Hub::stop() {
  stopped_.store(true, std::memory_order_release);
  std::lock_guard lk(mu_);
  for (const auto& [user, s] : by_user_) close(s);
  for (const auto& s : shared_) close(s);
}

StreamBody::StreamBody(Hub& hub, db::Database& db, std::shared_ptr<Subscriber> sub, int64_t from,
                       bool resync_first, std::unique_ptr<http::KeyedSlots::Slot> slot)
    : hub_(hub),
      db_(db),
      sub_(std::move(sub)),
      backlog_from_(from),
      resync_first_(resync_first),
      slot_(std::move(slot)) {}

StreamBody::~StreamBody() { hub_.leave(sub_); }

net::awaitable<bool> StreamBody::next(std::string& piece) {
  piece.clear();
  if (ending_) co_return false;
  if (!started_) {
    started_ = true;
    last_sent_ = std::chrono::steady_clock::now();
    // A reconnecting EventSource waits `retry` ms; the comment opens the stream at once for proxies.
    piece = "retry: 2000\n: stream open\n\n";
    if (resync_first_) piece += resync_message("the last event id is older than the events kept");
    co_return true;
  }
  // What the client missed, in pages, before what the hub has handed on since it joined. A stream closed
  // meanwhile (its access ended, the process is stopping) stops here, not after the whole backlog.
  while (backlog_from_ < sub_->after()) {
    {
      std::lock_guard lk(sub_->mu_);
      if (sub_->closed_) co_return false;
    }
    const int64_t from = backlog_from_, to = sub_->after();
    const Topics& topics = sub_->topics();
    const db::Result rows = co_await db_.read([&](db::Session& s) {
      std::vector<db::Value> params{from, to};
      const std::string where = topics.condition(params);
      params.emplace_back(kPage);
      return s.query("SELECT " + kEventColumns +
                         " FROM observability_events WHERE seq > $1 AND seq <= $2 AND " + where +
                         " ORDER BY seq LIMIT $" + std::to_string(params.size()),
                     params);
    });
    backlog_from_ =
        static_cast<int64_t>(rows.rows.size()) < kPage ? to : rows.rows.back().int64(kEvent["seq"]);
    for (const db::Row& row : rows.rows) {
      const int64_t seq = row.int64(kEvent["seq"]);
      const std::string& type = row.text(kEvent["type"]);
      if (topics.wants(type, row.opt_text(kEvent["subject"]).value_or("")))
        piece += sse_message(
            seq, type, boost::json::serialize(event_json(row, topics.admin, owns(row, topics.user_id))));
      if (piece.size() >= kPieceBytes && seq < to) {  // the rest of the page next time
        backlog_from_ = seq;
        break;
      }
    }
    if (!piece.empty()) {
      last_sent_ = std::chrono::steady_clock::now();
      co_return true;
    }
  }
  for (;;) {
    {
      std::lock_guard lk(sub_->mu_);
      sub_->wake_posted_ = false;
      if (sub_->overflowed_) {
        ending_ = true;
        piece = resync_message("the stream fell more than 1000 messages behind");
        co_return true;
      }
      if (!sub_->pending_.empty()) {
        piece.swap(sub_->pending_);
        sub_->pending_count_ = 0;
        // A burst's large buffer goes with it rather than stay with an idle stream.
        if (sub_->pending_.capacity() > kKeptCapacity) std::string().swap(sub_->pending_);
        last_sent_ = std::chrono::steady_clock::now();
        co_return true;
      }
      if (sub_->closed_) co_return false;
    }
    const auto now = std::chrono::steady_clock::now();
    if (now - last_sent_ >= kKeepAlive) {
      piece = ": keep-alive\n\n";
      last_sent_ = now;
      co_return true;
    }
    sub_->timer_.expires_at(last_sent_ + kKeepAlive);  // or sooner: the hub's push or close cancels it
    co_await sub_->timer_.async_wait(net::as_tuple(net::use_awaitable));
  }
}

}  // namespace keel::events
