// The outbound gate: refused transfers open no connection (a loopback
// listener counts accepts), attempts and refusals are counted exactly, even
// from many threads, and no file in the source tree but src/net/outbound.cpp
// calls libcurl's perform functions.
#include <arpa/inet.h>
#include <curl/curl.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <regex>
#include <set>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "net/outbound.h"

namespace fs = std::filesystem;

namespace {

// Listens on 127.0.0.1, counts accepted connections, answers each with 204.
class CountingListener {
 public:
  CountingListener() {
    fd_ = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (::bind(fd_, (sockaddr*)&a, sizeof a) != 0 || ::listen(fd_, 16) != 0) return;
    socklen_t len = sizeof a;
    ::getsockname(fd_, (sockaddr*)&a, &len);
    port_ = ntohs(a.sin_port);
    thread_ = std::thread([this] { loop(); });
  }
  ~CountingListener() {
    stop_ = true;
    if (thread_.joinable()) thread_.join();
    ::close(fd_);
  }
  int port() const { return port_; }
  int accepts() const { return accepts_; }
  std::string url() const { return "http://127.0.0.1:" + std::to_string(port_) + "/probe"; }

 private:
  void loop() {
    while (!stop_) {
      pollfd p{fd_, POLLIN, 0};
      if (::poll(&p, 1, 20) <= 0) continue;
      int c = ::accept(fd_, nullptr, nullptr);
      if (c < 0) continue;
      ++accepts_;
      std::string req;
      char buf[1024];
      while (req.find("\r\n\r\n") == std::string::npos) {
        pollfd q{c, POLLIN, 0};
        if (::poll(&q, 1, 2000) <= 0) break;
        ssize_t n = ::recv(c, buf, sizeof buf, 0);
        if (n <= 0) break;
        req.append(buf, n);
      }
      const char reply[] = "HTTP/1.1 204 No Content\r\nConnection: close\r\n\r\n";
      ::send(c, reply, sizeof reply - 1, MSG_NOSIGNAL);
      ::close(c);
    }
  }
  int fd_ = -1;
  int port_ = 0;
  std::atomic<int> accepts_{0};
  std::atomic<bool> stop_{false};
  std::thread thread_;
};

struct Easy {
  CURL* h;
  explicit Easy(const std::string& url) : h(curl_easy_init()) {
    curl_easy_setopt(h, CURLOPT_URL, url.c_str());
    curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, 5000L);
    curl_easy_setopt(h, CURLOPT_NOPROXY, "*");  // loopback only, whatever the environment says
  }
  ~Easy() { curl_easy_cleanup(h); }
};

// Whatever a test does to the policy, the next one starts from the same state.
struct PolicyGuard {
  bool was = slim::net::local_only();
  ~PolicyGuard() { slim::net::set_local_only(was); }
};

// A port nothing listens on (bound, then released).
int closed_port() {
  int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ::bind(fd, (sockaddr*)&a, sizeof a);
  socklen_t len = sizeof a;
  ::getsockname(fd, (sockaddr*)&a, &len);
  ::close(fd);
  return ntohs(a.sin_port);
}

// C++ source with comments and string/char literals blanked out, so a
// mention in prose ("nothing calls curl_easy_perform") is not a call.
std::string code_only(const std::string& s) {
  std::string out;
  out.reserve(s.size());
  size_t i = 0;
  while (i < s.size()) {
    if (s.compare(i, 2, "//") == 0) {
      while (i < s.size() && s[i] != '\n') ++i;
    } else if (s.compare(i, 2, "/*") == 0) {
      size_t e = s.find("*/", i + 2);
      i = e == std::string::npos ? s.size() : e + 2;
      out += ' ';
    } else if (s.compare(i, 2, "R\"") == 0 && (i == 0 || !(std::isalnum((unsigned char)s[i - 1]) || s[i - 1] == '_'))) {
      size_t open = s.find('(', i + 2);
      if (open == std::string::npos) { i = s.size(); break; }
      std::string close(1, ')');  // )delimiter"
      close.append(s, i + 2, open - i - 2);
      close += '"';
      size_t e = s.find(close, open);
      i = e == std::string::npos ? s.size() : e + close.size();
      out += "\"\"";
    } else if (s[i] == '"' || s[i] == '\'') {
      char q = s[i++];
      while (i < s.size() && s[i] != q && s[i] != '\n') i += s[i] == '\\' ? 2 : 1;
      ++i;
      out += "\"\"";
    } else {
      out += s[i++];
    }
  }
  return out;
}

const std::regex& perform_call() {
  // The easy and the multi interface: either would bypass the gate.
  static const std::regex re(R"(\bcurl_(easy_perform|multi_perform|multi_socket_action|multi_socket_all)\b)");
  return re;
}

bool calls_perform(const std::string& source) { return std::regex_search(code_only(source), perform_call()); }

}  // namespace

