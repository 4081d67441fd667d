// Perplexity over chunks of a text, the base log-probability file, and the KL
// divergence of a model against it (conventions and file layout: perplexity.h).
#include "compress/perplexity.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <sys/stat.h>
#include <unistd.h>

#include "engine/engine.h"
#include "kernels/threadpool.h"
#include "tokenizer/tokenizer.h"

namespace slim {

Result<ChunkedText> chunk_text(const Tokenizer& tok, std::string_view text, int n_ctx, int max_chunks) {
  if (n_ctx < 3) return Status::error(format("bad context size %d (a chunk needs at least 3 tokens)", n_ctx));
  ChunkedText ct;
  ct.n_ctx = n_ctx;
  // As llama.cpp: the whole text at once, BOS as the vocabulary says,
  // control-token text left as text.
  std::vector<int32_t> all = tok.tokenize(text, true, false);
  ct.n_text_tokens = all.size();
  const int avail = (int)std::min<size_t>(all.size() / n_ctx, INT32_MAX);
  if (avail == 0)
    return Status::error(format("the text is %zu tokens, less than one chunk of %d (use a longer text or a smaller -c)",
                                all.size(), n_ctx));
  ct.n_chunks = max_chunks < 0 ? avail : std::min(avail, max_chunks);
  if (ct.n_chunks == 0) return Status::error("no chunks to evaluate");
  ct.tokens.assign(all.begin(), all.begin() + (size_t)ct.n_chunks * n_ctx);
  // Every chunk starts as a text does: its first token becomes BOS.
  ct.bos_first = tok.add_bos() && tok.bos() >= 0;
  if (ct.bos_first)
    for (int c = 0; c < ct.n_chunks; ++c) ct.tokens[(size_t)c * n_ctx] = tok.bos();
  return ct;
}

int default_perplexity_ctx(int n_ctx_train) { return n_ctx_train > 0 ? std::min(512, n_ctx_train) : 512; }

double token_nll(const float* z, int n_vocab, int32_t tok) {
  float mx = z[0];
  for (int i = 1; i < n_vocab; ++i) mx = std::max(mx, z[i]);
  double s = 0;
  for (int i = 0; i < n_vocab; ++i) s += std::exp((double)z[i] - mx);
  return (double)mx + std::log(s) - (double)z[tok];
}

MeanErr mean_and_error(double sum, double sum2, int64_t n) {
  MeanErr r;
  if (n < 1) return r;
  r.mean = sum / n;
  const double var = sum2 / n - r.mean * r.mean;
  r.err = var > 0 && n > 1 ? std::sqrt(var / (n - 1)) : 0.0;
  return r;
}

namespace {

constexpr char kMagic[8] = {'S', 'L', 'I', 'M', 'L', 'G', 'P', '1'};
constexpr uint32_t kVersion = 1;
constexpr float kRangeNats = 32.0f;  // log-probs quantized over this far below the top
constexpr uint32_t kFlagBos = 1;

size_t row_bytes(int n_vocab) { return 16 + 2 * (size_t)n_vocab; }

uint64_t vocab_hash(const Tokenizer& tok) {
  uint64_t h = 1469598103934665603ull;  // FNV-1a
  auto mix = [&](unsigned char c) { h = (h ^ c) * 1099511628211ull; };
  for (int i = 0; i < tok.n_vocab(); ++i) {
    for (unsigned char c : tok.token_text(i)) mix(c);
    mix(0xff);  // separator: no token text holds this byte alone
  }
  return h;
}

struct Header {
  uint32_t n_vocab = 0, n_ctx = 0, n_chunks = 0, first = 0, flags = 0;
  uint64_t vocab = 0;
  std::string name;
};

void put(std::string& s, const void* p, size_t n) { s.append(static_cast<const char*>(p), n); }

std::string encode_header(const Header& h) {
  std::string s(kMagic, 8);
  put(s, &kVersion, 4);
  for (uint32_t v : {h.n_vocab, h.n_ctx, h.n_chunks, h.first, h.flags}) put(s, &v, 4);
  put(s, &h.vocab, 8);
  const uint32_t len = (uint32_t)h.name.size();
  put(s, &len, 4);
  s += h.name;
  return s;
}

// One scored token of the base model: its top token, the exact NLL of the
// correct token, and every log-prob as a u16 over [floor, floor + 65535 scale].
void encode_row(const float* z, int n_vocab, int32_t tok, uint8_t* out) {
  float mx = z[0], mn = z[0];
  int32_t top = 0;
  for (int i = 1; i < n_vocab; ++i) {
    if (z[i] > mx) { mx = z[i]; top = i; }
    mn = std::min(mn, z[i]);
  }
  double s = 0;
  for (int i = 0; i < n_vocab; ++i) s += std::exp((double)z[i] - mx);
  const double lse = (double)mx + std::log(s);
  const float lo = std::max(mn, mx - kRangeNats);
  const float scale = (mx - lo) / 65535.0f;
  const float nll = (float)(lse - z[tok]);
  const float floor = (float)(lo - lse);
  std::memcpy(out, &top, 4);
  std::memcpy(out + 4, &nll, 4);
  std::memcpy(out + 8, &scale, 4);
  std::memcpy(out + 12, &floor, 4);
  uint16_t* q = reinterpret_cast<uint16_t*>(out + 16);  // offset 16 of a row: aligned for u16
  const float inv = scale > 0 ? 1.0f / scale : 0.0f;
  for (int i = 0; i < n_vocab; ++i)
    q[i] = z[i] <= lo || scale == 0 ? 0 : (uint16_t)std::min(65535.0f, std::nearbyint((z[i] - lo) * inv));
}

// Per-token comparison of a row of logits against a base row.
struct TokenCmp {
  double nll = 0, nll_base = 0, kld = 0, dp = 0;
  bool same_top = false;
};

TokenCmp compare_row(const float* z, int n_vocab, int32_t tok, const uint8_t* base) {
  int32_t top_base;
  float nll_base, scale, floor;
  std::memcpy(&top_base, base, 4);
  std::memcpy(&nll_base, base + 4, 4);
  std::memcpy(&scale, base + 8, 4);
  std::memcpy(&floor, base + 12, 4);
  const uint16_t* q = reinterpret_cast<const uint16_t*>(base + 16);

  float mx = z[0];
  int32_t top = 0;
  for (int i = 1; i < n_vocab; ++i)
    if (z[i] > mx) { mx = z[i]; top = i; }
  double s = 0;
  for (int i = 0; i < n_vocab; ++i) s += std::exp((double)z[i] - mx);
  const double lse = (double)mx + std::log(s);
  // The base distribution as stored, renormalised: the rounding of each
  // log-prob then moves the divergence only to second order (a model against
  // its own file gives ~1e-9, not the ~1e-5 of the raw rounding).
  const double bmax = (double)floor + (double)scale * 65535.0;
  double sb = 0;
  for (int i = 0; i < n_vocab; ++i) sb += std::exp((double)floor + (double)scale * q[i] - bmax);
  const double lse_b = bmax + std::log(sb);
  double kl = 0;
  for (int i = 0; i < n_vocab; ++i) {
    const double lb = (double)floor + (double)scale * q[i] - lse_b;
    kl += std::exp(lb) * (lb - ((double)z[i] - lse));
  }
  TokenCmp r;
  r.nll = lse - z[tok];
  r.nll_base = nll_base;
  r.kld = std::max(0.0, kl);  // never below zero but for rounding
  r.dp = std::exp(-r.nll) - std::exp(-(double)nll_base);
  r.same_top = top == top_base;
  return r;
}

// The base file being written: a temporary name renamed into place by commit().
class BaseWriter {
 public:
  ~BaseWriter() {
    if (fp_) std::fclose(fp_);
    if (!tmp_.empty()) std::remove(tmp_.c_str());
  }
  Status open(const std::string& path, const Header& h, const std::vector<int32_t>& tokens) {
    path_ = path;
    tmp_ = path + ".tmp." + std::to_string(getpid());
    fp_ = std::fopen(tmp_.c_str(), "wb");
    if (!fp_) { tmp_.clear(); return Status::error("cannot write " + path + ": " + std::strerror(errno)); }
    const std::string hdr = encode_header(h);
    SLIM_RETURN_IF_ERROR(write(hdr.data(), hdr.size()));
    return write(tokens.data(), tokens.size() * 4);
  }
  Status write(const void* p, size_t n) {
    if (n && std::fwrite(p, 1, n, fp_) != n) return Status::error("cannot write " + path_ + " (disk full?)");
    return Status();
  }
  Status commit() {
    const bool ok = std::fclose(fp_) == 0;
    fp_ = nullptr;
    if (!ok || std::rename(tmp_.c_str(), path_.c_str()) != 0) return Status::error("cannot write " + path_ + " (disk full?)");
    tmp_.clear();
    return Status();
  }

