// The remote client: one libcurl POST per call, its reply kept whole or parsed
// as server-sent events (WHATWG "event stream" rules) and handed on one event
// at a time. Every failure ends in one of a few classes the router can act on.
// Cancellation is prompt even while no bytes arrive: libcurl only calls its
// progress callback about once a second when idle, so a watchdog thread shuts
// the transfer's sockets down the moment `cancel` turns true.
#include "route/remote.h"

#include <curl/curl.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <chrono>
#include <cmath>
#include <condition_variable>
#include <cstdlib>
#include <exception>
#include <mutex>
#include <nlohmann/json.hpp>
#include <thread>
#include <vector>

#include "net/outbound.h"

namespace slim {

namespace {

constexpr size_t kMaxBody = 64u << 20;       // far beyond any real completion; more is not an answer
constexpr size_t kMaxErrorBody = 4096;       // enough for the message excerpt
constexpr size_t kMaxLine = 16u << 20;       // an SSE line this long without a newline is not a stream
constexpr size_t kStreamHead = 512;          // stream bytes kept to explain a malformed stream
constexpr size_t kExcerpt = 200;             // characters of a body quoted in a message

void curl_init_once() {
  static std::once_flag once;
  std::call_once(once, [] { curl_global_init(CURL_GLOBAL_DEFAULT); });
}

std::string lower(std::string s) {
  for (char& c : s) c = (char)std::tolower((unsigned char)c);
  return s;
}

std::string trim(std::string_view s) {
  size_t b = 0, e = s.size();
  while (b < e && std::isspace((unsigned char)s[b])) ++b;
  while (e > b && std::isspace((unsigned char)s[e - 1])) --e;
  return std::string(s.substr(b, e - b));
}


// A body quoted on one line: control characters become spaces, runs collapse,
// long ones are cut. An OpenAI-style {"error":{"message":...}} quotes the message.
std::string excerpt(const std::string& body) {
  std::string text = body;
  try {
    auto j = nlohmann::json::parse(body);
    if (j.is_object() && j.contains("error")) {
      const auto& e = j["error"];
      if (e.is_string()) text = e.get<std::string>();
      else if (e.is_object() && e.contains("message") && e["message"].is_string()) text = e["message"].get<std::string>();
    } else if (j.is_object() && j.contains("message") && j["message"].is_string()) {
      text = j["message"].get<std::string>();
    }
  } catch (const std::exception&) {
  }
  std::string out;
  for (char c : text) {
    bool space = (unsigned char)c < 0x20 || c == 0x7f;
    if (space) {
      if (!out.empty() && out.back() != ' ') out += ' ';
    } else {
      out += c;
    }
    if (out.size() >= kExcerpt) {
      // do not cut a UTF-8 sequence in half
      while (!out.empty() && ((unsigned char)out.back() & 0xC0) == 0x80) out.pop_back();
      if (!out.empty() && (unsigned char)out.back() >= 0xC0) out.pop_back();
      out += "...";
      break;
    }
  }
  return trim(out);
}

bool is_json_object(std::string_view s) {
  size_t i = 0;
  while (i < s.size() && std::isspace((unsigned char)s[i])) ++i;
  if (i == s.size() || s[i] != '{') return false;
  return nlohmann::json::accept(s.begin(), s.end());
}

// Incremental SSE parser. Bytes arrive in arbitrary pieces: a line, or even a
// CR LF pair, may be split across two calls, so the unfinished line is kept.
// Lines end in CR LF, LF or CR; a blank line dispatches the event; `data:`
// lines of one event join with LF; lines starting with ':' are comments; other
// fields (event, id, retry) do not matter to an OpenAI stream and are ignored.
class SseParser {
 public:
  using Emit = std::function<bool(std::string_view)>;  // false: stop reading
  explicit SseParser(Emit emit) : emit_(std::move(emit)) {}

  // false when the emitter asked to stop or the input is not a plausible stream.
  bool feed(const char* p, size_t n) {
    size_t i = 0;
    while (i < n) {
      if (skip_lf_) {  // the previous piece ended in CR: a LF now belongs to it
        skip_lf_ = false;
        if (p[i] == '\n') { ++i; continue; }
      }
      const char* end = std::find_if(p + i, p + n, [](char c) { return c == '\r' || c == '\n'; });
      line_.append(p + i, end - (p + i));
      if (line_.size() > kMaxLine) { overflow_ = true; return false; }
      i = end - p;
      if (i == n) break;
      skip_lf_ = p[i] == '\r';
      ++i;
      if (!line()) return false;
    }
    return true;
  }

