// Public tokenizer API: text <-> token ids for every GGUF vocabulary family
// slim supports, configured entirely from the file's tokenizer.* metadata.
//
//   tokenizer.ggml.model = "llama"  SentencePiece BPE (scores, <0xNN> byte fallback, U+2581 for spaces)
//   tokenizer.ggml.model = "gpt2"   byte-level BPE (merge ranks, GPT-2 byte alphabet) with the
//                                   pre-tokenizer named by tokenizer.ggml.pre (absent: "default")
//
// Any other model or an unknown pre-tokenizer name is an error naming it.
// Tokenizers are immutable after loading; all methods are thread-safe.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "base/status.h"

namespace slim {

class GgufFile;
struct TokenizerData;

// Values of tokenizer.ggml.token_type.
enum class TokenType : int {
  Undefined = 0, Normal = 1, Unknown = 2, Control = 3, UserDefined = 4, Unused = 5, Byte = 6,
};

class Tokenizer {
 public:
  static Result<std::shared_ptr<Tokenizer>> from_gguf(const GgufFile& f);
  // Opens PATH (a model or a vocab-only GGUF) and reads its tokenizer.
  static Result<std::shared_ptr<Tokenizer>> from_file(const std::string& path);
  ~Tokenizer();
  Tokenizer(const Tokenizer&) = delete;
  Tokenizer& operator=(const Tokenizer&) = delete;

  // add_special: BOS / EOS as the file's add_bos_token / add_eos_token say.
  // parse_special: text of control tokens (e.g. "<|im_start|>") becomes that
  // token; otherwise it is tokenized as plain text. User-defined tokens are
  // always matched whole.
  std::vector<int32_t> tokenize(std::string_view text, bool add_special, bool parse_special) const;

  // Bytes of one token: byte tokens give their byte, SPM's U+2581 becomes a
  // space, byte-level BPE text is mapped back to bytes. Control / unknown
  // tokens give their text when render_special, else nothing. Out-of-range
  // ids give nothing. May be a partial UTF-8 sequence (see StreamDecoder).
  std::string token_to_piece(int32_t id, bool render_special = true) const;

  // Concatenated pieces. remove_special drops control and unknown tokens.
  // For SPM vocabularies with a space prefix, the space tokenize() added to
  // the start of the text and after each special token is removed again, so
  // detokenize(tokenize(s)) == s.
  std::string detokenize(const std::vector<int32_t>& ids, bool remove_special = false) const;

  int32_t bos() const;  // -1 when the vocabulary has none
  int32_t eos() const;
  int32_t eot() const;  // end of turn (e.g. <|eot_id|>, <|im_end|>), -1 if none
  int32_t eom() const;
  int32_t unk() const;
  int32_t pad() const;
  bool add_bos() const;
  bool add_eos() const;
  int n_vocab() const;
  bool is_eog(int32_t id) const;      // end of generation: eos, eot, eom and turn-end tokens
  bool is_control(int32_t id) const;  // control or unknown: rendered only on request
  const std::string& model() const;   // tokenizer.ggml.model
  const std::string& pre() const;     // tokenizer.ggml.pre ("" when absent)

  const std::string& token_text(int32_t id) const;  // as stored in the vocab ("" if out of range)
  int token_type(int32_t id) const;                 // a TokenType value (0 if out of range)
  float token_score(int32_t id) const;
  int32_t find_token(std::string_view text) const;  // id of the token with exactly this text, or -1

 private:
  explicit Tokenizer(std::unique_ptr<TokenizerData> d);
  std::unique_ptr<TokenizerData> d_;
};

// Turns a stream of token ids into text that never ends inside a UTF-8
// sequence: bytes of an incomplete character are held back until the next
// token completes it; bytes that can no longer form a valid character come
// out as U+FFFD. Pieces are emitted as token_to_piece gives them (no space
// stripping), which is what continuing generated text needs.
class StreamDecoder {
 public:
  explicit StreamDecoder(const Tokenizer& tok, bool render_special = true);
  std::string push(int32_t id);
  // Text still held back, with an unfinished character as U+FFFD.
  std::string flush();

 private:
  std::string drain(bool final);
  const Tokenizer* tok_;
  bool render_special_;
  std::string pending_;
};

}  // namespace slim
