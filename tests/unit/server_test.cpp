// The HTTP runtime over real sockets: a Server on an ephemeral port with test routes.
#include "keel/http/server.hpp"

#include <gtest/gtest.h>
#include <sys/socket.h>
#include <sys/time.h>

#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/read.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>
#include <boost/json.hpp>
#include <thread>
#include <vector>

#include "keel/http/json_body.hpp"

using namespace keel::http;
namespace net = boost::asio;
using tcp = net::ip::tcp;

namespace {

struct RunningServer {
  std::unique_ptr<Server> server;
  uint16_t port = 0;
  std::thread thread;

  explicit RunningServer(ServerOptions opt) {
    opt.listen = "127.0.0.1";
    opt.access_log = false;
    server = std::make_unique<Server>(opt);
    auto router = std::make_shared<Router>();
    router->add(Method::Post, "/echo", Access::anyone(), [](Request& req) -> net::awaitable<Response> {
      auto body = parse_json_object(req);
      Validator v(body);
      auto name = v.required_string("name", 1, 5);
      v.check();
      co_return Response::json(
          201, boost::json::object{
                   {"name", name}, {"request_id", req.request_id}, {"trace_id", req.trace.trace_id()}});
    });
    // Holds the (one) I/O thread for a while, as a handler doing heavy work would.
    router->add(Method::Get, "/busy", Access::anyone(), [](Request&) -> net::awaitable<Response> {
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
      co_return Response::json_text(200, R"({"busy":true})");
    });
    router->add(Method::Get, "/slow", Access::anyone(), [](Request&) -> net::awaitable<Response> {
      net::steady_timer t(co_await net::this_coro::executor, std::chrono::milliseconds(300));
      co_await t.async_wait(net::use_awaitable);
      co_return Response::json_text(200, R"({"slow":true})");
    });
    port = server->listen("test", 0, router, std::make_shared<HttpMetrics>("test"));
    thread = std::thread([this] { server->run(); });
  }
  ~RunningServer() {
    server->shutdown();
    if (thread.joinable()) thread.join();
  }
};

// Sends raw bytes and reads until the server closes the connection.
std::string raw_exchange(uint16_t port, const std::string& raw) {
  net::io_context io;
  tcp::socket s(io);
  s.connect(tcp::endpoint(net::ip::make_address("127.0.0.1"), port));
  net::write(s, net::buffer(raw));
  std::string out;
  boost::system::error_code ec;
  net::read(s, net::dynamic_buffer(out), ec);
  return out;
}

std::string post_echo(uint16_t port, const std::string& body, const std::string& ctype = "application/json",
                      const std::string& extra = "") {
  return raw_exchange(port, "POST /echo HTTP/1.1\r\nHost: x\r\nConnection: close\r\nContent-Type: " + ctype +
                                "\r\nContent-Length: " + std::to_string(body.size()) + "\r\n" + extra +
                                "\r\n" + body);
}

int status_of(const std::string& response) { return std::stoi(response.substr(9, 3)); }
std::string body_of(const std::string& response) { return response.substr(response.find("\r\n\r\n") + 4); }

}  // namespace

TEST(Server, ValidJsonReachesTheHandler) {
  RunningServer rs({});
  auto r = post_echo(rs.port, R"({"name":"ab"})");
  EXPECT_EQ(status_of(r), 201);
  EXPECT_EQ(boost::json::parse(body_of(r)).at("name").as_string(), "ab");
}

TEST(Server, MalformedJsonAndInvalidUtf8Are400) {
  RunningServer rs({});
  auto r = post_echo(rs.port, R"({"name":)");
  EXPECT_EQ(status_of(r), 400);
  EXPECT_NE(r.find("Content-Type: application/problem+json"), std::string::npos);
  auto bad_utf8 = post_echo(rs.port, std::string("{\"name\":\"a\xff\xfe\"}"));
  EXPECT_EQ(status_of(bad_utf8), 400) << bad_utf8;
  EXPECT_EQ(status_of(post_echo(rs.port, "[1,2]")), 400);
}

