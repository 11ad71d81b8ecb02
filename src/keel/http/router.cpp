#include "keel/http/router.hpp"

#include <algorithm>
#include <array>
#include <span>
#include <stdexcept>

#include "keel/core/error.hpp"

namespace keel::http {

namespace {
std::vector<std::string> split(std::string_view path) {
  std::vector<std::string> out;
  size_t i = 0;
  while (i < path.size()) {
    if (path[i] == '/') {
      ++i;
      continue;
    }
    size_t j = path.find('/', i);
    if (j == std::string_view::npos) j = path.size();
    out.emplace_back(path.substr(i, j - i));
    i = j;
  }
  return out;
}

bool is_param(const std::string& seg) { return seg.size() > 2 && seg.front() == '{' && seg.back() == '}'; }

std::string decode_segment(std::string_view seg) {
  return percent_decode(seg, false).value_or(std::string(seg));
}
}  // namespace

void Router::add(Method method, std::string pattern, Access access, Handler handler, RouteOptions options) {
  auto r = std::make_unique<Route>();
  r->method = method;
  r->access = access;
  r->segments = split(pattern);
  r->pattern = std::move(pattern);
  r->options = options;
  r->handler = std::move(handler);
  routes_.push_back(std::move(r));
}

void Router::add_prefix(Method method, std::string prefix, Access access, Handler handler,
                        RouteOptions options) {
  auto r = std::make_unique<Route>();
  r->method = method;
  r->access = access;
  r->segments = split(prefix);
  r->pattern = prefix + (prefix.ends_with('/') ? "*" : "/*");
  r->prefix = true;
  r->options = options;
  r->handler = std::move(handler);
  routes_.push_back(std::move(r));
}

Match Router::match(Method method, std::string_view path) const { return find(method, path, true); }

Match Router::find(Method method, std::string_view path, bool with_params) const {
  Match m;
  // Split the path once, without copying, and compare its segments with each route's.
  constexpr size_t kMaxSegments = 32;
  std::array<std::string_view, kMaxSegments> seg_store;
  size_t nsegs = 0;
  for (size_t i = 0; i < path.size();) {
    if (path[i] == '/') {
      ++i;
      continue;
    }
    if (nsegs == kMaxSegments) return m;  // deeper than any route
    size_t j = path.find('/', i);
    if (j == std::string_view::npos) j = path.size();
    seg_store[nsegs++] = path.substr(i, j - i);
    i = j;
  }
  const std::span<const std::string_view> segs(seg_store.data(), nsegs);
  // The most specific route wins: exact over prefix, then more literal segments, then an exact method
  // over HEAD's fallback to GET.
  const Route* best = nullptr;
  int best_score = -1;
  MethodSet exact_allowed;  // methods of exact routes serving this path (not catch-all prefixes)
  for (const auto& r : routes_) {
    const auto& rs = r->segments;
    if (r->prefix ? segs.size() < rs.size() : segs.size() != rs.size()) continue;
    int literals = 0;
    bool ok = true;
    for (size_t i = 0; i < rs.size() && ok; ++i) {
      if (is_param(rs[i])) continue;
      ok = rs[i] == segs[i];
      ++literals;
    }
    if (!ok) continue;
    const bool exact_method = r->method == method;
    if (!exact_method && !(method == Method::Head && r->method == Method::Get)) {
      m.allowed.add(r->method);
      if (!r->prefix) exact_allowed.add(r->method);
      continue;
    }
    const int score = (r->prefix ? 0 : 1 << 20) + literals * 2 + (exact_method ? 1 : 0);
    if (score > best_score) {
      best = r.get();
      best_score = score;
    }
  }
  // A catch-all prefix does not turn "wrong method on a known path" into something else: that stays 405.
  if (best && best->prefix && !exact_allowed.empty()) {
    m.allowed = exact_allowed;
    return m;
  }
  if (!best) return m;
  m.route = best;
  m.allowed = {};
  for (size_t i = 0; with_params && i < best->segments.size(); ++i) {
    const auto& seg = best->segments[i];
    if (is_param(seg))
      m.params.emplace_back(std::string_view(seg).substr(1, seg.size() - 2), decode_segment(segs[i]));
  }
  return m;
}

bool Router::is_public(Method method, std::string_view path, bool other_methods) const {
  // Without the parameters' values: on the gateway's path for every request, this must not allocate.
  const Match m = find(method, path, false);
  if (m.route) return m.route->access.is_public();
  if (!other_methods || m.allowed.empty()) return false;  // a 404: nothing here is public
  for (Method other :
       {Method::Get, Method::Post, Method::Put, Method::Patch, Method::Delete, Method::Options})
    if (m.allowed.contains(other))
      if (const Match o = find(other, path, false); o.route && o.route->access.is_public()) return true;
  return false;
}

namespace {
bool is_json_content_type(std::string_view ct) {
  std::string_view media = ct.substr(0, ct.find(';'));
  while (!media.empty() && media.back() == ' ') media.remove_suffix(1);
  std::string lower(media);
  for (auto& c : lower) c = static_cast<char>(::tolower(static_cast<unsigned char>(c)));
  return lower == "application/json" || (lower.starts_with("application/") && lower.ends_with("+json"));
}
}  // namespace

boost::asio::awaitable<Response> Router::dispatch(Request& req, const std::string*& route_label) const {
  Match m = match(req.method, req.path);
  if (!m.route) {
    if (!m.allowed.empty()) {
      Error e(405, "Method Not Allowed", "this route does not support " + std::string(req.method_str));
      e.headers.emplace_back("Allow", allow_header(m.allowed));
      throw e;
    }
    throw Error::not_found("no route matches this path");
  }
  route_label = &m.route->pattern;
  if (!m.route->access.is_public()) {
    if (!guard_) throw Error::unauthorized("this route needs a token, and nothing here can check one");
    guard_(req, m.route->access);
  }
  if (!req.body.empty() && !m.route->options.raw_body && !is_json_content_type(req.header("content-type")))
    throw Error(415, "Unsupported Media Type", "request bodies must be Content-Type: application/json");
  req.path_params = std::move(m.params);
  return m.route->handler(req);
}

std::string allow_header(MethodSet methods) {
  if (methods.contains(Method::Get)) methods.add(Method::Head);
  std::string out;
  for (Method m : {Method::Get, Method::Head, Method::Post, Method::Put, Method::Patch, Method::Delete,
                   Method::Options}) {
    if (!methods.contains(m)) continue;
    if (!out.empty()) out += ", ";
    out += method_name(m);
  }
  return out;
}

}  // namespace keel::http
