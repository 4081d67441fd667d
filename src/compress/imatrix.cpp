// Importance matrices: llama.cpp's GGUF and `.dat` files, merging, and the
// collector that sums squared activations through the forward pass's matmul
// hook (model.h MatmulHookFn).
//
// GGUF layout (llama.cpp tools/imatrix): general.type "imatrix",
// imatrix.datasets (string array), imatrix.chunk_count and imatrix.chunk_size
// (u32); per weight two F32 tensors, "<name>.in_sum2" [n_cols, n_expert] (sums
// of squares) and "<name>.counts" [1, n_expert] (rows), names in sorted order.
// Newer llama.cpp also writes "<name>.in_sum" (plain sums); it is not needed
// for importance and is skipped when read.
//
// `.dat` layout: i32 n_entries; per entry i32 name length, name, i32 ncall,
// i32 nval, f32 values[nval] = sums / count * ncall, with ncall the count
// in chunks rounded up; then i32 chunk count and i32 length + dataset name.
#include "compress/imatrix.h"

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <unistd.h>

#include "compress/perplexity.h"
#include "gguf/gguf.h"
#include "kernels/dispatch.h"
#include "kernels/threadpool.h"
#include "model/model.h"
#include "tokenizer/tokenizer.h"

namespace slim {

std::vector<float> ImatrixTensor::importance(int e) const {
  const size_t n_exp = counts.empty() ? 1 : counts.size();
  const size_t cols = sums.size() / n_exp;
  std::vector<float> out(cols, 1.0f);
  if (e < 0 || (size_t)e >= n_exp) return out;
  const int64_t c = counts.empty() ? 0 : counts[e];
  // A weight (or expert) the calibration text never reached weighs every
  // column alike, as llama.cpp's quantizer does.
  if (c <= 0) return out;
  for (size_t j = 0; j < cols; ++j) out[j] = (float)((double)sums[e * cols + j] / (double)c);
  return out;
}

namespace {

constexpr int kDatDefaultChunk = 512;
const std::string kSum2Suffix = ".in_sum2", kSumSuffix = ".in_sum", kCountsSuffix = ".counts";

bool ends_with(const std::string& s, const std::string& suffix) {
  return s.size() >= suffix.size() && s.compare(s.size() - suffix.size(), suffix.size(), suffix) == 0;
}

Status check_tensor(const std::string& name, const ImatrixTensor& t) {
  if (t.n_expert < 1 || t.counts.size() != (size_t)t.n_expert)
    return Status::error(format("imatrix entry %s: %zu counts for %d experts", name.c_str(), t.counts.size(), t.n_expert));
  if (t.sums.empty() || t.sums.size() % (size_t)t.n_expert)
    return Status::error(format("imatrix entry %s: %zu sums do not split into %d experts", name.c_str(), t.sums.size(), t.n_expert));
  return Status();
}

Result<Imatrix> read_gguf(const std::string& path) {
  auto f = GgufFile::open(path);
  if (!f) return Status::error(f.error());
  const GgufFile& g = **f;
  if (auto type = g.get_string("general.type"); type && *type != "imatrix")
    return Status::error(path + " is a GGUF " + *type + " file, not an importance matrix");
  struct Pair { const TensorInfo* sums = nullptr; const TensorInfo* counts = nullptr; };
  std::map<std::string, Pair> pairs;
  for (const TensorInfo& t : g.tensors()) {
    if (ends_with(t.name, kSum2Suffix)) pairs[t.name.substr(0, t.name.size() - kSum2Suffix.size())].sums = &t;
    else if (ends_with(t.name, kCountsSuffix)) pairs[t.name.substr(0, t.name.size() - kCountsSuffix.size())].counts = &t;
    // ".in_sum" and anything else: not needed for importance
  }
  if (pairs.empty()) return Status::error(path + " has no importance-matrix tensors (<weight>.in_sum2 and <weight>.counts)");
  Imatrix m;
  for (auto& [name, p] : pairs) {
    if (!p.sums || !p.counts) return Status::error(path + ": " + name + " has " + (p.sums ? "sums but no counts" : "counts but no sums"));
    if (p.sums->type != GgmlType::F32 || p.counts->type != GgmlType::F32)
      return Status::error(path + ": the sums and counts of " + name + " must be F32");
    const int64_t n_exp = p.counts->n_elements();
    if (n_exp < 1 || p.sums->n_elements() % n_exp != 0 || p.sums->ne[1] * p.sums->ne[2] * p.sums->ne[3] != n_exp)
      return Status::error(format("%s: %s has %lld sums for %lld counts", path.c_str(), name.c_str(),
                                  (long long)p.sums->n_elements(), (long long)n_exp));
    ImatrixTensor t;
    t.n_expert = (int)n_exp;
    const float* s = reinterpret_cast<const float*>(p.sums->data);
    const float* c = reinterpret_cast<const float*>(p.counts->data);
    t.sums.assign(s, s + p.sums->n_elements());
    for (int64_t e = 0; e < n_exp; ++e) {
      if (!(c[e] >= 0) || !std::isfinite(c[e])) return Status::error(path + ": bad count in " + name);
      t.counts.push_back(std::llround(c[e]));  // counts are stored as floats
    }
    m.tensors.emplace(name, std::move(t));
  }
  if (const GgufArray* a = g.get_array("imatrix.datasets"); a && a->elem_type == GgufType::STRING) m.datasets = a->strings;
  m.chunks = g.get_int("imatrix.chunk_count").value_or(0);
  m.chunk_size = (int)g.get_int("imatrix.chunk_size").value_or(0);
  return m;
}

// Reads little-endian values from a whole file held in memory.
struct Reader {
  const std::string& buf;
  size_t at = 0;
  bool i32(int32_t& v) {
    if (buf.size() - at < 4) return false;
    std::memcpy(&v, buf.data() + at, 4);
    at += 4;
    return true;
  }
  bool bytes(void* out, size_t n) {
    if (buf.size() - at < n) return false;
    std::memcpy(out, buf.data() + at, n);
    at += n;
    return true;
  }
};

Result<Imatrix> read_dat(const std::string& path, const std::string& buf, int chunk_size) {
  Reader r{buf};
  auto bad = [&](const std::string& what) { return Status::error(path + ": not an importance matrix (" + what + ")"); };
  int32_t n_entries = 0;
  if (!r.i32(n_entries) || n_entries < 1 || n_entries > (1 << 20)) return bad("bad entry count");
  Imatrix m;
  m.chunk_size = chunk_size;
  int64_t max_calls = 0;
  for (int32_t i = 0; i < n_entries; ++i) {
    int32_t len = 0, ncall = 0, nval = 0;
    if (!r.i32(len) || len < 1 || len > 4096) return bad(format("entry %d: bad name length", i));
    std::string name(len, '\0');
    if (!r.bytes(name.data(), len)) return bad(format("entry %d: truncated", i));
    if (!r.i32(ncall) || !r.i32(nval) || ncall < 0 || nval < 1 || (size_t)nval > buf.size() / 4)
      return bad("entry " + name + ": bad sizes");
    std::vector<float> v(nval);
    if (!r.bytes(v.data(), (size_t)nval * 4)) return bad("entry " + name + ": truncated");
    ImatrixTensor t;
    // values are means times ncall: sums are values times the chunk size,
    // counts ncall chunks of it (llama.cpp's reading, so sums / counts is the mean)
    t.sums.resize(nval);
    for (int32_t j = 0; j < nval; ++j) t.sums[j] = v[j] * (float)chunk_size;
    t.counts = {(int64_t)ncall * chunk_size};
    t.n_expert = 1;  // the format does not say how many experts share the values
    max_calls = std::max<int64_t>(max_calls, ncall);
    if (!m.tensors.emplace(name, std::move(t)).second) return bad("entry " + name + " twice");
  }
  int32_t last_chunk = 0, len = 0;
  m.chunks = r.i32(last_chunk) && last_chunk >= 0 ? last_chunk : max_calls;
  if (r.i32(len) && len > 0 && len <= 1 << 16) {
    std::string ds(len, '\0');
    if (r.bytes(ds.data(), len)) m.datasets.push_back(ds);
  }
  return m;
}

// Writes `bytes` to path through a temporary file renamed into place.
Status write_atomically(const std::string& path, const std::string& bytes) {
  const std::string tmp = path + ".tmp." + std::to_string(getpid());
  FILE* fp = std::fopen(tmp.c_str(), "wb");
  if (!fp) return Status::error("cannot write " + path + ": " + std::strerror(errno));
  bool ok = std::fwrite(bytes.data(), 1, bytes.size(), fp) == bytes.size();
  ok = std::fclose(fp) == 0 && ok;
  if (!ok || std::rename(tmp.c_str(), path.c_str()) != 0) {
    std::remove(tmp.c_str());
    return Status::error("cannot write " + path + " (disk full?)");
  }
  return Status();
}

void put_i32(std::string& s, int32_t v) { s.append(reinterpret_cast<const char*>(&v), 4); }

Status write_dat(const std::string& path, const Imatrix& m) {
  const int64_t cs = m.chunk_size > 0 ? m.chunk_size : kDatDefaultChunk;
  std::string out;
  int32_t n = 0;
  put_i32(out, 0);  // entry count, patched below
  for (const auto& [name, t] : m.tensors) {
    SLIM_RETURN_IF_ERROR(check_tensor(name, t));
    const int64_t max_count = *std::max_element(t.counts.begin(), t.counts.end());
    if (max_count <= 0) continue;  // no data: llama.cpp leaves such entries out too
    const int32_t ncall = (int32_t)((max_count + cs - 1) / cs);  // rounded up: never zero
    const size_t cols = t.sums.size() / t.n_expert;
    put_i32(out, (int32_t)name.size());
    out += name;
    put_i32(out, ncall);
    put_i32(out, (int32_t)t.sums.size());
    for (size_t j = 0; j < t.sums.size(); ++j) {
      const int64_t c = t.counts[j / cols];
      const float mean = c > 0 ? (float)((double)t.sums[j] / (double)c) : 1.0f;  // an unused expert: neutral
      const float v = mean * (float)ncall;
      out.append(reinterpret_cast<const char*>(&v), 4);
    }
    ++n;
  }
  if (n == 0) return Status::error("the importance matrix has no data to write");
  std::memcpy(out.data(), &n, 4);
  put_i32(out, (int32_t)m.chunks);
  const std::string ds = m.datasets.empty() ? "" : m.datasets.back();  // the format keeps one name
  put_i32(out, (int32_t)ds.size());
  out += ds;
  return write_atomically(path, out);
}

Status write_gguf(const std::string& path, const Imatrix& m) {
  GgufWriter w;
  w.set("general.type", GgufValue::str("imatrix"));
  GgufArray ds;
  ds.elem_type = GgufType::STRING;
  ds.strings = m.datasets;
  w.set("imatrix.datasets", GgufValue::array_of(std::move(ds)));
  w.set("imatrix.chunk_count", GgufValue::u32((uint32_t)m.chunks));
  w.set("imatrix.chunk_size", GgufValue::u32((uint32_t)m.chunk_size));
  if (m.tensors.empty()) return Status::error("the importance matrix has no data to write");
  for (const auto& [name, t] : m.tensors) {  // std::map: sorted names, as llama.cpp writes them
    SLIM_RETURN_IF_ERROR(check_tensor(name, t));
    const int64_t cols = (int64_t)(t.sums.size() / t.n_expert);
    std::vector<float> counts(t.counts.begin(), t.counts.end());
    SLIM_RETURN_IF_ERROR(w.add_tensor(name + kSum2Suffix, GgmlType::F32, {cols, t.n_expert}, t.sums.data(), t.sums.size() * 4));
    SLIM_RETURN_IF_ERROR(w.add_tensor(name + kCountsSuffix, GgmlType::F32, {1, t.n_expert}, counts.data(), counts.size() * 4));
  }
  return w.write(path);
}

}  // namespace

Result<Imatrix> read_imatrix(const std::string& path, int dat_chunk_size) {
  FILE* fp = std::fopen(path.c_str(), "rb");
  if (!fp) return Status::error("cannot open " + path + ": " + std::strerror(errno));
  char magic[4] = {};
  const size_t got = std::fread(magic, 1, 4, fp);
  if (got == 4 && std::memcmp(magic, "GGUF", 4) == 0) {
    std::fclose(fp);
    return read_gguf(path);
  }
  // .dat: small enough to read whole (a float a column of every matmul)
  std::string buf(magic, got);
  char chunk[1 << 16];
  size_t n;
  while ((n = std::fread(chunk, 1, sizeof chunk, fp)) > 0) buf.append(chunk, n);
  std::fclose(fp);
  return read_dat(path, buf, dat_chunk_size > 0 ? dat_chunk_size : kDatDefaultChunk);
}

Status write_imatrix(const std::string& path, const Imatrix& m) {
  if (ends_with(path, ".dat")) return write_dat(path, m);
  return write_gguf(path, m);
}

Status merge_imatrix(Imatrix& a, const Imatrix& b) {
  // Check every shape first, so a failed merge leaves `a` as it was.
  for (const auto& [name, tb] : b.tensors) {
    SLIM_RETURN_IF_ERROR(check_tensor(name, tb));
    auto it = a.tensors.find(name);
    if (it == a.tensors.end()) continue;
    const ImatrixTensor& ta = it->second;
    if (ta.sums.size() != tb.sums.size() || ta.n_expert != tb.n_expert)
      return Status::error(format("cannot merge %s: %zu values for %d experts against %zu for %d", name.c_str(),
                                  ta.sums.size(), ta.n_expert, tb.sums.size(), tb.n_expert));
  }
  for (const auto& [name, tb] : b.tensors) {
    auto [it, fresh] = a.tensors.try_emplace(name, tb);
    if (fresh) continue;
    ImatrixTensor& ta = it->second;
    for (size_t j = 0; j < ta.sums.size(); ++j) ta.sums[j] += tb.sums[j];
    for (size_t e = 0; e < ta.counts.size(); ++e) ta.counts[e] += tb.counts[e];
  }
  a.datasets.insert(a.datasets.end(), b.datasets.begin(), b.datasets.end());
  a.chunks += b.chunks;
  if (a.chunk_size == 0) a.chunk_size = b.chunk_size;
  return Status();
}

namespace {

// Sums of squares per weight, in double: float sums over millions of rows
// would lose the small columns' digits. Fed by the forward pass's matmul hook.
struct Collector {
  struct Acc {
    std::vector<double> sum2;
    int64_t rows = 0;
  };
  bool process_output = false;
  ThreadPool* pool = nullptr;
  std::map<std::string, Acc> acc;
  std::string bad;  // first weight whose input was not finite

