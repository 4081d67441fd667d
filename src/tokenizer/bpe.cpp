// Byte-level BPE (GPT-2 style): the merge table and the merge loop.
//
// Merges "a b" are resolved to symbol ids once at load time, so encoding a
// piece never builds or hashes strings: each byte starts as the symbol of its
// GPT-2 stand-in, and the adjacent pair with the lowest merge rank (leftmost
// on ties) is merged until no pair has a merge: by a linear scan for short
// pieces, by a priority queue for long ones.
#include <climits>
#include <queue>

#include "tokenizer/byte_level.h"
#include "tokenizer/tokenizer_data.h"

namespace slim {
namespace {

// Symbol id of a string: its vocab id, else an id past the vocab reserved for
// a merge operand the vocab lacks (a malformed file still encodes).
struct SymbolTable {
  const TokenizerData& d;
  std::unordered_map<std::string, int32_t> extra;
  int32_t id_of(const std::string& s) {
    const int32_t id = d.find(s);
    if (id != kNoToken) return id;
    return extra.try_emplace(s, d.n_vocab() + static_cast<int32_t>(extra.size())).first->second;
  }
};

struct Symbol {
  int32_t id;
  int32_t prev, next;
  uint32_t begin, size;  // bytes of the piece this symbol covers
};

struct Bigram {
  int32_t rank;
  int32_t left, right;          // symbol indices
  int32_t left_id, right_id;    // their ids when queued, to drop stale entries
  bool operator<(const Bigram& o) const {  // priority_queue pops the "largest"
    return rank != o.rank ? rank > o.rank : left > o.left;
  }
};

}  // namespace

void build_bpe_merges(const std::vector<std::string>& merges, TokenizerData& d) {
  SymbolTable table{d, {}};
  for (int b = 0; b < 256; ++b) d.byte_symbol[b] = table.id_of(byte_level::encode_byte(static_cast<uint8_t>(b)));
  d.merges = PairMap();
  d.merges.reserve(merges.size());
  for (size_t rank = 0; rank < merges.size(); ++rank) {
    const std::string& m = merges[rank];
    // The separator is the first space after the first character: stand-in
    // text has no raw spaces, but be exact for vocabularies that might.
    const size_t sp = m.find(' ', 1);
    if (sp == std::string::npos || sp + 1 >= m.size()) continue;  // malformed line: no merge
    const std::string left = m.substr(0, sp), right = m.substr(sp + 1);
    const int32_t l = table.id_of(left), r = table.id_of(right);
    const int32_t merged = table.id_of(left + right);
    d.merges.insert(pair_key(l, r), static_cast<int32_t>(rank), merged);  // first (lowest) rank wins
  }
}

namespace {

// Reused between calls on the same thread: most pieces are a few bytes long,
// and allocating per piece would cost more than merging it.
struct Workspace {
  std::vector<Symbol> sym;
  std::vector<int32_t> rank, merged;  // small path: pair (i, next of i)
};

// Below this many bytes a linear scan for the best pair beats the heap.
constexpr size_t kScanLimit = 32;
constexpr int32_t kNoMerge = INT32_MAX;

// Same result as the queue: always the lowest-rank adjacent pair, leftmost
// on ties, with ranks cached per pair and refreshed beside each merge.
void merge_by_scan(const TokenizerData& d, Workspace& w) {
  auto& sym = w.sym;
  auto refresh = [&](int32_t i) {
    if (i < 0) return;
    const int32_t j = sym[i].next;
    const auto* e = j >= 0 ? d.merges.find(pair_key(sym[i].id, sym[j].id)) : nullptr;
    w.rank[i] = e ? e->a : kNoMerge;
    w.merged[i] = e ? e->b : kNoToken;
  };
  w.rank.resize(sym.size());
  w.merged.resize(sym.size());
  for (int32_t i = 0; i < static_cast<int32_t>(sym.size()); ++i) refresh(i);
  while (true) {
    int32_t best = -1, best_rank = kNoMerge;
    for (int32_t i = 0; i >= 0; i = sym[i].next)
      if (w.rank[i] < best_rank) best = i, best_rank = w.rank[i];
    if (best < 0) break;
    Symbol& l = sym[best];
    Symbol& r = sym[l.next];
    l.id = w.merged[best];
    l.size += r.size;
    r.size = 0;
    l.next = r.next;
    if (r.next >= 0) sym[r.next].prev = best;
    refresh(l.prev);
    refresh(best);
  }
}

void merge_by_queue(const TokenizerData& d, Workspace& w) {
  auto& sym = w.sym;
  std::priority_queue<Bigram> queue;
  auto try_queue = [&](int32_t l, int32_t r) {
    if (l < 0 || r < 0) return;
    if (const auto* e = d.merges.find(pair_key(sym[l].id, sym[r].id)))
      queue.push({e->a, l, r, sym[l].id, sym[r].id});
  };
  for (int32_t i = 0; i + 1 < static_cast<int32_t>(sym.size()); ++i) try_queue(i, i + 1);

  while (!queue.empty()) {
    const Bigram b = queue.top();
    queue.pop();
    Symbol& l = sym[b.left];
    Symbol& r = sym[b.right];
    // Stale: one side was merged away or changed since this pair was queued.
    if (l.size == 0 || r.size == 0 || l.id != b.left_id || r.id != b.right_id) continue;
    l.id = d.merges.find(pair_key(l.id, r.id))->b;
    l.size += r.size;
    r.size = 0;
    l.next = r.next;
    if (r.next >= 0) sym[r.next].prev = b.left;
    try_queue(l.prev, b.left);
    try_queue(b.left, l.next);
  }
}

}  // namespace

void bpe_encode_piece(const TokenizerData& d, std::string_view piece, std::vector<int32_t>& out) {
  if (piece.empty()) return;
  if (d.ignore_merges) {
    const int32_t whole = d.find(byte_level::encode(piece));
    if (whole != kNoToken) {
      out.push_back(whole);
      return;
    }
  }
  if (piece.size() == 1) {
    const int32_t id = d.byte_symbol[static_cast<uint8_t>(piece[0])];
    if (id < d.n_vocab()) out.push_back(id);
    return;
  }

  thread_local Workspace w;
  auto& sym = w.sym;
  sym.resize(piece.size());
  for (size_t i = 0; i < piece.size(); ++i) {
    sym[i] = {d.byte_symbol[static_cast<uint8_t>(piece[i])], static_cast<int32_t>(i) - 1,
              i + 1 < piece.size() ? static_cast<int32_t>(i + 1) : -1, static_cast<uint32_t>(i), 1};
  }
  if (piece.size() <= kScanLimit) {
    merge_by_scan(d, w);
  } else {
    merge_by_queue(d, w);
  }

  for (int32_t i = 0; i >= 0; i = sym[i].next) {
    const Symbol& s = sym[i];
    if (s.id < d.n_vocab()) {
      out.push_back(s.id);
    } else {
      // Merged into a string the vocab lacks: fall back to the byte symbols.
      for (uint32_t k = s.begin; k < s.begin + s.size; ++k) {
        const int32_t id = d.byte_symbol[static_cast<uint8_t>(piece[k])];
        if (id < d.n_vocab()) out.push_back(id);
      }
    }
  }
}

}  // namespace slim
