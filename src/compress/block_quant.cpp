// Error-minimising block quantizers (see block_quant.h for the method).
// Every routine here writes exactly the bytes the format's decoder expects
// (quant_blocks.h); only the choice of scales and indices differs from the
// tensor/ references.
#include "compress/block_quant.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>
#include <vector>

#include "base/fp16.h"
#include "tensor/quant_blocks.h"

namespace slim {
namespace {

// Round to nearest (ties to even) for |t| < 2^22, without a libm call: adding
// 1.5 * 2^23 leaves the integer in the low mantissa bits. Callers clamp t.
inline int round_int(float t) {
  float f = t + 12582912.f;
  int32_t i;
  std::memcpy(&i, &f, 4);
  return (i & 0x007fffff) - 0x00400000;
}

inline float clamp_arg(float t) { return t > 4e6f ? 4e6f : t < -4e6f ? -4e6f : t; }

// A sorted set of reconstruction levels (in units of the scale): the integers
// lo..lo+K-1, or a code book. mid[k] is the boundary between levels k and k+1.
struct Grid {
  int K = 0;
  bool uniform = false;
  int lo = 0;
  float v[256] = {};
  float mid[256] = {};
  // integer code books: every boundary is a multiple of 1/2, so the index is
  // a table lookup on floor(2 t)
  std::vector<uint8_t> lut;
  int lut_base = 0;
  int nearest(float t) const {
    if (uniform) {
      const int k = round_int(clamp_arg(t)) - lo;
      return k < 0 ? 0 : k >= K ? K - 1 : k;
    }
    if (!lut.empty()) {
      const float u = 2 * t;
      if (!(u >= (float)lut_base)) return 0;
      const int64_t i = (int64_t)(u - (float)lut_base);  // >= 0: truncation is floor
      return i >= (int64_t)lut.size() ? K - 1 : lut[(size_t)i];
    }
    int a = 0, b = K - 1;
    while (a < b) {
      const int c = (a + b) / 2;
      if (t < mid[c]) b = c; else a = c + 1;
    }
    return a;
  }
};

Grid make_uniform(int lo, int hi) {
  Grid g;
  g.uniform = true;
  g.lo = lo;
  g.K = hi - lo + 1;
  for (int k = 0; k < g.K; ++k) g.v[k] = (float)(lo + k);
  for (int k = 0; k + 1 < g.K; ++k) g.mid[k] = g.v[k] + 0.5f;
  return g;
}

Grid make_codebook(const int8_t* values, int K) {
  Grid g;
  g.K = K;
  for (int k = 0; k < K; ++k) g.v[k] = values[k];
  for (int k = 0; k + 1 < K; ++k) g.mid[k] = 0.5f * (g.v[k] + g.v[k + 1]);
  g.lut_base = 2 * values[0] - 2;
  for (int u = g.lut_base; u <= 2 * values[K - 1] + 2; ++u) {
    int k = 0;
    while (k + 1 < K && 0.5f * u >= g.mid[k]) ++k;
    g.lut.push_back((uint8_t)k);
  }
  return g;
}

// The grids of every format, built once.
struct Grids {
  Grid q4_0 = make_uniform(-8, 7), q5_0 = make_uniform(-16, 15);
  Grid q3 = make_uniform(-4, 3), q6 = make_uniform(-32, 31);
  Grid iq4 = make_codebook(kIq4nlValues, 16);
  Grid u15 = make_uniform(0, 15), u63 = make_uniform(0, 63);  // unsigned sub-block scales
  Grid s6 = make_uniform(-32, 31), s8 = make_uniform(-128, 127);
};
const Grids& grids() {
  static const Grids g;
  return g;
}

// The search window: inverse scales from lo to hi times the largest one that
// clips nothing. Below it a block spends fewer levels on its range; above it
// the extreme values clip. Both can pay (few levels, uneven values), far
// outside never does.
struct Window { float lo, hi; };

// A value changing level during a sweep, packed so that sorting the integers
// sorts by s: the bits of the (positive) inverse scale s at which value j
// moves, then j, then its new level index.
using Event = uint64_t;
inline Event make_event(float s, int j, int to) {
  uint32_t b;
  std::memcpy(&b, &s, 4);
  return (uint64_t)b << 32 | (uint32_t)j << 8 | (uint32_t)to;
}
inline int event_j(Event e) { return (int)((e >> 8) & 0xffffff); }
inline int event_to(Event e) { return (int)(e & 0xff); }

std::vector<Event>& event_buffer() {
  thread_local std::vector<Event> ev;
  return ev;
}

inline float event_s(Event e) {
  const uint32_t b = (uint32_t)(e >> 32);
  float s;
  std::memcpy(&s, &b, 4);
  return s;
}

// Sorts the events of a sweep over (s_lo, s_hi]: a bucket pass puts them
// nearly in order (the inverse scales spread evenly), an insertion pass
// finishes; much cheaper than a comparison sort for the few hundred here.
void sort_events(std::vector<Event>& ev, float s_lo, float s_hi) {
  const size_t n = ev.size();
  if (n < 24) {
    std::sort(ev.begin(), ev.end());
    return;
  }
  thread_local std::vector<Event> tmp;
  thread_local std::vector<uint32_t> count;
  const size_t nb = n;
  count.assign(nb + 1, 0);
  tmp.resize(n);
  const float scale = (float)nb / (s_hi - s_lo);
  auto bin = [&](Event e) {
    const float f = (event_s(e) - s_lo) * scale;
    return f <= 0 ? (size_t)0 : f >= (float)nb ? nb - 1 : (size_t)f;
  };
  for (Event e : ev) ++count[bin(e) + 1];
  for (size_t b = 0; b < nb; ++b) count[b + 1] += count[b];
  for (Event e : ev) tmp[count[bin(e)]++] = e;
  for (size_t i = 1; i < n; ++i) {
    const Event e = tmp[i];
    size_t j = i;
    for (; j > 0 && tmp[j - 1] > e; --j) tmp[j] = tmp[j - 1];
    tmp[j] = e;
  }
  ev.swap(tmp);
}

struct ScaleFit {
  float d = 0;
  double err = 0;
};

// Best d for x ~ d * g.v[L_j] under weights w. For each sign of d (both_signs),
// sweeps the inverse scale s through the window, keeping the running sums
// A = sum w y v, B = sum w v^2 (y = sign * x) as values cross level
// boundaries; an assignment's least-squares error is sum w y^2 - A^2 / B.
// The best assignment is then refined by re-rounding against its own scale.
ScaleFit fit_scale(const float* x, const float* w, int n, const Grid& g, Window win, bool both_signs, uint8_t* L) {
  double sxx = 0;
  float amax = 0;
  for (int j = 0; j < n; ++j) {
    sxx += (double)w[j] * x[j] * x[j];
    amax = std::max(amax, std::fabs(x[j]));
  }
  ScaleFit best{0, sxx};
  const uint8_t zero = (uint8_t)g.nearest(0);
  std::fill(L, L + n, zero);
  if (amax < 1e-30f || sxx <= 0) return best;
  std::vector<Event>& ev = event_buffer();
  float y[256];
  uint8_t cur[256];
  // On an evenly spaced grid the two signs differ only in which end holds the
  // extra level, and the extreme value belongs on the longer end: trying the
  // other sign too was measured to buy 0.0-0.6 % of error for twice the time.
  // On a code book (IQ4) the ends are shaped differently: try both.
  int only_sign = 0;
  if (both_signs && g.uniform) {
    float xmax = 0;
    for (int j = 0; j < n; ++j)
      if (std::fabs(x[j]) == amax) {
        xmax = x[j];
        break;
      }
    const bool longer_negative = -g.v[0] > g.v[g.K - 1];
    only_sign = (xmax < 0) == longer_negative ? 1 : -1;
  }
  for (int sign = 1; sign >= (both_signs ? -1 : 1); sign -= 2) {
    if (only_sign != 0 && sign != only_sign) continue;
    float pmax = 0, nmin = 0;
    for (int j = 0; j < n; ++j) {
      y[j] = sign * x[j];
      pmax = std::max(pmax, y[j]);
      nmin = std::min(nmin, y[j]);
    }
    float s0 = std::numeric_limits<float>::infinity();
    if (pmax > 0 && g.v[g.K - 1] > 0) s0 = std::min(s0, g.v[g.K - 1] / pmax);
    if (nmin < 0 && g.v[0] < 0) s0 = std::min(s0, g.v[0] / nmin);
    if (!std::isfinite(s0)) continue;
    const float s_lo = win.lo * s0, s_hi = win.hi * s0;
    double A = 0, B = 0;
    ev.clear();
    for (int j = 0; j < n; ++j) {
      int k = g.nearest(s_lo * y[j]);
      cur[j] = (uint8_t)k;
      A += (double)w[j] * y[j] * g.v[k];
      B += (double)w[j] * g.v[k] * g.v[k];
      if (y[j] > 0) {
        const float iy = 1.0f / y[j];
        for (; k + 1 < g.K; ++k) {
          const float s = g.mid[k] * iy;
          if (s > s_hi) break;
          if (s > s_lo) ev.push_back(make_event(s, j, k + 1));
        }
      } else if (y[j] < 0) {
        const float iy = 1.0f / y[j];
        for (; k > 0; --k) {
          const float s = g.mid[k - 1] * iy;
          if (s > s_hi) break;
          if (s > s_lo) ev.push_back(make_event(s, j, k - 1));
        }
      }
    }
    sort_events(ev, s_lo, s_hi);
    uint8_t lv[256];
    std::memcpy(lv, cur, (size_t)n);
    auto score = [](double a, double b) { return a > 0 && b > 0 ? a * a / b : 0.0; };
    // the best A^2 / B so far as the pair (bA2, bB), compared by cross
    // multiplication: no division an event
    double bA2 = A > 0 && B > 0 ? A * A : 0, bB = B > 0 ? B : 1;
    int best_i = -1;
    for (int i = 0; i < (int)ev.size(); ++i) {
      const int j = event_j(ev[i]), to = event_to(ev[i]);
      const float v0 = g.v[lv[j]], v1 = g.v[to];
      A += (double)w[j] * y[j] * (v1 - v0);
      B += (double)w[j] * ((double)v1 * v1 - (double)v0 * v0);
      lv[j] = (uint8_t)to;
      if (A > 0 && B > 0 && A * A * bB > bA2 * B) {
        bA2 = A * A;
        bB = B;
        best_i = i;
      }
    }
    for (int i = 0; i <= best_i; ++i) cur[event_j(ev[i])] = (uint8_t)event_to(ev[i]);
    A = B = 0;
    for (int j = 0; j < n; ++j) {
      A += (double)w[j] * y[j] * g.v[cur[j]];
      B += (double)w[j] * g.v[cur[j]] * g.v[cur[j]];
    }
    if (!(A > 0 && B > 0)) continue;
    // alternate: nearest levels for the fitted scale, then refit; never worse
    for (int it = 0; it < 3; ++it) {
      const float inv = (float)(B / A);
      double A2 = 0, B2 = 0;
      for (int j = 0; j < n; ++j) {
        const int k = g.nearest(y[j] * inv);
        lv[j] = (uint8_t)k;
        A2 += (double)w[j] * y[j] * g.v[k];
        B2 += (double)w[j] * g.v[k] * g.v[k];
      }
      if (!(score(A2, B2) > score(A, B) * (1 + 1e-9))) break;
      A = A2, B = B2;
      std::memcpy(cur, lv, (size_t)n);
    }
    const double err = sxx - A * A / B;
    if (err < best.err) {
      best.err = err;
      best.d = (float)(sign * (A / B));
      std::memcpy(L, cur, (size_t)n);
    }
  }
  return best;
}

// Weighted squared error of x against d * g.v[nearest(x / d)], writing the indices.
double round_to_scale(const float* x, const float* w, int n, const Grid& g, float d, uint8_t* L) {
  float e = 0;  // 32 terms at most a call: float is exact enough to rank candidates
  if (d == 0) {
    const uint8_t z = (uint8_t)g.nearest(0);
    for (int j = 0; j < n; ++j) {
      L[j] = z;
      e += w[j] * x[j] * x[j];
    }
    return e;
  }
  const float id = 1.0f / d;
  for (int j = 0; j < n; ++j) {
    const int k = g.nearest(x[j] * id);
    L[j] = (uint8_t)k;
    const float r = x[j] - d * g.v[k];
    e += w[j] * r * r;
  }
  return e;
}

// The fp16 scale near d (a few codes either side) with the least error as
// stored; the indices are re-picked for each candidate.
uint16_t best_fp16_scale(const float* x, const float* w, int n, const Grid& g, float d, int reach, uint8_t* L) {
  const uint16_t h0 = fp32_to_fp16(d);
  uint16_t best_h = h0;
  double best_e = std::numeric_limits<double>::infinity();
  uint8_t tmp[256];
  for (int k = -reach; k <= reach; ++k) {
    const int h = (int)(h0 & 0x7fff) + k;
    if (h < 0 || h >= 0x7c00) continue;
    const uint16_t hh = (uint16_t)((h0 & 0x8000) | h);
    const double e = round_to_scale(x, w, n, g, fp16_to_fp32(hh), tmp);
    if (e < best_e) {
      best_e = e;
      best_h = hh;
      std::memcpy(L, tmp, (size_t)n);
    }
  }
  return best_h;
}

// ---- scale + offset: x ~ d * l + m, l in 0..lmax ----

struct AffineSums {
  double sw = 0, sx = 0, sxx = 0, sl = 0, sll = 0, sxl = 0;
};

struct AffineFit {
  float d = 0, m = 0;
  double err = 0;
};

// Least-squares d >= 0 and m (m <= 0 when m_nonpos: the K-quants subtract an
// unsigned min) for fixed levels; false when no valid fit exists.
bool solve_affine(const AffineSums& s, bool m_nonpos, AffineFit* f) {
  double d = 0, m = 0;
  const double det = s.sw * s.sll - s.sl * s.sl;
  if (det > 1e-12 * s.sw * s.sll && s.sll > 0) {
    d = (s.sw * s.sxl - s.sx * s.sl) / det;
    m = (s.sll * s.sx - s.sl * s.sxl) / det;
  } else {
    m = s.sw > 0 ? s.sx / s.sw : 0;  // all levels equal: a constant
  }
  if (m_nonpos && m > 0) {
    m = 0;
    d = s.sll > 0 ? s.sxl / s.sll : 0;
  }
  if (d < 0) return false;
  f->d = (float)d;
  f->m = (float)m;
  f->err = s.sxx + d * d * s.sll + m * m * s.sw - 2 * d * s.sxl - 2 * m * s.sx + 2 * d * m * s.sl;
  return true;
}

// sum w x^2 minus the error of solve_affine's fit, as a fraction num / den
// (den > 0) so the sweep compares candidates without dividing; false when the
// fit is invalid (d < 0).
bool affine_explained(const AffineSums& s, bool m_nonpos, double* num, double* den) {
  const double det = s.sw * s.sll - s.sl * s.sl;
  if (det > 1e-12 * s.sw * s.sll && s.sll > 0) {
    const double dnum = s.sw * s.sxl - s.sx * s.sl, mnum = s.sll * s.sx - s.sl * s.sxl;
    if (!(m_nonpos && mnum > 0)) {
      if (dnum < 0) return false;
      *num = s.sll * s.sx * s.sx - 2 * s.sl * s.sx * s.sxl + s.sw * s.sxl * s.sxl;
      *den = det;
      return true;
    }
  }
  if (s.sll > 0 && (m_nonpos || det <= 1e-12 * s.sw * s.sll)) {  // m = 0: x ~ d l
    if (s.sxl < 0) return false;
    *num = s.sxl * s.sxl;
    *den = s.sll;
    return true;
  }
  if (m_nonpos || s.sw <= 0) return false;
  *num = s.sx * s.sx;  // all levels equal: the best constant
  *den = s.sw;
  return true;
}

// The affine analogue of fit_scale: sweep s with l = round(s (x - o)), o the
// minimum (capped at 0 when m_nonpos), scoring each assignment with its joint
// least-squares (d, m); then alternate re-rounding and refitting.
AffineFit fit_affine(const float* x, const float* w, int n, int lmax, bool m_nonpos, Window win, uint8_t* L) {
  AffineSums base;
  float lo = x[0], hi = x[0];
  for (int j = 0; j < n; ++j) {
    base.sw += w[j];
    base.sx += (double)w[j] * x[j];
    base.sxx += (double)w[j] * x[j] * x[j];
    lo = std::min(lo, x[j]);
    hi = std::max(hi, x[j]);
  }
  if (m_nonpos) lo = std::min(lo, 0.0f);
  AffineFit best;
  std::fill(L, L + n, 0);
  {
    AffineFit c;  // the all-zero-levels fit: a constant
    solve_affine(base, m_nonpos, &c);
    best = c;
    best.d = 0;
  }
  if (!(hi - lo > 1e-30f)) return best;
  const float s0 = lmax / (hi - lo);
  const float s_lo = win.lo * s0, s_hi = win.hi * s0;
  std::vector<Event>& ev = event_buffer();
  ev.clear();
  uint8_t cur[256], lv[256];
  float u[256];
  AffineSums s = base;
  for (int j = 0; j < n; ++j) {
    u[j] = x[j] - lo;
    int k = std::clamp(round_int(clamp_arg(s_lo * u[j])), 0, lmax);
    cur[j] = (uint8_t)k;
    s.sl += (double)w[j] * k;
    s.sll += (double)w[j] * k * k;
    s.sxl += (double)w[j] * x[j] * k;
    if (u[j] > 0)
      for (; k < lmax; ++k) {
        const float sv = (k + 0.5f) / u[j];
        if (sv > s_hi) break;
        if (sv > s_lo) ev.push_back(make_event(sv, j, k + 1));
      }
  }
  sort_events(ev, s_lo, s_hi);
  std::memcpy(lv, cur, (size_t)n);
  double bnum = 0, bden = 1;
  int best_i = affine_explained(s, m_nonpos, &bnum, &bden) ? -1 : -2;
  for (int i = 0; i < (int)ev.size(); ++i) {
    const int j = event_j(ev[i]), to = event_to(ev[i]);
    const double dl = (double)to - lv[j];
    const double l2 = (double)to * to - (double)lv[j] * lv[j];
    s.sl += w[j] * dl;
    s.sll += w[j] * l2;
    s.sxl += (double)w[j] * x[j] * dl;
    lv[j] = (uint8_t)to;
    double num, den;
    if (affine_explained(s, m_nonpos, &num, &den) && (best_i == -2 || num * bden > bnum * den))
      bnum = num, bden = den, best_i = i;
  }
  if (best_i == -2) return best;
  for (int i = 0; i <= best_i; ++i) cur[event_j(ev[i])] = (uint8_t)event_to(ev[i]);
  auto sums_of = [&](const uint8_t* l) {
    AffineSums r = base;
    for (int j = 0; j < n; ++j) {
      r.sl += (double)w[j] * l[j];
      r.sll += (double)w[j] * l[j] * l[j];
      r.sxl += (double)w[j] * x[j] * l[j];
    }
    return r;
  };
  AffineFit fc;
  if (!solve_affine(sums_of(cur), m_nonpos, &fc)) return best;
  for (int it = 0; it < 3 && fc.d > 0; ++it) {
    const float id = 1.0f / fc.d;
    for (int j = 0; j < n; ++j) lv[j] = (uint8_t)std::clamp(round_int(clamp_arg((x[j] - fc.m) * id)), 0, lmax);
    AffineFit f2;
    if (!solve_affine(sums_of(lv), m_nonpos, &f2) || !(f2.err < fc.err * (1 - 1e-9))) break;
    fc = f2;
    std::memcpy(cur, lv, (size_t)n);
  }
  if (fc.err < best.err) {
    best = fc;
    std::memcpy(L, cur, (size_t)n);
  }
  return best;
}

// Weighted error of x against D * l - M with l = nearest in 0..lmax.
double round_affine(const float* x, const float* w, int n, int lmax, float D, float M, uint8_t* L) {
  float e = 0;
  if (D == 0) {
    for (int j = 0; j < n; ++j) {
      L[j] = 0;
      const float r = x[j] + M;
      e += w[j] * r * r;
    }
    return e;
  }
  const float id = 1.0f / D;
  for (int j = 0; j < n; ++j) {
    const int k = std::clamp(round_int(clamp_arg((x[j] + M) * id)), 0, lmax);
    L[j] = (uint8_t)k;
    const float r = x[j] - (D * k - M);
    e += w[j] * r * r;
  }
  return e;
}

// ---- super-blocks of 256: sub-block scales on an integer grid times d ----

// Symmetric sub-blocks (Q3_K, Q6_K, IQ4_XS): x = d * sc_j * v[l].
struct SymSuper {
  int nsub, sublen;
  const Grid* elem;
  const Grid* scale;
  Window elem_win;
};

// Returns the error; d as fp16 bits, sc[j] the signed integer scales, L the
// element level indices.
double quantize_sym_super(const float* x, const float* w, const SymSuper& p, uint16_t* d_out, int* sc, uint8_t* L) {
  const Grid& g = *p.elem;
  const Grid& gs = *p.scale;
  float s[16], ws[16];
  for (int j = 0; j < p.nsub; ++j) {
    const int o = j * p.sublen;
    s[j] = fit_scale(x + o, w + o, p.sublen, g, p.elem_win, true, L + o).d;
    // a scale's error costs sum w v^2 per unit squared
    double q = 0;
    for (int i = 0; i < p.sublen; ++i) q += (double)w[o + i] * g.v[L[o + i]] * g.v[L[o + i]];
    ws[j] = (float)q;
  }
  uint8_t ls[16];
  float d = fit_scale(s, ws, p.nsub, gs, {0.75f, 1.05f}, true, ls).d;
  const int zero_sc = gs.lo + gs.nearest(0);
  double best_err = std::numeric_limits<double>::infinity();
  uint8_t Lt[256];
  int sct[16];
  for (int it = 0; it < 3; ++it) {
    const uint16_t dh = fp32_to_fp16(d);
    const float df = fp16_to_fp32(dh);
    double total = 0;
    for (int j = 0; j < p.nsub; ++j) {
      const int o = j * p.sublen;
      if (df == 0) {
        sct[j] = zero_sc;
        total += round_to_scale(x + o, w + o, p.sublen, g, 0, Lt + o);
        continue;
      }
      const int r = round_int(clamp_arg(s[j] / df));
      double be = std::numeric_limits<double>::infinity();
      int bc = zero_sc;
      uint8_t tmp[32];
      for (int c = r - 1; c <= r + 1; ++c) {
        const int cc = std::clamp(c, gs.lo, gs.lo + gs.K - 1);
        if (c != cc && c != r) continue;  // the clamp of r itself is tried once
        const double e = round_to_scale(x + o, w + o, p.sublen, g, df * cc, tmp);
        if (e < be) {
          be = e, bc = cc;
          std::memcpy(Lt + o, tmp, (size_t)p.sublen);
        }
      }
      sct[j] = bc;
      total += be;
    }
    if (total < best_err) {
      best_err = total;
      *d_out = dh;
      std::memcpy(sc, sct, sizeof(int) * p.nsub);
      std::memcpy(L, Lt, (size_t)(p.nsub * p.sublen));
    } else {
      break;
    }
    // least-squares d for these integers over the whole super-block
    double num = 0, den = 0;
    for (int j = 0; j < p.nsub; ++j)
      for (int i = 0; i < p.sublen; ++i) {
        const int e = j * p.sublen + i;
        const double a = (double)sct[j] * g.v[Lt[e]];
        num += w[e] * x[e] * a;
        den += w[e] * a * a;
      }
    if (!(den > 0)) break;
    const float nd = (float)(num / den);
    if (fp32_to_fp16(nd) == dh) break;
    d = nd;
  }
  return best_err;
}

// Affine sub-blocks (Q2_K, Q4_K, Q5_K): x = d * sc_j * l - dmin * m_j, l in 0..lmax.
struct AffSuper {
  int nsub, sublen, lmax;
  const Grid* scale;  // unsigned sub-scale grid (0..63 or 0..15); mins use the same
  Window elem_win;
};

double quantize_aff_super(const float* x, const float* w, const AffSuper& p, uint16_t* d_out, uint16_t* dmin_out,
                          int* sc, int* mq, uint8_t* L) {
  const Grid& gs = *p.scale;
  const int smax = gs.K - 1;
  float s[16], mn[16], ws[16], wm[16];
  for (int j = 0; j < p.nsub; ++j) {
    const int o = j * p.sublen;
    AffineFit f = fit_affine(x + o, w + o, p.sublen, p.lmax, true, p.elem_win, L + o);
    s[j] = f.d;
    mn[j] = -f.m;
    double q = 0, qw = 0;
    for (int i = 0; i < p.sublen; ++i) {
      q += (double)w[o + i] * L[o + i] * L[o + i];
      qw += w[o + i];
    }
    ws[j] = (float)q;
    wm[j] = (float)qw;
  }
  uint8_t tmpl[16];
  float d = fit_scale(s, ws, p.nsub, gs, {0.75f, 1.05f}, false, tmpl).d;
  float dmin = fit_scale(mn, wm, p.nsub, gs, {0.75f, 1.05f}, false, tmpl).d;
  double best_err = std::numeric_limits<double>::infinity();
  uint8_t Lt[256];
  int sct[16], mqt[16];
  for (int it = 0; it < 3; ++it) {
    const uint16_t dh = fp32_to_fp16(d), mh = fp32_to_fp16(dmin);
    const float df = fp16_to_fp32(dh), mf = fp16_to_fp32(mh);
    double total = 0;
    for (int j = 0; j < p.nsub; ++j) {
      const int o = j * p.sublen;
      const int rs = df > 0 ? std::clamp(round_int(clamp_arg(s[j] / df)), 0, smax) : 0;
      const int rm = mf > 0 ? std::clamp(round_int(clamp_arg(mn[j] / mf)), 0, smax) : 0;
      double be = std::numeric_limits<double>::infinity();
      uint8_t tmp[32];
      for (int cs = std::max(0, rs - 1); cs <= std::min(smax, rs + 1); ++cs) {
        if (df == 0 && cs != rs) continue;
        for (int cm = std::max(0, rm - 1); cm <= std::min(smax, rm + 1); ++cm) {
          if (mf == 0 && cm != rm) continue;
          const double e = round_affine(x + o, w + o, p.sublen, p.lmax, df * cs, mf * cm, tmp);
          if (e < be) {
            be = e, sct[j] = cs, mqt[j] = cm;
            std::memcpy(Lt + o, tmp, (size_t)p.sublen);
          }
        }
      }
      total += be;
    }
    if (total < best_err) {
      best_err = total;
      *d_out = dh;
      *dmin_out = mh;
      std::memcpy(sc, sct, sizeof(int) * p.nsub);
      std::memcpy(mq, mqt, sizeof(int) * p.nsub);
      std::memcpy(L, Lt, (size_t)(p.nsub * p.sublen));
    } else {
      break;
    }
    // least-squares (d, dmin) for these integers: minimise sum w (x - d a + dmin b)^2
    // with a = sc_j l, b = m_j, i.e. [Saa -Sab; -Sab Sbb] [d; dmin] = [Sxa; -Sxb]
    double saa = 0, sab = 0, sbb = 0, sxa = 0, sxb = 0;
    for (int j = 0; j < p.nsub; ++j)
      for (int i = 0; i < p.sublen; ++i) {
        const int e = j * p.sublen + i;
        const double a = (double)sct[j] * Lt[e], b = mqt[j];
        saa += w[e] * a * a;
        sab += w[e] * a * b;
        sbb += w[e] * b * b;
        sxa += (double)w[e] * x[e] * a;
        sxb += (double)w[e] * x[e] * b;
      }
    const double det = saa * sbb - sab * sab;
    double nd = saa > 0 ? sxa / saa : 0, nm = 0;
    if (sbb > 0 && det > 1e-12 * saa * sbb) {
      nd = (sxa * sbb - sab * sxb) / det;
      nm = (sab * sxa - saa * sxb) / det;
    }
    if (nm < 0) {  // mins are subtracted: dmin stays >= 0
      nm = 0;
      nd = saa > 0 ? sxa / saa : 0;
    }
    if (!(nd >= 0)) break;
    if (fp32_to_fp16((float)nd) == dh && fp32_to_fp16((float)nm) == mh) break;
    d = (float)nd;
    dmin = (float)nm;
  }
  return best_err;
}

// ---- the formats ----

void pack_k4_scales(const int* ls, const int* lm, uint8_t* q) {
  std::memset(q, 0, 12);
  for (int j = 0; j < 8; ++j) {
    if (j < 4) {
      q[j] = (uint8_t)ls[j];
      q[j + 4] = (uint8_t)lm[j];
    } else {
      q[j + 4] = (uint8_t)((ls[j] & 0xF) | ((lm[j] & 0xF) << 4));
      q[j - 4] |= (uint8_t)((ls[j] >> 4) << 6);
      q[j] |= (uint8_t)((lm[j] >> 4) << 6);
    }
  }
}

// The 5-bit 32-value blocks: low nibbles in qs, fifth bit of value j in bit j of qh.
void pack_q5(const uint8_t* L, uint8_t* qs, uint8_t* qh_bytes) {
  uint32_t qh = 0;
  for (int j = 0; j < 16; ++j) {
    qs[j] = (uint8_t)((L[j] & 0xF) | ((L[j + 16] & 0xF) << 4));
    qh |= (uint32_t)(L[j] >> 4) << j;
    qh |= (uint32_t)(L[j + 16] >> 4) << (j + 16);
  }
  std::memcpy(qh_bytes, &qh, 4);
}

void quant_q4_0(const float* x, const float* w, BlockQ4_0* y) {
  uint8_t L[32];
  const ScaleFit f = fit_scale(x, w, 32, grids().q4_0, {0.8f, 1.15f}, true, L);
  y->d = best_fp16_scale(x, w, 32, grids().q4_0, f.d, 1, L);
  for (int j = 0; j < 16; ++j) y->qs[j] = (uint8_t)(L[j] | (L[j + 16] << 4));
}

void quant_q5_0(const float* x, const float* w, BlockQ5_0* y) {
  uint8_t L[32];
  const ScaleFit f = fit_scale(x, w, 32, grids().q5_0, {0.85f, 1.1f}, true, L);
  y->d = best_fp16_scale(x, w, 32, grids().q5_0, f.d, 1, L);
  pack_q5(L, y->qs, y->qh);
}

// Q8_0 has 255 levels: the rounding error is small next to the effect of the
// scale's own fp16 rounding, so search the stored fp16 scales directly, every
// code from 1 % below the no-clipping scale to just above it (2 % and 4 %
// windows cost two and four times the time for 0.4 % and 0.6 % less error).
void quant_q8_0(const float* x, const float* w, BlockQ8_0* y) {
  static const Grid g = make_uniform(-127, 127);
  float amax = 0;
  for (int j = 0; j < 32; ++j) amax = std::max(amax, std::fabs(x[j]));
  uint8_t L[32], tmp[32];
  if (amax == 0) {
    y->d = 0;
    std::memset(y->qs, 0, 32);
    return;
  }
  const int h_lo = fp32_to_fp16(amax / 127 * 0.99f), h_hi = fp32_to_fp16(amax / 127 * 1.002f);
  double best = std::numeric_limits<double>::infinity();
  uint16_t best_h = fp32_to_fp16(amax / 127);
  for (int h = h_lo; h <= h_hi && h < 0x7c00; ++h) {
    const float d = fp16_to_fp32((uint16_t)h);
    if (d == 0) continue;
    const double e = round_to_scale(x, w, 32, g, d, tmp);
    if (e < best) {
      best = e, best_h = (uint16_t)h;
      std::memcpy(L, tmp, 32);
    }
  }
  if (!std::isfinite(best)) round_to_scale(x, w, 32, g, fp16_to_fp32(best_h), L);
  y->d = best_h;
  for (int j = 0; j < 32; ++j) y->qs[j] = (int8_t)(L[j] - 127);
}

void quant_iq4_nl(const float* x, const float* w, BlockIQ4_NL* y) {
  uint8_t L[32];
  const ScaleFit f = fit_scale(x, w, 32, grids().iq4, {0.8f, 1.15f}, true, L);
  y->d = best_fp16_scale(x, w, 32, grids().iq4, f.d, 2, L);
  for (int j = 0; j < 16; ++j) y->qs[j] = (uint8_t)(L[j] | (L[j + 16] << 4));
}

// Q4_1 / Q5_1: fp16 scale and offset (both signed), indices re-picked for
// the stored values. (Trying their fp16 neighbours too bought 0.03 % of error.)
template <class Block>
void quant_q_1(const float* x, const float* w, int lmax, Block* y, uint8_t* L) {
  const AffineFit f = fit_affine(x, w, 32, lmax, false, {0.8f, 1.15f}, L);
  y->d = fp32_to_fp16(f.d);
  y->m = fp32_to_fp16(f.m);
  round_affine(x, w, 32, lmax, fp16_to_fp32(y->d), -fp16_to_fp32(y->m), L);  // reconstructs D * l - M
}

void quant_q4_1(const float* x, const float* w, BlockQ4_1* y) {
  uint8_t L[32];
  quant_q_1(x, w, 15, y, L);
  for (int j = 0; j < 16; ++j) y->qs[j] = (uint8_t)(L[j] | (L[j + 16] << 4));
}

void quant_q5_1(const float* x, const float* w, BlockQ5_1* y) {
  uint8_t L[32];
  quant_q_1(x, w, 31, y, L);
  pack_q5(L, y->qs, y->qh);
}

void quant_q2_k(const float* x, const float* w, BlockQ2_K* y) {
  const AffSuper p{16, 16, 3, &grids().u15, {0.75f, 1.3f}};
  int sc[16], mq[16];
  uint8_t L[256];
  quantize_aff_super(x, w, p, &y->d, &y->dmin, sc, mq, L);
  for (int j = 0; j < 16; ++j) y->scales[j] = (uint8_t)(sc[j] | (mq[j] << 4));
  for (int j = 0; j < 256; j += 128)
    for (int l = 0; l < 32; ++l)
      y->qs[j / 4 + l] =
          (uint8_t)(L[j + l] | (L[j + l + 32] << 2) | (L[j + l + 64] << 4) | (L[j + l + 96] << 6));
}

void quant_q3_k(const float* x, const float* w, BlockQ3_K* y) {
  const SymSuper p{16, 16, &grids().q3, &grids().s6, {0.75f, 1.25f}};
  int sc[16];
  uint8_t L[256];
  quantize_sym_super(x, w, p, &y->d, sc, L);
  std::memset(y->scales, 0, 12);
  for (int j = 0; j < 16; ++j) {
    const int l = sc[j] + 32;
    y->scales[j % 8] |= (uint8_t)((l & 0xF) << (4 * (j / 8)));
    y->scales[8 + j % 4] |= (uint8_t)((l >> 4) << (2 * (j / 4)));
  }
  std::memset(y->hmask, 0, 32);
  std::memset(y->qs, 0, 64);
  for (int e = 0; e < 256; ++e) {
    if (L[e] > 3) y->hmask[e % 32] |= (uint8_t)(1 << (e / 32));
    y->qs[32 * (e / 128) + (e % 32)] |= (uint8_t)((L[e] & 3) << (2 * ((e / 32) % 4)));
  }
}

void quant_q4_k(const float* x, const float* w, BlockQ4_K* y) {
  const AffSuper p{8, 32, 15, &grids().u63, {0.8f, 1.15f}};
  int sc[8], mq[8];
  uint8_t L[256];
  quantize_aff_super(x, w, p, &y->d, &y->dmin, sc, mq, L);
  pack_k4_scales(sc, mq, y->scales);
  for (int j = 0; j < 256; j += 64)
    for (int l = 0; l < 32; ++l) y->qs[j / 2 + l] = (uint8_t)(L[j + l] | (L[j + l + 32] << 4));
}

void quant_q5_k(const float* x, const float* w, BlockQ5_K* y) {
  const AffSuper p{8, 32, 31, &grids().u63, {0.85f, 1.1f}};
  int sc[8], mq[8];
  uint8_t L[256];
  quantize_aff_super(x, w, p, &y->d, &y->dmin, sc, mq, L);
  pack_k4_scales(sc, mq, y->scales);
  std::memset(y->qh, 0, 32);
  for (int j = 0; j < 256; j += 64) {
    const int b = j / 32;
    for (int l = 0; l < 32; ++l) {
      const int lo = L[j + l], hi = L[j + l + 32];
      y->qs[j / 2 + l] = (uint8_t)((lo & 0xF) | ((hi & 0xF) << 4));
      y->qh[l] |= (uint8_t)(((lo >> 4) << b) | ((hi >> 4) << (b + 1)));
    }
  }
}

void quant_q6_k(const float* x, const float* w, BlockQ6_K* y) {
  const SymSuper p{16, 16, &grids().q6, &grids().s8, {0.875f, 1.075f}};
  int sc[16];
  uint8_t L[256];
  quantize_sym_super(x, w, p, &y->d, sc, L);
  for (int j = 0; j < 16; ++j) y->scales[j] = (int8_t)sc[j];
  std::memset(y->ql, 0, 128);
  std::memset(y->qh, 0, 64);
  for (int e = 0; e < 256; ++e) {
    const int h = e / 128, r = e % 128;
    y->ql[64 * h + (r % 64)] |= (uint8_t)((L[e] & 0xF) << (4 * (r / 64)));
    y->qh[32 * h + (r % 32)] |= (uint8_t)((L[e] >> 4) << (2 * (r / 32)));
  }
}

void quant_iq4_xs(const float* x, const float* w, BlockIQ4_XS* y) {
  const SymSuper p{8, 32, &grids().iq4, &grids().s6, {0.8f, 1.15f}};
  int sc[8];
  uint8_t L[256];
  std::memset(y, 0, sizeof(*y));
  quantize_sym_super(x, w, p, &y->d, sc, L);
  for (int ib = 0; ib < 8; ++ib) {
    const int ls = sc[ib] + 32;
    y->scales_l[ib / 2] |= (uint8_t)((ls & 0xF) << (4 * (ib % 2)));
    y->scales_h |= (uint16_t)((ls >> 4) << (2 * ib));
    for (int j = 0; j < 16; ++j) y->qs[16 * ib + j] = (uint8_t)(L[32 * ib + j] | (L[32 * ib + j + 16] << 4));
  }
}

template <class Block, int QK>
void for_blocks(const float* x, const float* w, void* dst, int64_t n, void (*q)(const float*, const float*, Block*)) {
  Block* y = static_cast<Block*>(dst);
  for (int64_t i = 0; i < n / QK; ++i) q(x + i * QK, w + i * QK, &y[i]);
}

}  // namespace

bool block_search_supported(GgmlType t) {
  switch (t) {
    case GgmlType::F32: case GgmlType::F16: case GgmlType::BF16: case GgmlType::Q4_0: case GgmlType::Q4_1:
    case GgmlType::Q5_0: case GgmlType::Q5_1: case GgmlType::Q8_0: case GgmlType::Q2_K: case GgmlType::Q3_K:
    case GgmlType::Q4_K: case GgmlType::Q5_K: case GgmlType::Q6_K: case GgmlType::IQ4_NL: case GgmlType::IQ4_XS:
      return true;
    default:
      return false;
  }
}

void row_weights(const float* x, int64_t n, const float* importance, float* w) {
  double s2 = 0;
  for (int64_t j = 0; j < n; ++j) s2 += (double)x[j] * x[j];
  const float sigma2 = n > 0 ? (float)(s2 / n) : 0.f;
  double sum = 0;
  for (int64_t j = 0; j < n; ++j) {
    const float m = std::sqrt(sigma2 + x[j] * x[j]);
    w[j] = importance ? std::max(importance[j], 0.f) * m : m;
    sum += w[j];
  }
  // no zero weights (unused imatrix columns): every value still counts a little
  const float floor = n > 0 && sum > 0 ? (float)(1e-6 * sum / n) : 1e-30f;
  for (int64_t j = 0; j < n; ++j) w[j] += floor;
}

void quantize_row_search(GgmlType t, const float* x, const float* w, void* dst, int64_t n) {
  std::vector<float> ones;
  if (!w && t != GgmlType::F32 && t != GgmlType::F16 && t != GgmlType::BF16) {
    ones.assign((size_t)n, 1.0f);
    w = ones.data();
  }
  switch (t) {
    case GgmlType::Q4_0: return for_blocks<BlockQ4_0, kQK>(x, w, dst, n, quant_q4_0);
    case GgmlType::Q4_1: return for_blocks<BlockQ4_1, kQK>(x, w, dst, n, quant_q4_1);
    case GgmlType::Q5_0: return for_blocks<BlockQ5_0, kQK>(x, w, dst, n, quant_q5_0);
    case GgmlType::Q5_1: return for_blocks<BlockQ5_1, kQK>(x, w, dst, n, quant_q5_1);
    case GgmlType::Q8_0: return for_blocks<BlockQ8_0, kQK>(x, w, dst, n, quant_q8_0);
    case GgmlType::IQ4_NL: return for_blocks<BlockIQ4_NL, kQK>(x, w, dst, n, quant_iq4_nl);
    case GgmlType::Q2_K: return for_blocks<BlockQ2_K, kQKK>(x, w, dst, n, quant_q2_k);
    case GgmlType::Q3_K: return for_blocks<BlockQ3_K, kQKK>(x, w, dst, n, quant_q3_k);
    case GgmlType::Q4_K: return for_blocks<BlockQ4_K, kQKK>(x, w, dst, n, quant_q4_k);
    case GgmlType::Q5_K: return for_blocks<BlockQ5_K, kQKK>(x, w, dst, n, quant_q5_k);
    case GgmlType::Q6_K: return for_blocks<BlockQ6_K, kQKK>(x, w, dst, n, quant_q6_k);
    case GgmlType::IQ4_XS: return for_blocks<BlockIQ4_XS, kQKK>(x, w, dst, n, quant_iq4_xs);
    default: {
      const FromFloatFn f = type_traits(t).from_float;
      if (f) f(x, dst, n);
      return;
    }
  }
}

double weighted_sq_error(GgmlType t, const void* q, const float* x, const float* w, int64_t n) {
  std::vector<float> y((size_t)n);
  type_traits(t).to_float(q, y.data(), n);
  double e = 0;
  for (int64_t j = 0; j < n; ++j) {
    const double r = (double)x[j] - y[j];
    e += (w ? w[j] : 1.0) * r * r;
  }
  return e;
}

}  // namespace slim
