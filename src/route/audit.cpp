// The audit log: one JSON object a line, appended with a single write() on an
// O_APPEND descriptor and fsynced before the caller sends anything, so an
// entry is either wholly on disk or (after a crash mid-write) a torn line that
// readers skip. Appends from threads of one process are serialised by the
// log's mutex, appends from several processes by O_APPEND and an flock.
#include "route/audit.h"

#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cctype>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <ctime>
#include <filesystem>

#include "store/store.h"

namespace fs = std::filesystem;

namespace slim {

namespace {

// Invalid UTF-8 in a reason or id must not make the entry unwritable.
std::string js(const nlohmann::json& j) { return j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace); }

std::string iso_now_ms() {
  using namespace std::chrono;
  int64_t ms = duration_cast<milliseconds>(system_clock::now().time_since_epoch()).count();
  std::time_t secs = (std::time_t)(ms / 1000);
  std::tm t{};
  gmtime_r(&secs, &t);
  return format("%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", t.tm_year + 1900, t.tm_mon + 1, t.tm_mday, t.tm_hour, t.tm_min,
                t.tm_sec, (int)(ms % 1000));
}

// user:password@ never goes into the log.
std::string without_userinfo(const std::string& url) {
  size_t p = url.find("://");
  if (p == std::string::npos) return url;
  size_t end = url.find_first_of("/?#", p + 3);
  size_t at = url.rfind('@', end == std::string::npos ? std::string::npos : end);
  if (at == std::string::npos || at < p + 3) return url;
  return url.substr(0, p + 3) + url.substr(at + 1);
}

bool leap(int y) { return (y % 4 == 0 && y % 100 != 0) || y % 400 == 0; }

int days_in_month(int y, int m) {
  static const int d[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
  return m == 2 && leap(y) ? 29 : d[m - 1];
}

// YYYY-MM-DD[(T|space)HH:MM[:SS[.fraction]]][Z|±HH:MM|±HHMM] → unix seconds.
// No zone means UTC, as in the log itself.
bool parse_iso(std::string_view s, int64_t* out) {
  size_t i = 0;
  auto digits = [&](int n, int* v) {
    if (i + n > s.size()) return false;
    *v = 0;
    for (int k = 0; k < n; ++k) {
      char c = s[i + k];
      if (!std::isdigit((unsigned char)c)) return false;
      *v = *v * 10 + (c - '0');
    }
    i += n;
    return true;
  };
  auto lit = [&](char c) {
    if (i < s.size() && s[i] == c) { ++i; return true; }
    return false;
  };
  int y, mo, d, h = 0, mi = 0, sec = 0;
  if (!digits(4, &y) || !lit('-') || !digits(2, &mo) || !lit('-') || !digits(2, &d)) return false;
  if (mo < 1 || mo > 12 || d < 1 || d > days_in_month(y, mo)) return false;
  int64_t offset = 0;
  if (i < s.size()) {
    if (!lit('T') && !lit('t') && !lit(' ')) return false;
    if (!digits(2, &h) || !lit(':') || !digits(2, &mi)) return false;
    if (lit(':')) {
      if (!digits(2, &sec)) return false;
      if (lit('.')) {
        size_t start = i;
        while (i < s.size() && std::isdigit((unsigned char)s[i])) ++i;
        if (i == start) return false;
      }
    }
    if (h > 23 || mi > 59 || sec > 59) return false;
    if (lit('Z') || lit('z')) {
    } else if (i < s.size() && (s[i] == '+' || s[i] == '-')) {
      int sign = s[i++] == '-' ? -1 : 1, oh, om;
      if (!digits(2, &oh)) return false;
      lit(':');
      if (!digits(2, &om) || oh > 23 || om > 59) return false;
      offset = sign * (oh * 3600 + om * 60);
    }
    if (i != s.size()) return false;
  }
  std::tm t{};
  t.tm_year = y - 1900;
  t.tm_mon = mo - 1;
  t.tm_mday = d;
  t.tm_hour = h;
  t.tm_min = mi;
  t.tm_sec = sec;
  *out = (int64_t)timegm(&t) - offset;
  return true;
}

// Does the file end in the middle of a line (a torn write)? Then the next
// entry starts on a new line so it is not glued to the fragment.
bool ends_mid_line(const std::string& path) {
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return false;
  struct stat st {};
  char last = '\n';
  if (::fstat(fd, &st) == 0 && st.st_size > 0 && ::pread(fd, &last, 1, st.st_size - 1) != 1) last = '\n';
  ::close(fd);
  return last != '\n';
}

}  // namespace

Status AuditLog::append(AuditEntry e) {
  if (e.time.empty()) e.time = iso_now_ms();
  // Fields in reading order (a json object would sort them).
  nlohmann::json redactions = nlohmann::json::object();
  for (const auto& [k, v] : e.redactions) redactions[k] = v;
  std::string line = "{\"time\":" + js(e.time) + ",\"request_id\":" + js(e.request_id) + ",\"decision\":" + js(e.decision) +
                     ",\"reason\":" + js(e.reason) + ",\"signals\":" + js(e.signals) + ",\"endpoint\":" + js(e.endpoint) +
                     ",\"url\":" + js(without_userinfo(e.url)) + ",\"model\":" + js(e.model) +
                     ",\"bytes_sent\":" + std::to_string(e.bytes_sent) + ",\"payload_sha256\":" + js(e.payload_sha256) +
                     ",\"redactions\":" + js(redactions) + "}\n";

  int fd = -1;
  bool created = false;
  {
    // The lock orders this process's lines; the fsync below runs outside it
    // so appends from several threads share the disk's flushes.
    std::lock_guard<std::mutex> lk(mu_);
    std::error_code ec;
    if (fs::path parent = fs::path(path_).parent_path(); !parent.empty()) {
      fs::create_directories(parent, ec);
      if (ec) return Status::error("cannot create " + parent.string() + ": " + ec.message());
    }
    created = ::access(path_.c_str(), F_OK) != 0;
    fd = ::open(path_.c_str(), O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0600);
    if (fd < 0) return Status::error(format("cannot open the audit log %s: %s", path_.c_str(), std::strerror(errno)));
    // Other processes' writers take the same lock, so the tail seen here is
    // not a line another writer is still copying in (flock is released by close).
    while (::flock(fd, LOCK_EX) != 0 && errno == EINTR) {
    }
    if (ends_mid_line(path_)) line.insert(line.begin(), '\n');
    // One write() call: with O_APPEND the line lands whole after every other
    // writer's (other processes too), never interleaved with them.
    ssize_t w;
    do {
      w = ::write(fd, line.data(), line.size());
    } while (w < 0 && errno == EINTR);
    int write_errno = errno;
    if (w < 0 || (size_t)w != line.size()) {
      ::close(fd);
      return Status::error(format("cannot write the audit log %s: %s", path_.c_str(),
                                  w < 0 ? std::strerror(write_errno) : "short write (disk full?)"));
    }
    ::flock(fd, LOCK_UN);
  }
  // On disk before the payload leaves: the log may not miss what was sent.
  if (::fsync(fd) != 0) {
    int fe = errno;
    ::close(fd);
    return Status::error(format("cannot sync the audit log %s: %s", path_.c_str(), std::strerror(fe)));
  }
  if (::close(fd) != 0) return Status::error(format("cannot close the audit log %s: %s", path_.c_str(), std::strerror(errno)));
  if (created) {  // a new file is durable only once its folder's entry is
    std::string parent = fs::path(path_).parent_path().string();
    int dfd = ::open(parent.empty() ? "." : parent.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dfd >= 0) {
      ::fsync(dfd);
      ::close(dfd);
    }
  }
  return Status();
}

std::string default_audit_path() { return Store::default_root() + "/audit.jsonl"; }

Result<std::vector<nlohmann::json>> read_audit(const std::string& path, int64_t since_unix) {
  std::vector<nlohmann::json> out;
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    if (errno == ENOENT) return out;  // nothing escalated yet
    return Status::error(format("cannot read the audit log %s: %s", path.c_str(), std::strerror(errno)));
  }
  std::string text;
  char buf[1 << 16];
  for (;;) {
    ssize_t n = ::read(fd, buf, sizeof buf);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      int e = errno;
      ::close(fd);
      return Status::error(format("cannot read the audit log %s: %s", path.c_str(), std::strerror(e)));
    }
    if (n == 0) break;
    text.append(buf, n);
  }
  ::close(fd);
  size_t pos = 0;
  while (pos < text.size()) {
    size_t end = text.find('\n', pos);
    if (end == std::string::npos) end = text.size();
    std::string_view line(text.data() + pos, end - pos);
    pos = end + 1;
    if (line.empty()) continue;
    nlohmann::json j = nlohmann::json::parse(line, nullptr, false);
    // A torn write (a crash mid-line) does not parse: skipped. append()
    // starts a new line after one, so this never hides a complete entry.
    if (!j.is_object()) continue;
    if (since_unix > 0) {
      int64_t t = 0;
      if (!j.contains("time") || !j["time"].is_string() || !parse_iso(j["time"].get<std::string>(), &t) || t < since_unix)
        continue;
    }
    out.push_back(std::move(j));
  }
  return out;
}

Result<int64_t> parse_since(const std::string& s) {
  const auto bad = [&] {
    return Status::error("bad --since '" + s + "': use 30m, 1h, 2d, 1w or a UTC date or time such as 2026-12-01 or 2026-12-01T10:00:00Z");
  };
  if (s.size() >= 2 && s.size() <= 10 && std::isdigit((unsigned char)s[0])) {
    size_t n = 0;
    while (n < s.size() && std::isdigit((unsigned char)s[n])) ++n;
    if (n == s.size() - 1) {
      int64_t unit = 0;
      switch (s.back()) {
        case 's': unit = 1; break;
        case 'm': unit = 60; break;
        case 'h': unit = 3600; break;
        case 'd': unit = 86400; break;
        case 'w': unit = 7 * 86400; break;
        default: return bad();
      }
      int64_t count = std::stoll(s.substr(0, n));
      return (int64_t)std::time(nullptr) - count * unit;
    }
  }
  int64_t t = 0;
  if (parse_iso(s, &t)) return t;
  return bad();
}

}  // namespace slim
