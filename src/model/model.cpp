// Model loading (architecture lookup, hyperparameters, weight table with shape
// checks), the KV cache, and the forward driver: embeddings → layers → logits.
#include "model/model.h"

#include <cmath>
#include <cstring>

#include <sys/mman.h>
#include <unistd.h>

#include "base/fp16.h"
#include "kernels/dispatch.h"
#include "kernels/repack.h"
#include "kernels/threadpool.h"
#include "model/arch.h"
#include "model/blocks.h"
#include "model/tensor_names.h"
#include "tensor/quant_blocks.h"

namespace slim {

const ArchSpec* find_arch(const std::string& name) {
  static const ArchSpec* all[] = {&kArchLlama, &kArchQwen2, &kArchQwen3, &kArchPhi3, &kArchGemma2, &kArchGemma3};
  for (const ArchSpec* a : all)
    if (name == a->name) return a;
  return nullptr;
}

namespace {

class WeightLoader {
 public:
  WeightLoader(const GgufFile& f, Model& m, std::vector<std::vector<float>>& owned) : f_(f), m_(m), owned_(owned) {}

  // A matrix [rows][cols] (GGUF ne0 = cols, ne1 = rows). Optional when !required.
  Status matrix(const std::string& name, int64_t cols, int64_t rows, bool required, Weight& out) {
    const TensorInfo* t = f_.find_tensor(name);
    if (!t) return required ? Status::error("missing tensor " + name) : Status();
    if (!type_supported(t->type))
      return Status::error(format("tensor %s has type %s, which slim cannot compute yet", name.c_str(), type_name(t->type)));
    if (t->ne[0] != cols || (rows > 0 && t->ne[1] != rows) || t->ne[2] != 1 || t->ne[3] != 1)
      return Status::error(format("tensor %s has shape [%lld, %lld], expected [%lld, %lld]", name.c_str(),
                                  (long long)t->ne[0], (long long)t->ne[1], (long long)cols, (long long)rows));
    out = Weight{t->type, t->ne[0], t->ne[1], t->data, t->name.c_str()};
    count(*t);
    return Status();
  }

  // A vector of n values, converted to F32 when stored otherwise.
  Status vector(const std::string& name, int64_t n, bool required, Weight& out) {
    const TensorInfo* t = f_.find_tensor(name);
    if (!t) return required ? Status::error("missing tensor " + name) : Status();
    if (t->n_elements() != n)
      return Status::error(format("tensor %s has %lld values, expected %lld", name.c_str(), (long long)t->n_elements(), (long long)n));
    if (!type_supported(t->type))
      return Status::error(format("tensor %s has type %s, which slim cannot compute yet", name.c_str(), type_name(t->type)));
    const uint8_t* data = t->data;
    if (t->type != GgmlType::F32) {
      owned_.emplace_back(n);
      type_traits(t->type).to_float(t->data, owned_.back().data(), n);
      data = reinterpret_cast<const uint8_t*>(owned_.back().data());
    }
    out = Weight{GgmlType::F32, n, 1, data, t->name.c_str()};
    count(*t);
    return Status();
  }

