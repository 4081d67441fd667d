// Structured pruning (see prune.h): the shape check, the two importance
// measures, the plan, and the writer that slices rows and columns.
#include "compress/prune.h"

#include <algorithm>
#include <atomic>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <map>
#include <mutex>
#include <numeric>

#include "compress/block_quant.h"
#include "gguf/gguf.h"
#include "kernels/dispatch.h"
#include "kernels/threadpool.h"
#include "model/hparams.h"
#include "model/model.h"
#include "model/tensor_names.h"
#include "tokenizer/tokenizer.h"

namespace slim {

Result<PruneMethod> parse_prune_method(const std::string& s) {
  if (s == "activation") return PruneMethod::Activation;
  if (s == "magnitude") return PruneMethod::Magnitude;
  return Status::error("unknown importance method '" + s + "' (expected activation or magnitude)");
}

const char* prune_method_name(PruneMethod m) { return m == PruneMethod::Activation ? "activation" : "magnitude"; }

int64_t PrunedTensor::n_elements() const {
  int64_t n = 1;
  for (int64_t d : ne) n *= d;
  return n;
}

namespace {

// "blk.12.attn_q.weight" -> 12 and "attn_q.weight"; -1 for tensors outside the layers.
int layer_of(const std::string& name, std::string* suffix) {
  if (name.rfind("blk.", 0) != 0) return -1;
  const size_t dot = name.find('.', 4);
  if (dot == std::string::npos || dot == 4) return -1;
  int il = 0;
  for (size_t i = 4; i < dot; ++i) {
    if (name[i] < '0' || name[i] > '9' || il > 1000000) return -1;
    il = il * 10 + (name[i] - '0');
  }
  *suffix = name.substr(dot + 1);
  return il;
}

std::string fraction_list(int n) {
  std::string s;
  for (int k = 1; k < n; ++k) s += format("%s%g", s.empty() ? "" : ", ", (double)k / n);
  return s;
}

bool is_arch(const std::string& a, std::initializer_list<const char*> names) {
  for (const char* n : names)
    if (a == n) return true;
  return false;
}

}  // namespace

Result<PruneShape> check_prune(const GgufFile& f, const PruneParams& p) {
  auto arch = f.get_string("general.architecture");
  if (!arch) return Status::error(f.path() + ": missing metadata key general.architecture");
  HParams hp;
  hp.arch = *arch;
  if (auto st = read_common_hparams(f, hp); !st) return Status::error(f.path() + ": " + st.message());
  PruneShape s;
  s.arch = *arch;
  s.n_layer = hp.n_layer, s.n_embd = hp.n_embd, s.n_head = hp.n_head, s.n_head_kv = hp.n_head_kv;
  s.head_dim = hp.head_dim, s.head_dim_v = hp.head_dim_v, s.n_rot = hp.n_rot, s.n_ff = hp.n_ff;
  s.n_ctx_train = hp.n_ctx_train;

  if (!(p.ffn >= 0 && p.ffn < 1))
    return Status::error(format("--ffn %g: the fraction of FFN neurons to remove must be at least 0 and below 1",
                                p.ffn));
  if (!(p.heads >= 0 && p.heads < 1))
    return Status::error(format("--heads %g: the fraction of attention heads to remove must be at least 0 and below 1",
                                p.heads));
  if (p.layers < 0 || p.layers >= s.n_layer)
    return Status::error(format("--layers %d: the model has %d layers, so 0 to %d can be removed", p.layers, s.n_layer,
                                s.n_layer - 1));

  // What this architecture's tensors allow.
  const bool plain = is_arch(s.arch, {"llama", "qwen2", "qwen3"});
  const bool gemma = is_arch(s.arch, {"gemma2", "gemma3"});
  const bool phi3 = s.arch == "phi3";
  for (const TensorInfo& t : f.tensors())
    if (t.name.find("_exps.") != std::string::npos || t.name.find("ffn_gate_inp") != std::string::npos)
      return Status::error("slim prune does not support mixture-of-experts tensors (" + t.name + ")");
  if (p.heads > 0 && f.find_tensor(tn::layer(0, tn::kAttnQkv)))
    return Status::error("--heads: fused attn_qkv tensors (as in " + s.arch + ") are not supported");
  if (p.ffn > 0 && !f.find_tensor(tn::layer(0, tn::kFfnGate)))
    return Status::error("--ffn: a fused gate+up ffn_up tensor (as in " + s.arch + ") is not supported");
  if (!plain && !gemma && !phi3)
    return Status::error("slim prune does not support architecture '" + s.arch +
                         "' (llama, qwen2, qwen3; gemma2 and gemma3 with --ffn only; phi3 with --layers only)");
  if (gemma && p.heads > 0)
    return Status::error("--heads is not supported for " + s.arch + " (its query scale may follow the head count); --ffn is");
  if (gemma && p.layers > 0)
    return Status::error("--layers is not supported for " + s.arch +
                         " (removing a layer would shift its pattern of local and global attention layers); --ffn is");

  s.ffn_remove = std::min(s.n_ff - 1, (int)std::llround(p.ffn * s.n_ff));
  if (p.heads > 0) {
    if (s.n_head_kv < 2)
      return Status::error(format("--heads: the model's %d query heads share one KV head, a group that cannot be removed",
                                  s.n_head));
    const int k = (int)std::llround(p.heads * s.n_head_kv);
    if (k <= 0 || k >= s.n_head_kv)
      return Status::error(format("--heads %g would remove %d of the %d KV groups (%d query heads each); possible "
                                  "fractions: %s",
                                  p.heads, k, s.n_head_kv, s.group_size(), fraction_list(s.n_head_kv).c_str()));
    s.groups_remove = k;
  }
  s.layers_remove = p.layers;
  return s;
}

int prune_calibration_ctx(const PruneShape& s, const PruneParams& p) {
  if (p.n_ctx > 0) return p.n_ctx;
  return s.n_ctx_train > 0 ? std::min(256, s.n_ctx_train) : 256;
}

// ---- activation importance ----

namespace {

// Fed by the forward pass's trace hook: per layer the sums of |ffn_act|, of
// every head's L2 norm in "attn", and of the cosine similarity between the
// stream entering the layer ("embd" or the previous "layer_out") and leaving it.
struct ActivationMeter {
  int n_layer = 0, n_head = 0, head_dim_v = 0;
  std::vector<std::vector<double>> ffn, heads;
  std::vector<double> cos_sum;
  std::vector<int64_t> ffn_rows, attn_rows, cos_rows;
  std::vector<float> layer_in;  // the stream entering the next layer, [n_tokens][n_embd]
  std::string bad;              // first intermediate that was not finite

