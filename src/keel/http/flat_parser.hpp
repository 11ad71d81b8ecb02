#pragma once
// Beast's HTTP/1.1 parser, with the message kept flat: the start line and header fields in one string and a
// list of offsets into it, the body in a std::string. Beast's own message container keeps every field in a
// separately built node of an ordered tree; a request's few lookups and a proxy's one pass over a response
// need none of that, and the flat message keeps its capacity from one message to the next on a connection.
// Only server.cpp and client.cpp include this.
#include <algorithm>
#include <boost/beast/http/basic_parser.hpp>
#include <boost/beast/http/error.hpp>
#include <boost/beast/http/field.hpp>
#include <boost/beast/http/verb.hpp>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "keel/http/request.hpp"

namespace keel::http {

struct FlatMessage {
  struct Span {
    uint32_t offset = 0;
    uint32_t size = 0;
  };
  struct Field {
    boost::beast::http::field id;  // field::unknown for names Beast does not know
    Span name;
    Span value;
  };

  std::string text;  // start-line pieces and fields, back to back
  std::vector<Field> fields;
  Span method_str, target;  // requests
  boost::beast::http::verb method = boost::beast::http::verb::unknown;
  int status = 0;  // responses
  unsigned version = 11;
  std::string body;

  void clear() {
    text.clear();
    fields.clear();
    method_str = target = {};
    method = boost::beast::http::verb::unknown;
    status = 0;
    version = 11;
    body.clear();
  }
  std::string_view view(Span s) const { return std::string_view(text).substr(s.offset, s.size); }
  Span keep(std::string_view s) {
    const Span out{static_cast<uint32_t>(text.size()), static_cast<uint32_t>(s.size())};
    text.append(s);
    return out;
  }
  // The first field of that name (case-insensitive), or empty.
  std::string_view find(std::string_view name) const {
    for (const auto& f : fields)
      if (f.name.size == name.size() && iequals(view(f.name), name)) return view(f.value);
    return {};
  }
};

// One message's parser; construct a new one for each message (Beast's parsers are not reused). It clears
// `m` and fills it in.
template <bool isRequest>
class FlatParser final : public boost::beast::http::basic_parser<isRequest> {
 public:
  using string_view = boost::beast::string_view;
  using error_code = boost::system::error_code;

  explicit FlatParser(FlatMessage& m) : m_(m) { m_.clear(); }
  FlatMessage& message() { return m_; }
  // A request refused for a Transfer-Encoding other than exactly `chunked` naming a coding keel does not
  // implement (501); other framing errors are 400.
  bool unsupported_coding() const { return unsupported_coding_; }
  // The most a body's announced length makes it reserve up front (a streamed body is taken piece by piece).
  void reserve_limit(size_t n) { reserve_limit_ = n; }

 private:
  void on_request_impl(boost::beast::http::verb method, string_view method_str, string_view target,
                       int version, error_code&) override {
    m_.method = method;
    m_.method_str = m_.keep(method_str);
    m_.target = m_.keep(target);
    m_.version = static_cast<unsigned>(version);
  }
  void on_response_impl(int code, string_view, int version, error_code&) override {
    m_.status = code;
    m_.version = static_cast<unsigned>(version);
  }
  void on_field_impl(boost::beast::http::field id, string_view name, string_view value,
                     error_code&) override {
    const FlatMessage::Span n = m_.keep(name);
    m_.fields.push_back({id, n, m_.keep(value)});
  }
  // RFC 9112: a request's only transfer coding keel takes is `chunked`, alone. Beast reads anything whose
  // last coding is not chunked as having no body, so `chunked, identity` (or `gzip`, or a folded value)
  // would send the body's bytes on as another request: request smuggling behind a proxy that reads the
  // header otherwise. Such a request is refused and its connection closed.
  void on_header_impl(error_code& ec) override {
    if constexpr (isRequest) {
      std::string codings;
      bool any = false;
      for (const auto& f : m_.fields) {
        if (f.id != boost::beast::http::field::transfer_encoding) continue;
        any = true;
        codings += codings.empty() ? "" : ",";
        codings.append(m_.view(f.value));
      }
      if (!any) return;
      std::string token;
      std::vector<std::string> tokens;
      for (char c : codings + ",") {
        if (c == ',') {
          tokens.push_back(token);
          token.clear();
        } else if (c != ' ' && c != '\t' && c != '\r' && c != '\n') {
          token.push_back(ascii_lower(c));
        }
      }
      if (tokens.size() == 1 && tokens[0] == "chunked") return;
      bool empty = false;
      for (const auto& tok : tokens) empty = empty || tok.empty();
      unsupported_coding_ = !empty;
      ec = boost::beast::http::error::bad_transfer_encoding;
    }
  }
  void on_body_init_impl(const boost::optional<std::uint64_t>& length, error_code& ec) override {
    if (!length) return;
    if (*length > m_.body.max_size()) {
      ec = boost::beast::http::error::buffer_overflow;
      return;
    }
    m_.body.reserve(std::min(static_cast<size_t>(*length), reserve_limit_));
  }
  size_t on_body_impl(string_view body, error_code&) override {
    m_.body.append(body);
    return body.size();
  }
  void on_chunk_header_impl(std::uint64_t, string_view, error_code&) override {}
  size_t on_chunk_body_impl(std::uint64_t, string_view body, error_code&) override {
    m_.body.append(body);
    return body.size();
  }
  void on_finish_impl(error_code&) override {}

  FlatMessage& m_;
  bool unsupported_coding_ = false;
  size_t reserve_limit_ = SIZE_MAX;
};

}  // namespace keel::http