TEST(Outbound, RefusedUnderLocalOnlyOpensNoConnection) {
  CountingListener listener;
  ASSERT_GT(listener.port(), 0);
  PolicyGuard guard;
  slim::net::set_local_only(true);
  EXPECT_TRUE(slim::net::local_only());
  const uint64_t attempted = slim::net::connections_attempted(), refused = slim::net::connections_refused();

  Easy e(listener.url());
  auto r = slim::net::perform(e.h, listener.url(), "pull");
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.error().find("local-only"), std::string::npos) << r.error();
  EXPECT_NE(r.error().find("pull"), std::string::npos) << r.error();
  EXPECT_EQ(slim::net::connections_refused(), refused + 1);
  EXPECT_EQ(slim::net::connections_attempted(), attempted);
  std::this_thread::sleep_for(std::chrono::milliseconds(200));  // a connection would have been accepted by now
  EXPECT_EQ(listener.accepts(), 0);

  // The same handle goes through once the policy is off: the listener was reachable all along.
  slim::net::set_local_only(false);
  EXPECT_FALSE(slim::net::local_only());
  auto ok = slim::net::perform(e.h, listener.url(), "pull");
  ASSERT_TRUE(ok.ok()) << ok.error();
  EXPECT_EQ(*ok, (int)CURLE_OK);
  long code = 0;
  curl_easy_getinfo(e.h, CURLINFO_RESPONSE_CODE, &code);
  EXPECT_EQ(code, 204);
  EXPECT_EQ(listener.accepts(), 1);
  EXPECT_EQ(slim::net::connections_attempted(), attempted + 1);
  EXPECT_EQ(slim::net::connections_refused(), refused + 1);
}

TEST(Outbound, CountsFailedAttemptsAndReturnsTheCurlCode) {
  PolicyGuard guard;
  slim::net::set_local_only(false);
  const uint64_t attempted = slim::net::connections_attempted();
  const std::string url = "http://127.0.0.1:" + std::to_string(closed_port()) + "/";
  Easy e(url);
  auto r = slim::net::perform(e.h, url, "remote");
  ASSERT_TRUE(r.ok()) << r.error();  // not refused: attempted, and libcurl's code comes back
  EXPECT_EQ(*r, (int)CURLE_COULDNT_CONNECT);
  EXPECT_EQ(slim::net::connections_attempted(), attempted + 1);
}

TEST(Outbound, RefusalMessageNamesTheHostButNoSecret) {
  PolicyGuard guard;
  slim::net::set_local_only(true);
  auto r = slim::net::perform(nullptr, "https://user:hunter2@127.0.0.1:9/v1/x?key=sk-abc", "remote");
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.error().find("https://127.0.0.1:9"), std::string::npos) << r.error();
  EXPECT_EQ(r.error().find("hunter2"), std::string::npos) << r.error();
  EXPECT_EQ(r.error().find("sk-abc"), std::string::npos) << r.error();
  EXPECT_NE(r.error().find("remote"), std::string::npos) << r.error();
}

TEST(Outbound, ConcurrentRefusalsAreAllCounted) {
  PolicyGuard guard;
  slim::net::set_local_only(true);
  const uint64_t attempted = slim::net::connections_attempted(), refused = slim::net::connections_refused();
  std::atomic<int> errors{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < 8; ++t)
    threads.emplace_back([&] {
      for (int i = 0; i < 500; ++i)
        if (!slim::net::perform(nullptr, "http://127.0.0.1:9/", "remote").ok()) ++errors;
    });
  for (auto& t : threads) t.join();
  EXPECT_EQ(errors.load(), 4000);
  EXPECT_EQ(slim::net::connections_refused(), refused + 4000);
  EXPECT_EQ(slim::net::connections_attempted(), attempted);
}

TEST(Outbound, SourceScannerTellsCallsFromMentions) {
  EXPECT_TRUE(calls_perform("CURLcode rc = curl_easy_perform(h);"));
  EXPECT_TRUE(calls_perform("auto f = &curl_easy_perform;"));
  EXPECT_TRUE(calls_perform("curl_multi_perform(m, &running);"));
  EXPECT_FALSE(calls_perform("// nothing calls curl_easy_perform but the gate\nint x;"));
  EXPECT_FALSE(calls_perform("/* curl_easy_perform(h) */ int y;"));
  EXPECT_FALSE(calls_perform("const char* s = \"curl_easy_perform(h)\";"));
  EXPECT_FALSE(calls_perform("const char* s = R\"x(curl_easy_perform(h))x\";"));
  EXPECT_FALSE(calls_perform("my_curl_easy_perform_wrapper(h);"));
  EXPECT_TRUE(calls_perform("const char* s = \"a\\\"b\"; curl_easy_perform(h);"));  // an escaped quote ends no string
}

TEST(Outbound, OnlyTheGateCallsPerform) {
  const fs::path root = SLIM_SOURCE_DIR;
  std::set<std::string> callers;
  int scanned = 0;
  for (const char* dir : {"src", "tools"}) {
    ASSERT_TRUE(fs::is_directory(root / dir)) << (root / dir);
    for (const auto& entry : fs::recursive_directory_iterator(root / dir)) {
      if (!entry.is_regular_file()) continue;
      const std::string ext = entry.path().extension().string();
      if (ext != ".cpp" && ext != ".cc" && ext != ".c" && ext != ".h" && ext != ".hpp" && ext != ".inc") continue;
      std::ifstream f(entry.path(), std::ios::binary);
      std::stringstream ss;
      ss << f.rdbuf();
      ++scanned;
      if (calls_perform(ss.str())) callers.insert(fs::relative(entry.path(), root).generic_string());
    }
  }
  EXPECT_GT(scanned, 50);
  // Exactly the gate: finding it also proves the scanner sees real calls.
  EXPECT_EQ(callers, std::set<std::string>{"src/net/outbound.cpp"});
}