  void init(const HParams& hp) {
    n_layer = hp.n_layer, n_head = hp.n_head, head_dim_v = hp.head_dim_v;
    ffn.assign(n_layer, std::vector<double>(hp.n_ff, 0.0));
    heads.assign(n_layer, std::vector<double>(n_head, 0.0));
    cos_sum.assign(n_layer, 0.0);
    ffn_rows.assign(n_layer, 0);
    attn_rows.assign(n_layer, 0);
    cos_rows.assign(n_layer, 0);
  }

  void note_bad(const char* name, int il) {
    if (bad.empty()) bad = format("%s of layer %d", name, il);
  }

  static void trace(void* user, const char* name, int il, const float* d, int nt, int n) {
    auto* m = static_cast<ActivationMeter*>(user);
    const size_t total = (size_t)nt * n;
    if (std::strcmp(name, "embd") == 0) {
      m->layer_in.assign(d, d + total);
      return;
    }
    if (il < 0 || il >= m->n_layer) return;
    if (std::strcmp(name, "ffn_act") == 0) {
      double* s = m->ffn[il].data();
      if ((size_t)n != m->ffn[il].size()) return;
      for (int t = 0; t < nt; ++t) {
        const float* row = d + (size_t)t * n;
        for (int j = 0; j < n; ++j) s[j] += std::fabs((double)row[j]);
      }
      if (!std::all_of(s, s + n, [](double v) { return std::isfinite(v); })) m->note_bad(name, il);
      m->ffn_rows[il] += nt;
    } else if (std::strcmp(name, "attn") == 0) {
      if (n != m->n_head * m->head_dim_v) return;
      double* s = m->heads[il].data();
      for (int t = 0; t < nt; ++t)
        for (int h = 0; h < m->n_head; ++h) {
          const float* v = d + (size_t)t * n + (size_t)h * m->head_dim_v;
          double ss = 0;
          for (int i = 0; i < m->head_dim_v; ++i) ss += (double)v[i] * v[i];
          s[h] += std::sqrt(ss);
        }
      if (!std::all_of(s, s + m->n_head, [](double v) { return std::isfinite(v); })) m->note_bad(name, il);
      m->attn_rows[il] += nt;
    } else if (std::strcmp(name, "layer_out") == 0) {
      if (m->layer_in.size() != total) return;
      double sum = 0;
      for (int t = 0; t < nt; ++t) {
        const float* a = &m->layer_in[(size_t)t * n];
        const float* b = d + (size_t)t * n;
        double ab = 0, aa = 0, bb = 0;
        for (int i = 0; i < n; ++i) ab += (double)a[i] * b[i], aa += (double)a[i] * a[i], bb += (double)b[i] * b[i];
        // two zero vectors are the same stream: the layer changed nothing
        sum += aa > 0 && bb > 0 ? ab / std::sqrt(aa * bb) : (aa == bb ? 1.0 : 0.0);
      }
      if (!std::isfinite(sum)) m->note_bad(name, il);
      m->cos_sum[il] += sum;
      m->cos_rows[il] += nt;
      m->layer_in.assign(d, d + total);
    }
  }
};

}  // namespace

Result<PruneImportance> measure_activation_importance(const std::string& model_path, std::string_view text,
                                                      const PruneParams& p, const PruneProgressFn& progress) {
  auto file = GgufFile::open(model_path);
  if (!file) return Status::error(file.error());
  auto shape = check_prune(**file, PruneParams{});
  if (!shape) return shape.status();
  auto model = load_model(*file);
  if (!model) return Status::error(model.error());
  auto tok = Tokenizer::from_gguf(**file);
  if (!tok) return Status::error(model_path + ": " + tok.error());
  Model& m = **model;
  const HParams& hp = m.hp;
  const int n_ctx = prune_calibration_ctx(*shape, p);
  if (n_ctx < 2) return Status::error(format("bad calibration chunk size %d (at least 2 tokens)", n_ctx));
  if (p.n_chunks == 0 || p.n_chunks < -1) return Status::error(format("bad chunk count %d", p.n_chunks));

  // The whole text at once, cut into chunks that each start as a text does.
  const std::vector<int32_t> all = (*tok)->tokenize(text, true, false);
  struct Chunk { size_t begin; int len; };
  std::vector<Chunk> chunks;
  for (size_t b = 0; b < all.size() && (p.n_chunks < 0 || (int)chunks.size() < p.n_chunks); b += n_ctx) {
    const int len = (int)std::min<size_t>(n_ctx, all.size() - b);
    if (len < 2) break;
    chunks.push_back({b, len});
  }
  if (chunks.empty())
    return Status::error(format("the calibration text is %zu tokens: too short to measure anything", all.size()));
  const bool bos_first = (*tok)->add_bos() && (*tok)->bos() >= 0;

  ThreadPool pool(p.n_threads);
  repack_weights(m, pool, kernels());
  const int n_chunks = (int)chunks.size();
  const int n_seq = std::max(1, std::min(512 / n_ctx, n_chunks));  // several short chunks a forward pass
  ForwardState st;
  st.pool = &pool;
  st.kv = make_kv_cache(hp, n_ctx, n_seq, CacheType::F32);
  ActivationMeter meter;
  meter.init(hp);
  st.trace = &ActivationMeter::trace;
  st.trace_user = &meter;

  PruneImportance imp;
  imp.method = PruneMethod::Activation;
  imp.n_ctx = n_ctx;
  imp.n_chunks = n_chunks;
  std::vector<float> logits;  // no token wants logits: the layers are all that is measured
  Batch b;
  for (int c0 = 0; c0 < n_chunks; c0 += n_seq) {
    const int ns = std::min(n_seq, n_chunks - c0);
    b.clear();
    for (int s = 0; s < ns; ++s) {
      st.kv.clear_seq(s);
      const Chunk& c = chunks[(size_t)(c0 + s)];
      for (int k = 0; k < c.len; ++k) b.add(k == 0 && bos_first ? (*tok)->bos() : all[c.begin + k], k, s, false);
    }
    if (auto s = forward(m, st, b, logits); !s) return s;
    if (!meter.bad.empty()) return Status::error("non-finite activations in " + meter.bad + " (the model is broken)");
    imp.n_tokens += b.size();
    if (progress) progress({c0 + ns, n_chunks});
  }

  for (int il = 0; il < hp.n_layer; ++il)
    if (meter.ffn_rows[il] == 0 || meter.attn_rows[il] == 0 || meter.cos_rows[il] == 0)
      return Status::error(format("layer %d: the forward pass traced no FFN, attention or layer output to measure", il));
  imp.ffn.resize(hp.n_layer);
  imp.heads.resize(hp.n_layer);
  imp.groups.assign(hp.n_layer, std::vector<double>(hp.n_head_kv, 0.0));
  imp.layers.resize(hp.n_layer);
  const int gs = hp.n_head / hp.n_head_kv;
  for (int il = 0; il < hp.n_layer; ++il) {
    imp.ffn[il] = meter.ffn[il];
    for (double& v : imp.ffn[il]) v /= (double)meter.ffn_rows[il];
    imp.heads[il] = meter.heads[il];
    for (double& v : imp.heads[il]) v /= (double)meter.attn_rows[il];
    for (int h = 0; h < hp.n_head; ++h) imp.groups[il][h / gs] += imp.heads[il][h];
    imp.layers[il] = 1.0 - meter.cos_sum[il] / (double)meter.cos_rows[il];
  }
  return imp;
}

// ---- magnitude importance ----

namespace {

// Squared L2 norms of every row and (when asked) every column of a tensor,
// dequantized row by row.
struct Norms {
  std::vector<double> rows, cols;
  double total() const { return std::accumulate(rows.begin(), rows.end(), 0.0); }
};

Result<Norms> tensor_norms(const TensorInfo& t, bool want_cols, ThreadPool& pool) {
  const TypeTraits& tt = type_traits(t.type);
  if (!tt.to_float)
    return Status::error(format("tensor %s has type %s, which slim cannot read", t.name.c_str(), type_name(t.type)));
  const int64_t ne0 = t.ne[0], rows = t.n_elements() / ne0;
  const size_t rs = row_size(t.type, ne0);
  Norms n;
  n.rows.assign((size_t)rows, 0.0);
  if (want_cols) n.cols.assign((size_t)ne0, 0.0);
  std::mutex mu;
  pool.parallel_for(rows, std::max<int64_t>(1, 65536 / ne0), [&](int64_t r0, int64_t r1) {
    std::vector<float> x((size_t)ne0);
    std::vector<double> cols(want_cols ? (size_t)ne0 : 0, 0.0);
    for (int64_t r = r0; r < r1; ++r) {
      tt.to_float(t.data + (size_t)r * rs, x.data(), ne0);
      double s = 0;
      for (int64_t j = 0; j < ne0; ++j) s += (double)x[j] * x[j];
      n.rows[(size_t)r] = s;
      if (want_cols)
        for (int64_t j = 0; j < ne0; ++j) cols[(size_t)j] += (double)x[j] * x[j];
    }
    if (want_cols) {
      std::lock_guard<std::mutex> lock(mu);
      for (int64_t j = 0; j < ne0; ++j) n.cols[(size_t)j] += cols[(size_t)j];
    }
  });
  return n;
}

}  // namespace

Result<PruneImportance> measure_magnitude_importance(const GgufFile& f, const PruneShape& s, int n_threads) {
  ThreadPool pool(n_threads);
  PruneImportance imp;
  imp.method = PruneMethod::Magnitude;
  imp.ffn.assign(s.n_layer, std::vector<double>(s.n_ff, 0.0));
  imp.groups.assign(s.n_layer, std::vector<double>(s.n_head_kv, 0.0));
  imp.layers.assign(s.n_layer, 0.0);
  const int gs = s.group_size();
  for (int il = 0; il < s.n_layer; ++il) {
    std::map<std::string, Norms> norms;  // by suffix, the layer's matrices
    for (const TensorInfo& t : f.tensors()) {
      std::string suffix;
      if (layer_of(t.name, &suffix) != il || t.n_dims < 2) continue;
      const bool cols = suffix == tn::kFfnDown || suffix == tn::kAttnOut;
      auto r = tensor_norms(t, cols, pool);
      if (!r) return r.status();
      imp.layers[il] += std::sqrt(r->total());
      norms.emplace(suffix, std::move(*r));
    }
    auto has = [&](const char* k) { return norms.count(k) > 0; };
    if (has(tn::kFfnGate) && has(tn::kFfnUp) && has(tn::kFfnDown)) {
      const Norms &g = norms[tn::kFfnGate], &u = norms[tn::kFfnUp], &d = norms[tn::kFfnDown];
      if (g.rows.size() != (size_t)s.n_ff || u.rows.size() != (size_t)s.n_ff || d.cols.size() != (size_t)s.n_ff)
        return Status::error(format("layer %d: FFN tensors do not have %d neurons", il, s.n_ff));
      for (int i = 0; i < s.n_ff; ++i) imp.ffn[il][i] = std::sqrt(g.rows[i]) * std::sqrt(u.rows[i]) * std::sqrt(d.cols[i]);
    }
    if (has(tn::kAttnQ) && has(tn::kAttnK) && has(tn::kAttnV) && has(tn::kAttnOut)) {
      const Norms &q = norms[tn::kAttnQ], &k = norms[tn::kAttnK], &v = norms[tn::kAttnV], &o = norms[tn::kAttnOut];
      if (q.rows.size() != (size_t)s.n_head * s.head_dim || k.rows.size() != (size_t)s.n_head_kv * s.head_dim ||
          v.rows.size() != (size_t)s.n_head_kv * s.head_dim_v || o.cols.size() != (size_t)s.n_head * s.head_dim_v)
        return Status::error(format("layer %d: attention tensors do not match %d heads / %d KV of %d", il, s.n_head,
                                    s.n_head_kv, s.head_dim));
      for (int g = 0; g < s.n_head_kv; ++g) {
        double sum = 0;
        for (int i = 0; i < s.head_dim; ++i) sum += k.rows[(size_t)g * s.head_dim + i];
        for (int i = 0; i < s.head_dim_v; ++i) sum += v.rows[(size_t)g * s.head_dim_v + i];
        for (int h = g * gs; h < (g + 1) * gs; ++h) {
          for (int i = 0; i < s.head_dim; ++i) sum += q.rows[(size_t)h * s.head_dim + i];
          for (int i = 0; i < s.head_dim_v; ++i) sum += o.cols[(size_t)h * s.head_dim_v + i];
        }
        imp.groups[il][g] = std::sqrt(sum);
      }
    }
  }
  return imp;
}

// ---- the plan ----

namespace {

// Indices of the k lowest scores, ascending; among equal scores the later index goes.
std::vector<int> lowest(const std::vector<double>& v, int k, bool ascending_result = true) {
  std::vector<int> idx(v.size());
  std::iota(idx.begin(), idx.end(), 0);
  std::stable_sort(idx.begin(), idx.end(), [&](int a, int b) { return v[a] < v[b] || (v[a] == v[b] && a > b); });
  idx.resize(std::min<size_t>(idx.size(), (size_t)std::max(0, k)));
  if (ascending_result) std::sort(idx.begin(), idx.end());
  return idx;
}

std::vector<int64_t> complement(const std::vector<int>& removed, int n, int width) {
  std::vector<uint8_t> gone((size_t)n, 0);
  for (int r : removed) gone[(size_t)r] = 1;
  std::vector<int64_t> keep;
  for (int i = 0; i < n; ++i)
    if (!gone[(size_t)i])
      for (int j = 0; j < width; ++j) keep.push_back((int64_t)i * width + j);
  return keep;
}

bool all_finite(const std::vector<double>& v) {
  return std::all_of(v.begin(), v.end(), [](double x) { return std::isfinite(x); });
}

// The type a column-sliced tensor is written in (see prune.h).
Result<GgmlType> column_slice_type(const TensorInfo& t, int64_t new_ne0, std::string* note) {
  const TypeTraits& tt = type_traits(t.type);
  if (t.type == GgmlType::F32 || t.type == GgmlType::F16 || t.type == GgmlType::BF16) return t.type;
  if (!tt.is_quantized || !tt.to_float)
    return Status::error(format("tensor %s: slim prune cannot slice the columns of type %s", t.name.c_str(),
                                type_name(t.type)));
  if (new_ne0 % tt.block_size != 0) {
    *note = format("written F16: its rows of %lld values are not a multiple of %s's block of %lld",
                   (long long)new_ne0, type_name(t.type), (long long)tt.block_size);
    return GgmlType::F16;
  }
  if (!block_search_supported(t.type) && !tt.from_float) {
    *note = format("written F16: slim cannot quantize to %s", type_name(t.type));
    return GgmlType::F16;
  }
  return t.type;
}

}  // namespace

Result<PrunePlan> plan_prune(const GgufFile& f, const PruneShape& s, const PruneImportance& imp) {
  const int L = s.n_layer;
  if ((int)imp.layers.size() != L || (int)imp.ffn.size() != L || (int)imp.groups.size() != L)
    return Status::error("importance scores do not match the model's layers");
  for (int il = 0; il < L; ++il)
    if ((int)imp.ffn[il].size() != s.n_ff || (int)imp.groups[il].size() != s.n_head_kv || !all_finite(imp.ffn[il]) ||
        !all_finite(imp.groups[il]))
      return Status::error(format("importance scores of layer %d do not match the model or are not finite", il));
  if (!all_finite(imp.layers)) return Status::error("layer importance scores are not finite");

  PrunePlan plan;
  plan.shape = s;
  plan.method = imp.method;
  plan.n_calib_tokens = imp.n_tokens;
  plan.n_chunks = imp.n_chunks;
  plan.n_ctx = imp.n_ctx;
  plan.removed_layers = lowest(imp.layers, s.layers_remove, false);
  std::vector<uint8_t> gone((size_t)L, 0);
  for (int il : plan.removed_layers) gone[(size_t)il] = 1;
  const int gs = s.group_size();
  int next = 0;
  for (int il = 0; il < L; ++il) {
    PruneLayer pl;
    pl.layer = il;
    pl.score = imp.layers[il];
    if (!gone[(size_t)il]) {
      pl.new_index = next++;
      pl.ffn_removed = lowest(imp.ffn[il], s.ffn_remove);
      pl.groups_removed = lowest(imp.groups[il], s.groups_remove);
      for (int g : pl.groups_removed)
        for (int h = g * gs; h < (g + 1) * gs; ++h) pl.heads_removed.push_back(h);
    }
    plan.layers.push_back(std::move(pl));
  }
  plan.n_layer_after = next;
  plan.n_ff_after = s.n_ff - s.ffn_remove;
  plan.n_head_kv_after = s.n_head_kv - s.groups_remove;
  plan.n_head_after = plan.n_head_kv_after * gs;

  const bool width = s.ffn_remove > 0 || s.groups_remove > 0;
  for (const TensorInfo& t : f.tensors()) {
    plan.params_before += t.n_elements();
    plan.bytes_before += t.nbytes;
    std::string suffix;
    const int il = layer_of(t.name, &suffix);
    if (il >= L) return Status::error(format("tensor %s: layer %d beyond block_count %d", t.name.c_str(), il, L));
    if (il >= 0 && gone[(size_t)il]) continue;
    PrunedTensor pt;
    pt.source = t.name;
    pt.name = il >= 0 ? tn::layer(plan.layers[il].new_index, suffix.c_str()) : t.name;
    pt.from = pt.to = t.type;
    pt.ne.assign(t.ne, t.ne + std::max(1, t.n_dims));
    if (il >= 0 && width) {
      const PruneLayer& pl = plan.layers[il];
      const std::vector<int64_t> neurons = complement(pl.ffn_removed, s.n_ff, 1);
      const std::vector<int64_t> q = complement(pl.heads_removed, s.n_head, s.head_dim);
      const std::vector<int64_t> k = complement(pl.groups_removed, s.n_head_kv, s.head_dim);
      const std::vector<int64_t> v = complement(pl.groups_removed, s.n_head_kv, s.head_dim_v);
      const std::vector<int64_t> o = complement(pl.heads_removed, s.n_head, s.head_dim_v);
      const bool ffn = s.ffn_remove > 0, heads = s.groups_remove > 0;
      // (rows to keep, columns to keep, the dimension they index) by the tensor's role
      const std::vector<int64_t>* rows = nullptr;
      const std::vector<int64_t>* cols = nullptr;
      int64_t expect = 0;
      if (suffix == tn::kFfnGate || suffix == tn::kFfnUp) {
        rows = ffn ? &neurons : nullptr, expect = s.n_ff;
      } else if (suffix == "ffn_gate.bias" || suffix == "ffn_up.bias" || suffix == tn::kFfnDown) {
        cols = ffn ? &neurons : nullptr, expect = s.n_ff;
      } else if (suffix == tn::kAttnQ) {
        rows = heads ? &q : nullptr, expect = s.n_head * s.head_dim;
      } else if (suffix == tn::kAttnK) {
        rows = heads ? &k : nullptr, expect = s.n_head_kv * s.head_dim;
      } else if (suffix == tn::kAttnV) {
        rows = heads ? &v : nullptr, expect = s.n_head_kv * s.head_dim_v;
      } else if (suffix == tn::kAttnQBias) {
        cols = heads ? &q : nullptr, expect = s.n_head * s.head_dim;
      } else if (suffix == tn::kAttnKBias) {
        cols = heads ? &k : nullptr, expect = s.n_head_kv * s.head_dim;
      } else if (suffix == tn::kAttnVBias) {
        cols = heads ? &v : nullptr, expect = s.n_head_kv * s.head_dim_v;
      } else if (suffix == tn::kAttnOut) {
        cols = heads ? &o : nullptr, expect = s.n_head * s.head_dim_v;
      } else if (!(suffix == tn::kAttnNorm || suffix == tn::kFfnNorm || suffix == tn::kAttnQNorm ||
                   suffix == tn::kAttnKNorm || suffix == tn::kPostAttnNorm || suffix == tn::kPostFfnNorm ||
                   suffix == tn::kAttnOutBias || suffix == "ffn_down.bias")) {
        return Status::error("tensor " + t.name +
                             ": slim prune does not know how it depends on the removed neurons or heads");
      }
      if ((rows || cols) && t.n_dims > 2)
        return Status::error("tensor " + t.name + ": cannot slice a tensor of more than two dimensions");
      if (rows) {
        if (t.ne[1] != expect)
          return Status::error(format("tensor %s has %lld rows, expected %lld", t.name.c_str(), (long long)t.ne[1],
                                      (long long)expect));
        pt.keep_rows = *rows;
        pt.ne[1] = (int64_t)rows->size();
      }
      if (cols) {
        if (t.ne[0] != expect)
          return Status::error(format("tensor %s has %lld columns, expected %lld", t.name.c_str(),
                                      (long long)t.ne[0], (long long)expect));
        pt.keep_cols = *cols;
        pt.ne[0] = (int64_t)cols->size();
        auto to = column_slice_type(t, pt.ne[0], &pt.note);
        if (!to) return to.status();
        pt.to = *to;
      }
    }
    plan.params_after += pt.n_elements();
    plan.bytes_after += row_size(pt.to, pt.ne[0]) * (size_t)(pt.n_elements() / pt.ne[0]);
    plan.tensors.push_back(std::move(pt));
  }
  return plan;
}

// ---- writing ----

namespace {

// An integer key with its old type kept (u32 when it was missing or not an integer).
void set_int(GgufWriter& w, const GgufFile& f, const std::string& key, int64_t v) {
  const GgufValue* old = f.find(key);
  GgufValue x = old && old->is_int() && !old->is_array() ? *old : GgufValue::u32((uint32_t)v);
  x.i = v;
  w.set(key, x);
}

// A per-layer count that may be stored as one integer or as an array of them.
void set_count(GgufWriter& w, const GgufFile& f, const std::string& key, int64_t v, int n_layer) {
  if (const GgufArray* arr = f.get_array(key)) {
    GgufArray a;
    a.elem_type = arr->elem_type;
    a.ints.assign((size_t)n_layer, v);
    w.set(key, GgufValue::array_of(std::move(a)));
  } else {
    set_int(w, f, key, v);
  }
}

std::string pruning_summary(const PrunePlan& p) {
  const PruneShape& s = p.shape;
  std::string removed;
  for (int il : p.removed_layers) removed += format("%s%d", removed.empty() ? "" : ",", il);
  std::string r = format("slim prune, %s importance: FFN %d -> %d, heads %d/%d KV -> %d/%d KV, layers %d -> %d",
                         prune_method_name(p.method), s.n_ff, p.n_ff_after, s.n_head, s.n_head_kv, p.n_head_after,
                         p.n_head_kv_after, s.n_layer, p.n_layer_after);
  if (!removed.empty()) r += " (removed blk." + removed + ")";
  return r;
}

// Slices one tensor's kept columns (of the kept rows) into `buf`, re-quantized to `to`.
Status slice_columns(const TensorInfo& src, const PrunedTensor& t, uint8_t* buf, ThreadPool& pool) {
  const TypeTraits& in = type_traits(src.type);
  const TypeTraits& out = type_traits(t.to);
  const int64_t ne0 = src.ne[0], n_cols = (int64_t)t.keep_cols.size();
  const int64_t n_rows = t.keep_rows.empty() ? src.n_elements() / ne0 : (int64_t)t.keep_rows.size();
  const size_t in_rs = row_size(src.type, ne0), out_rs = row_size(t.to, n_cols);
  const bool search = block_search_supported(t.to);
  if (!in.to_float || (!search && !out.from_float))
    return Status::error(format("tensor %s: cannot convert %s to %s", t.source.c_str(), type_name(src.type),
                                type_name(t.to)));
  std::atomic<bool> bad{false};
  pool.parallel_for(n_rows, std::max<int64_t>(1, 16384 / ne0), [&](int64_t r0, int64_t r1) {
    std::vector<float> x((size_t)ne0), y((size_t)n_cols), w((size_t)n_cols);
    for (int64_t r = r0; r < r1; ++r) {
      const int64_t sr = t.keep_rows.empty() ? r : t.keep_rows[(size_t)r];
      in.to_float(src.data + (size_t)sr * in_rs, x.data(), ne0);
      for (int64_t j = 0; j < n_cols; ++j) y[(size_t)j] = x[(size_t)t.keep_cols[(size_t)j]];
      for (float v : y)
        if (!std::isfinite(v)) bad = true;
      uint8_t* dst = buf + (size_t)r * out_rs;
      if (t.to == GgmlType::F32) {
        std::memcpy(dst, y.data(), out_rs);
      } else if (search) {
        row_weights(y.data(), n_cols, nullptr, w.data());
        quantize_row_search(t.to, y.data(), w.data(), dst, n_cols);
      } else {
        out.from_float(y.data(), dst, n_cols);
      }
    }
  });
  if (bad) return Status::error("tensor " + t.source + " holds NaN or infinite values");
  return Status();
}

}  // namespace

Result<size_t> write_pruned(const std::string& in, const std::string& out, const PrunePlan& plan, int n_threads) {
  namespace fs = std::filesystem;
  std::error_code ec;
  if (out.empty()) return Status::error("no output file given");
  if (fs::exists(out, ec) && fs::equivalent(in, out, ec))
    return Status::error("the output file is the input file (" + out + "): give another name");
  if (fs::is_directory(out, ec)) return Status::error(out + " is a directory");
  const fs::path parent = fs::absolute(fs::path(out), ec).parent_path();
  if (!fs::is_directory(parent, ec)) return Status::error("cannot write " + out + ": no directory " + parent.string());
  auto fr = GgufFile::open(in);
  if (!fr) return fr.status();
  const GgufFile& f = **fr;
  const PruneShape& s = plan.shape;
  std::vector<const TensorInfo*> src;
  for (const PrunedTensor& t : plan.tensors) {
    const TensorInfo* ti = f.find_tensor(t.source);
    if (!ti || ti->type != t.from) return Status::error("the prune plan does not match " + in + " (" + t.source + ")");
    src.push_back(ti);
  }

  GgufWriter w;
  w.copy_metadata_from(f);
  const std::string a = s.arch + ".";
  set_int(w, f, a + "block_count", plan.n_layer_after);
  set_count(w, f, a + "feed_forward_length", plan.n_ff_after, plan.n_layer_after);
  if (s.groups_remove > 0) {
    set_count(w, f, a + "attention.head_count", plan.n_head_after, plan.n_layer_after);
    set_count(w, f, a + "attention.head_count_kv", plan.n_head_kv_after, plan.n_layer_after);
    // n_embd / n_head is no longer the head size: say it explicitly
    set_int(w, f, a + "attention.key_length", s.head_dim);
    set_int(w, f, a + "attention.value_length", s.head_dim_v);
    set_int(w, f, a + "rope.dimension_count", s.n_rot);
  }
  w.set("general.pruned_from", GgufValue::str(fs::path(in).filename().string()));
  w.set("general.pruning", GgufValue::str(pruning_summary(plan)));
  if (f.find("general.parameter_count")) set_int(w, f, "general.parameter_count", plan.params_after);
  for (const PrunedTensor& t : plan.tensors) SLIM_RETURN_IF_ERROR(w.declare_tensor(t.name, t.to, t.ne));

  ThreadPool pool(n_threads);
  bool fill_failed = false;
  Status st = w.write(out, [&](size_t i, uint8_t* buf, size_t nbytes) -> Status {
    const PrunedTensor& t = plan.tensors[i];
    const TensorInfo& ti = *src[i];
    Status s2;
    if (t.copied()) {
      if (nbytes != ti.nbytes) s2 = Status::error("tensor " + t.source + ": size mismatch");
      else std::memcpy(buf, ti.data, nbytes);
    } else if (t.keep_cols.empty()) {  // whole rows, in their own type
      const size_t rs = row_size(ti.type, ti.ne[0]);
      for (size_t j = 0; j < t.keep_rows.size(); ++j)
        std::memcpy(buf + j * rs, ti.data + (size_t)t.keep_rows[j] * rs, rs);
    } else {
      s2 = slice_columns(ti, t, buf, pool);
    }
    fill_failed = !s2.ok();
    return s2;
  });
  if (!st.ok()) {
    if (fill_failed) return st;
    return Status::error("cannot write " + out + " (disk full, or not writable?): " + st.message());
  }
  return (size_t)fs::file_size(out, ec);
}

}  // namespace slim
