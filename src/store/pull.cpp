// Download, verify, install. One download of a URL at a time (a flock on
// tmp/<key>.lock): a concurrent pull of the same model waits, then finds the
// blob in place and only writes its manifest.
#include "store/pull.h"

#include <functional>

#include <curl/curl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <mutex>
#include <nlohmann/json.hpp>
#include <thread>

#include "base/mapped_file.h"
#include "base/progress_line.h"
#include "net/outbound.h"
#include "store/sha256.h"

namespace fs = std::filesystem;

namespace slim {

namespace {

std::string lower(std::string s) {
  for (char& c : s) c = (char)std::tolower((unsigned char)c);
  return s;
}

std::string url_host(const std::string& url) {
  size_t p = url.find("://");
  size_t b = p == std::string::npos ? 0 : p + 3;
  size_t e = url.find('/', b);
  return url.substr(b, e == std::string::npos ? std::string::npos : e - b);
}

void curl_init_once() {
  static std::once_flag once;
  std::call_once(once, [] { curl_global_init(CURL_GLOBAL_DEFAULT); });
}

struct CurlHandle {
  CURL* h = nullptr;
  curl_slist* headers = nullptr;
  CurlHandle() { curl_init_once(); h = curl_easy_init(); }
  ~CurlHandle() {
    if (h) curl_easy_cleanup(h);
    if (headers) curl_slist_free_all(headers);
  }
};

void common_options(CurlHandle& c, const std::string& url) {
  CURL* h = c.h;
  curl_easy_setopt(h, CURLOPT_URL, url.c_str());
  curl_easy_setopt(h, CURLOPT_FOLLOWLOCATION, 1L);
  curl_easy_setopt(h, CURLOPT_MAXREDIRS, 10L);
  curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT, 30L);
  curl_easy_setopt(h, CURLOPT_LOW_SPEED_LIMIT, 1L);    // a stalled transfer is a failure
  curl_easy_setopt(h, CURLOPT_LOW_SPEED_TIME, 60L);
  curl_easy_setopt(h, CURLOPT_USERAGENT, "slim/0.1");
  curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
  if (const char* tok = std::getenv("HF_TOKEN"); tok && *tok && url.find("huggingface.co") != std::string::npos) {
    // only sent to the hub itself; curl drops it on redirects to another host
    if (!c.headers) c.headers = curl_slist_append(nullptr, (std::string("Authorization: Bearer ") + tok).c_str());
    curl_easy_setopt(h, CURLOPT_HTTPHEADER, c.headers);
  }
}

size_t append_string(char* p, size_t sz, size_t n, void* user) {
  std::string* s = static_cast<std::string*>(user);
  if (s->size() < (16u << 20)) s->append(p, sz * n);
  return sz * n;
}

std::string status_text(long code) {
  switch (code) {
    case 400: return "400 Bad Request";
    case 401: return "401 Unauthorized (gated or private: set HF_TOKEN)";
    case 403: return "403 Forbidden";
    case 404: return "404 Not Found";
    case 416: return "416 Range Not Satisfiable";
    case 429: return "429 Too Many Requests";
    case 500: return "500 Internal Server Error";
    case 502: return "502 Bad Gateway";
    case 503: return "503 Service Unavailable";
    case 504: return "504 Gateway Timeout";
    default: return std::to_string(code);
  }
}

bool retryable_status(long code) { return code == 408 || code == 429 || code >= 500; }

// A digest in an ETag-like header: quotes and W/ stripped, 64 hex digits.
std::string digest_from_etag(std::string v) {
  auto trim = [](std::string& s) {
    while (!s.empty() && (s.back() == '\r' || s.back() == '\n' || s.back() == ' ' || s.back() == '"')) s.pop_back();
    size_t i = 0;
    while (i < s.size() && (s[i] == ' ' || s[i] == '"')) ++i;
    s.erase(0, i);
  };
  trim(v);
  if (v.rfind("W/", 0) == 0) v = v.substr(2);
  trim(v);
  if (v.rfind("sha256:", 0) == 0) v = v.substr(7);
  v = lower(v);
  return is_sha256_hex(v) ? v : "";
}

// Headers of every response on the way (redirect hops included): HF puts the
// digest on the hub's redirect, the CDN answers with the bytes.
struct HeaderState {
  long status = 0;
  std::string digest;          // from X-Linked-Etag (preferred) or ETag
  bool digest_linked = false;
  int64_t linked_size = -1;    // X-Linked-Size
  int64_t total_size = -1;     // from Content-Range or Content-Length of the final response
  std::string location;
};

size_t on_header(char* p, size_t sz, size_t n, void* user) {
  HeaderState* s = static_cast<HeaderState*>(user);
  std::string line(p, sz * n);
  if (line.rfind("HTTP/", 0) == 0) {
    size_t sp = line.find(' ');
    s->status = sp == std::string::npos ? 0 : std::atol(line.c_str() + sp + 1);
    s->total_size = -1;
    return sz * n;
  }
  size_t colon = line.find(':');
  if (colon == std::string::npos) return sz * n;
  std::string key = lower(line.substr(0, colon));
  std::string val = line.substr(colon + 1);
  while (!val.empty() && (val.back() == '\r' || val.back() == '\n')) val.pop_back();
  while (!val.empty() && val.front() == ' ') val.erase(0, 1);
  if (key == "x-linked-etag") {
    if (auto d = digest_from_etag(val); !d.empty()) { s->digest = d; s->digest_linked = true; }
  } else if (key == "etag") {
    if (auto d = digest_from_etag(val); !d.empty() && !s->digest_linked) s->digest = d;
  } else if (key == "x-linked-size") {
    s->linked_size = std::atoll(val.c_str());
  } else if (key == "content-range") {  // bytes A-B/TOTAL
    size_t slash = val.rfind('/');
    if (slash != std::string::npos && val.substr(slash + 1) != "*") s->total_size = std::atoll(val.c_str() + slash + 1);
  } else if (key == "content-length") {
    if (s->status == 200) s->total_size = std::atoll(val.c_str());
  }
  return sz * n;
}

// Live progress on a terminal; nothing when piped (the caller prints lines).
class Progress {
 public:
  Progress(bool live, std::string label, std::function<void(uint64_t, int64_t)> report = nullptr)
      : live_(live), label_(std::move(label)), report_(std::move(report)) {}
  void update(uint64_t done, int64_t total, uint64_t fetched_now) {
    if (!live_ && !report_) return;
    auto now = std::chrono::steady_clock::now();
    if (now - last_ < std::chrono::milliseconds(100) && (total < 0 || (int64_t)done < total)) return;
    last_ = now;
    if (report_) report_(done, total);
    if (!live_) return;
    double secs = std::chrono::duration<double>(now - start_).count();
    double rate = secs > 0 ? fetched_now / secs : 0;
    std::string line = "\r" + label_ + "  ";
    if (total > 0) {
      line += format("%3d%% %s/%s", (int)(100.0 * done / total), human_size((double)done).c_str(),
                     human_size((double)total).c_str());
    } else {
      line += human_size((double)done);
    }
    line += format("  %s/s", human_size(rate).c_str());
    if (total > 0 && rate > 0) {
      int eta = (int)((total - (double)done) / rate);
      line += format_eta(eta);
    }
    line += "   ";
    out_.draw(line);
  }
  void finish() { out_.finish(); }

