// Tokenizer: ties the stages together (special-token partition, then SPM or
// pre-tokenizer + byte-level BPE per text fragment) and decodes ids back to
// bytes. Also the StreamDecoder that holds back partial UTF-8.
#include "tokenizer/tokenizer.h"

#include "gguf/gguf.h"
#include "tokenizer/tokenizer_data.h"
#include "base/utf8.h"

namespace slim {
namespace {

const std::string kEmpty;
constexpr std::string_view kSpmSpace = "\xE2\x96\x81";  // U+2581, SentencePiece's space

// SentencePiece's "remove extra whitespaces" normalization: no leading or
// trailing spaces, and runs of spaces collapsed to one.
std::string collapse_spaces(std::string_view s) {
  std::string out;
  out.reserve(s.size());
  for (char c : s) {
    if (c == ' ' && (out.empty() || out.back() == ' ')) continue;
    out += c;
  }
  while (!out.empty() && out.back() == ' ') out.pop_back();
  return out;
}

void spm_encode_fragment(const TokenizerData& d, std::string_view text, bool after_special, std::vector<int32_t>& out) {
  std::string normalized;
  if (d.remove_extra_whitespaces) {
    normalized = collapse_spaces(text);
    text = normalized;
  }
  std::string escaped;
  escaped.reserve(text.size() + 8);
  if (d.add_space_prefix && after_special) escaped += kSpmSpace;
  for (char c : text) {
    if (c == ' ') {
      escaped += kSpmSpace;
    } else {
      escaped += c;
    }
  }
  spm_encode(d, escaped, out);
}

}  // namespace

Tokenizer::Tokenizer(std::unique_ptr<TokenizerData> d) : d_(std::move(d)) {}
Tokenizer::~Tokenizer() = default;

Result<std::shared_ptr<Tokenizer>> Tokenizer::from_gguf(const GgufFile& f) {
  auto d = std::make_unique<TokenizerData>();
  if (Status st = load_tokenizer_data(f, *d); !st) return st;
  return std::shared_ptr<Tokenizer>(new Tokenizer(std::move(d)));
}

Result<std::shared_ptr<Tokenizer>> Tokenizer::from_file(const std::string& path) {
  auto f = GgufFile::open(path);
  if (!f) return Status::error(path + ": " + f.error());
  auto t = from_gguf(**f);
  if (!t) return Status::error(path + ": " + t.error());
  return t;
}

std::vector<int32_t> Tokenizer::tokenize(std::string_view text, bool add_special, bool parse_special) const {
  const TokenizerData& d = *d_;
  std::vector<int32_t> out;
  out.reserve(text.size() / 3 + 4);
  if (add_special && d.add_bos && d.bos != kNoToken) out.push_back(d.bos);

  std::vector<Fragment> fragments;
  partition_special(d, text, parse_special, fragments);
  if (d.model == VocabModel::Spm) {
    bool after_special = true;  // the start of the text counts as "after a special token"
    for (const Fragment& f : fragments) {
      if (f.token != kNoToken) {
        out.push_back(f.token);
        after_special = true;
      } else {
        spm_encode_fragment(d, text.substr(f.begin, f.size), after_special, out);
        after_special = false;
      }
    }
  } else {
    std::vector<RegexSplitter::Piece> pieces;
    for (const Fragment& f : fragments) {
      if (f.token != kNoToken) {
        out.push_back(f.token);
        continue;
      }
      const std::string_view frag = text.substr(f.begin, f.size);
      d.splitter->split(frag, pieces);
      for (const auto& p : pieces) bpe_encode_piece(d, frag.substr(p.begin, p.size), out);
    }
  }

  if (add_special && d.add_eos && d.eos != kNoToken) out.push_back(d.eos);
  return out;
}

std::string Tokenizer::token_to_piece(int32_t id, bool render_special) const {
  if (id < 0 || id >= d_->n_vocab()) return {};
  if (!render_special && is_control(id)) return {};
  return d_->pieces[id];
}

std::string Tokenizer::detokenize(const std::vector<int32_t>& ids, bool remove_special) const {
  const TokenizerData& d = *d_;
  std::string out;
  bool after_special = true;
  for (int32_t id : ids) {
    if (id < 0 || id >= d.n_vocab()) continue;
    const bool special = d.is_special_type(id);
    if (!(remove_special && is_control(id))) {
      const std::string& piece = d.pieces[id];
      // Undo the space tokenize() put before each text fragment.
      const bool strip = d.model == VocabModel::Spm && d.add_space_prefix && after_special && !special &&
                         !piece.empty() && piece[0] == ' ';
      out.append(piece, strip ? 1 : 0);
    }
    after_special = special;
  }
  return out;
}

int32_t Tokenizer::bos() const { return d_->bos; }
int32_t Tokenizer::eos() const { return d_->eos; }
int32_t Tokenizer::eot() const { return d_->eot; }
int32_t Tokenizer::eom() const { return d_->eom; }
int32_t Tokenizer::unk() const { return d_->unk; }
int32_t Tokenizer::pad() const { return d_->pad; }
bool Tokenizer::add_bos() const { return d_->add_bos && d_->bos != kNoToken; }
bool Tokenizer::add_eos() const { return d_->add_eos && d_->eos != kNoToken; }
int Tokenizer::n_vocab() const { return d_->n_vocab(); }
bool Tokenizer::is_eog(int32_t id) const { return id >= 0 && id < d_->n_vocab() && d_->eog[id]; }
bool Tokenizer::is_control(int32_t id) const {
  return id >= 0 && id < d_->n_vocab() && (d_->types[id] == kTypeControl || d_->types[id] == kTypeUnknown);
}
const std::string& Tokenizer::model() const { return d_->model_name; }
const std::string& Tokenizer::pre() const { return d_->pre_name; }
const std::string& Tokenizer::token_text(int32_t id) const {
  return id >= 0 && id < d_->n_vocab() ? d_->texts[id] : kEmpty;
}
int Tokenizer::token_type(int32_t id) const { return id >= 0 && id < d_->n_vocab() ? d_->types[id] : 0; }
float Tokenizer::token_score(int32_t id) const { return id >= 0 && id < d_->n_vocab() ? d_->scores[id] : 0.0f; }
int32_t Tokenizer::find_token(std::string_view text) const { return d_->find(text); }

StreamDecoder::StreamDecoder(const Tokenizer& tok, bool render_special) : tok_(&tok), render_special_(render_special) {}

std::string StreamDecoder::push(int32_t id) {
  pending_ += tok_->token_to_piece(id, render_special_);
  return drain(false);
}

std::string StreamDecoder::flush() { return drain(true); }

std::string StreamDecoder::drain(bool final) {
  std::string out;
  size_t i = 0;
  while (i < pending_.size()) {
    const int c = utf8::classify(pending_, i);
    if (c > 0) {
      out.append(pending_, i, c);
      i += c;
    } else if (c == utf8::kIncomplete) {
      if (!final) break;  // wait for the bytes that complete it
      out += utf8::kReplacement;
      i = pending_.size();
    } else {
      out += utf8::kReplacement;
      i += -c;
    }
  }
  pending_.erase(0, i);
  return out;
}

}  // namespace slim