  static void hook(void* user, const Weight& w, const float* x, int n_tokens) {
    auto* c = static_cast<Collector*>(user);
    if (!w.name) return;
    const std::string_view name(w.name);
    // The layers' weights, as llama.cpp collects (the output only on request;
    // tied embeddings multiply as token_embd.weight and are not collected)
    if (!(name.starts_with("blk.") || (c->process_output && name == "output.weight"))) return;
    Acc& a = c->acc[std::string(name)];
    const int64_t cols = w.ne0;
    if (a.sum2.empty()) a.sum2.assign(cols, 0.0);
    double* s = a.sum2.data();
    std::atomic<bool> finite{true};
    // Columns split across threads: each thread owns its columns' sums.
    c->pool->parallel_for(cols, 64, [&](int64_t j0, int64_t j1) {
      bool ok = true;
      for (int t = 0; t < n_tokens; ++t) {
        const float* row = x + (size_t)t * cols;
        for (int64_t j = j0; j < j1; ++j) {
          const double v = row[j];
          s[j] += v * v;
          ok = ok && std::isfinite(row[j]);
        }
      }
      if (!ok) finite.store(false, std::memory_order_relaxed);
    });
    a.rows += n_tokens;
    if (!finite && c->bad.empty()) c->bad = std::string(name);
  }
};

}  // namespace

Result<Imatrix> collect_imatrix(const std::string& model_path, const std::string& text, const ImatrixParams& p,
                                const std::function<void(const ImatrixProgress&)>& progress) {
  if (p.n_ctx < 2) return Status::error(format("bad chunk size %d (at least 2 tokens)", p.n_ctx));
  if (p.n_batch < 1) return Status::error(format("bad batch size %d", p.n_batch));
  auto file = GgufFile::open(model_path);
  if (!file) return Status::error(file.error());
  auto model = load_model(*file);
  if (!model) return Status::error(model.error());
  auto tok = Tokenizer::from_gguf(**file);
  if (!tok) return Status::error(model_path + ": " + tok.error());
  Model& m = **model;
  const int n_ctx = p.n_ctx, n_vocab = m.hp.n_vocab;
  auto chunks = chunk_text(**tok, text, n_ctx, p.n_chunks);
  if (!chunks) return Status::error(chunks.error());
  const ChunkedText& ct = *chunks;

  ThreadPool pool(p.n_threads);
  repack_weights(m, pool, kernels());
  // Several chunks a forward pass when the batch holds them (small contexts).
  const int n_seq = std::max(1, std::min(p.n_batch / n_ctx, ct.n_chunks));
  ForwardState st;
  st.pool = &pool;
  st.kv = make_kv_cache(m.hp, n_ctx, n_seq, CacheType::F32);
  Collector col;
  col.process_output = p.process_output;
  col.pool = &pool;
  st.matmul_hook = &Collector::hook;
  st.matmul_hook_user = &col;

  const int first = n_ctx / 2;
  const int step = std::min(p.n_batch, n_ctx);
  double nll_sum = 0;
  int64_t n_scored = 0;
  std::vector<float> logits;
  Batch b;
  const auto t0 = std::chrono::steady_clock::now();
  for (int c0 = 0; c0 < ct.n_chunks; c0 += n_seq) {
    const int ns = std::min(n_seq, ct.n_chunks - c0);
    for (int s = 0; s < ns; ++s) st.kv.clear_seq(s);
    logits.clear();
    for (int j = 0; j < n_ctx; j += step) {
      b.clear();
      for (int s = 0; s < ns; ++s)
        for (int k = j; k < std::min(j + step, n_ctx); ++k) {
          // With process_output every row goes through output.weight, as in
          // llama.cpp; otherwise only the scored rows need logits.
          const bool want = p.process_output || (p.compute_ppl && k >= first && k < n_ctx - 1);
          b.add(ct.tokens[(size_t)(c0 + s) * n_ctx + k], k, s, want);
        }
      if (auto s = forward(m, st, b, logits); !s) return s;
    }
    if (!col.bad.empty()) return Status::error("non-finite activations entering " + col.bad + " (the model is broken)");
    if (p.compute_ppl) {
      // rows: per sequence, its wanted positions in order
      const int rows_per_seq = p.process_output ? n_ctx : n_ctx - 1 - first;
      const int row0 = p.process_output ? first : 0;
      std::vector<double> nll((size_t)ns * (n_ctx - 1 - first));
      pool.parallel_for((int64_t)nll.size(), 4, [&](int64_t i0, int64_t i1) {
        for (int64_t i = i0; i < i1; ++i) {
          const int s = (int)(i / (n_ctx - 1 - first)), k = (int)(i % (n_ctx - 1 - first));
          const float* row = &logits[((size_t)s * rows_per_seq + row0 + k) * n_vocab];
          nll[i] = token_nll(row, n_vocab, ct.tokens[(size_t)(c0 + s) * n_ctx + first + k + 1]);
        }
      });
      for (double v : nll) nll_sum += v;
      n_scored += (int64_t)nll.size();
    }
    if (progress) {
      ImatrixProgress pr;
      pr.chunk = c0 + ns;
      pr.n_chunks = ct.n_chunks;
      pr.ppl = n_scored > 0 ? std::exp(nll_sum / n_scored) : 0;
      const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
      pr.tokens_per_s = secs > 0 ? (double)(c0 + ns) * n_ctx / secs : 0;
      progress(pr);
    }
  }

  Imatrix out;
  out.chunks = ct.n_chunks;
  out.chunk_size = n_ctx;
  if (!p.dataset.empty()) out.datasets.push_back(p.dataset);
  for (auto& [name, a] : col.acc) {
    ImatrixTensor t;
    t.sums.assign(a.sum2.begin(), a.sum2.end());
    t.counts = {a.rows};
    t.n_expert = 1;  // no family slim runs has experts
    out.tensors.emplace(name, std::move(t));
  }
  if (out.tensors.empty()) return Status::error(model_path + ": no weight matrices were multiplied (nothing to collect)");
  return out;
}

}  // namespace slim
