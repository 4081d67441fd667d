// Pre-tokenizers of byte-level BPE vocabularies, chosen by the GGUF key
// `tokenizer.ggml.pre`: the table of known names with their regex sequences
// and per-family flags, and the PCRE2 splitter that applies a sequence.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "base/status.h"

namespace slim {

// One row of the pre-tokenizer table.
struct PreTokenizerSpec {
  std::vector<std::string_view> names;   // values of tokenizer.ggml.pre
  std::vector<std::string_view> regexes; // applied in sequence, each splitting the pieces of the last
  bool ignore_merges = false;  // a piece that is already a token is emitted whole (Llama 3, Tekken)
  bool add_bos = false;        // default for add_bos_token when the file does not say
  bool no_bos = false;         // the family has no BOS token (ChatGLM)
};

// The row for a pre-tokenizer name, or nullptr when the name is unknown.
// An absent key is looked up as "default".
const PreTokenizerSpec* find_pre_tokenizer(std::string_view name);

// Compiled (JIT when available) regexes of one spec; safe to share between
// threads, every call gets its own match scratch.
class RegexSplitter {
 public:
  static Result<std::shared_ptr<const RegexSplitter>> compile(const std::vector<std::string_view>& regexes);
  ~RegexSplitter();
  RegexSplitter(const RegexSplitter&) = delete;
  RegexSplitter& operator=(const RegexSplitter&) = delete;

  // A piece of the input: [begin, begin + size).
  struct Piece { size_t begin, size; };
  // Splits text into pieces that cover it completely and in order: for each
  // regex, every piece found so far is searched on its own (lookarounds do not
  // see past it) and both matches and the gaps between them become pieces.
  void split(std::string_view text, std::vector<Piece>& pieces) const;

 private:
  RegexSplitter() = default;
  std::vector<void*> codes_;  // pcre2_code_8*, opaque here to keep pcre2.h out of headers
};

}  // namespace slim
