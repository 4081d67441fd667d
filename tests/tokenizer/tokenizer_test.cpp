// Unit tests of the tokenizer API: metadata errors, special ids and flags per
// family, special-token matching rules, pre-tokenizer splits, decoding, the
// stream decoder, and inputs that are not valid UTF-8.
#include "gguf/gguf.h"
#include "tokenizer/byte_level.h"
#include "tokenizer/pre_tokenizer.h"
#include "tokenizer_test_util.h"

namespace slim::test {
namespace {

std::shared_ptr<Tokenizer> family(const std::string& f) {
  std::string err;
  auto t = load_shared_tokenizer("tokenizer/ggml-vocab-" + f + ".gguf", &err);
  EXPECT_TRUE(t) << f << ": " << err;
  return t;
}

// Writes a copy of a shared vocab with one key changed (or removed) and
// returns what loading it gives.
Result<std::shared_ptr<Tokenizer>> load_modified(const std::string& family_name, const std::string& key,
                                                 const GgufValue* value) {
  auto src = GgufFile::open(shared_path("tokenizer/ggml-vocab-" + family_name + ".gguf"));
  if (!src) return src.status();
  GgufWriter w;
  w.copy_metadata_from(**src);
  if (value) {
    w.set(key, *value);
  } else {
    w.remove(key);
  }
  const std::string path = temp_dir() + "/" + family_name + "-modified.gguf";
  if (Status st = w.write(path); !st) return st;
  auto f = GgufFile::open(path);
  if (!f) return f.status();
  return Tokenizer::from_gguf(**f);
}

TEST(Tokenizer, UnknownPreTokenizerIsAnErrorNamingIt) {
  SLIM_SHARED_FILE(p, "tokenizer/ggml-vocab-gpt-2.gguf");
  const GgufValue v = GgufValue::str("no-such-pretokenizer");
  auto t = load_modified("gpt-2", "tokenizer.ggml.pre", &v);
  ASSERT_FALSE(t.ok());
  EXPECT_NE(t.error().find("no-such-pretokenizer"), std::string::npos) << t.error();
  // On a SentencePiece vocab too: an unknown name is never silently ignored.
  auto s = load_modified("llama-spm", "tokenizer.ggml.pre", &v);
  ASSERT_FALSE(s.ok());
  EXPECT_NE(s.error().find("no-such-pretokenizer"), std::string::npos) << s.error();
}

TEST(Tokenizer, UnsupportedModelIsAnErrorNamingIt) {
  SLIM_SHARED_FILE(p, "tokenizer/ggml-vocab-llama-spm.gguf");
  for (const char* model : {"bert", "t5", "rwkv", "something-else"}) {
    const GgufValue v = GgufValue::str(model);
    auto t = load_modified("llama-spm", "tokenizer.ggml.model", &v);
    ASSERT_FALSE(t.ok()) << model;
    EXPECT_NE(t.error().find(model), std::string::npos) << t.error();
  }
}

TEST(Tokenizer, MissingPiecesAreErrors) {
  SLIM_SHARED_FILE(p, "tokenizer/ggml-vocab-gpt-2.gguf");
  auto no_tokens = load_modified("gpt-2", "tokenizer.ggml.tokens", nullptr);
  ASSERT_FALSE(no_tokens.ok());
  EXPECT_NE(no_tokens.error().find("tokenizer.ggml.tokens"), std::string::npos);
  auto no_merges = load_modified("gpt-2", "tokenizer.ggml.merges", nullptr);
  ASSERT_FALSE(no_merges.ok());
  EXPECT_NE(no_merges.error().find("merges"), std::string::npos);
  auto no_model = load_modified("gpt-2", "tokenizer.ggml.model", nullptr);
  ASSERT_FALSE(no_model.ok());
  // Wrong-length side arrays would index out of range.
  GgufArray short_types;
  short_types.elem_type = GgufType::INT32;
  short_types.ints = {1, 1, 1};
  const GgufValue v = GgufValue::array_of(short_types);
  auto bad_types = load_modified("gpt-2", "tokenizer.ggml.token_type", &v);
  ASSERT_FALSE(bad_types.ok());
  EXPECT_NE(bad_types.error().find("token_type"), std::string::npos);
}

TEST(Tokenizer, MissingPreKeyMeansDefault) {
  SLIM_SHARED_FILE(p, "tokenizer/ggml-vocab-gpt-2.gguf");
  auto t = load_modified("gpt-2", "tokenizer.ggml.pre", nullptr);
  ASSERT_TRUE(t.ok()) << t.error();
  EXPECT_EQ((*t)->pre(), "");
  // The default pre-tokenizer cuts digit runs in threes; gpt-2 does not.
  auto pieces = [](const Tokenizer& tok, const std::string& s) {
    std::vector<std::string> out;
    for (int32_t id : tok.tokenize(s, false, false)) out.push_back(tok.token_to_piece(id));
    return out;
  };
  const auto def = pieces(**t, "1234567");
  for (const auto& p : def) EXPECT_LE(p.size(), 3u);
  EXPECT_EQ((*t)->detokenize((*t)->tokenize("1234567", false, false)), "1234567");
}

struct Ids { const char* family; int32_t bos, eos; bool add_bos; int n_vocab; };

TEST(Tokenizer, SpecialIdsAndFlags) {
  // From ../shared/tokenizer/README.md; add_bos per llama.cpp's family defaults
  // unless the file says.
  for (const Ids& w : {Ids{"llama-spm", 1, 2, true, 32000}, Ids{"llama-bpe", 128000, 128001, true, 128256},
                       Ids{"qwen2", -1, 151645, false, 151936}, Ids{"gpt-2", 50256, 50256, false, 50257},
                       Ids{"phi-3", 1, 32000, true, 32064}, Ids{"deepseek-llm", 100000, 100001, true, 102400},
                       Ids{"falcon", 11, 11, false, 65024}, Ids{"starcoder", 0, 0, false, 49152}}) {
    auto t = family(w.family);
    ASSERT_TRUE(t);
    EXPECT_EQ(t->bos(), w.bos) << w.family;
    EXPECT_EQ(t->eos(), w.eos) << w.family;
    EXPECT_EQ(t->add_bos(), w.add_bos) << w.family;
    EXPECT_EQ(t->n_vocab(), w.n_vocab) << w.family;
    EXPECT_TRUE(t->is_eog(w.eos)) << w.family;
    const auto ids = t->tokenize("Hi", /*add_special=*/true, false);
    ASSERT_FALSE(ids.empty());
    EXPECT_EQ(ids.front() == w.bos, w.add_bos) << w.family;
  }
}

TEST(Tokenizer, EndOfGenerationTokens) {
  auto l3 = family("llama-bpe");
  ASSERT_TRUE(l3);
  const int32_t eot_id = l3->find_token("<|eot_id|>");
  ASSERT_GE(eot_id, 0);
  EXPECT_TRUE(l3->is_eog(eot_id));
  EXPECT_EQ(l3->eot(), eot_id);
  EXPECT_FALSE(l3->is_eog(l3->find_token("<|start_header_id|>")));
  EXPECT_FALSE(l3->is_eog(l3->tokenize("Hello", false, false)[0]));

  auto qwen = family("qwen2");
  ASSERT_TRUE(qwen);
  for (const char* s : {"<|im_end|>", "<|endoftext|>"}) EXPECT_TRUE(qwen->is_eog(qwen->find_token(s))) << s;
  EXPECT_FALSE(qwen->is_eog(qwen->find_token("<|im_start|>")));
  EXPECT_EQ(qwen->eot(), qwen->find_token("<|im_end|>"));

  auto phi = family("phi-3");
  ASSERT_TRUE(phi);
  EXPECT_TRUE(phi->is_eog(phi->find_token("<|end|>")));
  EXPECT_FALSE(phi->is_eog(-1));
  EXPECT_FALSE(phi->is_eog(1 << 30));
}

TEST(Tokenizer, ControlTokensOnlyWithParseSpecial) {
  auto qwen = family("qwen2");
  ASSERT_TRUE(qwen);
  const int32_t im_start = qwen->find_token("<|im_start|>");
  const auto parsed = qwen->tokenize("<|im_start|>user", false, true);
  ASSERT_GE(parsed.size(), 2u);
  EXPECT_EQ(parsed[0], im_start);
  const auto plain = qwen->tokenize("<|im_start|>user", false, false);
  EXPECT_EQ(std::find(plain.begin(), plain.end(), im_start), plain.end());
  EXPECT_GT(plain.size(), parsed.size());
  // User-defined tokens are matched whole either way.
  const int32_t think = qwen->find_token("<think>");
  ASSERT_EQ(qwen->token_type(think), static_cast<int>(TokenType::UserDefined));
  for (bool ps : {false, true}) {
    const auto ids = qwen->tokenize("a<think>b", false, ps);
    EXPECT_NE(std::find(ids.begin(), ids.end(), think), ids.end()) << "parse_special=" << ps;
  }
}

TEST(Tokenizer, LongestSpecialTokenWins) {
  // mpt's user-defined tokens are runs of 2..24 spaces: a run of 30 becomes
  // the 24-space token and then the 6-space one, never smaller pieces first.
  auto mpt = family("mpt");
  ASSERT_TRUE(mpt);
  std::string text(32, ' ');
  text.front() = 'a';
  text.back() = 'b';
  const auto ids = mpt->tokenize(text, false, false);
  const int32_t s24 = mpt->find_token(std::string(24, ' ')), s6 = mpt->find_token(std::string(6, ' '));
  ASSERT_GE(s24, 0);
  ASSERT_GE(s6, 0);
  ASSERT_EQ(ids.size(), 4u) << ids_to_string(ids);
  EXPECT_EQ(ids[1], s24);
  EXPECT_EQ(ids[2], s6);
}

TEST(Tokenizer, SpmSpacePrefixAfterSpecialTokens) {
  auto spm = family("llama-spm");
  ASSERT_TRUE(spm);
  // "<s>" parsed, then the text after it gets its own space prefix.
  const auto a = spm->tokenize("<s>Hello", false, true);
  const auto b = spm->tokenize("Hello", false, false);
  ASSERT_EQ(a.size(), b.size() + 1);
  EXPECT_EQ(a[0], 1);
  EXPECT_TRUE(std::equal(b.begin(), b.end(), a.begin() + 1));
  EXPECT_EQ(spm->detokenize(a), "<s>Hello");
  EXPECT_EQ(spm->detokenize(a, /*remove_special=*/true), "Hello");
}

TEST(Tokenizer, TokenPieces) {
  auto spm = family("llama-spm");
  auto gpt2 = family("gpt-2");
  ASSERT_TRUE(spm && gpt2);
  EXPECT_EQ(spm->token_to_piece(spm->find_token("<0x0A>")), "\n");  // byte token
  EXPECT_EQ(spm->token_to_piece(spm->find_token("\xE2\x96\x81Hello")), " Hello");
  EXPECT_EQ(spm->token_to_piece(spm->bos()), "<s>");
  EXPECT_EQ(spm->token_to_piece(spm->bos(), /*render_special=*/false), "");
  EXPECT_EQ(gpt2->token_to_piece(gpt2->find_token("\xC4\xA0world")), " world");  // Ġ is the space stand-in
  EXPECT_EQ(gpt2->token_to_piece(gpt2->find_token("\xC4\x8A")), "\n");         // Ċ is the newline one
  EXPECT_EQ(gpt2->token_to_piece(-5), "");
  EXPECT_EQ(gpt2->token_to_piece(gpt2->n_vocab()), "");
  EXPECT_EQ(gpt2->detokenize({-1, 99999999, gpt2->find_token("Hi")}), "Hi");
  EXPECT_EQ(gpt2->token_text(-1), "");
  EXPECT_EQ(gpt2->find_token("no such token text"), -1);
}

// True when every byte has a normal token (its GPT-2 stand-in, or <0xNN>),
// which is what makes arbitrary bytes encodable.
bool covers_all_bytes(const Tokenizer& t) {
  for (int b = 0; b < 256; ++b) {
    char hex[8];
    std::snprintf(hex, sizeof hex, "<0x%02X>", b);
    const int32_t id = t.model() == "gpt2" ? t.find_token(byte_level::encode_byte(static_cast<uint8_t>(b)))
                                           : t.find_token(hex);
    const int type = t.token_type(id);
    if (id < 0 || (type != static_cast<int>(TokenType::Normal) && type != static_cast<int>(TokenType::Byte)))
      return false;
  }
  return true;
}

TEST(Tokenizer, InvalidUtf8IsEncodedLosslessly) {
  const std::string bad = std::string("ok \xFF\xFE mid \xE2\x82 end \xC0\xAF") + std::string(1, '\0') + "z\x80";
  int lossless = 0;
  for (const std::string& file : all_vocab_files()) {
    std::string err;
    auto t = load_shared_tokenizer("tokenizer/" + file, &err);
    ASSERT_TRUE(t) << err;
    const auto ids = t->tokenize(bad, false, true);
    EXPECT_FALSE(ids.empty()) << file;
    // Vocabs that dropped the stand-ins of bytes UTF-8 never uses (falcon,
    // starcoder, deepseek) cannot encode those bytes; the rest must be exact.
    if (covers_all_bytes(*t)) {
      EXPECT_EQ(t->detokenize(ids), bad) << file;
      ++lossless;
    }
  }
  EXPECT_GE(lossless, 5);  // gpt-2, llama-bpe, qwen2, llama-spm, phi-3 at least
}

TEST(Tokenizer, LargeInputs) {
  auto t = family("llama-bpe");
  auto spm = family("llama-spm");
  ASSERT_TRUE(t && spm);
  for (const std::string& s : {std::string(200000, ' '), std::string(100000, '7'), std::string(100000, 'a'),
                               std::string(50000, '\n') + "x"}) {
    EXPECT_EQ(t->detokenize(t->tokenize(s, false, false)), s);
    EXPECT_EQ(spm->detokenize(spm->tokenize(s, false, false)), s);
  }
}

TEST(Tokenizer, EmptyInput) {
  auto spm = family("llama-spm");
  auto bpe = family("llama-bpe");
  ASSERT_TRUE(spm && bpe);
  EXPECT_TRUE(spm->tokenize("", false, false).empty());
  EXPECT_EQ(spm->tokenize("", true, false), std::vector<int32_t>{1});
  EXPECT_EQ(bpe->tokenize("", true, false), std::vector<int32_t>{128000});
  EXPECT_EQ(spm->detokenize({}), "");
}

// --- pre-tokenizers -------------------------------------------------------

std::vector<std::string> split(const std::string& pre, const std::string& text) {
  const PreTokenizerSpec* spec = find_pre_tokenizer(pre);
  EXPECT_TRUE(spec) << pre;
  if (!spec) return {};
  auto s = RegexSplitter::compile(spec->regexes);
  EXPECT_TRUE(s.ok()) << pre << ": " << s.error();
  if (!s.ok()) return {};
  std::vector<RegexSplitter::Piece> pieces;
  (*s)->split(text, pieces);
  std::vector<std::string> out;
  for (auto p : pieces) out.push_back(text.substr(p.begin, p.size));
  return out;
}

using Pieces = std::vector<std::string>;

TEST(PreTokenizer, EveryKnownNameCompiles) {
  for (const char* name : {"default", "gpt-2", "llama-bpe", "llama3", "qwen2", "smollm", "deepseek-llm",
                           "deepseek-coder", "deepseek-v3", "falcon", "starcoder", "refact", "mpt", "gpt-neox",
                           "olmo", "dbrx", "command-r", "stablelm2", "poro-chat", "chatglm-bpe", "viking", "jais",
                           "tekken", "smaug-bpe", "codeshell", "bloom", "gpt3-finnish", "exaone", "chameleon",
                           "minerva-7b", "gpt-4o", "superbpe", "trillion", "bailingmoe", "seed-coder"}) {
    const PreTokenizerSpec* spec = find_pre_tokenizer(name);
    ASSERT_TRUE(spec) << name;
    auto s = RegexSplitter::compile(spec->regexes);
    EXPECT_TRUE(s.ok()) << name << ": " << s.error();
  }
  EXPECT_EQ(find_pre_tokenizer("no-such-name"), nullptr);
  EXPECT_EQ(find_pre_tokenizer(""), find_pre_tokenizer("default"));
}

TEST(PreTokenizer, Splits) {
  EXPECT_EQ(split("gpt-2", "Hello world's 123!!"), (Pieces{"Hello", " world", "'s", " 123", "!!"}));
  EXPECT_EQ(split("gpt-2", "a   b"), (Pieces{"a", "  ", " b"}));
  EXPECT_EQ(split("llama-bpe", "Hello world's 12345"), (Pieces{"Hello", " world", "'s", " ", "123", "45"}));
  EXPECT_EQ(split("llama-bpe", "I'M\n\nok"), (Pieces{"I", "'M", "\n\n", "ok"}));
  EXPECT_EQ(split("qwen2", "x 123"), (Pieces{"x", " ", "1", "2", "3"}));
  EXPECT_EQ(split("starcoder", "ab12"), (Pieces{"ab", "1", "2"}));
  EXPECT_EQ(split("default", "3333333"), (Pieces{"333", "333", "3"}));
  EXPECT_EQ(split("default", " !!x"), (Pieces{" ", "!!", "x"}));
  EXPECT_EQ(split("falcon", "1234567"), (Pieces{"123", "456", "7"}));
  EXPECT_EQ(split("superbpe", "1234567"), (Pieces{"1", "234", "567"}));
  EXPECT_EQ(split("bloom", "Hi, you."), (Pieces{"Hi", ",", " you", "."}));
  EXPECT_EQ(split("deepseek-coder", "ab 12\ncd"), (Pieces{"ab", " ", "1", "2", "\n", "cd"}));
  EXPECT_EQ(split("deepseek-llm", "Hello 世界 99"), (Pieces{"Hello", " ", "世界", " ", "99"}));
  // Tekken / GPT-4o split at lower->upper case changes.
  EXPECT_EQ(split("tekken", "CamelCase"), (Pieces{"Camel", "Case"}));
  EXPECT_EQ(split("gpt-4o", "HTTPServer's"), (Pieces{"HTTPServer's"}));
  // Non-ASCII letters and digits are Unicode classes, not bytes.
  EXPECT_EQ(split("gpt-2", "Привет мир ٣٤"), (Pieces{"Привет", " мир", " ٣٤"}));
}

// --- stream decoder ---------------------------------------------------------

TEST(StreamDecoder, HoldsBackPartialUtf8) {
  auto spm = family("llama-spm");
  ASSERT_TRUE(spm);
  // 🦙 is not in the Llama 2 vocab: four byte tokens.
  const auto ids = spm->tokenize("a🦙b", false, false);
  StreamDecoder dec(*spm);
  std::string all;
  int byte_tokens = 0;
  for (int32_t id : ids) {
    const std::string out = dec.push(id);
    if (spm->token_type(id) == static_cast<int>(TokenType::Byte)) ++byte_tokens;
    // Every chunk is complete UTF-8 on its own.
    for (size_t i = 0; i < out.size();) {
      const auto n = static_cast<unsigned char>(out[i]) < 0x80 ? 1 : static_cast<unsigned char>(out[i]) >= 0xF0 ? 4
                     : static_cast<unsigned char>(out[i]) >= 0xE0 ? 3 : 2;
      ASSERT_LE(i + n, out.size()) << "partial sequence emitted";
      i += n;
    }
    all += out;
  }
  EXPECT_EQ(byte_tokens, 4);
  all += dec.flush();
  EXPECT_EQ(all, " a🦙b");
}

TEST(StreamDecoder, ByteLevelTokensSplitCharacters) {
  auto gpt2 = family("gpt-2");
  ASSERT_TRUE(gpt2);
  const std::string text = "日本語のテキスト 😀 ok";
  const auto ids = gpt2->tokenize(text, false, false);
  StreamDecoder dec(*gpt2);
  std::string all;
  int held = 0;
  for (int32_t id : ids) {
    const std::string piece = gpt2->token_to_piece(id);
    const std::string out = dec.push(id);
    if (out.size() < piece.size()) ++held;
    EXPECT_EQ(out.find("\xEF\xBF\xBD"), std::string::npos);
    all += out;
  }
  all += dec.flush();
  EXPECT_EQ(all, text);
  EXPECT_GT(held, 0) << "expected some tokens to end inside a character";
}

TEST(StreamDecoder, InvalidBytesBecomeReplacementCharacters) {
  auto spm = family("llama-spm");
  ASSERT_TRUE(spm);
  const int32_t b80 = spm->find_token("<0x80>"), be6 = spm->find_token("<0xE6>"), bff = spm->find_token("<0xFF>");
  const int32_t a = spm->find_token("a");
  ASSERT_TRUE(b80 >= 0 && be6 >= 0 && bff >= 0 && a >= 0);
  StreamDecoder dec(*spm);
  EXPECT_EQ(dec.push(b80), "\xEF\xBF\xBD");          // a lone continuation byte can never complete
  EXPECT_EQ(dec.push(bff), "\xEF\xBF\xBD");          // nor can 0xFF
  EXPECT_EQ(dec.push(be6), "");                      // a lead byte waits
  EXPECT_EQ(dec.push(a), "\xEF\xBF\xBD" "a");        // ... and is ill-formed once 'a' follows
  EXPECT_EQ(dec.push(be6), "");
  EXPECT_EQ(dec.flush(), "\xEF\xBF\xBD");            // unfinished at the end
  EXPECT_EQ(dec.flush(), "");
}

}  // namespace
}  // namespace slim::test
