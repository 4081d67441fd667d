// The row-interleaved layout (repack.h): packing from GGUF blocks and the
// exact inverse, written plainly: the reference the SIMD packing
// (KernelRow::repack) is tested against byte for byte, and its fallback.
#include "kernels/repack.h"

#include <cstring>

#include <sys/mman.h>

#include "tensor/quant_blocks.h"
#include "tensor/quants.h"

namespace slim {

RepackFormat repack_format(GgmlType t) {
  switch (t) {
    case GgmlType::Q8_0: return {kQK, 544};
    case GgmlType::Q4_0: return {kQK, 288};
    case GgmlType::Q5_0: return {kQK, 352};
    case GgmlType::Q4_K: return {kQKK, 2368};
    case GgmlType::Q6_K: return {kQKK, 3360};
    default: return {};
  }
}

namespace {

using Group = uint8_t[kRepackRows][32];  // one 32-value group of 16 rows, unsigned

// step s, lane l, byte j <-> row l's value 4s + j
void put_steps(const Group& u, uint8_t* out) {
  for (int s = 0; s < 8; ++s)
    for (int l = 0; l < kRepackRows; ++l)
      for (int j = 0; j < 4; ++j) out[64 * s + 4 * l + j] = u[l][4 * s + j];
}
void get_steps(const uint8_t* in, int l, uint8_t* u) {
  for (int s = 0; s < 8; ++s)
    for (int j = 0; j < 4; ++j) u[4 * s + j] = in[64 * s + 4 * l + j];
}

// four vectors: the low nibble of vector k is step k, the high nibble step k + 4
void put_nibbles(const Group& u, uint8_t* out) {
  for (int k = 0; k < 4; ++k)
    for (int l = 0; l < kRepackRows; ++l)
      for (int j = 0; j < 4; ++j)
        out[64 * k + 4 * l + j] = (uint8_t)((u[l][4 * k + j] & 0xF) | (u[l][16 + 4 * k + j] & 0xF) << 4);
}
void get_nibbles(const uint8_t* in, int l, uint8_t* u) {  // adds the low 4 bits to u
  for (int k = 0; k < 4; ++k)
    for (int j = 0; j < 4; ++j) {
      const uint8_t b = in[64 * k + 4 * l + j];
      u[4 * k + j] |= b & 0xF;
      u[16 + 4 * k + j] |= b >> 4;
    }
}

// `bits` bits of every value from bit 4 up: vector v's byte i holds steps
// 8/bits*v .. as consecutive bit fields (Q5_0: one vector of 8 one-bit
// fields; Q6_K: two vectors of 4 two-bit fields)
void put_high(const Group& u, int bits, uint8_t* out) {
  const int per = 8 / bits, mask = (1 << bits) - 1;
  std::memset(out, 0, (size_t)64 * bits);
  for (int s = 0; s < 8; ++s)
    for (int l = 0; l < kRepackRows; ++l)
      for (int j = 0; j < 4; ++j)
        out[64 * (s / per) + 4 * l + j] |= (uint8_t)(((u[l][4 * s + j] >> 4) & mask) << (bits * (s % per)));
}
void get_high(const uint8_t* in, int bits, int l, uint8_t* u) {
  const int per = 8 / bits, mask = (1 << bits) - 1;
  for (int s = 0; s < 8; ++s)
    for (int j = 0; j < 4; ++j)
      u[4 * s + j] |= (uint8_t)(((in[64 * (s / per) + 4 * l + j] >> (bits * (s % per))) & mask) << 4);
}

template <class B>
const B& block_of(const void* rows, size_t row_bytes, int l, int64_t b) {
  return ((const B*)((const uint8_t*)rows + l * row_bytes))[b];
}

// Q4_K's 12 scale bytes from eight 6-bit scales and mins (the inverse of
// unpack_scale_min_k4): 0..3 keep their 6 bits in bytes 0..3 / 4..7, 4..7
// their low 4 bits in bytes 8..11 and their top 2 bits in the top of 0..7.
void pack_scales_k4(const uint8_t* sc, const uint8_t* mn, uint8_t* s) {
  for (int j = 0; j < 4; ++j) {
    s[j] = (uint8_t)((sc[j] & 63) | (sc[j + 4] >> 4) << 6);
    s[j + 4] = (uint8_t)((mn[j] & 63) | (mn[j + 4] >> 4) << 6);
    s[j + 8] = (uint8_t)((sc[j + 4] & 15) | (mn[j + 4] & 15) << 4);
  }
}

}  // namespace

void repack_panel(GgmlType t, const void* rows, size_t row_bytes, int n_rows, int64_t cols, uint8_t* panel) {
  const RepackFormat f = repack_format(t);
  for (int64_t b = 0; b < cols / f.block_values; ++b) {
    uint8_t* out = panel + b * f.block_bytes;
    std::memset(out, 0, f.block_bytes);
    Group u = {};
    if (f.block_values == kQK) {
      uint16_t* d = (uint16_t*)(out + f.block_bytes - 32);
      for (int l = 0; l < n_rows; ++l) {
        if (t == GgmlType::Q8_0) {
          const BlockQ8_0& x = block_of<BlockQ8_0>(rows, row_bytes, l, b);
          for (int i = 0; i < 32; ++i) u[l][i] = (uint8_t)(x.qs[i] + 128);
          d[l] = x.d;
        } else if (t == GgmlType::Q4_0) {
          const BlockQ4_0& x = block_of<BlockQ4_0>(rows, row_bytes, l, b);
          for (int i = 0; i < 16; ++i) u[l][i] = x.qs[i] & 0xF, u[l][i + 16] = x.qs[i] >> 4;
          d[l] = x.d;
        } else {
          const BlockQ5_0& x = block_of<BlockQ5_0>(rows, row_bytes, l, b);
          uint32_t qh;
          std::memcpy(&qh, x.qh, 4);
          for (int i = 0; i < 16; ++i) {
            u[l][i] = (uint8_t)((x.qs[i] & 0xF) | ((qh >> i) & 1) << 4);
            u[l][i + 16] = (uint8_t)((x.qs[i] >> 4) | ((qh >> (i + 16)) & 1) << 4);
          }
          d[l] = x.d;
        }
      }
      if (t == GgmlType::Q8_0) put_steps(u, out);
      else put_nibbles(u, out);
      if (t == GgmlType::Q5_0) put_high(u, 1, out + 256);
    } else if (t == GgmlType::Q4_K) {
      uint8_t* sc = out + 2048;
      uint8_t* mn = sc + 128;
      uint16_t* d = (uint16_t*)(mn + 128);
      for (int j = 0; j < 8; ++j) {
        Group g = {};
        for (int l = 0; l < n_rows; ++l) {
          const BlockQ4_K& x = block_of<BlockQ4_K>(rows, row_bytes, l, b);
          for (int i = 0; i < 32; ++i) g[l][i] = (x.qs[32 * (j / 2) + i] >> (4 * (j % 2))) & 0xF;
          unpack_scale_min_k4(j, x.scales, &sc[16 * j + l], &mn[16 * j + l]);
          d[l] = x.d;
          d[16 + l] = x.dmin;
        }
        put_nibbles(g, out + 256 * j);
      }
    } else {  // Q6_K
      int8_t* sc = (int8_t*)(out + 3072);
      uint16_t* d = (uint16_t*)(out + 3328);
      for (int j = 0; j < 8; ++j) {
        Group g = {};
        for (int l = 0; l < n_rows; ++l) {
          const BlockQ6_K& x = block_of<BlockQ6_K>(rows, row_bytes, l, b);
          for (int i = 0; i < 32; ++i) {
            const int v = 32 * j + i, h = v / 128, k = (v % 128) / 32, p = v % 32;
            const int lo = (x.ql[64 * h + p + 32 * (k % 2)] >> (4 * (k / 2))) & 0xF;
            const int hi = (x.qh[32 * h + p] >> (2 * k)) & 3;
            g[l][i] = (uint8_t)(lo | hi << 4);
          }
          sc[16 * (2 * j) + l] = x.scales[2 * j];
          sc[16 * (2 * j + 1) + l] = x.scales[2 * j + 1];
          d[l] = x.d;
        }
        put_nibbles(g, out + 384 * j);
        put_high(g, 2, out + 384 * j + 256);
      }
    }
  }
}

void unpack_panel_row(GgmlType t, const uint8_t* panel, int l, int64_t cols, void* row) {
  const RepackFormat f = repack_format(t);
  for (int64_t b = 0; b < cols / f.block_values; ++b) {
    const uint8_t* in = panel + b * f.block_bytes;
    if (f.block_values == kQK) {
      const uint16_t d = ((const uint16_t*)(in + f.block_bytes - 32))[l];
      uint8_t u[32] = {};
      if (t == GgmlType::Q8_0) {
        get_steps(in, l, u);
        BlockQ8_0& x = ((BlockQ8_0*)row)[b];
        for (int i = 0; i < 32; ++i) x.qs[i] = (int8_t)(u[i] - 128);
        x.d = d;
        continue;
      }
      get_nibbles(in, l, u);
      if (t == GgmlType::Q4_0) {
        BlockQ4_0& x = ((BlockQ4_0*)row)[b];
        for (int i = 0; i < 16; ++i) x.qs[i] = (uint8_t)(u[i] | u[i + 16] << 4);
        x.d = d;
      } else {
        get_high(in + 256, 1, l, u);
        BlockQ5_0& x = ((BlockQ5_0*)row)[b];
        uint32_t qh = 0;
        for (int i = 0; i < 16; ++i) {
          x.qs[i] = (uint8_t)((u[i] & 0xF) | (u[i + 16] & 0xF) << 4);
          qh |= (uint32_t)(u[i] >> 4) << i | (uint32_t)(u[i + 16] >> 4) << (i + 16);
        }
        std::memcpy(x.qh, &qh, 4);
        x.d = d;
      }
    } else if (t == GgmlType::Q4_K) {
      BlockQ4_K& x = ((BlockQ4_K*)row)[b];
      const uint8_t* sc = in + 2048;
      const uint16_t* d = (const uint16_t*)(in + 2304);
      uint8_t s8[8], m8[8];
      std::memset(x.qs, 0, sizeof x.qs);
      for (int j = 0; j < 8; ++j) {
        uint8_t u[32] = {};
        get_nibbles(in + 256 * j, l, u);
        for (int i = 0; i < 32; ++i) x.qs[32 * (j / 2) + i] |= (uint8_t)(u[i] << (4 * (j % 2)));
        s8[j] = sc[16 * j + l];
        m8[j] = sc[128 + 16 * j + l];
      }
      pack_scales_k4(s8, m8, x.scales);
      x.d = d[l];
      x.dmin = d[16 + l];
    } else {  // Q6_K
      BlockQ6_K& x = ((BlockQ6_K*)row)[b];
      std::memset(x.ql, 0, sizeof x.ql);
      std::memset(x.qh, 0, sizeof x.qh);
      for (int j = 0; j < 8; ++j) {
        uint8_t u[32] = {};
        get_nibbles(in + 384 * j, l, u);
        get_high(in + 384 * j + 256, 2, l, u);
        for (int i = 0; i < 32; ++i) {
          const int v = 32 * j + i, h = v / 128, k = (v % 128) / 32, p = v % 32;
          x.ql[64 * h + p + 32 * (k % 2)] |= (uint8_t)((u[i] & 0xF) << (4 * (k / 2)));
          x.qh[32 * h + p] |= (uint8_t)((u[i] >> 4) << (2 * k));
        }
      }
      for (int k = 0; k < 16; ++k) x.scales[k] = ((const int8_t*)(in + 3072))[16 * k + l];
      x.d = ((const uint16_t*)(in + 3328))[l];
    }
  }
}

// Panels are written whole at load, so the whole buffer is faulted in, and
// with 4 KiB pages the faults cost more than the repacking itself: on 2 MiB
// transparent huge pages (where the system grants them on request) one fault
// maps 512 times as much (llama-3.2-1b Q4_K_M loaded in about 200 ms instead
// of 290). Only whole huge pages inside the buffer are asked for, so none
// reaches past its end and the resident size stays the buffer's.
uint8_t* panel_buffer(size_t bytes, std::unique_ptr<uint8_t[]>& owner) {
  constexpr size_t huge = (size_t)2 << 20;
  if (bytes < huge) {
    owner.reset(new uint8_t[bytes]);
    return owner.get();
  }
  owner.reset(new uint8_t[bytes + huge]);
  uint8_t* p = (uint8_t*)(((uintptr_t)owner.get() + huge - 1) / huge * huge);
  madvise(p, bytes / huge * huge, MADV_HUGEPAGE);  // a hint: if refused, 4 KiB pages
  return p;
}

}  // namespace slim
