// Pre-tokenizer table and PCRE2 splitter.
//
// The regexes are the ones the families' Hugging Face tokenizer.json files use
// (Split / ByteLevel pre-tokenizers), in the forms llama.cpp documents for its
// `tokenizer.ggml.pre` types: case-insensitive contractions spelled out as
// [sS] classes, and Tekken / GPT-4o's \p{Lu}/\p{Ll} classes as lookahead
// forms, so the ids agree with llama.cpp, the reference of the test vectors.
// Non-ASCII literals are written as \x{...} escapes so no editor or
// normalization step can alter them (several DeepSeek ranges end in
// singleton-decomposable code points such as U+212A KELVIN SIGN).
#define PCRE2_CODE_UNIT_WIDTH 8
#include "tokenizer/pre_tokenizer.h"

#include <pcre2.h>

#include "base/utf8.h"

namespace slim {
namespace {

// GPT-2's pattern (HF ByteLevel use_regex=true).
constexpr std::string_view kGpt2 =
    R"('s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S))";
// Llama 3 / tiktoken cl100k: digits in groups of up to three.
constexpr std::string_view kLlama3 =
    R"((?:'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD])|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+)";
// Qwen2: as Llama 3 but single digits.
constexpr std::string_view kQwen2 =
    R"((?:'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD])|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+)";
// BLOOM / Poro / GPT-3 Finnish: runs up to a space or sentence punctuation.
constexpr std::string_view kBloom =
    R"( ?[^(\s|.,!?\x{2026}\x{3002}\x{FF0C}\x{3001}\x{0964}\x{06D4}\x{060C})]+)";
// Mistral Tekken: case-split words.
constexpr std::string_view kTekken =
    R"([^\r\n\p{L}\p{N}]?((?=[\p{L}])([^a-z]))*((?=[\p{L}])([^A-Z]))+|[^\r\n\p{L}\p{N}]?((?=[\p{L}])([^a-z]))+((?=[\p{L}])([^A-Z]))*|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n/]*|\s*[\r\n]+|\s+(?!\S)|\s+)";
// GPT-4o / o200k: case-split words with contractions attached.
constexpr std::string_view kGpt4o =
    R"([^\r\n\p{L}\p{N}]?((?=[\p{L}])([^a-z]))*((?=[\p{L}])([^A-Z]))+(?:'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD])?|[^\r\n\p{L}\p{N}]?((?=[\p{L}])([^a-z]))+((?=[\p{L}])([^A-Z]))*(?:'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD])?|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n/]*|\s*[\r\n]+|\s+(?!\S)|\s+)";
// Ling / BailingMoE (possessive quantifiers of the original made greedy, as
// llama.cpp does; the classes involved cannot give back anything that matters).
constexpr std::string_view kBailing =
    R"('(?:[sSdDmMtT]|[lL][lL]|[vV][eE]|[rR][eE])|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]|\s+(?!\S)|\s+)";
constexpr std::string_view kSeedCoder =
    R"((?:'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD])|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1}| ?[^\s\p{L}\p{N}\r\n]+|\s*[\r\n]+|\s+(?!\S)|\s+)";

// DeepSeek LLM's letter class (from its tokenizer.json).
constexpr std::string_view kDeepseekLetters =
    R"(\s?[A-Za-z\x{B5}\x{C0}-\x{D6}\x{D8}-\x{F6}\x{F8}-\x{1BA}\x{1BC}-\x{1BF}\x{1C4}-\x{293}\x{295}-\x{2AF})"
    R"(\x{370}-\x{373}\x{376}\x{377}\x{37B}-\x{37D}\x{37F}\x{386}\x{388}-\x{38A}\x{38C}\x{38E}-\x{3A1}\x{3A3}-\x{3F5})"
    R"(\x{3F7}-\x{481}\x{48A}-\x{52F}\x{531}-\x{556}\x{10A0}-\x{10C5}\x{13A0}-\x{13F5}\x{13F8}-\x{13FD})"
    R"(\x{1C90}-\x{1CBA}\x{1CBD}-\x{1CBF}\x{1D00}-\x{1D2B}\x{1D6B}-\x{1D77}\x{1D79}-\x{1D9A}\x{1E00}-\x{1F15})"
    R"(\x{1F18}-\x{1F1D}\x{1F20}-\x{1F45}\x{1F48}-\x{1F4D}\x{1F50}-\x{1F57}\x{1F59}\x{1F5B}\x{1F5D}\x{1F5F}-\x{1F7D})"
    R"(\x{1F80}-\x{1FB4}\x{1FB6}-\x{1FBC}\x{1FBE}\x{1FC2}-\x{1FC4}\x{1FC6}-\x{1FCC}\x{1FD0}-\x{1FD3}\x{1FD6}-\x{1FDB})"
    R"(\x{1FE0}-\x{1FEC}\x{1FF2}-\x{1FF4}\x{1FF6}-\x{1FFC}\x{2102}\x{2107}\x{210A}-\x{2113}\x{2115}\x{2119}-\x{211D})"
    R"(\x{2124}\x{2126}\x{2128}\x{212A}-\x{212D}\x{212F}-\x{2134}\x{2139}\x{213C}-\x{213F}\x{2145}-\x{2149}\x{214E})"
    R"(\x{2183}\x{2184}\x{2C00}-\x{2C7B}\x{2C7E}-\x{2CE4}\x{2CEB}-\x{2CEE}\x{2CF2}\x{2CF3}\x{A640}-\x{A66D})"
    R"(\x{A680}-\x{A69B}\x{A722}-\x{A76F}\x{A771}-\x{A787}\x{A78B}-\x{A78E}\x{AB70}-\x{ABBF}\x{FB00}-\x{FB06})"
    R"(\x{FB13}-\x{FB17}\x{FF21}-\x{FF3A}\x{FF41}-\x{FF5A}\x{10400}-\x{1044F}\x{104B0}-\x{104D3}\x{104D8}-\x{104FB})"
    R"(\x{10C80}-\x{10CB2}\x{10CC0}-\x{10CF2}\x{118A0}-\x{118DF}\x{1E900}-\x{1E943}]+)";
constexpr std::string_view kDeepseekPunct = R"(\s?[!-/:-~\x{FF01}-\x{FF0F}\x{FF1A}-\x{FF5E}\x{2018}-\x{201F}\x{3000}-\x{3002}]+)";
// CJK ideographs (the odd U+0800..U+4E00 range is DeepSeek's own).
constexpr std::string_view kDeepseekCjk = R"([\x{4E00}-\x{9FA5}\x{0800}-\x{4E00}\x{AC00}-\x{D7FF}]+)";

const std::vector<PreTokenizerSpec>& table() {
  static const std::vector<PreTokenizerSpec> rows = [] {
    std::vector<PreTokenizerSpec> t;
    // llama.cpp's "default": punctuation runs split off, GPT-2 pattern, digit
    // runs, then groups of three ASCII digits. Used when the key is absent.
    t.push_back({{"default"}, {R"([\p{P}\$\+<=>\^~\|]+)", kGpt2, R"(\p{N}+)", "[0-9][0-9][0-9]"}});
    t.push_back({{"llama3", "llama-v3", "llama-bpe", "falcon3", "falcon-h1", "pixtral", "midm-2.0", "lfm2"},
                 {kLlama3}, /*ignore_merges=*/true, /*add_bos=*/true});
    t.push_back({{"dbrx", "smaug-bpe"}, {kLlama3}});
    t.push_back({{"deepseek-llm"},
                 {"[\\r\\n]", kDeepseekLetters, kDeepseekPunct, "\\s+$", kDeepseekCjk, R"(\p{N}+)"}});
    t.push_back({{"deepseek-v3", "hunyuan-dense"},
                 {R"(\p{N}{1,3})", R"([\x{4E00}-\x{9FA5}\x{3040}-\x{309F}\x{30A0}-\x{30FF}]+)",
                  R"re([!"#$%&'()*+,\-./:;<=>?@\[\\\]^_`{|}~][A-Za-z]+|[^\r\n\p{L}\p{P}\p{S}]?[\p{L}\p{M}]+| ?[\p{P}\p{S}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+)re"}});
    t.push_back({{"deepseek-coder"}, {"[\\r\\n]", R"(\s?\p{L}+)", R"(\s?\p{P}+)", kDeepseekCjk, R"(\p{N})"}});
    t.push_back({{"falcon"}, {R"([\p{P}\$\+<=>\^~\|`]+)", kGpt2, "[0-9][0-9][0-9]"}});
    // Single digits split off first (StarCoder's Digits(individual_digits=true)).
    t.push_back({{"starcoder", "refact", "command-r", "smollm", "codeshell", "exaone", "minerva-7b"},
                 {R"(\p{N})", kGpt2}});
    t.push_back({{"gpt-2", "phi-2", "jina-es", "jina-de", "gigachat", "jina-v2-es", "jina-v2-de", "a.x-4.0",
                  "mellum", "jina-v1-en", "jina-v2-code", "roberta-bpe", "mpt", "olmo", "jais", "trillion",
                  "granite-docling", "exaone4", "gpt-neox"},
                 {kGpt2}});
    t.push_back({{"qwen2", "deepseek-r1-qwen", "kormo", "megrez", "stablelm2", "hunyuan", "grok-2"}, {kQwen2}});
    t.push_back({{"poro-chat", "poro", "bloom", "gpt3-finnish"}, {kBloom}});
    {
      PreTokenizerSpec glm{{"chatglm-bpe", "glm4"}, {kLlama3}};
      glm.no_bos = true;
      t.push_back(glm);
    }
    t.push_back({{"viking"}, {kBloom, R"(\p{N})"}});
    t.push_back({{"tekken"}, {kTekken}, /*ignore_merges=*/true, /*add_bos=*/true});
    t.push_back({{"chameleon"},
                 {"<sentinel:[0-9]+>", "(IMGIMG)((A|B|C|D|E|F|G|H|I){1,4})Z", "([\\t\\n]|    |  )", R"(\p{N})",
                  R"([\p{P}!-/:-@\[-`{-~])", kGpt2},
                 /*ignore_merges=*/false, /*add_bos=*/true});
    t.push_back({{"gpt-4o", "llama4", "minimax-m2"}, {kGpt4o}});
    // Digit runs, then split so groups of three are aligned to the end.
    t.push_back({{"superbpe"}, {R"(\p{N}+)", R"((?=(\d{3})+(?!\d)))"}});
    t.push_back({{"bailingmoe", "bailingmoe2", "llada-moe"}, {kBailing}});
    t.push_back({{"seed-coder"}, {kSeedCoder}});
    return t;
  }();
  return rows;
}

// Per-thread match scratch: match data with one ovector pair (only the whole
// match is used) and a JIT stack large enough for long whitespace runs.
struct MatchScratch {
  pcre2_match_data* data = nullptr;
  pcre2_match_context* context = nullptr;
  pcre2_jit_stack* stack = nullptr;
  MatchScratch() {
    data = pcre2_match_data_create(1, nullptr);
    context = pcre2_match_context_create(nullptr);
    stack = pcre2_jit_stack_create(32 * 1024, 4 * 1024 * 1024, nullptr);
    if (context && stack) pcre2_jit_stack_assign(context, nullptr, stack);
  }
  ~MatchScratch() {
    pcre2_jit_stack_free(stack);
    pcre2_match_context_free(context);
    pcre2_match_data_free(data);
  }
};

size_t utf8_step(PCRE2_SPTR s, size_t pos, size_t len) {
  return utf8::char_length(std::string_view(reinterpret_cast<const char*>(s), len), pos);
}

MatchScratch& scratch() {
  thread_local MatchScratch s;
  return s;
}

}  // namespace

const PreTokenizerSpec* find_pre_tokenizer(std::string_view name) {
  if (name.empty()) name = "default";
  for (const auto& row : table())
    for (auto n : row.names)
      if (n == name) return &row;
  return nullptr;
}

Result<std::shared_ptr<const RegexSplitter>> RegexSplitter::compile(const std::vector<std::string_view>& regexes) {
  std::shared_ptr<RegexSplitter> s(new RegexSplitter());
  // UTF + UCP: \p{..}, \s and \d are Unicode-aware. MATCH_INVALID_UTF: input
  // that is not valid UTF-8 is matched around instead of failing the call.
  // DOLLAR_ENDONLY: `$` means end of the piece, not "before a final newline".
  // NO_AUTO_CAPTURE: groups only group; the splitter needs the whole match.
  const uint32_t options = PCRE2_UTF | PCRE2_UCP | PCRE2_MATCH_INVALID_UTF | PCRE2_DOLLAR_ENDONLY | PCRE2_NO_AUTO_CAPTURE;
  for (auto re : regexes) {
    int err = 0;
    PCRE2_SIZE err_offset = 0;
    pcre2_code* code = pcre2_compile(reinterpret_cast<PCRE2_SPTR>(re.data()), re.size(), options, &err, &err_offset, nullptr);
    if (!code) {
      PCRE2_UCHAR msg[256];
      pcre2_get_error_message(err, msg, sizeof msg);
      return Status::error(format("pre-tokenizer regex does not compile at offset %zu: %s", (size_t)err_offset,
                                  reinterpret_cast<const char*>(msg)));
    }
    pcre2_jit_compile(code, PCRE2_JIT_COMPLETE);  // the interpreter still works if JIT is unavailable
    s->codes_.push_back(code);
  }
  return std::shared_ptr<const RegexSplitter>(std::move(s));
}

RegexSplitter::~RegexSplitter() {
  for (void* c : codes_) pcre2_code_free(static_cast<pcre2_code*>(c));
}

void RegexSplitter::split(std::string_view text, std::vector<Piece>& pieces) const {
  pieces.clear();
  if (text.empty()) return;
  pieces.push_back({0, text.size()});
  MatchScratch& ms = scratch();
  std::vector<Piece> next;
  for (void* vcode : codes_) {
    const auto* code = static_cast<const pcre2_code*>(vcode);
    next.clear();
    next.reserve(pieces.size() * 2);
    for (const Piece& p : pieces) {
      const auto* subject = reinterpret_cast<PCRE2_SPTR>(text.data() + p.begin);
      const size_t len = p.size;
      size_t gap_start = 0, pos = 0;
      uint32_t retry_options = 0;
      while (pos <= len) {
        int rc = pcre2_match(code, subject, len, pos, retry_options, ms.data, ms.context);
        if (rc == PCRE2_ERROR_NOMATCH && retry_options != 0) {
          // No non-empty match where the empty one was: move one character on.
          retry_options = 0;
          if (pos >= len) break;
          pos += utf8_step(subject, pos, len);
          continue;
        }
        if (rc < 0) break;  // no more matches (or a resource limit): the rest is one gap
        const PCRE2_SIZE* ov = pcre2_get_ovector_pointer(ms.data);
        const size_t mb = ov[0], me = ov[1];
        if (mb > gap_start) next.push_back({p.begin + gap_start, mb - gap_start});
        if (me > mb) next.push_back({p.begin + mb, me - mb});
        gap_start = me;
        pos = me;
        // After an empty match, look for a non-empty one at the same place
        // first (the Perl / ECMAScript iteration rule).
        retry_options = me == mb ? (PCRE2_NOTEMPTY_ATSTART | PCRE2_ANCHORED) : 0;
      }
      if (gap_start < len) next.push_back({p.begin + gap_start, len - gap_start});
    }
    pieces.swap(next);
  }
}

}  // namespace slim
