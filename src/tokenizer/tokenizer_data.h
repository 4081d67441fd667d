// Internal to src/tokenizer: the plain data a Tokenizer is built from (vocab,
// special ids, flags, merge table, special-token trie) and the free functions
// of each stage. Nothing outside this folder includes it.
#pragma once

#include <array>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "base/status.h"
#include "tokenizer/pre_tokenizer.h"
#include "tokenizer/tokenizer.h"

namespace slim {

class GgufFile;

// TokenType values as stored per token (int32, like the GGUF array).
constexpr int32_t kTypeUndefined = static_cast<int32_t>(TokenType::Undefined);
constexpr int32_t kTypeNormal = static_cast<int32_t>(TokenType::Normal);
constexpr int32_t kTypeUnknown = static_cast<int32_t>(TokenType::Unknown);
constexpr int32_t kTypeControl = static_cast<int32_t>(TokenType::Control);
constexpr int32_t kTypeUserDefined = static_cast<int32_t>(TokenType::UserDefined);
constexpr int32_t kTypeByte = static_cast<int32_t>(TokenType::Byte);

constexpr int32_t kNoToken = -1;

// Open-addressing hash map from a 64-bit key to two int32 values. Used for the
// BPE merge table (key: left id, right id) and the special-token trie (key:
// node, byte), both on the per-byte hot path where std::unordered_map's node
// allocations and modulo hashing cost more than the lookups themselves.
class PairMap {
 public:
  struct Entry { uint64_t key; int32_t a, b; };
  static constexpr uint64_t kEmpty = ~0ull;

  void reserve(size_t n);
  // Inserts unless the key is present; the first value for a key wins.
  bool insert(uint64_t key, int32_t a, int32_t b);
  const Entry* find(uint64_t key) const {
    if (slots_.empty()) return nullptr;
    for (uint64_t i = hash(key) & mask_;; i = (i + 1) & mask_) {
      const Entry& e = slots_[i];
      if (e.key == key) return &e;
      if (e.key == kEmpty) return nullptr;
    }
  }
  size_t size() const { return size_; }

 private:
  static uint64_t hash(uint64_t k) { return (k * 0x9E3779B97F4A7C15ull) >> 17; }
  std::vector<Entry> slots_;
  uint64_t mask_ = 0;
  size_t size_ = 0;
};

// Open-addressing map from token text to id, probing on a 64-bit hash and
// comparing against the vocab's own strings (no copies of the keys). The text
// lookups of SentencePiece merging and whole-piece checks are the hottest
// operation of tokenization.
class TextMap {
 public:
  // Maps every text of `texts` (which must outlive the map) to its index; a
  // duplicated text maps to its last index, as in llama.cpp.
  void build(const std::vector<std::string>& texts);
  int32_t find(std::string_view s) const {
    if (slots_.empty()) return -1;
    const uint64_t h = hash(s);
    const uint32_t tag = static_cast<uint32_t>(h >> 32);
    for (uint64_t i = h & mask_;; i = (i + 1) & mask_) {
      const Slot& e = slots_[i];
      if (e.id < 0) return -1;
      if (e.tag == tag && (*texts_)[e.id] == s) return e.id;
    }
  }
  static uint64_t hash(std::string_view s);

 private:
  struct Slot { uint32_t tag; int32_t id; };
  std::vector<Slot> slots_;
  uint64_t mask_ = 0;
  const std::vector<std::string>* texts_ = nullptr;
};

inline uint64_t pair_key(int32_t a, int32_t b) {
  return (static_cast<uint64_t>(static_cast<uint32_t>(a)) << 32) | static_cast<uint32_t>(b);
}

enum class VocabModel { Spm, Bpe };

// A piece of the input after special tokens are cut out: either a token id
// (token >= 0) or the text text[begin, begin + size).
struct Fragment {
  int32_t token;
  size_t begin, size;
};

struct TokenizerData {
  TokenizerData() = default;
  TokenizerData(const TokenizerData&) = delete;  // text_to_id points into texts
  TokenizerData& operator=(const TokenizerData&) = delete;

  VocabModel model = VocabModel::Spm;
  std::string model_name;  // tokenizer.ggml.model
  std::string pre_name;    // tokenizer.ggml.pre ("" when absent)

  std::vector<std::string> texts;
  std::vector<float> scores;
  std::vector<int32_t> types;
  std::vector<uint8_t> lstrip, rstrip;  // per-token: eat whitespace beside a matched special token
  TextMap text_to_id;

  int32_t bos = kNoToken, eos = kNoToken, eot = kNoToken, eom = kNoToken;
  int32_t unk = kNoToken, pad = kNoToken, sep = kNoToken;
  bool add_bos = false, add_eos = false;
  bool add_space_prefix = false;          // SPM: a space before the text (and after each special token)
  bool remove_extra_whitespaces = false;  // SPM normalizer option, when the file sets it
  bool ignore_merges = false;             // BPE: emit a piece whole when it is a token
  std::vector<uint8_t> eog;               // per-token end-of-generation flag

  // Special-token trie: node 0 is the root; `special_trie` maps (node, byte)
  // to (child node, unused); `trie_token[node]` is the token ending there.
  PairMap special_trie;
  std::vector<int32_t> trie_token;
  std::array<bool, 256> special_first_byte{};

  // BPE: merges keyed by symbol ids. Symbols are vocab ids, or ids >= n_vocab
  // for merge operands and results that are not in the vocab.
  PairMap merges;  // (left, right) -> (rank, merged symbol)
  std::array<int32_t, 256> byte_symbol{};  // symbol of each byte's GPT-2 stand-in
  std::shared_ptr<const RegexSplitter> splitter;

  // SPM: byte-fallback tokens <0xNN> (or kNoToken).
  std::array<int32_t, 256> byte_token{};
  // SPM: ASCII characters that occur in no token of two or more characters
  // (e.g. '\n' in Llama 2). Such a character can never take part in a merge,
  // so the text is merged in independent segments between them, which keeps
  // the merge queue small.
  std::array<bool, 128> spm_barrier{};

  std::vector<std::string> pieces;  // rendered text of every token (special text included)

  int32_t n_vocab() const { return static_cast<int32_t>(texts.size()); }
  int32_t find(std::string_view s) const { return text_to_id.find(s); }
  bool is_special_type(int32_t id) const {
    const int32_t t = types[id];
    return t == kTypeControl || t == kTypeUserDefined || t == kTypeUnknown;
  }
};

// vocab.cpp: reads every tokenizer key of a GGUF file into `d`.
Status load_tokenizer_data(const GgufFile& f, TokenizerData& d);

// special_tokens.cpp
void build_special_trie(TokenizerData& d);
// Cuts special tokens out of text: user-defined tokens always, control and
// unknown tokens when parse_special. Longer tokens are matched first over the
// whole text, then shorter ones in what is left.
void partition_special(const TokenizerData& d, std::string_view text, bool parse_special, std::vector<Fragment>& out);

// bpe.cpp
void build_bpe_merges(const std::vector<std::string>& merges, TokenizerData& d);
// Byte-level BPE of one pre-tokenized piece (raw bytes).
void bpe_encode_piece(const TokenizerData& d, std::string_view piece, std::vector<int32_t>& out);

// spm.cpp: SentencePiece BPE of text whose spaces are already U+2581.
void spm_encode(const TokenizerData& d, std::string_view text, std::vector<int32_t>& out);

}  // namespace slim