 private:
  bool live_;
  std::string label_;
  std::function<void(uint64_t, int64_t)> report_;
  ProgressLine out_;
  std::chrono::steady_clock::time_point start_ = std::chrono::steady_clock::now();
  std::chrono::steady_clock::time_point last_{};
};

struct Download {
  FILE* f = nullptr;
  Sha256* hash = nullptr;
  uint64_t offset = 0;        // bytes in the file when this attempt began
  uint64_t written = 0;       // bytes appended by this attempt
  bool restarted = false;     // the server ignored Range: the file was emptied
  int write_errno = 0;
  std::string error_body;     // the start of an error response
  HeaderState* headers = nullptr;
  Progress* progress = nullptr;
  uint64_t fetched_total = 0;
};

size_t on_body(char* p, size_t sz, size_t n, void* user) {
  Download* d = static_cast<Download*>(user);
  const size_t len = sz * n;
  long code = d->headers->status;
  if (code != 200 && code != 206) {  // keep the body for the message, never write it to the file
    if (d->error_body.size() < 512) d->error_body.append(p, std::min<size_t>(len, 512));
    return len;
  }
  if (code == 200 && d->offset > 0 && !d->restarted && d->written == 0) {
    // the server sent the whole file: start over
    if (::ftruncate(fileno(d->f), 0) != 0 || std::fseek(d->f, 0, SEEK_SET) != 0) { d->write_errno = errno; return 0; }
    *d->hash = Sha256();
    d->offset = 0;
    d->restarted = true;
  }
  if (std::fwrite(p, 1, len, d->f) != len) {
    d->write_errno = errno ? errno : EIO;
    return 0;
  }
  d->hash->update(p, len);
  d->written += len;
  d->fetched_total += len;
  if (d->progress) {
    int64_t total = d->headers->total_size >= 0 ? d->headers->total_size : d->headers->linked_size;
    d->progress->update(d->offset + d->written, total, d->fetched_total);
  }
  return len;
}

Result<std::string> http_get_text(const std::string& url, long* status) {
  CurlHandle c;
  if (!c.h) return Status::error("cannot start libcurl");
  std::string body;
  HeaderState hs;
  common_options(c, url);
  curl_easy_setopt(c.h, CURLOPT_WRITEFUNCTION, append_string);
  curl_easy_setopt(c.h, CURLOPT_WRITEDATA, &body);
  curl_easy_setopt(c.h, CURLOPT_HEADERFUNCTION, on_header);
  curl_easy_setopt(c.h, CURLOPT_HEADERDATA, &hs);
  curl_easy_setopt(c.h, CURLOPT_TIMEOUT, 60L);
  auto performed = net::perform(c.h, url, "pull");  // refused under local-only
  if (!performed) return Status::error(performed.error());
  CURLcode rc = (CURLcode)*performed;
  if (rc != CURLE_OK)
    return Status::error(format("cannot reach %s: %s", url_host(url).c_str(), curl_easy_strerror(rc)));
  curl_easy_getinfo(c.h, CURLINFO_RESPONSE_CODE, status);
  return body;
}

bool word_boundary(const std::string& s, size_t pos, size_t len) {
  auto sep = [](char c) { return !std::isalnum((unsigned char)c); };
  return (pos == 0 || sep(s[pos - 1])) && (pos + len == s.size() || sep(s[pos + len]));
}

std::string quant_in_name(const std::string& file) {
  static const char* known[] = {"IQ1_S", "IQ1_M", "IQ2_XXS", "IQ2_XS", "IQ2_S", "IQ2_M", "IQ3_XXS", "IQ3_XS", "IQ3_S",
                                "IQ3_M", "IQ4_NL", "IQ4_XS", "Q2_K_S", "Q2_K", "Q3_K_S", "Q3_K_M", "Q3_K_L", "Q4_0",
                                "Q4_1", "Q4_K_S", "Q4_K_M", "Q5_0", "Q5_1", "Q5_K_S", "Q5_K_M", "Q6_K", "Q8_0",
                                "F16", "BF16", "F32"};
  std::string lf = lower(file);
  for (const char* q : known) {
    std::string lq = lower(q);
    size_t p = lf.find(lq);
    if (p != std::string::npos && word_boundary(lf, p, lq.size())) return q;
  }
  return "";
}

std::string escape_path(const std::string& p) {
  std::string out;
  for (unsigned char c : p) {
    if (std::isalnum(c) || c == '/' || c == '.' || c == '_' || c == '-' || c == '~') out += (char)c;
    else out += format("%%%02X", c);
  }
  return out;
}

void sleep_ms(int ms) { std::this_thread::sleep_for(std::chrono::milliseconds(ms)); }

}  // namespace