 private:
  std::string path_, tmp_;
  FILE* fp_ = nullptr;
};

class BaseReader {
 public:
  ~BaseReader() {
    if (fp_) std::fclose(fp_);
  }
  // Reads and checks the header; leaves the file at the tokens.
  Status open(const std::string& path) {
    path_ = path;
    fp_ = std::fopen(path.c_str(), "rb");
    if (!fp_) return Status::error("cannot open " + path + ": " + std::strerror(errno));
    char magic[8];
    uint32_t version = 0, len = 0;
    if (!read(magic, 8) || std::memcmp(magic, kMagic, 8) != 0)
      return Status::error(path + " is not a base log-probability file (write one with slim perplexity --save-logits)");
    if (!read(&version, 4) || version != kVersion)
      return Status::error(format("%s: unsupported base file version %u", path.c_str(), version));
    uint32_t* fields[] = {&h.n_vocab, &h.n_ctx, &h.n_chunks, &h.first, &h.flags};
    for (uint32_t* f : fields)
      if (!read(f, 4)) return truncated();
    if (!read(&h.vocab, 8) || !read(&len, 4) || len > 4096) return truncated();
    h.name.resize(len);
    if (!read(h.name.data(), len)) return truncated();
    if (h.n_vocab == 0 || h.n_ctx < 3 || h.n_chunks == 0 || h.first != h.n_ctx / 2)
      return Status::error(path + ": inconsistent base file header");
    // The size must be exactly what the header promises: a file cut short
    // (a disk filled while writing) is refused up front.
    struct stat sb = {};
    const uint64_t want = 8 + 4 + 5 * 4 + 8 + 4 + (uint64_t)len + (uint64_t)h.n_chunks * h.n_ctx * 4 +
                          (uint64_t)h.n_chunks * rows_per_chunk() * row_bytes((int)h.n_vocab);
    if (fstat(fileno(fp_), &sb) != 0 || (uint64_t)sb.st_size != want)
      return Status::error(format("%s: %lld bytes, the header promises %llu (truncated or not a base file)", path.c_str(),
                                  (long long)sb.st_size, (unsigned long long)want));
    return Status();
  }
  int rows_per_chunk() const { return (int)(h.n_ctx - 1 - h.first); }
  Status read_tokens(std::vector<int32_t>& t) {
    t.resize((size_t)h.n_chunks * h.n_ctx);
    return read(t.data(), t.size() * 4) ? Status() : truncated();
  }
  Status read_rows(uint8_t* out, size_t n_rows) {
    return read(out, n_rows * row_bytes((int)h.n_vocab)) ? Status() : truncated();
  }
  Header h;