TEST(Server, WrongContentTypeIs415) {
  RunningServer rs({});
  auto r = post_echo(rs.port, R"({"name":"ab"})", "text/plain");
  EXPECT_EQ(status_of(r), 415);
  EXPECT_EQ(boost::json::parse(body_of(r)).at("status").as_int64(), 415);
  EXPECT_EQ(status_of(post_echo(rs.port, R"({"name":"ab"})", "application/json; charset=utf-8")), 201);
}

TEST(Server, ValidationFailureIs422WithFieldErrors) {
  RunningServer rs({});
  auto r = post_echo(rs.port, R"({"name":"too long a name"})");
  ASSERT_EQ(status_of(r), 422);
  auto v = boost::json::parse(body_of(r));
  EXPECT_EQ(v.at("errors").at(0).at("field").as_string(), "name");
  EXPECT_EQ(status_of(post_echo(rs.port, R"({"name":5})")), 422);
  EXPECT_EQ(status_of(post_echo(rs.port, R"({})")), 422);
}

TEST(Server, BodyOverTheLimitIs413) {
  ServerOptions opt;
  opt.body_limit = 1024;
  RunningServer rs(opt);
  auto r = post_echo(rs.port, std::string(2000, 'x'));
  EXPECT_EQ(status_of(r), 413);
  EXPECT_NE(r.find("application/problem+json"), std::string::npos);
}

TEST(Server, KeepsASaneRequestIdAndTheTraceId) {
  RunningServer rs({});
  const std::string tp = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01";
  auto r = post_echo(rs.port, R"({"name":"ab"})", "application/json",
                     "X-Request-Id: my-id-1\r\ntraceparent: " + tp + "\r\n");
  EXPECT_NE(r.find("X-Request-Id: my-id-1\r\n"), std::string::npos);
  auto v = boost::json::parse(body_of(r));
  EXPECT_EQ(v.at("trace_id").as_string(), "0af7651916cd43dd8448eb211c80319c");
  EXPECT_NE(r.find("traceparent: 00-0af7651916cd43dd8448eb211c80319c-"), std::string::npos);
  EXPECT_EQ(r.find("b7ad6b7169203331-01\r\n"), std::string::npos) << "our span id must be our own";

  auto insane =
      post_echo(rs.port, R"({"name":"ab"})", "application/json", "X-Request-Id: bad id with spaces\r\n");
  EXPECT_EQ(insane.find("bad id"), std::string::npos);
  EXPECT_NE(insane.find("X-Request-Id: "), std::string::npos);
}

TEST(Server, KeepAliveServesSeveralRequestsOnOneConnection) {
  RunningServer rs({});
  const std::string one =
      "POST /echo HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: "
      "13\r\n\r\n{\"name\":\"ab\"}";
  const std::string last = "GET /nope HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n";
  auto r = raw_exchange(rs.port, one + one + last);
  size_t count = 0;
  for (size_t pos = 0; (pos = r.find("HTTP/1.1 201", pos)) != std::string::npos; ++pos) ++count;
  EXPECT_EQ(count, 2u);
  EXPECT_NE(r.find("HTTP/1.1 404"), std::string::npos);
}

// Reads that drained the socket leave the next read waiting for epoll's readiness, not trying first
// (http/fast/short_read.hpp): a request sent in pieces with pauses between them, several times on one
// connection, must still be read whole each time. A lost wake-up shows here as the receive timeout, not as a
// hang.
TEST(Server, RequestsArrivingInPiecesAfterPausesAreAnswered) {
  RunningServer rs({});
  net::io_context io;
  tcp::socket s(io);
  s.connect(tcp::endpoint(net::ip::make_address("127.0.0.1"), rs.port));
  const timeval limit{3, 0};
  ASSERT_EQ(::setsockopt(s.native_handle(), SOL_SOCKET, SO_RCVTIMEO, &limit, sizeof limit), 0);
  const std::vector<std::string> pieces = {"POST /echo HTTP/1.1\r\nHost: x\r\n",
                                           "Content-Type: application/json\r\nContent-Length: 13\r\n\r\n",
                                           "{\"name\":", "\"ab\"}"};
  for (int round = 0; round < 3; ++round) {
    for (const auto& piece : pieces) {
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
      net::write(s, net::buffer(piece));
    }
    std::string response;
    boost::system::error_code ec;
    while (!ec && response.find("\"ab\"") == std::string::npos) {
      char chunk[1024];
      const size_t n = s.read_some(net::buffer(chunk), ec);
      response.append(chunk, n);
    }
    ASSERT_FALSE(ec) << "round " << round << ": " << ec.message();
    EXPECT_EQ(status_of(response), 201) << response;
  }
}