 private:
  void count(const TensorInfo& t) {
    m_.n_params += (size_t)t.n_elements();
    m_.weight_bytes += t.nbytes;
  }
  const GgufFile& f_;
  Model& m_;
  std::vector<std::vector<float>>& owned_;
};

}  // namespace

Result<std::shared_ptr<Model>> load_model(const std::string& path) {
  auto f = GgufFile::open(path);
  if (!f) return Status::error(f.error());
  return load_model(std::move(f.value()));
}

Result<std::shared_ptr<Model>> load_model(std::shared_ptr<GgufFile> file) {
  auto fail = [&](const std::string& m) { return Status::error(file->path() + ": " + m); };
  auto arch_name = file->get_string("general.architecture");
  if (!arch_name) return fail("missing metadata key general.architecture");
  const ArchSpec* arch = find_arch(*arch_name);
  if (!arch) return fail("unsupported architecture '" + *arch_name + "'");

  // The model and the storage of its converted vectors share one lifetime.
  struct Holder { Model model; std::vector<std::vector<float>> owned; };
  auto holder = std::make_shared<Holder>();
  Model& m = holder->model;
  m.file = file;
  m.arch = arch;
  m.hp.arch = *arch_name;
  if (auto st = read_common_hparams(*file, m.hp); !st) return fail(st.message());
  if (auto st = arch->read_hparams(*file, m.hp); !st) return fail(st.message());
  HParams& hp = m.hp;

  WeightLoader wl(*file, m, holder->owned);
  const TensorInfo* te = file->find_tensor(tn::kTokEmbd);
  if (!te) return fail(std::string("missing tensor ") + tn::kTokEmbd);
  hp.n_vocab = (int)te->ne[1];
  Status st;
  const int n = hp.n_embd;
  if (!(st = wl.matrix(tn::kTokEmbd, n, hp.n_vocab, true, m.tok_embd))) return fail(st.message());
  if (!(st = wl.vector(tn::kOutputNorm, n, true, m.output_norm))) return fail(st.message());
  if (!(st = wl.matrix(tn::kOutput, n, hp.n_vocab, false, m.output))) return fail(st.message());
  if (!m.output) m.output = m.tok_embd;  // tied embeddings
  if (!(st = wl.vector(tn::kRopeFreqs, hp.n_rot / 2, false, m.rope_freqs))) return fail(st.message());
  if (!(st = wl.vector(tn::kRopeFactorsShort, hp.n_rot / 2, false, m.rope_factors_short))) return fail(st.message());
  if (!(st = wl.vector(tn::kRopeFactorsLong, hp.n_rot / 2, false, m.rope_factors_long))) return fail(st.message());

  const bool sandwich = arch->layer == kArchGemma2.layer;
  const int nq = hp.n_embd_q(), nk = hp.n_embd_k(), nv = hp.n_embd_v();
  m.layers.resize(hp.n_layer);
  for (int il = 0; il < hp.n_layer; ++il) {
    LayerWeights& L = m.layers[il];
    auto name = [&](const char* s) { return tn::layer(il, s); };
    auto load = [&]() -> Status {
      SLIM_RETURN_IF_ERROR(wl.vector(name(tn::kAttnNorm), n, true, L.attn_norm));
      if (file->find_tensor(name(tn::kAttnQkv))) {
        SLIM_RETURN_IF_ERROR(wl.matrix(name(tn::kAttnQkv), n, nq + nk + nv, true, L.wqkv));
        SLIM_RETURN_IF_ERROR(wl.vector(name(tn::kAttnQkvBias), nq + nk + nv, false, L.bqkv));
      } else {
        SLIM_RETURN_IF_ERROR(wl.matrix(name(tn::kAttnQ), n, nq, true, L.wq));
        SLIM_RETURN_IF_ERROR(wl.matrix(name(tn::kAttnK), n, nk, true, L.wk));
        SLIM_RETURN_IF_ERROR(wl.matrix(name(tn::kAttnV), n, nv, true, L.wv));
        SLIM_RETURN_IF_ERROR(wl.vector(name(tn::kAttnQBias), nq, false, L.bq));
        SLIM_RETURN_IF_ERROR(wl.vector(name(tn::kAttnKBias), nk, false, L.bk));
        SLIM_RETURN_IF_ERROR(wl.vector(name(tn::kAttnVBias), nv, false, L.bv));
      }
      SLIM_RETURN_IF_ERROR(wl.matrix(name(tn::kAttnOut), hp.n_head * hp.head_dim_v, n, true, L.wo));
      SLIM_RETURN_IF_ERROR(wl.vector(name(tn::kAttnOutBias), n, false, L.bo));
      SLIM_RETURN_IF_ERROR(wl.vector(name(tn::kAttnQNorm), hp.head_dim, false, L.q_norm));
      SLIM_RETURN_IF_ERROR(wl.vector(name(tn::kAttnKNorm), hp.head_dim, false, L.k_norm));
      SLIM_RETURN_IF_ERROR(wl.vector(name(tn::kFfnNorm), n, true, L.ffn_norm));
      if (file->find_tensor(name(tn::kFfnGate))) {
        SLIM_RETURN_IF_ERROR(wl.matrix(name(tn::kFfnGate), n, hp.n_ff, true, L.ffn_gate));
        SLIM_RETURN_IF_ERROR(wl.matrix(name(tn::kFfnUp), n, hp.n_ff, true, L.ffn_up));
      } else {
        SLIM_RETURN_IF_ERROR(wl.matrix(name(tn::kFfnUp), n, 2 * hp.n_ff, true, L.ffn_up));
      }
      SLIM_RETURN_IF_ERROR(wl.matrix(name(tn::kFfnDown), hp.n_ff, n, true, L.ffn_down));
      if (sandwich) {
        SLIM_RETURN_IF_ERROR(wl.vector(name(tn::kPostAttnNorm), n, true, L.post_attn_norm));
        SLIM_RETURN_IF_ERROR(wl.vector(name(tn::kPostFfnNorm), n, true, L.post_ffn_norm));
      }
      return Status();
    };
    if (auto s = load(); !s) return fail(s.message());
  }
  // Alias the model with the holder's lifetime.
  return std::shared_ptr<Model>(holder, &holder->model);
}

Result<CacheType> parse_cache_type(const std::string& s) {
  if (s == "f16") return CacheType::F16;
  if (s == "f32") return CacheType::F32;
  if (s == "q8_0") return CacheType::Q8_0;
  return Status::error("unknown cache type '" + s + "' (expected f16, f32 or q8_0)");
}

const char* cache_type_name(CacheType t) {
  switch (t) {
    case CacheType::F32: return "f32";
    case CacheType::F16: return "f16";
    case CacheType::Q8_0: return "q8_0";
  }
  return "unknown";
}

size_t cache_row_bytes(CacheType t, int64_t n) {
  switch (t) {
    case CacheType::F32: return 4 * (size_t)n;
    case CacheType::F16: return 2 * (size_t)n;
    case CacheType::Q8_0: return sizeof(BlockQ8_0) * (size_t)((n + kQK - 1) / kQK);
  }
  return 0;
}

Status check_cache_type(const HParams& hp, CacheType t) {
  if (t != CacheType::Q8_0) return Status();
  for (int d : {hp.head_dim, hp.head_dim_v})
    if (d % kQK != 0)
      return Status::error(format("cache type q8_0 needs head dims that are multiples of %d; this model's head dim "
                                  "is %d (use f16 or f32)", kQK, d));
  return Status();
}

size_t kv_cache_bytes(const HParams& hp, int n_ctx, int n_seq, CacheType type) {
  return (size_t)hp.n_layer * n_ctx * n_seq * (cache_row_bytes(type, hp.n_embd_k()) + cache_row_bytes(type, hp.n_embd_v()));
}

KvCache make_kv_cache(const HParams& hp, int n_ctx, int n_seq, CacheType type) {
  KvCache kv;
  kv.type = type;
  kv.n_ctx = n_ctx;
  kv.n_seq = n_seq;
  kv.n_layer = hp.n_layer;
  kv.k_row = hp.n_embd_k();
  kv.v_row = hp.n_embd_v();
  kv.k.resize(hp.n_layer);
  kv.v.resize(hp.n_layer);
  for (int il = 0; il < hp.n_layer; ++il) {  // layer by layer: no prototype copy held alongside
    kv.k[il].resize((size_t)n_ctx * n_seq * cache_row_bytes(type, kv.k_row));
    kv.v[il].resize((size_t)n_ctx * n_seq * cache_row_bytes(type, kv.v_row));
  }
  kv.seq_len.assign(n_seq, 0);
  return kv;
}

Status forward(const Model& m, ForwardState& st, const Batch& batch, std::vector<float>& logits) {
  const HParams& hp = m.hp;
  const int nt = batch.size();
  const int n = hp.n_embd;
  KvCache& kv = st.kv;
  if (nt == 0) return Status();
  if (kv.n_ctx == 0) return Status::error("forward: no KV cache");
  if (auto s = check_cache_type(hp, kv.type); !s) return s;

  // Positions must extend each sequence contiguously; check before touching anything.
  std::vector<int> next(kv.seq_len);
  for (int t = 0; t < nt; ++t) {
    int s = batch.seq[t], p = batch.pos[t], tok = batch.token[t];
    if (s < 0 || s >= kv.n_seq) return Status::error(format("sequence id %d out of range (0..%d)", s, kv.n_seq - 1));
    if (tok < 0 || tok >= hp.n_vocab) return Status::error(format("token id %d out of range (vocabulary %d)", tok, hp.n_vocab));
    if (p != next[s]) return Status::error(format("sequence %d: position %d does not follow %d", s, p, next[s] - 1));
    if (p >= kv.n_ctx) return Status::error(format("context is full: position %d exceeds the context size %d", p, kv.n_ctx));
    next[s] = p + 1;
  }

  st.x.resize((size_t)nt * n);
  const Weight& te = m.tok_embd;
  const TypeTraits& et = type_traits(te.type);
  thread_local std::vector<uint8_t> packed_row;  // no allocation per token
  if (te.repacked) packed_row.resize(te.row_bytes());
  for (int t = 0; t < nt; ++t) {
    float* row = &st.x[(size_t)t * n];
    const int tok = batch.token[t];
    if (te.repacked) {  // tied embeddings: read the output's panels, not the pages given back
      unpack_panel_row(te.type, te.repacked + tok / kRepackRows * repack_format(te.type).panel_bytes(te.ne0),
                       tok % kRepackRows, te.ne0, packed_row.data());
      et.to_float(packed_row.data(), row, n);
    } else {
      et.to_float(te.row(tok), row, n);
    }
    if (hp.embd_scale != 1.0f)
      for (int i = 0; i < n; ++i) row[i] *= hp.embd_scale;
  }
  trace(st, "embd", -1, st.x.data(), nt, n);

  LayerInput in{&batch, nt};
  for (int il = 0; il < hp.n_layer; ++il) m.arch->layer(m, il, st, in);
  kv.seq_len = next;

  // Logits only for the rows that want them (st.cur is free scratch by now).
  std::vector<float>& rows = st.cur;
  rows.resize((size_t)nt * n);
  int n_out = 0;
  for (int t = 0; t < nt; ++t) {
    if (!batch.want_logits[t]) continue;
    rms_norm(&st.x[(size_t)t * n], reinterpret_cast<const float*>(m.output_norm.data), &rows[(size_t)n_out * n], n, hp.rms_eps);
    ++n_out;
  }
  if (n_out == 0) return Status();
  trace(st, "result_norm", -1, rows.data(), n_out, n);
  if (st.hidden_out) st.hidden_out->insert(st.hidden_out->end(), rows.begin(), rows.begin() + (size_t)n_out * n);
  size_t base = logits.size();
  logits.resize(base + (size_t)n_out * hp.n_vocab);
  matmul(m.output, rows.data(), n_out, &logits[base], st);
  if (hp.final_softcap > 0) softcap(&logits[base], n_out * hp.n_vocab, hp.final_softcap);
  return Status();
}

namespace {

// Gives back the whole pages of [lo, hi) in a read-only file mapping: they
// read again from the file (or the page cache) if touched.
void release_pages(const uint8_t* lo, const uint8_t* hi, size_t page) {
  const uintptr_t a = ((uintptr_t)lo + page - 1) / page * page, b = (uintptr_t)hi / page * page;
  if (b > a) madvise((void*)a, b - a, MADV_DONTNEED);
}

// The matrices the forward pass multiplies with, and whether the table repacks one.
template <class M>
auto matmul_weights(M& m) {
  std::vector<decltype(&m.output)> ws;
  for (auto& L : m.layers)
    for (auto* w : {&L.wq, &L.wk, &L.wv, &L.wqkv, &L.wo, &L.ffn_gate, &L.ffn_up, &L.ffn_down}) ws.push_back(w);
  ws.push_back(&m.output);
  return ws;
}

bool repackable(const Weight& w, const KernelTable& table) {
  return w && table[w.type].gemm_repacked && w.ne1 >= kRepackRows && w.ne0 % repack_format(w.type).block_values == 0;
}

}  // namespace

int64_t repack_growth(const Model& m, const KernelTable& table) {
  int64_t growth = 0;
  for (const Weight* w : matmul_weights(m)) {
    if (!repackable(*w, table)) continue;
    const int64_t n_panels = (w->ne1 + kRepackRows - 1) / kRepackRows;
    growth += (int64_t)repack_format(w->type).panel_bytes(w->ne0) * n_panels - (int64_t)(w->ne1 * w->row_bytes());
  }
  return growth;
}

size_t repack_weights(Model& m, ThreadPool& pool, const KernelTable& table) {
  size_t total = 0;
  const size_t page = (size_t)sysconf(_SC_PAGESIZE);
  for (Weight* w : matmul_weights(m)) {
    if (w->repacked || !repackable(*w, table)) continue;
    const RepackFormat f = repack_format(w->type);
    const int64_t n_panels = (w->ne1 + kRepackRows - 1) / kRepackRows;
    const size_t pb = f.panel_bytes(w->ne0), rs = w->row_bytes();
    const PackPanelFn repack = table[w->type].repack;
    std::unique_ptr<uint8_t[]> buf;
    uint8_t* dst = panel_buffer(pb * n_panels, buf);
    // In chunks of about 4 MiB of source rows (smaller ones for small
    // matrices, so that every thread gets some), each handed back by the
    // thread that copied it: the copy replaces the mapped pages for this
    // process, so the weights are never resident twice over more than a chunk
    // a thread (the page cache may keep them), and the unmapping runs in
    // parallel (1 MiB chunks measured slower: more TLB shootdowns between the
    // threads). A page two chunks share is given back when the matrix is done.
    const uint8_t* src = w->data;
    const int64_t grain = std::clamp<int64_t>(((int64_t)4 << 20) / (int64_t)(rs * kRepackRows), 1,
                                              (n_panels + 2 * pool.size() - 1) / (2 * pool.size()));
    pool.parallel_for(n_panels, grain, [&](int64_t p0, int64_t p1) {
      for (int64_t p = p0; p < p1; ++p) {
        const uint8_t* rows = src + p * kRepackRows * rs;
        const int n_rows = (int)std::min<int64_t>(kRepackRows, w->ne1 - p * kRepackRows);
        if (repack) repack(rows, rs, n_rows, w->ne0, dst + p * pb);
        else repack_panel(w->type, rows, rs, n_rows, w->ne0, dst + p * pb);
      }
      release_pages(src + p0 * kRepackRows * rs, src + std::min(w->ne1, p1 * kRepackRows) * rs, page);
    });
    release_pages(src, src + w->ne1 * rs, page);
    w->repacked = dst;
    if (w == &m.output && m.tok_embd.data == w->data) m.tok_embd.repacked = dst;  // tied
    m.repacked.push_back(std::move(buf));
    total += pb * n_panels;
  }
  return total;
}

}  // namespace slim
