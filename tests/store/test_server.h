// A small HTTP/1.1 server on 127.0.0.1 for the pull tests: one thread a
// connection, a route function builds each reply. A reply can stop after some
// body bytes (an interrupted transfer) and the server counts body bytes sent.
#pragma once

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <functional>
#include <map>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

namespace slim::test {

struct HttpRequest {
  std::string method, path;
  std::map<std::string, std::string> headers;  // lower-case keys
};

struct HttpReply {
  int status = 200;
  std::vector<std::pair<std::string, std::string>> headers;
  std::string body;
  long long cut_after = -1;  // close the connection after this many body bytes
  long long content_length = -1;  // announced length (default body size)
};

class TestServer {
 public:
  using Route = std::function<HttpReply(const HttpRequest&)>;
  explicit TestServer(Route route) : route_(std::move(route)) {
    fd_ = ::socket(AF_INET, SOCK_STREAM, 0);
    int one = 1;
    ::setsockopt(fd_, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    a.sin_port = 0;
    if (::bind(fd_, (sockaddr*)&a, sizeof a) != 0 || ::listen(fd_, 64) != 0) return;
    socklen_t len = sizeof a;
    ::getsockname(fd_, (sockaddr*)&a, &len);
    port_ = ntohs(a.sin_port);
    accept_thread_ = std::thread([this] { accept_loop(); });
  }
  ~TestServer() {
    stop_ = true;
    ::shutdown(fd_, SHUT_RDWR);
    ::close(fd_);
    if (accept_thread_.joinable()) accept_thread_.join();
    std::lock_guard<std::mutex> lk(mu_);
    for (auto& t : workers_) t.join();
  }
  int port() const { return port_; }
  std::string base() const { return "http://127.0.0.1:" + std::to_string(port_); }
  long long body_bytes_sent() const { return sent_; }
  void reset_counter() { sent_ = 0; }
  int requests() const { return requests_; }

 private:
  void accept_loop() {
    while (!stop_) {
      int c = ::accept(fd_, nullptr, nullptr);
      if (c < 0) {
        if (stop_) return;
        continue;
      }
      std::lock_guard<std::mutex> lk(mu_);
      workers_.emplace_back([this, c] { serve(c); ::close(c); });
    }
  }

  static bool send_all(int c, const char* p, size_t n) {
    while (n > 0) {
      ssize_t w = ::send(c, p, n, MSG_NOSIGNAL);
      if (w <= 0) return false;
      p += w;
      n -= (size_t)w;
    }
    return true;
  }

  void serve(int c) {
    std::string buf;
    char tmp[4096];
    for (;;) {  // keep-alive: one request after another
      size_t end;
      while ((end = buf.find("\r\n\r\n")) == std::string::npos) {
        ssize_t r = ::recv(c, tmp, sizeof tmp, 0);
        if (r <= 0) return;
        buf.append(tmp, (size_t)r);
      }
      HttpRequest req;
      std::string head = buf.substr(0, end);
      buf.erase(0, end + 4);
      size_t le = head.find("\r\n");
      std::string line = head.substr(0, le);
      size_t s1 = line.find(' '), s2 = line.find(' ', s1 + 1);
      req.method = line.substr(0, s1);
      req.path = line.substr(s1 + 1, s2 - s1 - 1);
      size_t pos = le == std::string::npos ? head.size() : le + 2;
      while (pos < head.size()) {
        size_t e = head.find("\r\n", pos);
        if (e == std::string::npos) e = head.size();
        std::string h = head.substr(pos, e - pos);
        size_t colon = h.find(':');
        if (colon != std::string::npos) {
          std::string k = h.substr(0, colon), v = h.substr(colon + 1);
          for (char& ch : k) ch = (char)std::tolower((unsigned char)ch);
          while (!v.empty() && v[0] == ' ') v.erase(0, 1);
          req.headers[k] = v;
        }
        pos = e + 2;
      }
      ++requests_;
      HttpReply rep = route_(req);
      long long length = rep.content_length >= 0 ? rep.content_length : (long long)rep.body.size();
      std::string out = "HTTP/1.1 " + std::to_string(rep.status) + " X\r\n";
      for (auto& [k, v] : rep.headers) out += k + ": " + v + "\r\n";
      out += "Content-Length: " + std::to_string(length) + "\r\n\r\n";
      if (!send_all(c, out.data(), out.size())) return;
      if (req.method == "HEAD") continue;
      size_t n = rep.body.size();
      if (rep.cut_after >= 0 && (size_t)rep.cut_after < n) n = (size_t)rep.cut_after;
      // in pieces, so the client sees a transfer in progress
      for (size_t off = 0; off < n; off += 16384) {
        size_t k = std::min<size_t>(16384, n - off);
        if (!send_all(c, rep.body.data() + off, k)) return;
        sent_ += (long long)k;
      }
      if (rep.cut_after >= 0) return;  // drop the connection mid-body
    }
  }

  Route route_;
  int fd_ = -1;
  int port_ = 0;
  std::atomic<bool> stop_{false};
  std::atomic<long long> sent_{0};
  std::atomic<int> requests_{0};
  std::thread accept_thread_;
  std::mutex mu_;
  std::vector<std::thread> workers_;
};

}  // namespace slim::test
