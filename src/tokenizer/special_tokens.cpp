// Special-token matching: the trie over control / user-defined / unknown token
// texts, and cutting a text into special tokens and plain-text fragments.
//
// The rule (llama.cpp's, which the test vectors follow): special tokens are
// taken longest first; each token claims its non-overlapping occurrences,
// left to right, in the text no longer token has claimed. Rather than one
// substring search per special token of the vocab (hundreds in Llama 3,
// thousands in Gemma), one trie walk finds which tokens occur at all, and
// only those are searched for.
#include <algorithm>

#include "tokenizer/tokenizer_data.h"

namespace slim {

void build_special_trie(TokenizerData& d) {
  d.special_trie = PairMap();
  d.trie_token.assign(1, kNoToken);
  d.special_first_byte.fill(false);
  for (int32_t id = 0; id < d.n_vocab(); ++id) {
    if (!d.is_special_type(id)) continue;
    const std::string& text = d.texts[id];
    int32_t node = 0;
    for (unsigned char c : text) {
      const uint64_t k = pair_key(node, c);
      if (const auto* e = d.special_trie.find(k)) {
        node = e->a;
      } else {
        const int32_t child = static_cast<int32_t>(d.trie_token.size());
        d.trie_token.push_back(kNoToken);
        d.special_trie.insert(k, child, 0);
        node = child;
      }
    }
    d.trie_token[node] = id;  // a duplicated text keeps its last id, like text_to_id
    d.special_first_byte[static_cast<unsigned char>(text[0])] = true;
  }
}

namespace {

bool is_space(char c) { return c == ' ' || (c >= '\t' && c <= '\r'); }

// The allowed special tokens that occur anywhere in text, each once, in
// claiming order: longest first, equal lengths by id.
std::vector<int32_t> occurring_tokens(const TokenizerData& d, std::string_view text, bool parse_special) {
  // Per-thread "seen" marks stamped with a call counter, so a call costs no
  // clearing or allocation proportional to the vocab once warm.
  thread_local std::vector<uint32_t> seen;
  thread_local uint32_t stamp = 0;
  if (seen.size() < static_cast<size_t>(d.n_vocab())) seen.assign(d.n_vocab(), 0);
  if (++stamp == 0) {
    std::fill(seen.begin(), seen.end(), 0);
    stamp = 1;
  }
  std::vector<int32_t> found;
  for (size_t pos = 0; pos < text.size(); ++pos) {
    if (!d.special_first_byte[static_cast<unsigned char>(text[pos])]) continue;
    int32_t node = 0;
    for (size_t i = pos; i < text.size(); ++i) {
      const auto* e = d.special_trie.find(pair_key(node, static_cast<unsigned char>(text[i])));
      if (!e) break;
      node = e->a;
      const int32_t id = d.trie_token[node];
      if (id == kNoToken || seen[id] == stamp) continue;
      if (parse_special || d.types[id] == kTypeUserDefined) {
        seen[id] = stamp;
        found.push_back(id);
      }
    }
  }
  std::sort(found.begin(), found.end(), [&](int32_t a, int32_t b) {
    const size_t la = d.texts[a].size(), lb = d.texts[b].size();
    return la != lb ? la > lb : a < b;
  });
  return found;
}

}  // namespace

void partition_special(const TokenizerData& d, std::string_view text, bool parse_special, std::vector<Fragment>& out) {
  out.clear();
  if (text.empty()) return;
  out.push_back({kNoToken, 0, text.size()});
  const std::vector<int32_t> tokens = occurring_tokens(d, text, parse_special);

  // Each token claims its occurrences, left to right, inside the text
  // fragments left by the tokens before it.
  std::vector<Fragment> next;
  for (const int32_t id : tokens) {
    const std::string_view tok = d.texts[id];
    next.clear();
    for (const Fragment& f : out) {
      if (f.token != kNoToken) {
        next.push_back(f);
        continue;
      }
      size_t b = f.begin;
      const size_t e = f.begin + f.size;
      const std::string_view area = text.substr(0, e);
      while (b < e) {
        const size_t m = area.find(tok, b);
        if (m == std::string_view::npos) break;
        size_t left_end = m;
        if (d.lstrip[id])
          while (left_end > b && is_space(text[left_end - 1])) --left_end;
        if (left_end > b) next.push_back({kNoToken, b, left_end - b});
        next.push_back({id, m, tok.size()});
        b = m + tok.size();
        if (d.rstrip[id])
          while (b < e && is_space(text[b])) ++b;
      }
      if (b < e) next.push_back({kNoToken, b, e - b});
    }
    out.swap(next);
  }
}

}  // namespace slim
