// matmul: activation conversion, row chunking over threads, token tiles.
#include "kernels/matmul.h"

#include <algorithm>
#include <cassert>
#include <vector>

#include "base/fp16.h"
#include "kernels/repack.h"
#include "tensor/quant_blocks.h"

namespace slim {
namespace {

// Rows per work item: small enough for 2+ threads to balance on a 256-row
// matrix, large enough that a chunk of weights (e.g. 16 rows x 4096 Q4_0 =
// 36 KiB) stays in L2 while the token tiles sweep over it.
int64_t rows_per_chunk(int64_t rows, int n_threads) {
  int64_t c = 16;
  while (c > 1 && rows / c < 4 * (int64_t)n_threads) c /= 2;
  return c;
}

// Batches this large take the panel GEMM when the ISA has one for the type:
// packing a panel costs about as much as one token's dot products.
constexpr int kGemmMinTokens = 16;

// Tokens [t0, t1) of Q8_0 activations (rows x_rs bytes apart), per 32-value
// block: the scale, and the sum of the quants the kernels fold the weights'
// offset in with.
void q8_0_info(const void* xq, size_t x_rs, int64_t t0, int64_t t1, int64_t nb, float* dy, int32_t* sy) {
  for (int64_t t = t0; t < t1; ++t) {
    const BlockQ8_0* b = (const BlockQ8_0*)((const char*)xq + t * x_rs);
    for (int64_t g = 0; g < nb; ++g) {
      int32_t s = 0;
      for (int j = 0; j < kQK; ++j) s += b[g].qs[j];
      dy[t * nb + g] = fp16_to_fp32(b[g].d);
      sy[t * nb + g] = s;
    }
  }
}

// Panel GEMM: activations already converted (xq, n_tokens rows of x_rs bytes
// of Q8_0 or Q8_K); rows [r0, r1) of w packed 16 at a time per work item, and
// every token tile of kGemmTokens runs over the packed panel while it sits in cache.
void gemm_panels(const Weight& w, int64_t r0, int64_t r1, const void* xq, size_t x_rs, int n_tokens, float* y,
                 int64_t ldy, ThreadPool& pool, const KernelRow& k) {
  const PanelFormat f = k.panel;
  const int64_t cols = w.ne0, nb = cols / kQK, ng = cols / f.group;  // 32-value blocks, scale groups
  // per token and group: the activation scale, and the sum of its quants
  // (as an int for offset types, times the scale for types with mins)
  thread_local std::vector<float> dy, my;
  thread_local std::vector<int32_t> sy;
  const size_t ni = (size_t)n_tokens * ng;
  if (dy.size() < ni) dy.resize(ni), sy.resize(ni), my.resize(ni);
  float* dyp = dy.data();
  float* myp = my.data();
  int32_t* syp = sy.data();
  const bool q8k = k.vec_dot_type == GgmlType::Q8_K;
  pool.parallel_for(n_tokens, 16, [&](int64_t t0, int64_t t1) {
    if (!q8k) {
      q8_0_info(xq, x_rs, t0, t1, ng, dyp, syp);
      return;
    }
    for (int64_t t = t0; t < t1; ++t) {
      const BlockQ8_K* row = (const BlockQ8_K*)((const char*)xq + t * x_rs);
      for (int64_t g = 0; g < ng; ++g) {  // bsums hold sums of 16
        const int64_t v = g * f.group;
        const BlockQ8_K& b = row[v / kQKK];
        int32_t s = 0;
        for (int i = 0; i < f.group / 16; ++i) s += b.bsums[(v % kQKK) / 16 + i];
        dyp[t * ng + g] = b.d;
        myp[t * ng + g] = b.d * (float)s;
      }
    }
  });
  const size_t w_rs = row_size(w.type, cols);
  const int64_t n_rows = r1 - r0, n_panels = (n_rows + kPanelRows - 1) / kPanelRows;
  const char* wd = (const char*)w.data + r0 * w_rs;
  pool.parallel_for(n_panels, 1, [&](int64_t p0, int64_t p1) {
    thread_local std::vector<uint8_t> panel;
    const size_t need = (size_t)nb * f.block_bytes();
    if (panel.size() < need) panel.resize(need);
    for (int64_t p = p0; p < p1; ++p) {
      const int rows = (int)std::min<int64_t>(kPanelRows, n_rows - p * kPanelRows);
      k.pack_panel(wd + p * kPanelRows * w_rs, w_rs, rows, cols, panel.data());
      for (int t0 = 0; t0 < n_tokens; t0 += kGemmTokens) {
        const int nc = std::min(kGemmTokens, n_tokens - t0);
        k.gemm_panel(cols, panel.data(), (const char*)xq + t0 * x_rs, x_rs, dyp + t0 * ng, syp + t0 * ng,
                     myp + t0 * ng, ng, nc, y + t0 * ldy + p * kPanelRows, ldy, rows);
      }
    }
  });
}

// Whether w's rows [r0, r1) can be read from its 16-row panels.
bool use_repacked(const Weight& w, int64_t r0, int64_t r1, const KernelRow& k) {
  return w.repacked && k.gemm_repacked && r0 % kRepackRows == 0 && (r1 % kRepackRows == 0 || r1 == w.ne1);
}

struct RepackedInfo {
  std::vector<float> dy;
  std::vector<int32_t> sy;
  // fills the activation info the type's kernel reads (none for Q8_K: its blocks carry it)
  void fill(const KernelRow& k, int64_t cols, const void* xq, size_t x_rs, int n_tokens) {
    if (k.vec_dot_type != GgmlType::Q8_0) return;
    const int64_t nb = cols / kQK;
    dy.resize((size_t)(n_tokens * nb));
    sy.resize((size_t)(n_tokens * nb));
    q8_0_info(xq, x_rs, 0, n_tokens, nb, dy.data(), sy.data());
  }
};

// Panels [p0, p1) of w (rows 16 p ..), y row 0 at panel `base`.
void gemm_repacked_panels(const Weight& w, int64_t p0, int64_t p1, int64_t r1, int64_t base, const void* xq,
                          size_t x_rs, int n_tokens, const RepackedInfo& info, float* y, int64_t ldy,
                          const KernelRow& k) {
  const int64_t cols = w.ne0;
  const size_t pb = repack_format(w.type).panel_bytes(cols);
  const int64_t nb = cols / kQK;
  for (int64_t p = p0; p < p1; ++p) {
    const int rows = (int)std::min<int64_t>(kRepackRows, r1 - p * kRepackRows);
    k.gemm_repacked(cols, w.repacked + p * pb, xq, x_rs, info.dy.empty() ? nullptr : info.dy.data(),
                    info.sy.empty() ? nullptr : info.sy.data(), nullptr, nb, n_tokens,
                    y + (p - base) * kRepackRows, ldy, rows);
  }
}

// Decode (one token): the rows of every part, 16 at a time (a panel), as one
// list of items split into one contiguous share a thread (parallel_for_shares),
// all parts in one dispatch. Long runs keep the prefetch streams going: on
// qwen2.5-0.5b Q4_0 one run a thread gave 207 tokens/s, two 200, four 189,
// eight 177; small scattered chunks once made 2 threads slower than 1. A
// thread that starts late leaves the end of its share to the other.
constexpr int kMaxDecodeParts = 4;
// Items a stolen chunk holds at least: about 16 KiB of weights, a microsecond
// of streaming, so the tail is balanced to within that.
constexpr size_t kStealBytes = 16384;

void decode_parts(const MatmulPart* parts, const void* const* xq, int n_parts, ThreadPool& pool,
                  const KernelTable& table) {
  thread_local RepackedInfo info_tls[kMaxDecodeParts];
  const RepackedInfo* info[kMaxDecodeParts] = {};
  bool repacked[kMaxDecodeParts];
  int64_t first[kMaxDecodeParts + 1];  // part i holds items [first[i], first[i + 1])
  first[0] = 0;
  size_t item_bytes = 0;
  for (int i = 0; i < n_parts; ++i) {
    const MatmulPart& p = parts[i];
    const KernelRow& k = table[p.w->type];
    repacked[i] = use_repacked(*p.w, p.r0, p.r1, k);
    // parts sharing converted activations (Q, K and V) share their info
    for (int j = 0; j < i && repacked[i] && !info[i]; ++j)
      if (info[j] && xq[j] == xq[i]) info[i] = info[j];
    if (repacked[i] && !info[i]) {
      info_tls[i].fill(k, p.w->ne0, xq[i], row_size(k.vec_dot_type, p.w->ne0), 1);
      info[i] = &info_tls[i];
    }
    first[i + 1] = first[i] + (p.r1 - p.r0 + kRepackRows - 1) / kRepackRows;
    item_bytes = std::max(item_bytes, kRepackRows * row_size(p.w->type, p.w->ne0));
  }
  const int64_t grain = std::max<int64_t>(1, (int64_t)(kStealBytes / item_bytes));
  pool.parallel_for_shares(first[n_parts], grain, [&](int64_t i0, int64_t i1) {
    for (int part = 0; i0 < i1; ++part) {
      if (i0 >= first[part + 1]) continue;
      const int64_t e = std::min(i1, first[part + 1]);
      const MatmulPart& p = parts[part];
      const KernelRow& k = table[p.w->type];
      const int64_t n_rows = p.r1 - p.r0;
      const int64_t a = (i0 - first[part]) * kRepackRows, b = std::min(n_rows, (e - first[part]) * kRepackRows);
      float* y = p.y + a;
      if (repacked[part]) {
        const int64_t q0 = (p.r0 + a) / kRepackRows, q1 = (p.r0 + b + kRepackRows - 1) / kRepackRows;
        gemm_repacked_panels(*p.w, q0, q1, p.r1, q0, xq[part], 0, 1, *info[part], y, 0, k);
      } else {
        const int64_t cols = p.w->ne0;
        const size_t w_rs = row_size(p.w->type, cols);
        const char* wd = (const char*)p.w->data + (p.r0 + a) * w_rs;
        for (int64_t r = 0; r < b - a; ++r) k.vec_dot(cols, y + r, wd + r * w_rs, xq[part]);
      }
      i0 = e;
    }
  });
}

}  // namespace

Status matmul_check(const Weight& w) {
  if (!type_supported(w.type))
    return Status::error(format("matmul: weight type %s is not supported", type_name(w.type)));
  const TypeTraits& tr = type_traits(w.type);
  if (w.ne0 <= 0 || w.ne1 <= 0 || w.ne0 % tr.block_size != 0)
    return Status::error(format("matmul: %s weight with %lld columns (block size %lld)",
                                type_name(w.type), (long long)w.ne0, (long long)tr.block_size));
  if (!w.data) return Status::error("matmul: weight without data");
  return Status();
}

void quantize_activations(GgmlType type, const float* x, int64_t cols, int n_tokens, void* out,
                          ThreadPool& pool, const KernelTable& table) {
  const FromFloatFn from = table[type].from_float;
  const size_t rs = row_size(type, cols);
  auto body = [&](int64_t t0, int64_t t1) {
    for (int64_t t = t0; t < t1; ++t) from(x + t * cols, (char*)out + t * rs, cols);
  };
  // one token is not worth a wake-up of the pool
  if (n_tokens < 4) body(0, n_tokens);
  else pool.parallel_for(n_tokens, 1, body);
}

void matmul_quantized(const Weight& w, int64_t r0, int64_t r1, const void* xq, int n_tokens,
                      float* y, int64_t ldy, ThreadPool& pool, const KernelTable& table) {
  const KernelRow& k = table[w.type];
  const int64_t cols = w.ne0;
  assert(k.vec_dot && cols % k.block_size == 0 && 0 <= r0 && r0 <= r1 && r1 <= w.ne1);
  const size_t w_rs = row_size(w.type, cols);
  const size_t x_rs = row_size(k.vec_dot_type, cols);
  if (use_repacked(w, r0, r1, k) && n_tokens > 1) {
    thread_local RepackedInfo info_tls;
    RepackedInfo& info = info_tls;
    info.fill(k, cols, xq, x_rs, n_tokens);
    const int64_t p0 = r0 / kRepackRows, p1 = (r1 + kRepackRows - 1) / kRepackRows;
    pool.parallel_for(p1 - p0, 1, [&](int64_t a, int64_t b) {
      gemm_repacked_panels(w, p0 + a, p0 + b, r1, p0, xq, x_rs, n_tokens, info, y, ldy, k);
    });
    return;
  }
  if (n_tokens >= kGemmMinTokens && k.gemm_panel &&
      (k.vec_dot_type == GgmlType::Q8_0 || k.vec_dot_type == GgmlType::Q8_K)) {
    gemm_panels(w, r0, r1, xq, x_rs, n_tokens, y, ldy, pool, k);
    return;
  }
  if (n_tokens == 1) {
    const MatmulPart part{&w, r0, r1, y, ldy};
    decode_parts(&part, &xq, 1, pool, table);
    return;
  }
  const int64_t n_rows = r1 - r0, chunk = rows_per_chunk(n_rows, pool.size());
  const int64_t n_chunks = (n_rows + chunk - 1) / chunk;
  const char* wd = (const char*)w.data + r0 * w_rs;  // row 0 of the slice
  const char* xd = (const char*)xq;
  pool.parallel_for(n_chunks, 1, [&](int64_t c0, int64_t c1) {
    const int64_t a = c0 * chunk, b = std::min(n_rows, c1 * chunk);
    float tmp[kMaxTileTokens];
    for (int t0 = 0; t0 < n_tokens; t0 += kMaxTileTokens) {
      const int nc = std::min(kMaxTileTokens, n_tokens - t0);
      for (int64_t r = a; r < b; ++r) {
        k.vec_dot_multi(cols, tmp, wd + r * w_rs, xd + t0 * x_rs, x_rs, nc);
        for (int c = 0; c < nc; ++c) y[(int64_t)(t0 + c) * ldy + r] = tmp[c];
      }
    }
  });
}

void matmul_rows(const Weight& w, int64_t r0, int64_t r1, const float* x, int n_tokens, float* y,
                 int64_t ldy, ThreadPool& pool, const KernelTable& table) {
  if (n_tokens <= 0 || r1 <= r0) return;
  const GgmlType vt = table[w.type].vec_dot_type;
  if (vt == GgmlType::F32) {  // F32 weights take the activations as they are
    matmul_quantized(w, r0, r1, x, n_tokens, y, ldy, pool, table);
    return;
  }
  // per-thread scratch reused across calls: no allocation per token
  thread_local std::vector<uint8_t> scratch;
  const size_t need = row_size(vt, w.ne0) * (size_t)n_tokens;
  if (scratch.size() < need) scratch.resize(need);
  quantize_activations(vt, x, w.ne0, n_tokens, scratch.data(), pool, table);
  matmul_quantized(w, r0, r1, scratch.data(), n_tokens, y, ldy, pool, table);
}

void matmul_many(const MatmulPart* parts, int n_parts, const float* x, int n_tokens, ThreadPool& pool,
                 const KernelTable& table) {
  // Prefill is compute-bound and its products are long: a barrier each costs
  // nothing there, and the panel GEMM splits its own work.
  constexpr int kMaxParts = kMaxDecodeParts;
  if (n_tokens != 1 || n_parts > kMaxParts) {
    for (int i = 0; i < n_parts; ++i)
      matmul_rows(*parts[i].w, parts[i].r0, parts[i].r1, x, n_tokens, parts[i].y, parts[i].ldy, pool, table);
    return;
  }
  // one converted copy of x per distinct activation type (F32 weights take x itself)
  thread_local std::vector<uint8_t> scratch[kMaxParts];
  const void* xq[kMaxParts];
  for (int i = 0; i < n_parts; ++i) {
    const GgmlType vt = table[parts[i].w->type].vec_dot_type;
    const int64_t cols = parts[i].w->ne0;
    xq[i] = nullptr;
    if (vt == GgmlType::F32) xq[i] = x;
    for (int j = 0; j < i && !xq[i]; ++j)
      if (table[parts[j].w->type].vec_dot_type == vt && parts[j].w->ne0 == cols) xq[i] = xq[j];
    if (!xq[i]) {
      scratch[i].resize(row_size(vt, cols));
      table[vt].from_float(x, scratch[i].data(), cols);
      xq[i] = scratch[i].data();
    }
  }
  decode_parts(parts, xq, n_parts, pool, table);
}

void matmul(const Weight& w, const float* x, int n_tokens, float* y, ThreadPool& pool,
            const KernelTable& table) {
  matmul_rows(w, 0, w.ne1, x, n_tokens, y, w.ne1, pool, table);
}

void matmul(const Weight& w, const float* x, int n_tokens, float* y, ThreadPool& pool) {
  matmul(w, x, n_tokens, y, pool, kernels());
}

}  // namespace slim
