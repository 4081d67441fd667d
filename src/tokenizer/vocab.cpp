// Loading a tokenizer from GGUF metadata: vocab arrays, special ids, flags
// with llama.cpp's documented per-family defaults, the end-of-generation set,
// and the per-model token attributes llama.cpp applies by name.
#include <algorithm>
#include <cctype>
#include <initializer_list>
#include <span>

#include "gguf/gguf.h"
#include "tokenizer/byte_level.h"
#include "tokenizer/tokenizer_data.h"
#include "base/utf8.h"

namespace slim {
namespace {

constexpr const char* kKeyPrefix = "tokenizer.ggml.";

std::string key(const char* name) { return std::string(kKeyPrefix) + name; }

// Reads an id key; an absent key, or one outside the vocab (files use
// 0xFFFFFFFF for "none"), leaves `id` unchanged.
void read_id(const GgufFile& f, const char* name, int32_t n_vocab, int32_t& id) {
  auto v = f.get_int(key(name));
  if (v && *v >= 0 && *v < n_vocab) id = static_cast<int32_t>(*v);
}

int32_t first_present(const TokenizerData& d, std::span<const std::string_view> texts) {
  for (auto t : texts) {
    const int32_t id = d.find(t);
    if (id != kNoToken) return id;
  }
  return kNoToken;
}

// Token texts that mark a turn or document end in the families slim knows.
constexpr std::string_view kEotTexts[] = {
    "<|eot_id|>", "<|im_end|>", "<|end|>", "<end_of_turn>", "<|endoftext|>", "<|end_of_text|>",
    "<EOT>", "_<EOT>", "<\xEF\xBD\x9C" "end\xE2\x96\x81of\xE2\x96\x81sentence\xEF\xBD\x9C>", "<end_of_utterance>"};
constexpr std::string_view kEogTexts[] = {
    "<|eot_id|>", "<|im_end|>", "<|end|>", "<|return|>", "<|call|>", "<end_of_turn>", "<|endoftext|>",
    "<|eom_id|>", "<EOT>", "_<EOT>", "<|end_of_text|>", "<end_of_utterance>"};
// Fill-in-the-middle markers: recognised by text when the file gives no id.
constexpr std::string_view kFimPre[] = {
    "<|fim_prefix|>", "<fim-prefix>", "<fim_prefix>", "<\xEF\xBD\x9C" "fim\xE2\x96\x81" "begin\xEF\xBD\x9C>",
    "<PRE>", "\xE2\x96\x81<PRE>", "<|code_prefix|>"};
constexpr std::string_view kFimSuf[] = {
    "<|fim_suffix|>", "<fim-suffix>", "<fim_suffix>", "<\xEF\xBD\x9C" "fim\xE2\x96\x81hole\xEF\xBD\x9C>",
    "<SUF>", "\xE2\x96\x81<SUF>", "<|code_suffix|>"};
constexpr std::string_view kFimMid[] = {
    "<|fim_middle|>", "<fim-middle>", "<fim_middle>", "<\xEF\xBD\x9C" "fim\xE2\x96\x81" "end\xEF\xBD\x9C>",
    "<MID>", "\xE2\x96\x81<MID>", "<|code_middle|>"};
constexpr std::string_view kFimPad[] = {"<|fim_pad|>", "<fim-pad>", "<fim_pad>", "<PAD>"};
constexpr std::string_view kFimRep[] = {"<|fim_repo|>", "<|repo_name|>", "<fim-repo>", "<REPO>", "<reponame>"};
constexpr std::string_view kFimSep[] = {"<|file_sep|>"};

std::string render_piece(const TokenizerData& d, int32_t id) {
  const std::string& text = d.texts[id];
  switch (d.types[id]) {
    case kTypeControl:
    case kTypeUnknown:
    case kTypeUserDefined:
      return text;
    case kTypeNormal: {
      std::string out;
      if (d.model == VocabModel::Bpe) {
        byte_level::decode(text, out);
      } else {
        // U+2581 LOWER ONE EIGHTH BLOCK stands for a space in SentencePiece.
        static constexpr std::string_view kSpace = "\xE2\x96\x81";
        for (size_t i = 0; i < text.size();) {
          if (text.compare(i, kSpace.size(), kSpace) == 0) {
            out += ' ';
            i += kSpace.size();
          } else {
            out += text[i++];
          }
        }
      }
      return out;
    }
    case kTypeByte:
      if (d.model == VocabModel::Spm && text.size() == 6 && text.compare(0, 3, "<0x") == 0 && text[5] == '>' &&
          std::isxdigit(static_cast<unsigned char>(text[3])) && std::isxdigit(static_cast<unsigned char>(text[4]))) {
        return std::string(1, static_cast<char>(std::stoi(text.substr(3, 2), nullptr, 16)));
      }
      return text;
    default:  // unused / undefined tokens have no text
      return {};
  }
}

}  // namespace

Status load_tokenizer_data(const GgufFile& f, TokenizerData& d) {
  auto model = f.get_string(key("model"));
  if (!model) return Status::error("no tokenizer in file: key tokenizer.ggml.model is missing");
  d.model_name = *model;
  if (d.model_name == "llama") {
    d.model = VocabModel::Spm;
  } else if (d.model_name == "gpt2") {
    d.model = VocabModel::Bpe;
  } else {
    return Status::error(format("unsupported tokenizer model '%s' (tokenizer.ggml.model); supported: llama, gpt2",
                                d.model_name.c_str()));
  }
  d.pre_name = f.get_string(key("pre")).value_or("");
  const PreTokenizerSpec* spec = find_pre_tokenizer(d.pre_name);
  if (!spec) return Status::error(format("unknown pre-tokenizer '%s' (tokenizer.ggml.pre)", d.pre_name.c_str()));

  const GgufArray* tokens = f.get_array(key("tokens"));
  if (!tokens || tokens->elem_type != GgufType::STRING || tokens->strings.empty())
    return Status::error("tokenizer.ggml.tokens is missing, empty or not a string array");
  const size_t n = tokens->strings.size();
  if (n > static_cast<size_t>(INT32_MAX)) return Status::error("tokenizer.ggml.tokens is too large");
  const GgufArray* scores = f.get_array(key("scores"));
  if (scores && scores->floats.size() != n)
    return Status::error(format("tokenizer.ggml.scores has %zu entries for %zu tokens", scores->floats.size(), n));
  const GgufArray* types = f.get_array(key("token_type"));
  if (types && types->ints.size() != n)
    return Status::error(format("tokenizer.ggml.token_type has %zu entries for %zu tokens", types->ints.size(), n));

  d.texts.resize(n);
  d.scores.assign(n, 0.0f);
  d.types.assign(n, kTypeNormal);
  for (size_t i = 0; i < n; ++i) {
    d.texts[i] = tokens->strings[i];
    // An empty token could never be matched or told apart; llama.cpp names it.
    if (d.texts[i].empty()) d.texts[i] = "[EMPTY_" + std::to_string(i) + "]";
    if (scores) d.scores[i] = static_cast<float>(scores->floats[i]);
    if (types) {
      const int64_t t = types->ints[i];
      d.types[i] = (t >= kTypeNormal && t <= kTypeByte) ? static_cast<int32_t>(t) : kTypeUndefined;
    }
  }
  d.text_to_id.build(d.texts);  // d.texts is not resized again
  const int32_t n_vocab = d.n_vocab();

  // Family defaults (llama.cpp's): SPM adds BOS and a space prefix; byte-level
  // BPE adds BOS only for the families whose tokenizer does.
  if (d.model == VocabModel::Spm) {
    d.bos = 1 < n_vocab ? 1 : kNoToken;
    d.eos = 2 < n_vocab ? 2 : kNoToken;
    d.unk = 0;
    d.add_bos = true;
    d.add_space_prefix = true;
  } else {
    d.add_bos = spec->add_bos;
    d.ignore_merges = spec->ignore_merges;
  }
  if (auto v = f.get_bool(key("add_space_prefix"))) d.add_space_prefix = *v;
  if (auto v = f.get_bool(key("remove_extra_whitespaces"))) d.remove_extra_whitespaces = *v;

  read_id(f, "bos_token_id", n_vocab, d.bos);
  read_id(f, "eos_token_id", n_vocab, d.eos);
  read_id(f, "eot_token_id", n_vocab, d.eot);
  read_id(f, "eom_token_id", n_vocab, d.eom);
  read_id(f, "unknown_token_id", n_vocab, d.unk);
  read_id(f, "padding_token_id", n_vocab, d.pad);
  read_id(f, "seperator_token_id", n_vocab, d.sep);  // sic: the GGUF key is spelled this way
  if (spec->no_bos && !f.get_int(key("bos_token_id"))) d.bos = kNoToken;
  if (auto v = f.get_bool(key("add_bos_token"))) d.add_bos = *v;
  if (auto v = f.get_bool(key("add_eos_token"))) d.add_eos = *v;

  int32_t fim_pre = kNoToken, fim_suf = kNoToken, fim_mid = kNoToken;
  int32_t fim_pad = kNoToken, fim_rep = kNoToken, fim_sep = kNoToken;
  read_id(f, "prefix_token_id", n_vocab, fim_pre);  // older names of the FIM keys
  read_id(f, "suffix_token_id", n_vocab, fim_suf);
  read_id(f, "middle_token_id", n_vocab, fim_mid);
  read_id(f, "fim_pre_token_id", n_vocab, fim_pre);
  read_id(f, "fim_suf_token_id", n_vocab, fim_suf);
  read_id(f, "fim_mid_token_id", n_vocab, fim_mid);
  read_id(f, "fim_pad_token_id", n_vocab, fim_pad);
  read_id(f, "fim_rep_token_id", n_vocab, fim_rep);
  read_id(f, "fim_sep_token_id", n_vocab, fim_sep);

  // Tokens found by their text are control tokens whatever the file says, so
  // they are never produced from plain text (llama.cpp does the same; many
  // converted files mark them user-defined or normal).
  auto detect = [&](int32_t& id, std::span<const std::string_view> texts) {
    if (id == kNoToken) {
      id = first_present(d, texts);
      if (id != kNoToken) d.types[id] = kTypeControl;
    }
  };
  detect(d.eot, kEotTexts);
  constexpr std::string_view kEom[] = {"<|eom_id|>"};
  detect(d.eom, kEom);
  detect(fim_pre, kFimPre);
  detect(fim_suf, kFimSuf);
  detect(fim_mid, kFimMid);
  detect(fim_pad, kFimPad);
  detect(fim_rep, kFimRep);
  detect(fim_sep, kFimSep);

  d.eog.assign(n, 0);
  for (auto t : kEogTexts) {
    const int32_t id = d.find(t);
    if (id != kNoToken) {
      d.eog[id] = 1;
      d.types[id] = kTypeControl;
    }
  }
  // A model that reaches a FIM padding / repo / file marker has left the
  // completion it was asked for.
  for (int32_t id : {d.eos, d.eot, d.eom, fim_pad, fim_rep, fim_sep})
    if (id != kNoToken) d.eog[id] = 1;
  // gpt-oss ("harmony") ends a message with <|end|> but keeps generating;
  // there <|return|> and <|call|> end generation instead.
  {
    const int32_t ret = d.find("<|return|>"), call = d.find("<|call|>"), end = d.find("<|end|>");
    if (ret != kNoToken && call != kNoToken && end != kNoToken) {
      d.eog[end] = 0;
      d.types[end] = kTypeUserDefined;
    }
  }

  // Whitespace stripping beside special tokens, which the GGUF does not store;
  // llama.cpp sets it by model name for the families whose tokenizer does it.
  d.lstrip.assign(n, 0);
  d.rstrip.assign(n, 0);
  {
    std::string name = f.get_string("general.name").value_or("");
    std::transform(name.begin(), name.end(), name.begin(), [](unsigned char c) { return std::tolower(c); });
    const std::string arch = f.get_string("general.architecture").value_or("");
    auto contains = [](const std::string& s, std::initializer_list<std::string_view> subs) {
      for (auto x : subs)
        if (s.find(x) != std::string::npos) return true;
      return false;
    };
    if (contains(d.pre_name, {"jina-v2-de", "jina-v2-es", "jina-v2-code"}) ||
        contains(arch, {"nomic-bert-moe", "jina-bert-v3"})) {
      const int32_t mask = d.find("<mask>");
      if (mask != kNoToken) d.lstrip[mask] = 1;
    } else if (contains(name, {"phi-3", "phi3"})) {
      for (int32_t id = 0; id < n_vocab; ++id)
        if (d.is_special_type(id)) d.rstrip[id] = 1;
      for (auto t : {"</s>"})
        if (int32_t id = d.find(t); id != kNoToken) d.rstrip[id] = 1;
      for (auto t : {"<unk>", "<s>", "<|endoftext|>"})
        if (int32_t id = d.find(t); id != kNoToken) d.rstrip[id] = 0;
    }
  }

  if (d.model == VocabModel::Bpe) {
    const GgufArray* merges = f.get_array(key("merges"));
    if (!merges || merges->elem_type != GgufType::STRING)
      return Status::error("byte-level BPE vocabulary without tokenizer.ggml.merges");
    build_bpe_merges(merges->strings, d);
    auto splitter = RegexSplitter::compile(spec->regexes);
    if (!splitter) return Status::error(format("pre-tokenizer '%s': %s", d.pre_name.c_str(), splitter.error().c_str()));
    d.splitter = *splitter;
  } else {
    static constexpr char kHex[] = "0123456789ABCDEF";
    for (int b = 0; b < 256; ++b) {
      const char name[7] = {'<', '0', 'x', kHex[b >> 4], kHex[b & 15], '>', 0};
      int32_t id = d.find(name);
      if (id == kNoToken) id = d.find(std::string(1, static_cast<char>(b)));
      d.byte_token[b] = id;
    }
    std::array<bool, 128> joinable{};
    for (const std::string& t : d.texts) {
      size_t n_chars = 0;
      for (size_t i = 0; i < t.size(); i += utf8::char_length(t, i)) ++n_chars;
      if (n_chars < 2) continue;
      for (unsigned char c : t)
        if (c < 128) joinable[c] = true;
    }
    for (int c = 0; c < 128; ++c) d.spm_barrier[c] = !joinable[c];
  }

  build_special_trie(d);

  d.pieces.resize(n);
  for (int32_t id = 0; id < n_vocab; ++id) d.pieces[id] = render_piece(d, id);
  return Status();
}

}  // namespace slim
