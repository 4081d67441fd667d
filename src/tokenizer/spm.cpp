// SentencePiece BPE ("llama" vocabularies): start from UTF-8 characters and
// repeatedly merge the adjacent pair whose concatenation is a vocab token with
// the highest score (leftmost on ties). Characters left without a token fall
// back to <0xNN> byte tokens.
//
// Symbols are always contiguous byte ranges of the input, so a candidate pair
// is looked up as a string_view into the text with no copying.
#include <queue>

#include "tokenizer/tokenizer_data.h"
#include "base/utf8.h"

namespace slim {
namespace {

struct Symbol {
  int32_t prev, next;
  uint32_t begin, size;
};

struct Bigram {
  float score;
  int32_t left, right;
  uint32_t size;  // bytes of the merged piece, to drop stale entries
  bool operator<(const Bigram& o) const {  // priority_queue pops the "largest"
    return score != o.score ? score < o.score : left > o.left;
  }
};

// A final symbol: its token, else (a single character the vocab lacks) its
// bytes as byte tokens.
void emit_piece(const TokenizerData& d, std::string_view piece, std::vector<int32_t>& out) {
  const int32_t id = d.find(piece);
  if (id != kNoToken) {
    out.push_back(id);
    return;
  }
  for (char c : piece) {
    const int32_t bt = d.byte_token[static_cast<uint8_t>(c)];
    if (bt != kNoToken) {
      out.push_back(bt);
    } else if (d.unk != kNoToken) {
      out.push_back(d.unk);
    }
  }
}

void encode_segment(const TokenizerData& d, std::string_view text, std::vector<int32_t>& out) {
  if (text.empty()) return;
  thread_local std::vector<Symbol> sym;  // reused: no allocation per call once warm
  sym.clear();
  for (size_t i = 0; i < text.size();) {
    // Valid characters are symbols; each byte of an ill-formed sequence is
    // its own symbol, so it falls back to exactly its byte token.
    const int c = utf8::classify(text, i);
    const size_t n = c > 0 ? static_cast<size_t>(c) : 1;
    const int32_t idx = static_cast<int32_t>(sym.size());
    sym.push_back({idx - 1, i + n < text.size() ? idx + 1 : -1, static_cast<uint32_t>(i), static_cast<uint32_t>(n)});
    i += n;
  }

  std::priority_queue<Bigram> queue;
  auto try_queue = [&](int32_t l, int32_t r) {
    if (l < 0 || r < 0) return;
    const uint32_t size = sym[l].size + sym[r].size;
    const int32_t id = d.find(text.substr(sym[l].begin, size));
    if (id != kNoToken) queue.push({d.scores[id], l, r, size});
  };
  for (int32_t i = 0; i + 1 < static_cast<int32_t>(sym.size()); ++i) try_queue(i, i + 1);

  while (!queue.empty()) {
    const Bigram b = queue.top();
    queue.pop();
    Symbol& l = sym[b.left];
    Symbol& r = sym[b.right];
    if (l.size == 0 || r.size == 0 || l.size + r.size != b.size) continue;  // stale
    l.size += r.size;
    r.size = 0;
    l.next = r.next;
    if (r.next >= 0) sym[r.next].prev = b.left;
    try_queue(l.prev, b.left);
    try_queue(b.left, l.next);
  }

  for (int32_t i = 0; i >= 0; i = sym[i].next) emit_piece(d, text.substr(sym[i].begin, sym[i].size), out);
}

}  // namespace

void spm_encode(const TokenizerData& d, std::string_view text, std::vector<int32_t>& out) {
  size_t start = 0;
  for (size_t i = 0; i < text.size(); ++i) {
    const auto c = static_cast<unsigned char>(text[i]);
    if (c < 128 && d.spm_barrier[c]) {
      encode_segment(d, text.substr(start, i - start), out);
      emit_piece(d, text.substr(i, 1), out);
      start = i + 1;
    }
  }
  encode_segment(d, text.substr(start), out);
}

}  // namespace slim