  // End of input. Servers often close right after their last line without the
  // blank line the spec asks for; that last event is still delivered.
  bool finish() {
    if (!line_.empty() && !line()) return false;
    if (has_data_) return dispatch();
    return true;
  }

  bool overflow() const { return overflow_; }

 private:
  bool line() {
    std::string_view l = line_;
    if (first_line_) {  // one UTF-8 byte order mark may start the stream
      first_line_ = false;
      if (l.starts_with("\xEF\xBB\xBF")) l.remove_prefix(3);
    }
    bool go = true;
    if (l.empty()) {
      if (has_data_) go = dispatch();
    } else if (l[0] != ':') {
      size_t colon = l.find(':');
      std::string_view field = l.substr(0, colon);
      std::string_view value = colon == std::string_view::npos ? std::string_view() : l.substr(colon + 1);
      if (value.starts_with(' ')) value.remove_prefix(1);
      if (field == "data") {
        if (has_data_) data_ += '\n';
        data_.append(value);
        has_data_ = true;
        if (data_.size() > kMaxLine) { overflow_ = true; go = false; }
      }
    }
    line_.clear();
    return go;
  }

  bool dispatch() {
    has_data_ = false;
    std::string data;
    data.swap(data_);
    return emit_(data);
  }

  Emit emit_;
  std::string line_;
  std::string data_;
  bool has_data_ = false;
  bool skip_lf_ = false;
  bool first_line_ = true;
  bool overflow_ = false;
};

// Sockets of one transfer, so the watchdog can shut them down. shutdown()
// (not close()) wakes libcurl's poll without freeing the descriptor, and the
// lock keeps it from touching a descriptor libcurl already closed.
struct SocketWatch {
  std::mutex mu;
  std::vector<curl_socket_t> fds;
  bool tripped = false;

  void trip() {
    std::lock_guard<std::mutex> lk(mu);
    tripped = true;
    for (curl_socket_t fd : fds) ::shutdown(fd, SHUT_RDWR);
  }
  bool was_tripped() {
    std::lock_guard<std::mutex> lk(mu);
    return tripped;
  }
};

curl_socket_t open_socket(void* user, curlsocktype purpose, struct curl_sockaddr* a) {
  if (purpose != CURLSOCKTYPE_IPCXN) return CURL_SOCKET_BAD;
  auto* w = static_cast<SocketWatch*>(user);
  curl_socket_t fd = ::socket(a->family, a->socktype | SOCK_CLOEXEC, a->protocol);
  if (fd == CURL_SOCKET_BAD) return fd;
  std::lock_guard<std::mutex> lk(w->mu);
  w->fds.push_back(fd);
  if (w->tripped) ::shutdown(fd, SHUT_RDWR);  // cancelled while libcurl was still resolving
  return fd;
}

int close_socket(void* user, curl_socket_t fd) {
  auto* w = static_cast<SocketWatch*>(user);
  std::lock_guard<std::mutex> lk(w->mu);
  w->fds.erase(std::remove(w->fds.begin(), w->fds.end(), fd), w->fds.end());
  return ::close(fd);
}

// Polls `cancel` (a plain flag nobody notifies) every 10 ms while a transfer
// runs; stop() ends it at once through the condition variable.
class Watchdog {
 public:
  Watchdog(const std::atomic<bool>* cancel, SocketWatch& w) {
    if (!cancel) return;
    thread_ = std::thread([this, cancel, &w] {
      std::unique_lock<std::mutex> lk(mu_);
      while (!stop_) {
        if (cancel->load()) {
          w.trip();
          return;
        }
        cv_.wait_for(lk, std::chrono::milliseconds(10));
      }
    });
  }
  ~Watchdog() { stop(); }
  void stop() {
    {
      std::lock_guard<std::mutex> lk(mu_);
      stop_ = true;
    }
    cv_.notify_all();
    if (thread_.joinable()) thread_.join();
  }

