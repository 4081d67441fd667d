// The outbound gate: the only caller of libcurl's perform in slim. Policy and
// counters are process-wide atomics, so any thread may flip local-only or
// perform a transfer without a lock.
#include "net/outbound.h"

#include <curl/curl.h>

#include <atomic>

namespace slim::net {

namespace {

std::atomic<bool> g_local_only{false};
std::atomic<uint64_t> g_attempted{0};
std::atomic<uint64_t> g_refused{0};

}  // namespace

std::string url_origin(const std::string& url) {
  size_t p = url.find("://");
  size_t b = p == std::string::npos ? 0 : p + 3;
  size_t e = url.find_first_of("/?#", b);
  std::string host = url.substr(b, e == std::string::npos ? std::string::npos : e - b);
  if (size_t at = host.rfind('@'); at != std::string::npos) host = host.substr(at + 1);
  return (p == std::string::npos ? "" : url.substr(0, p + 3)) + host;
}

void set_local_only(bool on) { g_local_only.store(on, std::memory_order_seq_cst); }

bool local_only() { return g_local_only.load(std::memory_order_seq_cst); }

Result<int> perform(CURL* handle, const std::string& url, const char* purpose) {
  const char* what = purpose && *purpose ? purpose : "outbound";
  // Checked immediately before the transfer, so a policy switched on while a
  // request was being prepared still stops it.
  if (local_only()) {
    g_refused.fetch_add(1, std::memory_order_relaxed);
    return Status::error(format("local-only policy: refused the %s connection to %s (nothing was sent)", what,
                                url_origin(url).c_str()));
  }
  if (!handle) return Status::error(format("%s connection to %s: no libcurl handle", what, url_origin(url).c_str()));
  g_attempted.fetch_add(1, std::memory_order_relaxed);
  return (int)curl_easy_perform(handle);
}

uint64_t connections_attempted() { return g_attempted.load(std::memory_order_relaxed); }

uint64_t connections_refused() { return g_refused.load(std::memory_order_relaxed); }

}  // namespace slim::net