std::string hf_endpoint() {
  std::string e = "https://huggingface.co";
  if (const char* v = std::getenv("SLIM_HF_ENDPOINT"); v && *v) e = v;
  while (!e.empty() && e.back() == '/') e.pop_back();
  return e;
}

Result<std::string> pick_gguf_file(const std::vector<std::string>& files, const std::string& quant,
                                   const std::string& repo) {
  std::vector<std::string> hits, ggufs;
  bool split = false;
  const std::string lq = lower(quant);
  for (const auto& f : files) {
    std::string lf = lower(f);
    if (lf.size() < 5 || lf.compare(lf.size() - 5, 5, ".gguf") != 0) continue;
    if (lf.find("mmproj") != std::string::npos) continue;  // vision projectors are not language models
    ggufs.push_back(f);
    size_t p = lf.find(lq);
    bool match = false;
    while (p != std::string::npos && !match) {
      match = word_boundary(lf, p, lq.size());
      p = lf.find(lq, p + 1);
    }
    if (!match) continue;
    if (lf.find("-of-0") != std::string::npos) { split = true; continue; }
    hits.push_back(f);
  }
  if (hits.empty()) {
    if (split) return Status::error("the " + quant + " model of " + repo + " is split into several files, which slim cannot load yet");
    if (ggufs.empty()) return Status::error(repo + " holds no .gguf file");
    std::string avail;
    for (const auto& g : ggufs) {
      std::string q = quant_in_name(g);
      if (!q.empty() && avail.find(q) == std::string::npos) avail += (avail.empty() ? "" : ", ") + q;
    }
    return Status::error("no " + quant + " file in " + repo + (avail.empty() ? "" : " (it has: " + avail + ")"));
  }
  std::sort(hits.begin(), hits.end(), [](const std::string& a, const std::string& b) {
    return a.size() != b.size() ? a.size() < b.size() : a < b;
  });
  return hits[0];
}

