// The file-level quantizer (see quantize.h): plan, then stream the tensors
// through the block search into a temporary file.
#include "compress/quantize.h"

#include <sys/statvfs.h>

#include <atomic>
#include <chrono>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <map>
#include <mutex>
#include <regex>

#include "compress/block_quant.h"
#include "gguf/gguf.h"
#include "kernels/threadpool.h"

namespace slim {

int64_t TensorPlan::n_elements() const {
  int64_t n = 1;
  for (int64_t d : ne) n *= d;
  return n;
}

Result<GgmlType> parse_quant_type(const std::string& name) {
  auto t = type_from_name(name);
  if (t && block_search_supported(*t)) return *t;
  return Status::error("unknown tensor type '" + name +
                       "' (slim writes F32, F16, BF16, Q4_0, Q4_1, Q5_0, Q5_1, Q8_0, Q2_K, Q3_K, Q4_K, Q5_K, Q6_K, "
                       "IQ4_NL, IQ4_XS)");
}

Result<TensorTypeOverride> parse_tensor_type_override(const std::string& spec) {
  const size_t eq = spec.rfind('=');
  if (eq == std::string::npos || eq == 0 || eq + 1 == spec.size())
    return Status::error("--tensor-type wants PATTERN=TYPE, got '" + spec + "'");
  TensorTypeOverride o;
  o.pattern = spec.substr(0, eq);
  try {
    std::regex re(o.pattern);
  } catch (const std::regex_error& e) {
    return Status::error("--tensor-type: bad regular expression '" + o.pattern + "': " + e.what());
  }
  auto t = parse_quant_type(spec.substr(eq + 1));
  if (!t) return t.status();
  o.type = *t;
  return o;
}

namespace {

std::string arch_key(const GgufFile& f, const char* suffix) {
  return f.get_string("general.architecture").value_or("llama") + "." + suffix;
}

// The name of a layer tensor's kind ("blk.3.attn_v.weight" -> "attn_v.weight").
std::string kind_of(const std::string& name) {
  if (recipe_layer_of(name) < 0) return name;
  return name.substr(name.find('.', 4) + 1);
}

const ImatrixTensor* importance_of(const QuantizeParams& p, const std::string& name) {
  if (!p.imatrix) return nullptr;
  auto it = p.imatrix->tensors.find(name);
  return it == p.imatrix->tensors.end() ? nullptr : &it->second;
}

}  // namespace

Result<QuantizePlan> plan_quantize(const GgufFile& f, const QuantizeParams& p) {
  QuantizePlan plan;
  plan.ftype = find_file_type(p.ftype);
  if (!plan.ftype) return Status::error("unknown type '" + p.ftype + "' (known: " + file_type_names() + ")");
  std::vector<std::pair<std::regex, GgmlType>> overrides;
  for (const auto& o : p.overrides) {
    try {
      overrides.emplace_back(std::regex(o.pattern), o.type);
    } catch (const std::regex_error& e) {
      return Status::error("--tensor-type: bad regular expression '" + o.pattern + "': " + e.what());
    }
  }
  RecipeModel m;
  const int64_t n_head = f.get_int(arch_key(f, "attention.head_count")).value_or(0);
  const int64_t n_head_kv = f.get_int(arch_key(f, "attention.head_count_kv")).value_or(n_head);
  m.n_gqa = n_head > 0 && n_head_kv > 0 ? (int)(n_head / n_head_kv) : 1;
  m.n_expert = (int)f.get_int(arch_key(f, "expert_count")).value_or(0);
  m.n_layer = (int)f.get_int(arch_key(f, "block_count")).value_or(0);
  m.has_output = f.find_tensor("output.weight") != nullptr;
  m.has_imatrix = p.imatrix != nullptr;
  std::map<std::string, int> kind_count;
  for (const auto& t : f.tensors())
    if (recipe_layer_of(t.name) >= 0) ++kind_count[kind_of(t.name)];

  for (const auto& t : f.tensors()) {
    TensorPlan tp;
    tp.name = t.name;
    tp.ne.assign(t.ne, t.ne + t.n_dims);
    tp.from = t.type;
    tp.in_bytes = t.nbytes;
    GgmlType to = t.type;
    if (recipe_quantizable(t.name, t.n_dims)) {
      RecipeTensor rt{t.name, t.ne[0], recipe_layer_of(t.name), 0};
      if (rt.il >= 0) rt.n = kind_count[kind_of(t.name)];
      to = p.pure ? plan.ftype->base : recipe_type(*plan.ftype, m, rt);
      for (const auto& [re, ty] : overrides)
        if (std::regex_search(t.name, re)) {
          to = ty;
          break;
        }
      if (p.output_type && recipe_is_output(m, t.name)) to = *p.output_type;
      if (p.token_embd_type && t.name == "token_embd.weight") to = *p.token_embd_type;
      const GgmlType fb = recipe_fallback(to, t.ne[0]);
      if (fb != to) {
        tp.note = format("rows of %lld values cannot hold %s: using %s", (long long)t.ne[0], type_name(to),
                         type_name(fb));
        to = fb;
      }
    }
    tp.to = to;
    tp.convert = to != t.type;
    if (tp.convert) {
      if (!type_supported(t.type))
        return Status::error(format("tensor %s: slim cannot read its type %s", t.name.c_str(), type_name(t.type)));
      if (type_traits(t.type).is_quantized && !p.allow_requantize)
        return Status::error(format("tensor %s is already quantized (%s): requantizing compounds the error; "
                                    "quantize the F32/F16/BF16 original, or pass --allow-requantize",
                                    t.name.c_str(), type_name(t.type)));
      if (const ImatrixTensor* it = importance_of(p, t.name)) {
        const int64_t per_expert = t.ne[0];
        const int64_t n_mat = t.n_dims >= 3 ? t.ne[2] * t.ne[3] : 1;
        if ((int64_t)it->sums.size() != per_expert * it->n_expert || (it->n_expert > 1 && it->n_expert != n_mat))
          return Status::error(format("imatrix entry %s has %zu values for %d expert(s); the tensor has %lld "
                                      "columns x %lld matrices",
                                      t.name.c_str(), it->sums.size(), it->n_expert, (long long)t.ne[0],
                                      (long long)n_mat));
        tp.importance = type_traits(to).is_quantized;
      }
    }
    int64_t rows = 1;
    for (int d = 1; d < t.n_dims; ++d) rows *= t.ne[d];
    tp.out_bytes = tp.convert ? row_size(to, t.ne[0]) * (size_t)rows : t.nbytes;
    plan.in_bytes += tp.in_bytes;
    plan.out_bytes += tp.out_bytes;
    plan.n_elements += tp.n_elements();
    plan.tensors.push_back(std::move(tp));
  }
  return plan;
}

namespace {

// Converts and quantizes one tensor into buf (rows in parallel). Rows are
// converted to floats with the source type's reference to_float.
Status quantize_tensor(const TensorInfo& src, const TensorPlan& tp, const ImatrixTensor* imp, uint8_t* buf,
                       ThreadPool& pool, const std::function<void(size_t)>& on_bytes) {
  const int64_t ne0 = src.ne[0];
  const int64_t rows = src.n_elements() / ne0;
  const int64_t rows_per_matrix = src.ne[1];
  const size_t in_rs = row_size(src.type, ne0), out_rs = row_size(tp.to, ne0);
  const ToFloatFn to_float = type_traits(src.type).to_float;
  // per expert; an expert the calibration text never reached (no rows
  // counted) is quantized with magnitude weights alone, as without an imatrix
  std::vector<std::vector<float>> imp_by_expert;
  std::vector<bool> imp_used;
  if (imp)
    for (int e = 0; e < imp->n_expert; ++e) {
      std::vector<float> v = imp->importance(e);
      bool any = false;
      for (float& x : v) {
        if (!std::isfinite(x) || x < 0) x = 0;
        any = any || x > 0;
      }
      imp_by_expert.push_back(std::move(v));
      imp_used.push_back(any);
    }
  std::atomic<bool> bad{false};
  std::atomic<int64_t> bad_row{-1};
  const int64_t grain = std::max<int64_t>(1, 32768 / ne0);
  pool.parallel_for(rows, grain, [&](int64_t r0, int64_t r1) {
    thread_local std::vector<float> x, w;
    x.resize((size_t)ne0);
    w.resize((size_t)ne0);
    for (int64_t r = r0; r < r1 && !bad.load(std::memory_order_relaxed); ++r) {
      to_float(src.data + (size_t)r * in_rs, x.data(), ne0);
      for (int64_t j = 0; j < ne0; ++j)
        if (!std::isfinite(x[j])) {
          bad = true;
          bad_row = r;
          return;
        }
      const float* im = nullptr;
      if (!imp_by_expert.empty()) {
        const size_t e = std::min(imp_by_expert.size() > 1 ? (size_t)(r / rows_per_matrix) : 0,
                                  imp_by_expert.size() - 1);
        if (imp_used[e]) im = imp_by_expert[e].data();
      }
      row_weights(x.data(), ne0, im, w.data());
      quantize_row_search(tp.to, x.data(), w.data(), buf + (size_t)r * out_rs, ne0);
    }
    on_bytes((size_t)(r1 - r0) * out_rs);
  });
  if (bad) return Status::error(format("tensor %s: row %lld holds NaN or infinite values", tp.name.c_str(),
                                       (long long)bad_row.load()));
  return Status();
}

std::string human_mib(double b) { return format("%.1f MiB", b / 1048576.0); }

}  // namespace

Result<QuantizeResult> quantize_file(const std::string& in, const std::string& out, const QuantizeParams& p,
                                     const QuantizeProgressFn& progress) {
  namespace fs = std::filesystem;
  const auto t0 = std::chrono::steady_clock::now();
  std::error_code ec;
  if (out.empty()) return Status::error("no output file given");
  if (fs::exists(out, ec) && fs::equivalent(in, out, ec))
    return Status::error("the output file is the input file (" + out + "): give another name");
  if (fs::is_directory(out, ec)) return Status::error(out + " is a directory");
  auto fr = GgufFile::open(in);
  if (!fr) return fr.status();
  const GgufFile& f = **fr;
  auto plan = plan_quantize(f, p);
  if (!plan) return plan.status();

  GgufWriter w;
  w.copy_metadata_from(f);
  w.set("general.quantization_version", GgufValue::u32(2));
  w.set("general.file_type", GgufValue::u32(plan->ftype->llama_ftype));
  if (p.imatrix) {
    // the keys llama-quantize records, so tools can tell an imatrix quant
    if (!p.imatrix_path.empty()) w.set("quantize.imatrix.file", GgufValue::str(p.imatrix_path));
    if (!p.imatrix->datasets.empty()) w.set("quantize.imatrix.dataset", GgufValue::str(p.imatrix->datasets[0]));
    w.set("quantize.imatrix.entries_count", GgufValue::i32((int32_t)p.imatrix->tensors.size()));
    w.set("quantize.imatrix.chunks_count", GgufValue::i32((int32_t)p.imatrix->chunks));
  }
  for (const TensorPlan& t : plan->tensors) SLIM_RETURN_IF_ERROR(w.declare_tensor(t.name, t.to, t.ne));

  // Fail early, and with a clear reason, when the disk cannot hold the result.
  const fs::path parent = fs::absolute(fs::path(out), ec).parent_path();
  if (!fs::is_directory(parent, ec)) return Status::error("cannot write " + out + ": no directory " + parent.string());
  struct statvfs vfs;
  const size_t need = plan->out_bytes + (f.data_offset() + 4096) + 32 * plan->tensors.size();
  if (statvfs(parent.c_str(), &vfs) == 0 && (double)vfs.f_bavail * (double)vfs.f_frsize < (double)need)
    return Status::error(format("not enough free space for %s: it needs %s, %s free", out.c_str(),
                                human_mib((double)need).c_str(),
                                human_mib((double)vfs.f_bavail * (double)vfs.f_frsize).c_str()));

  ThreadPool pool(p.n_threads);
  std::atomic<size_t> done{0};
  std::mutex progress_mu;
  std::atomic<int> current{0};
  auto report = [&](size_t bytes) {
    const size_t d = done.fetch_add(bytes) + bytes;
    if (!progress || !progress_mu.try_lock()) return;
    const int c = current.load();
    progress({d, plan->out_bytes, c, (int)plan->tensors.size(), plan->tensors[c].name.c_str()});
    progress_mu.unlock();
  };
  bool fill_failed = false;
  Status st = w.write(out, [&](size_t i, uint8_t* buf, size_t nbytes) -> Status {
    const TensorPlan& tp = plan->tensors[i];
    const TensorInfo& src = f.tensors()[i];
    current = (int)i;
    Status s;
    if (!tp.convert) {
      std::memcpy(buf, src.data, nbytes);
      report(nbytes);
    } else {
      s = quantize_tensor(src, tp, tp.importance ? importance_of(p, tp.name) : nullptr, buf, pool, report);
    }
    fill_failed = !s.ok();
    return s;
  });
  if (!st.ok()) {
    if (fill_failed) return st;
    return Status::error("cannot write " + out + " (disk full, or not writable?): " + st.message());
  }
  QuantizeResult r;
  r.file_bytes = (size_t)fs::file_size(out, ec);
  r.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  r.plan = std::move(*plan);
  return r;
}

}  // namespace slim
