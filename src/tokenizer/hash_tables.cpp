// The tokenizer's open-addressing hash tables: PairMap (merge table, trie
// edges) and TextMap (token text -> id).
#include <cstring>

#include "tokenizer/tokenizer_data.h"

namespace slim {

void PairMap::reserve(size_t n) {
  size_t cap = 16;
  while (cap < n * 2) cap <<= 1;
  if (cap <= slots_.size()) return;
  std::vector<Entry> old;
  old.swap(slots_);
  slots_.assign(cap, Entry{kEmpty, 0, 0});
  mask_ = cap - 1;
  size_ = 0;
  for (const Entry& e : old)
    if (e.key != kEmpty) insert(e.key, e.a, e.b);
}

bool PairMap::insert(uint64_t key, int32_t a, int32_t b) {
  if ((size_ + 1) * 2 > slots_.size()) reserve(size_ + 1);
  for (uint64_t i = hash(key) & mask_;; i = (i + 1) & mask_) {
    Entry& e = slots_[i];
    if (e.key == key) return false;
    if (e.key == kEmpty) {
      e = Entry{key, a, b};
      ++size_;
      return true;
    }
  }
}

uint64_t TextMap::hash(std::string_view s) {
  // 8 bytes at a time with a multiply-xorshift mix; token texts are short.
  uint64_t h = 0x9E3779B97F4A7C15ull ^ (s.size() * 0xC2B2AE3D27D4EB4Full);
  size_t i = 0;
  for (; i + 8 <= s.size(); i += 8) {
    uint64_t v;
    std::memcpy(&v, s.data() + i, 8);
    h = (h ^ v) * 0xBF58476D1CE4E5B9ull;
    h ^= h >> 29;
  }
  uint64_t v = 0;
  std::memcpy(&v, s.data() + i, s.size() - i);
  h = (h ^ v) * 0x94D049BB133111EBull;
  h ^= h >> 32;
  h *= 0xBF58476D1CE4E5B9ull;
  return h ^ (h >> 29);
}

void TextMap::build(const std::vector<std::string>& texts) {
  texts_ = &texts;
  size_t cap = 16;
  while (cap < texts.size() * 2) cap <<= 1;
  slots_.assign(cap, Slot{0, -1});
  mask_ = cap - 1;
  for (size_t id = 0; id < texts.size(); ++id) {
    const uint64_t h = hash(texts[id]);
    const uint32_t tag = static_cast<uint32_t>(h >> 32);
    for (uint64_t i = h & mask_;; i = (i + 1) & mask_) {
      Slot& e = slots_[i];
      if (e.id < 0 || (e.tag == tag && texts[e.id] == texts[id])) {
        e = Slot{tag, static_cast<int32_t>(id)};
        break;
      }
    }
  }
}

}  // namespace slim
