// Memory plan of a run: weights, KV cache, compute scratch, runtime overhead.
#include "store/planner.h"

#include <fstream>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <thread>

#include "gguf/gguf.h"
#include "kernels/dispatch.h"
#include "store/store.h"
#include "tensor/types.h"

namespace slim {

namespace {
// The runtime itself (binary, shared libraries, startup heap) is measured, not
// assumed: runtime_baseline_bytes() is this process's resident size when it
// was first asked (cli_main asks before loading anything), so the estimate
// follows the binary as it grows. kLateRuntimeBytes covers what the run
// touches later (forward-pass code, pool threads' stacks), calibrated on
// `slim run stories260K.gguf -c 256`; tests/store checks the whole estimate
// against measured peaks.
constexpr uint64_t kLateRuntimeBytes = 1792u << 10;
constexpr uint64_t kBytesPerThread = 32u << 10;

// The tokenizer's tables and the GGUF metadata arrays they are built from, per
// vocabulary entry and per merge: peak RSS of `slim tokenize` on the
// ../shared/tokenizer vocabularies (32k to 128k tokens, up to 280k merges)
// less the runtime and the mapped file, fitted within about 2 MiB.
constexpr uint64_t kBytesPerToken = 120;
constexpr uint64_t kBytesPerMerge = 100;

}  // namespace

uint64_t runtime_baseline_bytes() {
  static const uint64_t baseline = [] {
    // An override for exact planning (and for tests whose verdicts must not
    // move with the ±0.2 MiB the measured figure varies by between runs).
    if (const char* env = std::getenv("SLIM_RUNTIME_BYTES"); env && *env) return (uint64_t)std::strtoull(env, nullptr, 10);
    std::ifstream f("/proc/self/status");
    std::string line;
    while (std::getline(f, line))
      if (line.rfind("VmRSS:", 0) == 0) return (uint64_t)std::stoull(line.substr(6)) * 1024;
    return (uint64_t)11 << 20;  // no procfs: what the binary used to take
  }();
  return baseline;
}

MemoryPlan plan_memory(const Model& m, const PlanParams& p) {
  const HParams& hp = m.hp;
  const GgufFile& f = *m.file;
  MemoryPlan plan;

  // Weights: the header (parsed, so read) and every tensor the model uses;
  // vectors stored in another type are converted to F32 copies on the heap.
  plan.weights = f.data_offset() + m.weight_bytes;
  for (const auto& t : f.tensors())
    if (t.n_dims == 1 && t.type != GgmlType::F32) plan.weights += 4 * (uint64_t)t.n_elements();
  // Where this machine's kernels read repacked panels, those replace the
  // mapped rows, a little larger for some types (Q4_K: +2.8 %).
  plan.weights += (uint64_t)std::max<int64_t>(0, repack_growth(m, kernels()));

  // KV cache: every layer holds n_ctx cells per sequence.
  plan.kv_cache = kv_cache_bytes(hp, p.n_ctx, p.n_seq, p.cache_type);

  // Compute: the ForwardState rows for a full batch (see model/blocks.cpp).
  const uint64_t nt = (uint64_t)std::max(1, std::min(p.n_batch, p.n_ctx));
  const uint64_t n = hp.n_embd;
  uint64_t floats = nt * (3 * n + hp.n_embd_q() + hp.n_embd_k() + hp.n_embd_v() +
                          (uint64_t)hp.n_head * hp.head_dim_v + 2 * (uint64_t)hp.n_ff);
  // Activations converted for the widest matmul input (kernels/matmul.cpp).
  uint64_t act = 0;
  for (const auto& t : f.tensors()) {
    if (t.n_dims < 2) continue;
    const TypeTraits& tr = type_traits(t.type);
    if (tr.vec_dot_type == GgmlType::F32) continue;
    const TypeTraits& vt = type_traits(tr.vec_dot_type);
    if (vt.block_size <= 0) continue;
    const uint64_t row = (uint64_t)((t.ne[0] + vt.block_size - 1) / vt.block_size) * vt.type_size;
    act = std::max(act, row * nt);
  }
  // Logits of one row a slot, the normed rows behind them, and the sampler's
  // candidate list (id, logit, probability) of the whole vocabulary.
  const uint64_t out_rows = (uint64_t)p.n_seq;
  const uint64_t logits = out_rows * (4 * (uint64_t)hp.n_vocab + 4 * n) + 12 * (uint64_t)hp.n_vocab;
  // Per-thread attention scores over the context.
  const uint64_t threads = std::max(1u, std::thread::hardware_concurrency());
  const uint64_t scores = threads * 4 * (uint64_t)p.n_ctx;
  plan.compute = 4 * floats + act + logits + scores;

  // Overhead: the runtime, and the tokenizer built from the vocabulary.
  uint64_t merges = 0;
  if (const GgufArray* a = f.get_array("tokenizer.ggml.merges")) merges = a->size();
  plan.overhead = runtime_baseline_bytes() + kLateRuntimeBytes + kBytesPerThread * threads + kBytesPerToken * (uint64_t)hp.n_vocab + kBytesPerMerge * merges;
  return plan;
}

int largest_context(const Model& m, PlanParams p, uint64_t avail, int cap, int min_ctx) {
  auto fits = [&](int ctx) {
    p.n_ctx = ctx;
    return plan_memory(m, p).total() <= avail;
  };
  if (cap < 1 || !fits(std::max(1, std::min(min_ctx, cap)))) return 0;
  int lo = std::max(1, std::min(min_ctx, cap)), hi = cap;  // fits(lo) holds
  while (lo < hi) {
    int mid = lo + (hi - lo + 1) / 2;
    if (fits(mid)) lo = mid;
    else hi = mid - 1;
  }
  return lo >= 256 ? lo / 256 * 256 : lo;
}

Result<uint64_t> available_memory() {
  if (const char* r = std::getenv("SLIM_RAM"); r && *r) {
    auto v = parse_size(r);
    if (!v) return Status::error("SLIM_RAM: " + v.error());
    return *v;
  }
  FILE* f = std::fopen("/proc/meminfo", "r");
  if (!f) return Status::error("cannot read /proc/meminfo (give the memory with --ram SIZE)");
  char line[256];
  uint64_t kb = 0;
  bool found = false;
  while (std::fgets(line, sizeof line, f)) {
    unsigned long long v;
    if (std::sscanf(line, "MemAvailable: %llu kB", &v) == 1) { kb = v; found = true; break; }
  }
  std::fclose(f);
  if (!found) return Status::error("no MemAvailable in /proc/meminfo (give the memory with --ram SIZE)");
  return kb * 1024;
}

Result<uint64_t> parse_size(const std::string& s) {
  char* end = nullptr;
  double v = std::strtod(s.c_str(), &end);
  if (end == s.c_str() || !(v >= 0) || !std::isfinite(v)) return Status::error("bad size '" + s + "' (e.g. 8G, 512M)");
  std::string unit(end);
  for (char& c : unit) c = (char)std::toupper((unsigned char)c);
  if (unit.size() > 1 && unit.back() == 'B') unit.pop_back();
  if (unit.size() > 1 && unit.back() == 'I') unit.pop_back();
  double mul = 1;
  if (unit == "" ) mul = 1;
  else if (unit == "K") mul = 1024.0;
  else if (unit == "M") mul = 1024.0 * 1024;
  else if (unit == "G") mul = 1024.0 * 1024 * 1024;
  else if (unit == "T") mul = 1024.0 * 1024 * 1024 * 1024;
  else return Status::error("bad size '" + s + "' (e.g. 8G, 512M)");
  return (uint64_t)(v * mul);
}

const std::vector<QuantEstimate>& quant_estimates() {
  // Average bits per weight of llama.cpp's quant mixes on Llama-style models.
  static const std::vector<QuantEstimate> q = {
      {"Q8_0", 8.5}, {"Q6_K", 6.56}, {"Q5_K_M", 5.69}, {"Q4_K_M", 4.89}, {"Q4_K_S", 4.58},
      {"IQ4_XS", 4.25}, {"Q3_K_M", 3.91}, {"Q2_K", 3.35}};
  return q;
}

uint64_t weights_at(const Model& m, double bpw) {
  const GgufFile& f = *m.file;
  uint64_t b = f.data_offset();
  for (const auto& t : f.tensors()) {
    if (t.n_dims >= 2) b += (uint64_t)std::ceil(t.n_elements() * bpw / 8);
    else b += 4 * (uint64_t)t.n_elements();
  }
  return b;
}

FitReport check_fit(const Model& m, const PlanParams& p, uint64_t available) {
  FitReport r;
  r.plan = plan_memory(m, p);
  r.available = available;
  const int cap = m.hp.n_ctx_train > 0 ? m.hp.n_ctx_train : std::max(p.n_ctx, 4096);
  r.largest_ctx = largest_context(m, p, available, std::max(cap, 1), 1);
  if (r.plan.total() <= available) {
    r.verdict = Verdict::Fits;
  } else if (r.largest_ctx >= std::min(256, p.n_ctx)) {
    r.verdict = Verdict::FitsSmallerContext;
  } else {
    r.verdict = Verdict::DoesNotFit;
  }
  if (r.verdict != Verdict::Fits) {
    // A smaller quant of the same model at the asked context (or at 2048 tokens).
    const uint64_t rest = r.plan.total() - r.plan.weights;
    for (const auto& q : quant_estimates()) {
      uint64_t w = weights_at(m, q.bits_per_weight);
      if (w >= r.plan.weights) continue;  // not smaller than this file
      if (w + rest <= available) {
        r.quant_advice = format("%s of this model would fit at -c %d (about %s)", q.name, p.n_ctx,
                                human_size((double)(w + rest)).c_str());
        break;
      }
    }
    if (r.quant_advice.empty() && r.verdict == Verdict::DoesNotFit)
      r.quant_advice = "no quant of this model fits: it needs a smaller model or more memory";
  }
  return r;
}

std::string FitReport::summary() const {
  const std::string need = human_size((double)plan.total()), have = human_size((double)available);
  switch (verdict) {
    case Verdict::Fits:
      return format("fits: needs %s of %s available", need.c_str(), have.c_str());
    case Verdict::FitsSmallerContext:
      return format("does not fit at this context: needs %s of %s available; fits with a smaller context (-c %d)%s",
                    need.c_str(), have.c_str(), largest_ctx,
                    quant_advice.empty() ? "" : ("; or " + quant_advice).c_str());
    case Verdict::DoesNotFit:
      return format("does not fit: needs %s of %s available; %s", need.c_str(), have.c_str(), quant_advice.c_str());
  }
  return "";
}

Result<int> plan_run(const std::string& path, PlanParams p, bool auto_ctx) {
  auto m = load_model(path);
  if (!m) return Status::error(m.error());
  auto avail = available_memory();
  if (!avail) return Status::error(avail.error());
  const Model& model = **m;
  if (auto_ctx) {
    const int cap = model.hp.n_ctx_train > 0 ? model.hp.n_ctx_train : 4096;
    int ctx = largest_context(model, p, *avail, cap, std::min(256, cap));
    if (ctx <= 0) {
      p.n_ctx = std::min(256, cap);
      FitReport r = check_fit(model, p, *avail);
      return Status::error(format("%s does not fit in memory even with -c %d: %s", path.c_str(), p.n_ctx, r.summary().c_str()));
    }
    return ctx;
  }
  FitReport r = check_fit(model, p, *avail);
  if (r.verdict != Verdict::Fits)
    return Status::error(format("-c %d %s (slim fit shows the breakdown)", p.n_ctx, r.summary().c_str()));
  return p.n_ctx;
}

}  // namespace slim