// A client that stops halfway through its request and closes its side, while the I/O thread is busy: the last
// bytes and the end of the stream are read in one go, and the server must see that end then, not at the
// header timeout.
TEST(Server, AClientThatClosesHalfwayIsLetGoAtOnce) {
  ServerOptions opt;
  opt.header_timeout = std::chrono::seconds(20);
  RunningServer rs(opt);
  const auto endpoint = tcp::endpoint(net::ip::make_address("127.0.0.1"), rs.port);
  for (int round = 0; round < 3; ++round) {
    net::io_context io;
    tcp::socket s(io), busy(io);
    s.connect(endpoint);
    busy.connect(endpoint);
    const timeval limit{5, 0};
    ASSERT_EQ(::setsockopt(s.native_handle(), SOL_SOCKET, SO_RCVTIMEO, &limit, sizeof limit), 0);
    std::this_thread::sleep_for(std::chrono::milliseconds(50));  // both accepted, and waiting to be read
    net::write(busy, net::buffer(std::string("GET /busy HTTP/1.1\r\nHost: x\r\n\r\n")));
    std::this_thread::sleep_for(std::chrono::milliseconds(20));  // the server thread is in /busy now
    const auto start = std::chrono::steady_clock::now();
    net::write(s, net::buffer(std::string("GET /echo HTTP/1.1\r\nHost: x\r\n")));
    s.shutdown(tcp::socket::shutdown_send);
    std::string out;
    boost::system::error_code ec;
    net::read(s, net::dynamic_buffer(out), ec);
    EXPECT_EQ(ec, net::error::eof) << "round " << round << ": " << ec.message();
    EXPECT_LT(std::chrono::steady_clock::now() - start, std::chrono::seconds(2)) << "round " << round;
  }
}

TEST(Server, GarbageIs400) {
  RunningServer rs({});
  auto r = raw_exchange(rs.port, "NOT HTTP AT ALL\r\n\r\n");
  EXPECT_EQ(status_of(r), 400);
}

TEST(Server, ASlowClientIsCutOffAtTheHeaderTimeout) {
  ServerOptions opt;
  opt.header_timeout = std::chrono::milliseconds(200);
  RunningServer rs(opt);
  const auto start = std::chrono::steady_clock::now();
  auto r = raw_exchange(rs.port, "GET /slow HTTP/1.1\r\nHost: x\r\n");  // never finishes its headers
  const auto waited = std::chrono::steady_clock::now() - start;
  EXPECT_TRUE(r.empty() || status_of(r) >= 400);
  EXPECT_LT(waited, std::chrono::seconds(3));
}

TEST(Server, ShutdownLetsAnInFlightRequestFinish) {
  auto rs = std::make_unique<RunningServer>(ServerOptions{});
  std::string response;
  std::thread client([&] { response = raw_exchange(rs->port, "GET /slow HTTP/1.1\r\nHost: x\r\n\r\n"); });
  std::this_thread::sleep_for(std::chrono::milliseconds(100));
  rs->server->shutdown();
  client.join();
  rs.reset();
  ASSERT_FALSE(response.empty());
  EXPECT_EQ(status_of(response), 200);
  EXPECT_NE(response.find("Connection: close"), std::string::npos);
}