Result<PullSource> resolve_pull_source(const std::string& ref) {
  PullSource src;
  src.source = ref;
  std::string rest;
  for (const char* prefix : {"hf.co/", "huggingface.co/", "https://hf.co/", "https://huggingface.co/"})
    if (ref.rfind(prefix, 0) == 0) { rest = ref.substr(std::strlen(prefix)); break; }
  if (rest.empty()) {
    if (ref.rfind("https://", 0) != 0 && ref.rfind("http://", 0) != 0)
      return Status::error("cannot pull '" + ref + "': expected hf.co/OWNER/REPO[:QUANT], hf.co/OWNER/REPO/FILE.gguf or an https:// URL");
    src.url = ref;
    std::string path = ref.substr(0, ref.find_first_of("?#"));
    src.file = path.substr(path.rfind('/') + 1);
    if (src.file.empty()) return Status::error("cannot pull '" + ref + "': the URL names no file");
    std::string stem = lower(src.file.size() > 5 && lower(src.file).ends_with(".gguf") ? src.file.substr(0, src.file.size() - 5) : src.file);
    for (char& c : stem)
      if (!(std::isalnum((unsigned char)c) || c == '.' || c == '_' || c == '-')) c = '-';
    src.name = stem;
    src.tag = "latest";
    return src;
  }
  // OWNER/REPO[:QUANT] or OWNER/REPO/FILE...
  size_t s1 = rest.find('/');
  if (s1 == std::string::npos || s1 == 0) return Status::error("cannot pull '" + ref + "': expected hf.co/OWNER/REPO");
  size_t s2 = rest.find('/', s1 + 1);
  std::string owner = rest.substr(0, s1);
  std::string repo = s2 == std::string::npos ? rest.substr(s1 + 1) : rest.substr(s1 + 1, s2 - s1 - 1);
  std::string file = s2 == std::string::npos ? "" : rest.substr(s2 + 1);
  std::string quant;
  if (file.empty()) {
    size_t colon = repo.find(':');
    quant = colon == std::string::npos ? "Q4_K_M" : repo.substr(colon + 1);
    if (colon != std::string::npos) repo = repo.substr(0, colon);
    if (quant.empty()) return Status::error("cannot pull '" + ref + "': empty quant after ':'");
  }
  const std::string repo_id = owner + "/" + repo;
  src.name = "hf.co/" + repo_id;
  auto check = parse_model_name(src.name);
  if (!check) return Status::error("cannot pull '" + ref + "': bad repository name");
  const std::string endpoint = hf_endpoint();
  if (file.empty()) {
    const std::string api = endpoint + "/api/models/" + repo_id;
    long status = 0;
    auto body = http_get_text(api, &status);
    if (!body) return Status::error(body.error());
    if (status != 200)
      return Status::error(format("cannot list the files of %s: HTTP %s from %s", repo_id.c_str(),
                                  status_text(status).c_str(), url_host(api).c_str()));
    std::vector<std::string> files;
    try {
      auto j = nlohmann::json::parse(*body);
      for (const auto& s : j.at("siblings")) files.push_back(s.at("rfilename").get<std::string>());
    } catch (const std::exception& e) {
      return Status::error("unexpected answer from " + api + ": " + e.what());
    }
    auto pick = pick_gguf_file(files, quant, repo_id);
    if (!pick) return Status::error(pick.error());
    file = *pick;
    src.tag = quant;
  } else {
    if (!lower(file).ends_with(".gguf")) return Status::error("cannot pull '" + ref + "': not a .gguf file");
    std::string q = quant_in_name(file);
    std::string stem = fs::path(file).stem().string();
    src.tag = q.empty() ? stem : q;
  }
  if (!parse_model_name(src.name + ":" + src.tag)) src.tag = "latest";
  src.file = fs::path(file).filename().string();
  src.url = endpoint + "/" + repo_id + "/resolve/main/" + escape_path(file);
  return src;
}