 private:
  std::mutex mu_;
  std::condition_variable cv_;
  bool stop_ = false;
  std::thread thread_;
};

struct Transfer {
  Transfer() = default;
  Transfer(const Transfer&) = delete;  // the parser's emitter points at this one
  Transfer& operator=(const Transfer&) = delete;
  CURL* h = nullptr;
  bool stream = false;
  const SseHandler* on_event = nullptr;
  const std::atomic<bool>* cancel = nullptr;
  long status = -1;           // the final reply's status, read at its first body byte
  std::string retry_after;
  std::string body;           // a 2xx reply, not streaming
  std::string error_body;     // the start of a non-2xx reply
  std::string stream_head;    // the start of a 2xx stream
  uint64_t received = 0;
  int events = 0;             // valid JSON events passed on
  int invalid_events = 0;     // events whose data is not a JSON object (skipped)
  bool done = false;          // data: [DONE]
  bool client_stopped = false;
  bool cancel_seen = false;
  bool too_large = false;
  std::exception_ptr handler_error;
  SseParser sse{[this](std::string_view d) { return on_data(d); }};

  bool cancelled() const { return cancel && cancel->load(); }

  bool on_data(std::string_view d) {
    if (cancelled()) { cancel_seen = true; return false; }
    if (trim(d) == "[DONE]") { done = true; return false; }
    if (!is_json_object(d)) { ++invalid_events; return true; }
    ++events;
    if (on_event && *on_event) {
      try {
        if (!(*on_event)(d)) { client_stopped = true; return false; }
      } catch (...) {  // never let an exception cross libcurl's C frames
        handler_error = std::current_exception();
        return false;
      }
    }
    return true;
  }
};

bool is_2xx(long s) { return s >= 200 && s < 300; }

size_t on_write(char* p, size_t size, size_t n, void* user) {
  auto* t = static_cast<Transfer*>(user);
  const size_t len = size * n;
  t->received += len;
  if (t->status < 0) curl_easy_getinfo(t->h, CURLINFO_RESPONSE_CODE, &t->status);
  if (!is_2xx(t->status)) {
    t->error_body.append(p, std::min(len, kMaxErrorBody - std::min(kMaxErrorBody, t->error_body.size())));
    return t->error_body.size() >= kMaxErrorBody ? 0 : len;  // enough for the message: stop
  }
  if (!t->stream) {
    if (t->body.size() + len > kMaxBody) { t->too_large = true; return 0; }
    t->body.append(p, len);
    return len;
  }
  if (t->stream_head.size() < kStreamHead) t->stream_head.append(p, std::min(len, kStreamHead - t->stream_head.size()));
  return t->sse.feed(p, len) ? len : 0;
}

size_t on_header(char* p, size_t size, size_t n, void* user) {
  auto* t = static_cast<Transfer*>(user);
  std::string_view line(p, size * n);
  if (line.starts_with("HTTP/")) {
    t->retry_after.clear();  // a new reply (after 100 Continue, say)
  } else if (size_t colon = line.find(':'); colon != std::string_view::npos) {
    if (lower(std::string(line.substr(0, colon))) == "retry-after") t->retry_after = trim(line.substr(colon + 1));
  }
  return size * n;
}

int on_progress(void* user, curl_off_t, curl_off_t, curl_off_t, curl_off_t) {
  auto* t = static_cast<Transfer*>(user);
  if (t->cancelled()) {
    t->cancel_seen = true;
    return 1;  // CURLE_ABORTED_BY_CALLBACK
  }
  return 0;
}

long to_ms(double seconds, double fallback) {
  if (!(seconds > 0) || !std::isfinite(seconds)) seconds = fallback;  // 0 would mean "no limit" to libcurl
  return (long)std::clamp(std::ceil(seconds * 1000.0), 1.0, 1e9);
}

// "Name: value" for libcurl, or "" for a header that cannot be sent. CR and
// LF would start another header, so they never pass.
std::string header_line(const std::string& name, const std::string& value) {
  std::string n = trim(name);
  if (n.empty()) return "";
  for (char c : n)
    if (c <= ' ' || c == ':' || c == 0x7f) return "";
  std::string v;
  for (char c : value)
    if (c != '\r' && c != '\n') v += c;
  v = trim(v);
  return v.empty() ? n + ";" : n + ": " + v;  // "Name;" is libcurl's way to send an empty header
}

struct CurlEasy {
  CURL* h = nullptr;
  curl_slist* headers = nullptr;
  CurlEasy() { curl_init_once(); h = curl_easy_init(); }
  ~CurlEasy() {
    if (h) curl_easy_cleanup(h);
    if (headers) curl_slist_free_all(headers);
  }
  CurlEasy(const CurlEasy&) = delete;
  CurlEasy& operator=(const CurlEasy&) = delete;
};

RemoteReply failed(RemoteReply r, const char* failure, std::string message) {
  r.ok = false;
  r.failure = failure;
  r.message = std::move(message);
  return r;
}

}  // namespace

RemoteReply remote_post(const RemoteEndpoint& ep, const std::string& path, const std::string& body,
                        const SseHandler& on_event, const std::atomic<bool>* cancel) {
  RemoteReply r;
  const bool stream = static_cast<bool>(on_event);
  std::string base = ep.base_url;
  while (!base.empty() && base.back() == '/') base.pop_back();
  if (base.empty()) return failed(r, "unreachable", "the remote endpoint '" + ep.name + "' has no url");
  const std::string url = base + (path.empty() || path[0] == '/' ? "" : "/") + path;
  const std::string origin = net::url_origin(url);
  if (cancel && cancel->load()) return failed(r, "cancelled", "cancelled before connecting to " + ep.name);

  CurlEasy c;
  if (!c.h) return failed(r, "unreachable", "cannot start libcurl");
  Transfer t;
  t.h = c.h;
  t.stream = stream;
  t.on_event = &on_event;
  t.cancel = cancel;
  SocketWatch watch;
  char errbuf[CURL_ERROR_SIZE] = {0};

  // Headers: the endpoint's own ones win over the defaults of the same name.
  auto named = [&](const char* name) {
    for (const auto& [k, v] : ep.headers)
      if (lower(trim(k)) == lower(name)) return true;
    return false;
  };
  std::vector<std::string> lines;
  if (!named("Content-Type")) lines.push_back("Content-Type: application/json");
  if (!named("Accept")) lines.push_back(stream ? "Accept: text/event-stream" : "Accept: application/json");
  if (!ep.api_key_env.empty() && !named("Authorization")) {
    const char* key = std::getenv(ep.api_key_env.c_str());
    if (std::string l = key ? header_line("Authorization", std::string("Bearer ") + trim(key)) : "";
        key && !trim(key).empty() && !l.empty())
      lines.push_back(l);
  }
  lines.push_back("Expect:");  // send the body at once, no 100-continue round trip
  for (const auto& [k, v] : ep.headers)
    if (std::string l = header_line(k, v); !l.empty()) lines.push_back(l);
  for (const auto& l : lines) c.headers = curl_slist_append(c.headers, l.c_str());

  CURL* h = c.h;
  curl_easy_setopt(h, CURLOPT_URL, url.c_str());
  curl_easy_setopt(h, CURLOPT_POST, 1L);
  curl_easy_setopt(h, CURLOPT_POSTFIELDS, body.data());
  curl_easy_setopt(h, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)body.size());
  curl_easy_setopt(h, CURLOPT_HTTPHEADER, c.headers);
  // http(s) only, and no redirects: a redirect would carry the payload to a
  // place the audit log does not name.
#if LIBCURL_VERSION_NUM >= 0x075500
  curl_easy_setopt(h, CURLOPT_PROTOCOLS_STR, "http,https");
#else
  curl_easy_setopt(h, CURLOPT_PROTOCOLS, (long)(CURLPROTO_HTTP | CURLPROTO_HTTPS));
#endif
  curl_easy_setopt(h, CURLOPT_FOLLOWLOCATION, 0L);
  curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
  curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT_MS, to_ms(ep.connect_timeout_s, 5));
  curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, to_ms(ep.timeout_s, 30));
  curl_easy_setopt(h, CURLOPT_USERAGENT, "slim/0.1");
  curl_easy_setopt(h, CURLOPT_ERRORBUFFER, errbuf);
  curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, on_write);
  curl_easy_setopt(h, CURLOPT_WRITEDATA, &t);
  curl_easy_setopt(h, CURLOPT_HEADERFUNCTION, on_header);
  curl_easy_setopt(h, CURLOPT_HEADERDATA, &t);
  curl_easy_setopt(h, CURLOPT_NOPROGRESS, 0L);
  curl_easy_setopt(h, CURLOPT_XFERINFOFUNCTION, on_progress);
  curl_easy_setopt(h, CURLOPT_XFERINFODATA, &t);
  curl_easy_setopt(h, CURLOPT_OPENSOCKETFUNCTION, open_socket);
  curl_easy_setopt(h, CURLOPT_OPENSOCKETDATA, &watch);
  curl_easy_setopt(h, CURLOPT_CLOSESOCKETFUNCTION, close_socket);
  curl_easy_setopt(h, CURLOPT_CLOSESOCKETDATA, &watch);

  Result<int> performed = 0;
  {
    Watchdog dog(cancel, watch);
    performed = net::perform(h, url, "remote");
  }
  if (!performed) return failed(r, "refused", performed.error());
  CURLcode rc = (CURLcode)*performed;
  // A clean end of a stream (no [DONE]) may still hold a last event.
  if (rc == CURLE_OK && stream && is_2xx(t.status) && !t.done && !t.cancelled()) t.sse.finish();
  if (t.handler_error) std::rethrow_exception(t.handler_error);

  curl_off_t up = 0;
  curl_easy_getinfo(h, CURLINFO_SIZE_UPLOAD_T, &up);
  long status = 0;
  curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &status);
  r.bytes_sent = up > 0 ? (uint64_t)up : 0;
  r.bytes_received = t.received;
  r.http_status = (int)status;
  const std::string curl_error = errbuf[0] ? trim(errbuf) : curl_easy_strerror(rc);

  if (!t.done && (watch.was_tripped() || t.cancel_seen || t.client_stopped))
    return failed(r, "cancelled", t.client_stopped ? "the client went away" : "cancelled");
  const bool complete = rc == CURLE_OK || (rc == CURLE_WRITE_ERROR && t.done);
  if (status > 0 && !is_2xx(status)) {
    std::string msg = format("%s answered HTTP %ld", ep.name.c_str(), status);
    if (!t.retry_after.empty()) msg += " (retry after " + t.retry_after + (t.retry_after.find_first_not_of("0123456789") == std::string::npos ? " s)" : ")");
    if (std::string ex = excerpt(t.error_body); !ex.empty()) msg += ": " + ex;
    r.body = t.error_body;
    return failed(r, format("http %ld", status).c_str(), msg);
  }
  if (rc == CURLE_OPERATION_TIMEDOUT) {
    curl_off_t connect_us = 0;
    curl_easy_getinfo(h, CURLINFO_CONNECT_TIME_T, &connect_us);
    double limit = to_ms(ep.timeout_s, 30) / 1000.0;
    if (connect_us == 0)
      return failed(r, "timeout", format("no connection to %s within %.1f s", origin.c_str(), to_ms(ep.connect_timeout_s, 5) / 1000.0));
    if (status == 0) return failed(r, "timeout", format("%s did not answer within %.1f s", ep.name.c_str(), limit));
    return failed(r, "timeout", format("%s did not finish its reply within %.1f s (%d events received)", ep.name.c_str(), limit, t.events));
  }
  if (!complete) {
    if (status == 0)  // no reply at all: refused, no route, DNS, TLS, connection reset
      return failed(r, "unreachable", format("cannot reach %s at %s: %s", ep.name.c_str(), origin.c_str(), curl_error.c_str()));
    if (t.too_large) return failed(r, "malformed", format("%s sent a reply larger than %zu MiB", ep.name.c_str(), kMaxBody >> 20));
    if (t.sse.overflow()) return failed(r, "malformed", format("%s sent a stream line longer than %zu MiB", ep.name.c_str(), kMaxLine >> 20));
    // A 2xx reply that stopped short: what arrived is not the whole answer.
    return failed(r, "malformed", stream ? format("%s's stream was cut off after %d events: %s", ep.name.c_str(), t.events, curl_error.c_str())
                                         : format("%s's reply was cut off after %llu bytes: %s", ep.name.c_str(),
                                                  (unsigned long long)t.received, curl_error.c_str()));
  }
  if (stream) {
    if (t.events == 0)
      return failed(r, "malformed", format("%s sent no JSON event in its stream: %s", ep.name.c_str(), excerpt(t.stream_head).c_str()));
    r.ok = true;
    return r;
  }
  r.body = std::move(t.body);
  if (!is_json_object(r.body))
    return failed(r, "malformed", format("%s sent a reply that is not a JSON object: %s", ep.name.c_str(), excerpt(r.body).c_str()));
  r.ok = true;
  return r;
}

}  // namespace slim
