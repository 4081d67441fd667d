// Scalar twins of the panel GEMM kernels (dispatch.h): the reference the
// AVX-512 versions are tested against, written for clarity.
#include <cstring>

#include "base/fp16.h"
#include "kernels/dispatch.h"
#include "tensor/quant_blocks.h"

namespace slim {

PanelFormat panel_format(GgmlType t) {
  switch (t) {
    case GgmlType::Q4_0: return {32, false, 8};
    case GgmlType::Q5_0: return {32, false, 16};
    case GgmlType::Q8_0: case GgmlType::IQ4_NL: return {32, false, 128};
    case GgmlType::Q4_K: case GgmlType::Q5_K: return {32, true, 0};
    case GgmlType::Q6_K: return {16, true, 0};
    default: return {};
  }
}

namespace {

// 32-value block b of a row as unsigned bytes, its group scales and mins.
void block_u8(GgmlType t, const uint8_t* row, int64_t b, uint8_t* u, float* sc, float* mn) {
  switch (t) {
    case GgmlType::Q4_0: {
      const BlockQ4_0& x = ((const BlockQ4_0*)row)[b];
      for (int i = 0; i < 16; ++i) u[i] = x.qs[i] & 0xF, u[i + 16] = x.qs[i] >> 4;
      sc[0] = fp16_to_fp32(x.d);
      break;
    }
    case GgmlType::Q5_0: {
      const BlockQ5_0& x = ((const BlockQ5_0*)row)[b];
      uint32_t qh;
      std::memcpy(&qh, x.qh, 4);
      for (int i = 0; i < 16; ++i) {
        u[i] = (uint8_t)((x.qs[i] & 0xF) | (((qh >> i) & 1) << 4));
        u[i + 16] = (uint8_t)((x.qs[i] >> 4) | (((qh >> (i + 16)) & 1) << 4));
      }
      sc[0] = fp16_to_fp32(x.d);
      break;
    }
    case GgmlType::Q8_0: {
      const BlockQ8_0& x = ((const BlockQ8_0*)row)[b];
      for (int i = 0; i < 32; ++i) u[i] = (uint8_t)(x.qs[i] + 128);
      sc[0] = fp16_to_fp32(x.d);
      break;
    }
    case GgmlType::IQ4_NL: {
      const BlockIQ4_NL& x = ((const BlockIQ4_NL*)row)[b];
      for (int i = 0; i < 16; ++i)
        u[i] = (uint8_t)(kIq4nlValues[x.qs[i] & 0xF] + 128), u[i + 16] = (uint8_t)(kIq4nlValues[x.qs[i] >> 4] + 128);
      sc[0] = fp16_to_fp32(x.d);
      break;
    }
    case GgmlType::Q4_K: case GgmlType::Q5_K: {
      const int j = (int)(b % 8);  // sub-block of the super-block
      const uint8_t *scales, *qs, *qh = nullptr;
      float d, dmin;
      if (t == GgmlType::Q4_K) {
        const BlockQ4_K& x = ((const BlockQ4_K*)row)[b / 8];
        scales = x.scales, qs = x.qs, d = fp16_to_fp32(x.d), dmin = fp16_to_fp32(x.dmin);
      } else {
        const BlockQ5_K& x = ((const BlockQ5_K*)row)[b / 8];
        scales = x.scales, qs = x.qs, qh = x.qh, d = fp16_to_fp32(x.d), dmin = fp16_to_fp32(x.dmin);
      }
      for (int i = 0; i < 32; ++i) {
        int q = (qs[32 * (j / 2) + i] >> (4 * (j % 2))) & 0xF;
        if (qh) q |= ((qh[i] >> j) & 1) << 4;
        u[i] = (uint8_t)q;
      }
      uint8_t s, m;
      unpack_scale_min_k4(j, scales, &s, &m);
      sc[0] = d * s;
      mn[0] = dmin * m;
      break;
    }
    case GgmlType::Q6_K: {
      const BlockQ6_K& x = ((const BlockQ6_K*)row)[b / 8];
      const int j = (int)(b % 8), h = j / 4, k = j % 4;  // values 128h + 32k ..
      for (int i = 0; i < 32; ++i) {
        const uint8_t l = x.ql[64 * h + 32 * (k % 2) + i];
        const int lo = k < 2 ? (l & 0xF) : (l >> 4);
        const int hi = (x.qh[32 * h + i] >> (2 * k)) & 3;
        u[i] = (uint8_t)(lo | (hi << 4));
      }
      const float d = fp16_to_fp32(x.d);
      for (int g = 0; g < 2; ++g) sc[g] = d * x.scales[2 * j + g], mn[g] = 32 * sc[g];
      break;
    }
    default: std::memset(u, 0, 32), sc[0] = sc[1] = 0, mn[0] = mn[1] = 0;
  }
}

}  // namespace

void pack_panel_ref(GgmlType t, const void* w, size_t row_bytes, int n_rows, int64_t cols, uint8_t* panel) {
  const PanelFormat f = panel_format(t);
  const int sets = 32 / f.group;
  for (int64_t b = 0; b < cols / kQK; ++b) {
    uint8_t* p = panel + b * f.block_bytes();
    float* scales = (float*)(p + 512);
    float* mins = scales + 16 * sets;
    for (int r = 0; r < kPanelRows; ++r) {
      uint8_t u[32] = {};
      float sc[2] = {}, mn[2] = {};
      if (r < n_rows) block_u8(t, (const uint8_t*)w + r * row_bytes, b, u, sc, mn);
      for (int s = 0; s < 8; ++s) std::memcpy(p + 64 * s + 4 * r, u + 4 * s, 4);
      for (int g = 0; g < sets; ++g) {
        scales[16 * g + r] = sc[g];
        if (f.mins) mins[16 * g + r] = mn[g];
      }
    }
  }
}

void gemm_panel_ref(GgmlType t, int64_t cols, const uint8_t* panel, const void* act, size_t stride, const float* dy,
                    const int32_t* sy, const float* my, size_t info_stride, int nc, float* y, int64_t ldy,
                    int n_rows) {
  const PanelFormat f = panel_format(t);
  const int sets = 32 / f.group;
  const bool q8k = f.mins;  // K-quants meet Q8_K activations, the others Q8_0
  for (int c = 0; c < nc; ++c) {
    const char* row = (const char*)act + c * stride;
    for (int r = 0; r < n_rows; ++r) {
      float acc = 0;
      for (int64_t b = 0; b < cols / kQK; ++b) {
        const uint8_t* p = panel + b * f.block_bytes();
        const float* scales = (const float*)(p + 512);
        const int8_t* q = q8k ? ((const BlockQ8_K*)row)[b / 8].qs + 32 * (b % 8) : ((const BlockQ8_0*)row)[b].qs;
        for (int g = 0; g < sets; ++g) {
          const int64_t gi = b * sets + g;
          int32_t dot = q8k ? 0 : -f.offset * sy[c * info_stride + gi];
          for (int i = g * f.group; i < (g + 1) * f.group; ++i)
            dot += (int32_t)p[64 * (i / 4) + 4 * r + i % 4] * q[i];
          acc += scales[16 * g + r] * dy[c * info_stride + gi] * (float)dot;
          if (f.mins) acc -= scales[16 * (sets + g) + r] * my[c * info_stride + gi];
        }
      }
      y[c * ldy + r] = acc;
    }
  }
}

}  // namespace slim