Result<Manifest> pull_model(Store& store, const std::string& ref, const PullOptions& o) {
  auto srcr = resolve_pull_source(ref);
  if (!srcr) return Status::error(srcr.error());
  PullSource src = *srcr;
  if (!o.name.empty()) {
    auto n = parse_model_name(o.name);
    if (!n) return Status::error(n.error());
    src.name = n->name;
    src.tag = n->tag;
  }
  std::string want_digest = lower(o.sha256);
  if (want_digest.rfind("sha256:", 0) == 0) want_digest = want_digest.substr(7);
  if (!want_digest.empty() && !is_sha256_hex(want_digest))
    return Status::error("--sha256 wants 64 hexadecimal digits");
  const std::string host = url_host(src.url);
  auto say = [&](const std::string& s) { if (!o.quiet) std::fprintf(stderr, "%s\n", s.c_str()); };

  Sha256 key_hash;
  key_hash.update(src.url.data(), src.url.size());
  const std::string key = key_hash.hex().substr(0, 24);
  const std::string partial = store.tmp_dir() + "/" + key + ".partial";
  const std::string meta = store.tmp_dir() + "/" + key + ".digest";
  auto url_lock = FileLock::acquire(store.tmp_dir() + "/" + key + ".lock");
  if (!url_lock) return Status::error(url_lock.error());

  CurlHandle c;
  if (!c.h) return Status::error("cannot start libcurl");

  // What the server says about the file, without its bytes.
  HeaderState head;
  {
    common_options(c, src.url);
    curl_easy_setopt(c.h, CURLOPT_NOBODY, 1L);
    curl_easy_setopt(c.h, CURLOPT_HEADERFUNCTION, on_header);
    curl_easy_setopt(c.h, CURLOPT_HEADERDATA, &head);
    curl_easy_setopt(c.h, CURLOPT_TIMEOUT, 60L);
    auto performed = net::perform(c.h, src.url, "pull");
    if (!performed) return Status::error(performed.error());
    CURLcode rc = (CURLcode)*performed;
    long code = 0;
    curl_easy_getinfo(c.h, CURLINFO_RESPONSE_CODE, &code);
    if (rc == CURLE_OK && code >= 400 && code < 500 && code != 405 && code != 408 && code != 429)
      return Status::error(format("cannot download %s from %s: HTTP %s", src.file.c_str(), host.c_str(),
                                  status_text(code).c_str()));
    if (rc != CURLE_OK || code != 200) head = HeaderState();  // fall back on what the GET says
    curl_easy_reset(c.h);
  }
  std::string server_digest = head.digest;
  const std::string expected = !want_digest.empty() ? want_digest : server_digest;

  auto make_manifest = [&](const std::string& digest, uint64_t size, const ModelInfo& info) {
    Manifest m;
    m.name = src.name;
    m.tag = src.tag;
    m.source = src.source;
    m.digest = digest;
    m.size = size;
    m.file = src.file;
    m.info = info;
    return m;
  };
  std::error_code ec;
  // Already in the store (another name, an earlier pull, or a concurrent pull that just finished).
  if (!expected.empty() && fs::exists(store.blob_path(expected), ec)) {
    auto info = describe_gguf(store.blob_path(expected));
    if (info) {
      Manifest m = make_manifest(expected, fs::file_size(store.blob_path(expected), ec), *info);
      auto lk = store.lock();
      if (!lk) return Status::error(lk.error());
      SLIM_RETURN_IF_ERROR(store.write_manifest(m));
      say("already in the store: " + src.file + " (sha256 " + expected.substr(0, 12) + ")");
      return m;
    }
  }

  // A partial file from an earlier attempt resumes only if it is the same file.
  {
    std::string old;
    if (FILE* f = std::fopen(meta.c_str(), "r")) {
      char buf[80] = {0};
      if (std::fgets(buf, sizeof buf, f)) old = buf;
      std::fclose(f);
    }
    while (!old.empty() && (old.back() == '\n' || old.back() == ' ')) old.pop_back();
    if (!server_digest.empty() && old != server_digest) fs::remove(partial, ec);
    if (!server_digest.empty()) {
      std::string line = server_digest + "\n";
      SLIM_RETURN_IF_ERROR(write_file_atomic(meta, line.data(), line.size()));
    }
  }

  FILE* f = std::fopen(partial.c_str(), "ab");
  if (!f) return Status::error(format("cannot write %s: %s", partial.c_str(), std::strerror(errno)));
  Sha256 hash;
  uint64_t have = fs::file_size(partial, ec);
  if (ec) have = 0;
  if (have > 0) {
    if (auto st = sha256_update_file(hash, partial, have); !st) { std::fclose(f); return Status::error(st.message()); }
  }
  const int64_t known_size = head.linked_size >= 0 ? head.linked_size : head.total_size;
  say(format("pulling %s from %s%s%s", src.file.c_str(), host.c_str(),
             known_size >= 0 ? (" (" + human_size((double)known_size) + ")").c_str() : "",
             have > 0 ? format(", resuming at %s", human_size((double)have).c_str()).c_str() : ""));

  Progress progress(o.progress, src.file, o.on_progress);
  uint64_t fetched_total = 0;
  std::string failure;
  bool done = false;
  for (int attempt = 0; attempt <= o.retries && !done; ++attempt) {
    if (attempt > 0) {
      int delay = std::min(o.backoff_ms << std::min(attempt - 1, 10), 30000);
      progress.finish();
      say(format("%s; retrying in %.1f s", failure.c_str(), delay / 1000.0));
      sleep_ms(delay);
    }
    std::fflush(f);
    const uint64_t offset = (uint64_t)std::ftell(f);
    HeaderState hs;
    Download d;
    d.f = f;
    d.hash = &hash;
    d.offset = offset;
    d.headers = &hs;
    d.progress = &progress;
    d.fetched_total = fetched_total;
    curl_easy_reset(c.h);
    common_options(c, src.url);
    curl_easy_setopt(c.h, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(c.h, CURLOPT_WRITEDATA, &d);
    curl_easy_setopt(c.h, CURLOPT_HEADERFUNCTION, on_header);
    curl_easy_setopt(c.h, CURLOPT_HEADERDATA, &hs);
    if (offset > 0) curl_easy_setopt(c.h, CURLOPT_RESUME_FROM_LARGE, (curl_off_t)offset);
    auto performed = net::perform(c.h, src.url, "pull");
    if (!performed) {  // local-only switched on mid-pull: keep the partial file for a later resume
      progress.finish();
      std::fclose(f);
      return Status::error(performed.error());
    }
    CURLcode rc = (CURLcode)*performed;
    fetched_total = d.fetched_total;
    long code = 0;
    curl_easy_getinfo(c.h, CURLINFO_RESPONSE_CODE, &code);
    char* eff = nullptr;
    curl_easy_getinfo(c.h, CURLINFO_EFFECTIVE_URL, &eff);
    const std::string at = url_host(eff ? eff : src.url);
    if (server_digest.empty() && !hs.digest.empty()) server_digest = hs.digest;
    if (d.write_errno) {
      progress.finish();
      std::fclose(f);
      if (d.write_errno == ENOSPC)
        return Status::error(format("disk full while downloading %s into %s (free some space and pull again to resume)",
                                    src.file.c_str(), store.root().c_str()));
      return Status::error(format("cannot write %s: %s", partial.c_str(), std::strerror(d.write_errno)));
    }
    if (rc == CURLE_OK && code == 416 && offset > 0) {
      // Nothing left past our offset: complete if the sizes agree, else start over.
      int64_t total = hs.total_size >= 0 ? hs.total_size : known_size;
      if (total == (int64_t)offset) { done = true; break; }
      if (::ftruncate(fileno(f), 0) != 0) return Status::error(format("cannot truncate %s", partial.c_str()));
      std::fseek(f, 0, SEEK_SET);
      hash = Sha256();
      failure = format("HTTP 416 from %s", at.c_str());
      continue;
    }
    if (rc == CURLE_OK && (code == 200 || code == 206)) {
      done = true;
      break;
    }
    if (rc == CURLE_OK) {
      failure = format("cannot download %s from %s: HTTP %s", src.file.c_str(), at.c_str(), status_text(code).c_str());
      if (!retryable_status(code)) break;
      continue;
    }
    failure = format("cannot download %s from %s: %s", src.file.c_str(), at.c_str(), curl_easy_strerror(rc));
    if (code > 0 && code != 200 && code != 206) failure += format(" (HTTP %s)", status_text(code).c_str());
  }
  progress.finish();
  std::fflush(f);
  const bool flushed = !std::ferror(f);
  std::fclose(f);
  if (!done) return Status::error(failure);
  if (!flushed) return Status::error("cannot write " + partial);

  const uint64_t size = fs::file_size(partial, ec);
  const int64_t linked = head.linked_size;
  if (linked >= 0 && (uint64_t)linked != size) {
    fs::remove(partial, ec);
    return Status::error(format("download of %s is %llu bytes, the server announced %lld (deleted; pull again)",
                                src.file.c_str(), (unsigned long long)size, (long long)linked));
  }
  const std::string digest = hash.hex();
  const std::string want = !want_digest.empty() ? want_digest : server_digest;
  if (!want.empty() && digest != want) {
    fs::remove(partial, ec);
    fs::remove(meta, ec);
    return Status::error(format("checksum mismatch for %s: expected sha256 %s, got %s (download deleted, nothing installed)",
                                src.file.c_str(), want.c_str(), digest.c_str()));
  }
  say(want.empty() ? "sha256 " + digest + " (the server gave no digest to check)" : "verified sha256 " + digest);
  auto info = describe_gguf(partial);
  if (!info) {
    fs::remove(partial, ec);
    fs::remove(meta, ec);
    return Status::error("downloaded " + src.file + " is not a usable GGUF (deleted, nothing installed): " + info.error());
  }
  Manifest m = make_manifest(digest, size, *info);
  if (auto st = store.install(partial, m); !st) return Status::error(st.message());
  fs::remove(meta, ec);
  return m;
}

}  // namespace slim