 private:
  bool read(void* p, size_t n) { return std::fread(p, 1, n, fp_) == n; }
  Status truncated() const { return Status::error(path_ + ": truncated base file"); }
  std::string path_;
  FILE* fp_ = nullptr;
};

double percentile(const std::vector<double>& sorted, double f) {
  if (sorted.empty()) return 0;
  const double p = f * (double)(sorted.size() - 1);
  const size_t i = (size_t)p;
  const double w = p - (double)i;
  return (1 - w) * sorted[i] + w * sorted[std::min(i + 1, sorted.size() - 1)];
}

// Running sums of the per-token comparisons, kept in token order so results
// do not depend on the thread count.
struct KldSums {
  double nll = 0, nll2 = 0, nb = 0, nb2 = 0, nnb = 0, kld = 0, kld2 = 0, dp = 0, dp2 = 0, dp4 = 0;
  int64_t same = 0, n = 0;
  std::vector<double> klds;
  void add(const TokenCmp& t) {
    nll += t.nll, nll2 += t.nll * t.nll;
    nb += t.nll_base, nb2 += t.nll_base * t.nll_base, nnb += t.nll * t.nll_base;
    kld += t.kld, kld2 += t.kld * t.kld;
    const double d2 = t.dp * t.dp;
    dp += t.dp, dp2 += d2, dp4 += d2 * d2;
    same += t.same_top;
    ++n;
    klds.push_back(t.kld);
  }
  KldResult result() const {
    KldResult r;
    r.n = n;
    const MeanErr k = mean_and_error(kld, kld2, n), q = mean_and_error(nll, nll2, n), b = mean_and_error(nb, nb2, n);
    r.kld_mean = k.mean, r.kld_stderr = k.err;
    std::vector<double> s = klds;
    std::sort(s.begin(), s.end());
    r.kld_median = percentile(s, 0.5), r.kld_p90 = percentile(s, 0.9), r.kld_p95 = percentile(s, 0.95);
    r.kld_p99 = percentile(s, 0.99), r.kld_max = s.empty() ? 0 : s.back();
    r.same_top = n ? (double)same / n : 0;
    r.same_top_stderr = n > 1 ? std::sqrt(r.same_top * (1 - r.same_top) / (n - 1)) : 0;
    const MeanErr d = mean_and_error(dp, dp2, n), d2 = mean_and_error(dp2, dp4, n);
    r.dp_mean = d.mean, r.dp_stderr = d.err;
    r.dp_rms = std::sqrt(d2.mean);
    r.dp_rms_stderr = r.dp_rms > 0 ? 0.5 / r.dp_rms * d2.err : 0;
    r.ppl_base = std::exp(b.mean), r.ppl_base_stderr = r.ppl_base * b.err;
    // the two NLLs are of the same tokens: their errors correlate
    const double cov = n > 1 ? (nnb / n - q.mean * b.mean) / (n - 1) : 0;
    r.ln_ppl_ratio = q.mean - b.mean;
    r.ln_ppl_ratio_stderr = std::sqrt(std::max(0.0, q.err * q.err + b.err * b.err - 2 * cov));
    r.ppl_ratio = std::exp(r.ln_ppl_ratio), r.ppl_ratio_stderr = r.ppl_ratio * r.ln_ppl_ratio_stderr;
    return r;
  }
};

std::string base_name_of(const std::string& path) {
  const size_t s = path.find_last_of('/');
  return s == std::string::npos ? path : path.substr(s + 1);
}

}  // namespace

Result<LogitsFileInfo> read_logits_info(const std::string& path) {
  BaseReader r;
  SLIM_RETURN_IF_ERROR(r.open(path));
  LogitsFileInfo info;
  info.n_vocab = (int)r.h.n_vocab, info.n_ctx = (int)r.h.n_ctx, info.n_chunks = (int)r.h.n_chunks;
  info.base_model = r.h.name;
  return info;
}

Result<PerplexityResult> run_perplexity(Engine& e, std::string_view text, const PerplexityParams& p,
                                        const ChunkCallback& on_chunk, const std::string& base_name) {
  const Tokenizer& tok = e.tokenizer();
  const int n_vocab = e.model().hp.n_vocab;
  const int n_ctx = p.n_ctx;
  if (!p.save_logits.empty() && !p.kld_base.empty()) return Status::error("give --save-logits or --kld-base, not both");
  if (n_ctx > e.n_ctx()) return Status::error(format("chunks of %d tokens do not fit the context of %d", n_ctx, e.n_ctx()));
  if (p.n_batch < 1) return Status::error(format("bad batch size %d", p.n_batch));

  BaseReader base;
  int max_chunks = p.n_chunks;
  if (!p.kld_base.empty()) {
    SLIM_RETURN_IF_ERROR(base.open(p.kld_base));
    const Header& h = base.h;
    if ((int)h.n_vocab != n_vocab)
      return Status::error(format("%s was made with a vocabulary of %u tokens, this model has %d", p.kld_base.c_str(),
                                  h.n_vocab, n_vocab));
    if (h.vocab != vocab_hash(tok))
      return Status::error(p.kld_base + " was made with a different vocabulary (same size, other tokens)");
    if ((int)h.n_ctx != n_ctx)
      return Status::error(format("%s was made with chunks of %u tokens, not %d (run with -c %u)", p.kld_base.c_str(),
                                  h.n_ctx, n_ctx, h.n_ctx));
    max_chunks = max_chunks < 0 ? (int)h.n_chunks : std::min(max_chunks, (int)h.n_chunks);
  }
  auto chunked = chunk_text(tok, text, n_ctx, max_chunks);
  if (!chunked) return Status::error(chunked.error());
  const ChunkedText& ct = *chunked;
  const int first = n_ctx / 2, per_chunk = n_ctx - 1 - first;

  std::vector<uint8_t> rows;  // base rows of the chunks in flight
  if (!p.kld_base.empty()) {
    if (ct.n_chunks < max_chunks)
      return Status::error(format("the text holds %d chunks but %s has %d: it was made on a different text",
                                  ct.n_chunks, p.kld_base.c_str(), max_chunks));
    std::vector<int32_t> saved;
    SLIM_RETURN_IF_ERROR(base.read_tokens(saved));
    for (size_t i = 0; i < ct.tokens.size(); ++i)
      if (saved[i] != ct.tokens[i])
        return Status::error(format("%s was made on a different text or tokenizer (chunk %zu, token %zu differs)",
                                    p.kld_base.c_str(), i / n_ctx + 1, i % n_ctx));
  }
  BaseWriter writer;
  if (!p.save_logits.empty()) {
    Header h;
    h.n_vocab = (uint32_t)n_vocab, h.n_ctx = (uint32_t)n_ctx, h.n_chunks = (uint32_t)ct.n_chunks;
    h.first = (uint32_t)first, h.flags = ct.bos_first ? kFlagBos : 0, h.vocab = vocab_hash(tok);
    h.name = base_name_of(base_name);
    SLIM_RETURN_IF_ERROR(writer.open(p.save_logits, h, ct.tokens));
  }

  PerplexityResult res;
  res.n_ctx = n_ctx;
  res.n_chunks = ct.n_chunks;
  const int n_seq = std::max(1, std::min({e.params().n_seq, p.n_batch / n_ctx, ct.n_chunks}));
  res.n_seq = n_seq;
  const int step = std::min(p.n_batch, n_ctx);
  ThreadPool pool(p.n_threads);  // scoring: a log-softmax over the vocabulary a token
  const size_t rb = row_bytes(n_vocab);
  double sum = 0, sum2 = 0;
  KldSums ks;
  std::vector<float> logits;
  std::vector<double> nll;
  std::vector<TokenCmp> cmp;
  Batch b;
  const auto t0 = std::chrono::steady_clock::now();
  for (int c0 = 0; c0 < ct.n_chunks; c0 += n_seq) {
    const int ns = std::min(n_seq, ct.n_chunks - c0);
    for (int s = 0; s < ns; ++s) e.clear(s);
    logits.clear();
    for (int j = 0; j < n_ctx; j += step) {
      b.clear();
      for (int s = 0; s < ns; ++s)
        for (int k = j; k < std::min(j + step, n_ctx); ++k)
          b.add(ct.tokens[(size_t)(c0 + s) * n_ctx + k], k, s, k >= first && k < n_ctx - 1);
      SLIM_RETURN_IF_ERROR(e.decode(b, logits));
    }
    const int64_t n_rows = (int64_t)ns * per_chunk;
    // the token row i (sequence s, scored position first + k) predicts
    auto target = [&](int64_t i) { return ct.tokens[(size_t)(c0 + i / per_chunk) * n_ctx + first + i % per_chunk + 1]; };
    nll.assign(n_rows, 0);
    if (!p.kld_base.empty()) {
      rows.resize(n_rows * rb);
      SLIM_RETURN_IF_ERROR(base.read_rows(rows.data(), n_rows));
      cmp.assign(n_rows, {});
      pool.parallel_for(n_rows, 1, [&](int64_t i0, int64_t i1) {
        for (int64_t i = i0; i < i1; ++i) cmp[i] = compare_row(&logits[i * n_vocab], n_vocab, target(i), &rows[i * rb]);
      });
      for (int64_t i = 0; i < n_rows; ++i) nll[i] = cmp[i].nll;
    } else if (!p.save_logits.empty()) {
      rows.resize(n_rows * rb);
      pool.parallel_for(n_rows, 1, [&](int64_t i0, int64_t i1) {
        for (int64_t i = i0; i < i1; ++i) {
          encode_row(&logits[i * n_vocab], n_vocab, target(i), &rows[i * rb]);
          nll[i] = token_nll(&logits[i * n_vocab], n_vocab, target(i));
        }
      });
      SLIM_RETURN_IF_ERROR(writer.write(rows.data(), rows.size()));
    } else {
      pool.parallel_for(n_rows, 1, [&](int64_t i0, int64_t i1) {
        for (int64_t i = i0; i < i1; ++i) nll[i] = token_nll(&logits[i * n_vocab], n_vocab, target(i));
      });
    }
    for (int s = 0; s < ns; ++s) {
      ChunkStats cs;
      double cs_kld = 0;
      for (int k = 0; k < per_chunk; ++k) {
        const int64_t i = (int64_t)s * per_chunk + k;
        sum += nll[i], sum2 += nll[i] * nll[i], cs.nll_mean += nll[i];
        if (!p.kld_base.empty()) ks.add(cmp[i]), cs_kld += cmp[i].kld;
      }
      res.n_scored += per_chunk;
      cs.nll_mean /= per_chunk;
      cs.kld_mean = cs_kld / per_chunk;
      cs.running_ppl = std::exp(sum / res.n_scored);
      res.chunks.push_back(cs);
      res.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
      const MeanErr m = mean_and_error(sum, sum2, res.n_scored);
      res.nll_mean = m.mean, res.nll_stderr = m.err;
      res.ppl = std::exp(m.mean), res.ppl_stderr = res.ppl * m.err;
      if (on_chunk) on_chunk(c0 + s, res);
    }
  }
  for (int s = 0; s < n_seq; ++s) e.clear(s);
  res.tokens_per_s = res.seconds > 0 ? (double)ct.n_chunks * n_ctx / res.seconds : 0;
  if (!p.kld_base.empty()) {
    res.kld = ks.result();
    res.kld->base_model = base.h.name;
  }
  if (!p.save_logits.empty()) SLIM_RETURN_IF_ERROR(writer.commit());
  return res;
}

}  // namespace slim
