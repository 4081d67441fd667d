// The privacy guard's detector: the built-in rule table (one PCRE2 pattern
// a format, each with a rank and a check), user rules, and find(), which
// runs every rule over the text and keeps non-overlapping findings.
//
// A regex only proposes candidates; the check (validators.h, plus context
// tests here) decides, and may narrow the span (an IBAN stops at its
// country's length). Overlaps are settled by rank, then length: a PEM block
// swallows whatever is inside it, the user:pass of a URL wins over the
// e-mail-like text in it, a key=value secret over a phone-shaped value.
#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>

#include <algorithm>
#include <array>
#include <cctype>
#include <map>

#include "privacy/redact.h"
#include "privacy/validators.h"

namespace slim::privacy {
namespace {

// What decides a candidate after its regex matched.
enum class Check {
  none, email, url_credentials, token, assignment, bearer, authorization,
  card, iban, ssn, nino, dni_nie, codice_fiscale, aadhaar, ipv4, ipv6,
  phone_international, phone_nanp, phone_trunk,
};

// Ranks: the higher wins an overlap whatever the lengths; equal ranks
// prefer the longer finding. Structural containers first, then formats
// with a prefix or checksum, then the looser shapes.
constexpr int kRankPem = 100, kRankUrl = 90, kRankToken = 80, kRankCustom = 75,
              kRankKeyValue = 70, kRankEmail = 60, kRankChecked = 50, kRankIp = 40,
              kRankPhone = 30;

// Most rules could start almost anywhere (a letter, a digit), yet every
// match holds a rarer byte: the '@' of an e-mail, the ':' of a URL or an
// IPv6 address, the dash of 123-45-6789. For those the scan jumps from
// anchor byte to anchor byte, steps back over the characters that may
// precede it in a match and lets PCRE2 try only those start offsets (an
// offset limit). That is exact when the text of every match before its
// first anchor byte consists of `back` characters only, min_back to
// max_back of them (or none when the match starts with a `starts` byte).
struct Anchor {
  const char* bytes = nullptr;  // nullptr: scan with PCRE2 alone
  const char* back = "";        // class of the bytes before the anchor ("A-Za-z0-9._-")
  int min_back = 1, max_back = 0;
  const char* starts = "";      // anchor bytes a match may begin with
  const char* then = "";        // must follow the anchor byte ("//" after a URL's ':')
  const char* keys = nullptr;   // "a|b": one must end right before the anchor (blanks,
                                // a ']' and a quote skipped), any case
};

// Digit-led formats are scanned the same way from the digit runs of the
// text (found once for all rules): the first digit run of every match is a
// whole run of the text (the patterns' lookbehinds see to that), lo to hi
// digits long, followed by an `after` byte and preceded inside the match by
// at most max_lead `lead` bytes ("(" of "(415)"). Only such runs get a
// PCRE2 call, instead of every digit of the text.
struct DigitRun {
  int lo = 0, hi = 0;           // 0: not scanned by digit runs
  const char* after = nullptr;  // bytes that may follow the run; nullptr: any
  const char* lead = "";
  int max_lead = 0;
};

struct BuiltinRule {
  const char* category;
  int rank;
  Check check;
  const char* pattern;  // PCRE2; a group named "value" narrows the finding to it
  Anchor anchor = {};
  DigitRun run = {};
};

// Digit-led formats must not start or end inside a longer run of word
// characters, dashes or dotted numbers ("ABC-4111...", "1.2.3.4.5").
// Prefixed tokens are one rule each: PCRE2 then scans for the literal
// prefix, far faster than one alternation over many starting letters.
const BuiltinRule kBuiltinRules[] = {
    // PEM private keys (and PGP private key blocks); a block with no END
    // line (pasted truncated) runs over its base64 lines. The body stops at
    // the next BEGIN or END line, so many BEGIN lines without an END cannot
    // make the scan quadratic.
    {"secret", kRankPem, Check::none,
     R"re(-----BEGIN[A-Z0-9 ]{0,40}PRIVATE KEY(?: BLOCK)?-----(?:(?:[^-]++|-(?!----(?:END|BEGIN)))*+-----END[A-Z0-9 ]{0,40}PRIVATE KEY(?: BLOCK)?-----|(?:\s*+(?:[A-Za-z0-9+/=]{16,}+|(?:Proc-Type|DEK-Info|Version|Comment):[^\n]*+))*+))re"},
    // user:pass@ in a URL: only the userinfo is replaced, so scheme, host and
    // path still read. The user part may itself look like an e-mail.
    {"url_credentials", kRankUrl, Check::url_credentials,
     R"re((?<![A-Za-z0-9+.\-])[A-Za-z][A-Za-z0-9+.\-]{0,30}://(?<value>[^\s/?#:]*:[^\s/?#]*)@(?:[A-Za-z0-9\-._~%]+|\[[0-9A-Fa-f:.]+\]))re",
     {":", "A-Za-z0-9+.-", 1, 31, "", "//"}},
    // API keys and tokens with a recognisable prefix.
    {"secret", kRankToken, Check::token,
     R"re((?<![A-Za-z0-9_\-])(?:AKIA|ASIA|ABIA|ACCA|AGPA|AIDA|AIPA|ANPA|ANVA|AROA|APKA|ASCA)[A-Z0-9]{16}(?![A-Za-z0-9_\-]))re"},  // AWS key ids
    {"secret", kRankToken, Check::token, R"re((?<![A-Za-z0-9_\-])gh[pousr]_[A-Za-z0-9]{36,255}(?![A-Za-z0-9_\-]))re"},
    {"secret", kRankToken, Check::token, R"re((?<![A-Za-z0-9_\-])github_pat_[A-Za-z0-9_]{22,255}(?![A-Za-z0-9_\-]))re"},
    {"secret", kRankToken, Check::token, R"re((?<![A-Za-z0-9_\-])glpat-[A-Za-z0-9_\-]{20,}(?![A-Za-z0-9_\-]))re"},
    {"secret", kRankToken, Check::token, R"re((?<![A-Za-z0-9_\-])xox[abposre]-[A-Za-z0-9\-]{10,}(?![A-Za-z0-9_\-]))re"},  // Slack
    {"secret", kRankToken, Check::token, R"re(https://hooks\.slack\.com/services/[A-Za-z0-9/]+)re"},
    {"secret", kRankToken, Check::token, R"re((?<![A-Za-z0-9_\-])sk-[A-Za-z0-9_\-]{20,}(?![A-Za-z0-9_\-]))re"},  // OpenAI, Anthropic
    {"secret", kRankToken, Check::token, R"re((?<![A-Za-z0-9_\-])AIza[0-9A-Za-z_\-]{35}(?![A-Za-z0-9_\-]))re"},  // Google
    {"secret", kRankToken, Check::token,
     R"re((?<![A-Za-z0-9_\-])eyJ[A-Za-z0-9_\-]{8,}\.eyJ[A-Za-z0-9_\-]{8,}\.[A-Za-z0-9_\-]*(?![A-Za-z0-9_\-]))re"},  // JWT
    {"secret", kRankToken, Check::token, R"re((?<![A-Za-z0-9_\-])[srp]k_(?:live|test)_[A-Za-z0-9]{10,}(?![A-Za-z0-9_\-]))re"},  // Stripe
    {"secret", kRankToken, Check::token, R"re((?<![A-Za-z0-9_\-])whsec_[A-Za-z0-9]{20,}(?![A-Za-z0-9_\-]))re"},
    {"secret", kRankToken, Check::token, R"re((?<![A-Za-z0-9_\-])hf_[A-Za-z0-9]{30,}(?![A-Za-z0-9_\-]))re"},  // Hugging Face
    {"secret", kRankToken, Check::token, R"re((?<![A-Za-z0-9_\-])npm_[A-Za-z0-9]{36}(?![A-Za-z0-9_\-]))re"},
    {"secret", kRankToken, Check::token,
     R"re((?<![A-Za-z0-9_\-])SG\.[A-Za-z0-9_\-]{16,}\.[A-Za-z0-9_\-]{16,}(?![A-Za-z0-9_\-]))re"},  // SendGrid
    // key = value / key: value secrets: the value goes, the key stays.
    {"secret", kRankKeyValue, Check::assignment,
     R"re((?i)(?<![A-Za-z0-9])(?:password|passwd|passphrase|pwd|secret|client[_\-]?secret|secret[_\-]?key|api[_\-]?key|apikey|access[_\-]?key|token|access[_\-]?token|auth[_\-]?token|refresh[_\-]?token|private[_\-]?key)(?![A-Za-z0-9])["']?\]?[ \t]{0,8}(?::=|=>|[:=])\s*(?|"(?<value>[^"\r\n]+)"|'([^'\r\n]+)'|([^\s"',;={\[(<][^\s"',;]*)))re",
     {":=", "A-Za-z_\"'] \t-", 1, 40, "", "", "password|passwd|passphrase|pwd|secret|key|token"}},
    {"secret", kRankKeyValue, Check::authorization,
     R"re((?i)(?<![A-Za-z0-9])(?:proxy-)?authorization["']?[ \t]{0,8}[:=]\s*["']?(?:(?:bearer|basic|token|digest|negotiate|apikey)\s+)?(?<value>[^\s"',;]+))re",
     {":=", "A-Za-z\"' \t-", 1, 40, "", "", "authorization"}},
    {"secret", kRankKeyValue, Check::bearer,
     R"re((?i)(?<![A-Za-z0-9])bearer\s+(?<value>[A-Za-z0-9\-._~+/]+=*))re"},
    {"email", kRankEmail, Check::email,
     R"re((?<![A-Za-z0-9._%+\-])[A-Za-z0-9][A-Za-z0-9._%+\-]{0,63}@(?:[A-Za-z0-9](?:[A-Za-z0-9\-]{0,61}[A-Za-z0-9])?\.){1,16}[A-Za-z]{2,24}(?![A-Za-z0-9\-]))re",
     {"@", "A-Za-z0-9._%+-", 1, 64}},
    // Cards: contiguous, 4-4-4-x(-x) or 4-6-5/4-6-4 (Amex, Diners).
    {"card", kRankChecked, Check::card, R"re((?<![\w\-.])\d{13,19}(?![\w\-]|[.,]\d))re", {}, {13, 19}},
    {"card", kRankChecked, Check::card,
     R"re((?<![\w\-.])(?:\d{4}([ \-])\d{4}\1\d{4}\1\d{1,4}(?:\1\d{1,3})?|\d{4}([ \-])\d{6}\2\d{4,5})(?![\w\-]|[.,]\d))re",
     {}, {4, 4, " -"}},
    // IBAN: letters, check digits, then alphanumerics with optional single
    // spaces; the check cuts it at the country's length.
    {"iban", kRankChecked, Check::iban,
     R"re((?<![A-Za-z0-9])[A-Z]{2}\d{2}(?: ?[A-Z0-9]){11,30})re"},
    {"national_id", kRankChecked, Check::ssn,
     R"re((?<![\w\-./])\d{3}([\- ])\d{2}\1\d{4}(?![\w\-]|[./]\d))re",
     {}, {3, 3, " -"}},
    {"national_id", kRankChecked, Check::nino,
     R"re((?<![A-Za-z0-9])[A-Z]{2} ?\d{2} ?\d{2} ?\d{2} ?[A-D](?![A-Za-z0-9]))re",
     {}, {2, 6, " ABCD", "ABCDEFGHIJKLMNOPQRSTUVWXYZ ", 3}},
    {"national_id", kRankChecked, Check::dni_nie,
     R"re((?<![A-Za-z0-9\-])[XYZ]?\d{7,8}-?[A-Z](?![A-Za-z0-9]))re",
     {}, {7, 8, "-ABCDEFGHIJKLMNOPQRSTUVWXYZ", "XYZ", 1}},
    {"national_id", kRankChecked, Check::codice_fiscale,
     R"re((?<![A-Za-z0-9])[A-Z]{6}[0-9LMNPQRSTUV]{2}[ABCDEHLMPRST][0-9LMNPQRSTUV]{2}[A-Z][0-9LMNPQRSTUV]{3}[A-Z](?![A-Za-z0-9]))re"},
    // Aadhaar only when grouped 4-4-4: a bare 12-digit number is too often
    // something else.
    {"national_id", kRankChecked, Check::aadhaar,
     R"re((?<![\w\-.])[2-9]\d{3}([ \-])\d{4}\1\d{4}(?![\w\-]|\.\d))re",
     {}, {4, 4, " -"}},
    {"ip", kRankIp, Check::ipv4,
     R"re((?<![\w.\-])(?:\d{1,3}\.){3}\d{1,3}(?![\w\-]|\.\d))re",
     {}, {1, 3, "."}},
    {"ip", kRankIp, Check::ipv6,
     R"re((?<![\w:.\-])(?:[0-9A-Fa-f]{0,4}:){2,7}(?:(?:\d{1,3}\.){3}\d{1,3}|[0-9A-Fa-f]{1,4})?(?![\w:\-]|\.\d))re",
     {":", "0-9A-Fa-f", 1, 4, ":"}},
    // Phones: E.164-style with a +, NANP, and national formats with a
    // trunk 0 (UK, FR, DE, NL, IT, AU, JP...). The checks count digits.
    {"phone", kRankPhone, Check::phone_international,
     R"re((?<![\w+])\+\d{1,3}(?>(?:[ .\-]?\(\d{1,4}\)|[ .\-]?\d{1,6}){1,7})(?!\w))re"},
    {"phone", kRankPhone, Check::phone_nanp,
     R"re((?<![\w+.\-/])(?:1[ .\-]?)?(?:\(\d{3}\)[ .\-]?|\d{3}[ .\-])\d{3}[ .\-]\d{4}(?!\w|[.\-/]\d))re",
     {}, {1, 4, " .-()", "(", 1}},
    {"phone", kRankPhone, Check::phone_trunk,
     R"re((?<![\w+.,/:\-])(?:\(0\d{1,4}\)|0\d{1,4})(?:[ .\-/]\d{2,8}){1,5}(?!\w|[.,/:\-]\d))re",
     {}, {2, 5, " .-/)", "(", 1}},
};

const std::vector<std::string> kBuiltinCategories = {
    "email", "phone", "card", "iban", "national_id", "ip", "secret", "url_credentials"};

bool is_alpha(char c) { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z'); }
bool is_digit(char c) { return c >= '0' && c <= '9'; }
char lower(char c) { return c >= 'A' && c <= 'Z' ? char(c - 'A' + 'a') : c; }

bool iequals(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  for (size_t i = 0; i < a.size(); ++i)
    if (lower(a[i]) != lower(b[i])) return false;
  return true;
}

bool all_alpha(std::string_view s) {
  return !s.empty() && std::all_of(s.begin(), s.end(), is_alpha);
}

// A letters-only value followed by another word reads as a sentence
// ("Password: click the link below"), not as a credential.
bool prose_follows(std::string_view text, size_t b, size_t e) {
  return all_alpha(text.substr(b, e - b)) && e + 1 < text.size() && text[e] == ' ' &&
         is_alpha(text[e + 1]);
}

// The word just before position b, skipping spaces and a ':' or '.'.
std::string_view word_before(std::string_view text, size_t b) {
  size_t i = b;
  while (i > 0 && (text[i - 1] == ' ' || text[i - 1] == '\t')) --i;
  if (i > 0 && (text[i - 1] == ':' || text[i - 1] == '.' || text[i - 1] == '#')) --i;
  while (i > 0 && (text[i - 1] == ' ' || text[i - 1] == '\t')) --i;
  size_t end = i;
  while (i > 0 && is_alpha(text[i - 1])) --i;
  if (i == end && i >= 2 && text.substr(i - 2, 2) == "\xC2\xA7") return text.substr(i - 2, 2);  // §
  return text.substr(i, end - i);
}

// A dotted quad is a version or section number, not an address, when the
// word before it says so ("version 1.2.3.4", "build 10.0.19041.1", "§ 1.2.3.4").
bool version_context(std::string_view text, size_t b) {
  std::string_view w = word_before(text, b);
  if (w == "\xC2\xA7") return true;
  for (std::string_view k : {"version", "ver", "v", "release", "build", "revision", "rev",
                             "section", "sec", "chapter", "clause", "paragraph", "step",
                             "firmware", "fw", "oid"})
    if (iequals(w, k)) return true;
  return false;
}

// A date at the start of a phone candidate ("01.02.2024 10" is a date and
// a number, not a phone): d.m.y or m/d/y with a plausible day and month,
// not followed by a further group in the same style (01.23.45.67.89 and
// 06.12.34.56.78 are French phone numbers).
bool date_shape(std::string_view s) {
  size_t i = 0;
  auto num = [&](size_t lo, size_t hi, int& v) {
    size_t st = i;
    v = 0;
    while (i < s.size() && is_digit(s[i]) && i - st < hi) v = v * 10 + (s[i++] - '0');
    return i - st >= lo && (i == s.size() || !is_digit(s[i]));
  };
  int d, m, y;
  if (!num(1, 2, d) || i >= s.size()) return false;
  char sep = s[i];
  if (sep != '.' && sep != '/' && sep != '-') return false;
  ++i;
  if (!num(1, 2, m) || i >= s.size() || s[i] != sep) return false;
  ++i;
  size_t ys = i;
  if (!num(2, 4, y) || i - ys == 3) return false;
  if (i + 1 < s.size() && s[i] == sep && is_digit(s[i + 1])) return false;
  bool dm = d >= 1 && d <= 31 && m >= 1 && m <= 12, md = m >= 1 && m <= 31 && d >= 1 && d <= 12;
  return dm || md;
}

// Phone candidates are greedy; cut them back at a separator to the longest
// prefix with a plausible number of digits ("+44 20 7946 0958 2023": the
// year is not part of the number). False when no prefix fits.
bool phone_digits_fit(std::string_view text, size_t b, size_t& e, int lo, int hi) {
  int digits = 0;
  size_t best = 0;
  char first = 0;
  bool same = true;
  for (size_t i = b; i <= e; ++i) {
    bool boundary = i == e || ((text[i] == ' ' || text[i] == '.' || text[i] == '-' ||
                                text[i] == '/' || text[i] == '(') &&
                               i > b && (is_digit(text[i - 1]) || text[i - 1] == ')'));
    if (boundary && digits >= lo && digits <= hi) best = i;
    if (i < e && is_digit(text[i])) {
      if (!first) first = text[i];
      same = same && text[i] == first;
      ++digits;
    }
  }
  if (!best || same) return false;  // nothing fits, or 000 000 0000
  e = best;
  return true;
}

bool check_nanp(std::string_view v) {
  std::string d = digits_of(v);
  if (d.size() == 11) {
    if (d[0] != '1') return false;
    d.erase(0, 1);
  }
  if (d.size() != 10) return false;
  // Area code and exchange start with 2-9; N11 codes are services, not areas.
  if (d[0] < '2' || d[3] < '2') return false;
  if (d[1] == '1' && d[2] == '1') return false;
  return true;
}

bool check_token(std::string_view v) {
  if (v.substr(0, 3) != "sk-") return true;
  // "sk-" also starts ordinary hyphenated words ("sk-learn-based-pipeline"):
  // generated keys mix upper case, lower case and digits.
  std::string_view body = v.substr(3);
  bool up = false, low = false, dig = false;
  for (char c : body) {
    up |= c >= 'A' && c <= 'Z';
    low |= c >= 'a' && c <= 'z';
    dig |= is_digit(c);
  }
  return up && low && dig;
}

// A token after a bare "bearer": a digit, a token symbol or two capitals,
// so "bearer of bad news" and "Bearer Bonds" stay.
bool check_bearer(std::string_view v) {
  int upper = 0;
  for (char c : v) {
    if (is_digit(c) || std::string_view("-._~+/=").find(c) != std::string_view::npos) return true;
    upper += c >= 'A' && c <= 'Z';
  }
  return upper >= 2;
}

bool check_email(std::string_view v) {
  // "logo@2x.png" is an image name, not an address.
  size_t dot = v.rfind('.');
  std::string_view tld = v.substr(dot + 1);
  for (std::string_view ext : {"png", "jpg", "jpeg", "gif", "svg", "webp", "ico", "bmp", "pdf"})
    if (iequals(tld, ext)) return false;
  return true;
}

// Trailing sentence punctuation after an unquoted value is not part of it.
void trim_punctuation(std::string_view text, size_t b, size_t& e) {
  while (e > b + 1 && std::string_view(".)]}>").find(text[e - 1]) != std::string_view::npos) --e;
}

// Values that name no secret: empty markers and references to one kept
// elsewhere (password = None, secret=${SECRET}, token: %TOKEN%).
bool placeholder_value(std::string_view v) {
  if (v.empty() || v[0] == '$' || v[0] == '%') return true;
  for (std::string_view w : {"none", "null", "nil", "true", "false", "undefined", "changeme"})
    if (iequals(v, w)) return true;
  return std::all_of(v.begin(), v.end(), [](char c) { return c == '*' || c == 'x' || c == 'X'; });
}

// The key of a key = value match whose value starts at b, and whether its
// separator is a plain ':' (YAML, headers, prose alike).
std::string_view key_before_value(std::string_view text, size_t b, bool& colon) {
  size_t i = b;
  if (i > 0 && (text[i - 1] == '"' || text[i - 1] == '\'')) --i;
  while (i > 0 && std::isspace(static_cast<unsigned char>(text[i - 1]))) --i;
  colon = i > 0 && text[i - 1] == ':';
  while (i > 0 && (text[i - 1] == ':' || text[i - 1] == '=' || text[i - 1] == '>')) --i;
  while (i > 0 && (text[i - 1] == ' ' || text[i - 1] == '\t')) --i;
  if (i > 0 && text[i - 1] == ']') --i;
  if (i > 0 && (text[i - 1] == '"' || text[i - 1] == '\'')) --i;
  size_t end = i;
  while (i > 0 && (is_alpha(text[i - 1]) || is_digit(text[i - 1]) || text[i - 1] == '_' || text[i - 1] == '-')) --i;
  return text.substr(i, end - i);
}

bool check_assignment(std::string_view text, size_t b, size_t& e) {
  bool quoted = b > 0 && (text[b - 1] == '"' || text[b - 1] == '\'');
  if (!quoted) trim_punctuation(text, b, e);
  std::string_view v = text.substr(b, e - b);
  if (placeholder_value(v)) return false;
  bool colon = false;
  std::string_view key = key_before_value(text, b, colon);
  // A bare "token" is everyday vocabulary around language models ("token:
  // 50256", "token = 1"): it needs a value that looks generated.
  if (iequals(key, "token") &&
      (v.size() < 8 || std::all_of(v.begin(), v.end(), [](char c) { return is_digit(c); })))
    return false;
  return quoted || !(colon && prose_follows(text, b, e));
}

bool check_authorization(std::string_view text, size_t b, size_t& e) {
  trim_punctuation(text, b, e);
  std::string_view v = text.substr(b, e - b);
  for (std::string_view scheme : {"bearer", "basic", "token", "digest", "negotiate", "apikey"})
    if (iequals(v, scheme)) return false;
  return !prose_follows(text, b, e);
}

// Narrows an IBAN candidate to its country's length; the character after
// it must not continue a word.
bool check_iban(std::string_view text, size_t b, size_t& e) {
  int want = iban_length(text.substr(b, 2));
  if (!want) return false;
  int n = 0;
  size_t i = b;
  for (; i < e && n < want; ++i)
    if (text[i] != ' ') ++n;
  if (n != want) return false;
  if (i < text.size() && (is_alpha(text[i]) || is_digit(text[i]))) return false;
  if (!iban_valid(text.substr(b, i - b))) return false;
  e = i;
  return true;
}

bool check(Check c, std::string_view text, size_t b, size_t& e) {
  std::string_view v = text.substr(b, e - b);
  switch (c) {
    case Check::none: return true;
    case Check::email: return check_email(v);
    case Check::url_credentials: return true;
    case Check::token: return check_token(v);
    case Check::assignment: return check_assignment(text, b, e);
    case Check::authorization: return check_authorization(text, b, e);
    case Check::bearer: return check_bearer(v);
    case Check::card: return card_valid(v);
    case Check::iban: return check_iban(text, b, e);
    case Check::ssn: return ssn_valid(v);
    case Check::nino: return nino_valid(v);
    case Check::dni_nie: return dni_nie_valid(v);
    case Check::codice_fiscale: return codice_fiscale_valid(v);
    case Check::aadhaar: return aadhaar_valid(v);
    case Check::ipv4: return ipv4_valid(v) && !version_context(text, b);
    case Check::ipv6: return ipv6_valid(v);
    case Check::phone_international: return phone_digits_fit(text, b, e, 8, 15);
    case Check::phone_nanp: return check_nanp(v);
    case Check::phone_trunk: {
      // "00" is the international prefix: 0044 20 7946 0958.
      bool intl = v.size() > 2 && v[0] == '0' && v[1] == '0';
      return !date_shape(v) && phone_digits_fit(text, b, e, 10, intl ? 17 : 12);
    }
  }
  return false;
}

// A candidate with the exact shape of a checked format that fails its check
// (an order number failing Luhn, an IBAN with bad check digits, 999.1.1.1)
// is a look-alike: it stays as it is, and looser lower-ranked rules may not
// take pieces inside it either ("DE89 3704 0044 0532 0130 01" holds no phone).
bool lookalike_on_reject(Check c) {
  switch (c) {
    case Check::card: case Check::iban: case Check::ssn: case Check::nino: case Check::dni_nie:
    case Check::codice_fiscale: case Check::aadhaar: case Check::ipv4:
      return true;
    default:
      return false;
  }
}

// The span of an IBAN look-alike: its country's length when the country is
// known (the greedy match may have run into the next words).
bool iban_lookalike_span(std::string_view text, size_t b, size_t& e) {
  int want = iban_length(text.substr(b, 2)), n = 0;
  if (!want) return false;
  size_t i = b;
  for (; i < e && n < want; ++i)
    if (text[i] != ' ') ++n;
  if (n != want) return false;
  e = i;
  return true;
}

struct CompiledRule {
  std::string category;
  int rank = 0;
  Check check = Check::none;
  pcre2_code* code = nullptr;
  uint32_t value_group = 0;  // 0: the whole match
  bool utf = false;
  bool anchored = false;  // scan by anchor bytes (see Anchor)
  std::array<bool, 256> is_anchor{}, is_back{}, is_start{};
  size_t min_back = 1, max_back = 0;
  std::string then;
  std::vector<std::string> keys;
  DigitRun run;  // run.lo > 0: scan by digit runs
  std::array<bool, 256> run_after{}, run_lead{};
};

// "A-Za-z0-9._-" → membership table. Only letter and digit ranges are
// ranges; any other '-' is itself (" .-()" holds a dash).
std::array<bool, 256> byte_class(std::string_view spec) {
  auto alnum = [](char c) { return is_alpha(c) || is_digit(c); };
  std::array<bool, 256> t{};
  for (size_t i = 0; i < spec.size(); ++i) {
    auto c = static_cast<unsigned char>(spec[i]);
    if (i + 2 < spec.size() && spec[i + 1] == '-' && alnum(spec[i]) && alnum(spec[i + 2])) {
      for (unsigned x = c; x <= static_cast<unsigned char>(spec[i + 2]); ++x) t[x] = true;
      i += 2;
    } else {
      t[c] = true;
    }
  }
  return t;
}

std::string pcre2_message(int code) {
  PCRE2_UCHAR buf[256];
  pcre2_get_error_message(code, buf, sizeof buf);
  return reinterpret_cast<const char*>(buf);
}

// Compiles one rule; on failure returns why, for the caller's message.
std::string compile(CompiledRule& r, const std::string& pattern, uint32_t options) {
  int err = 0;
  PCRE2_SIZE offset = 0;
  r.code = pcre2_compile(reinterpret_cast<PCRE2_SPTR>(pattern.data()), pattern.size(), options,
                         &err, &offset, nullptr);
  if (!r.code) return format("%s at offset %zu", pcre2_message(err).c_str(), (size_t)offset);
  // JIT makes the scan several times faster; where it is unavailable the
  // interpreter still gives the same answers.
  pcre2_jit_compile(r.code, PCRE2_JIT_COMPLETE);
  int n = pcre2_substring_number_from_name(r.code, reinterpret_cast<PCRE2_SPTR>("value"));
  r.value_group = n > 0 ? (uint32_t)n : 0;
  r.utf = options & PCRE2_UTF;
  return "";
}

// Custom category names become lower snake_case so that the placeholder
// label (upper case) is one-to-one with the category.
bool normalize_category(const std::string& name, std::string& out) {
  out.clear();
  if (name.empty() || name.size() > 48 || !is_alpha(name[0])) return false;
  for (char c : name) {
    if (is_alpha(c) || is_digit(c)) out += lower(c);
    else if (c == '_' || c == '-' || c == ' ') out += '_';
    else return false;
  }
  return true;
}

struct Candidate {
  int rank;
  bool lookalike;  // holds its span against lower ranks, is not reported
  size_t begin, end;
  const std::string* category;
};

// Whether [b, e) overlaps an interval of m (begin → end, disjoint).
template <class M>
typename M::const_iterator overlapping(const M& m, size_t b, size_t e) {
  auto it = m.lower_bound(b);
  if (it != m.end() && it->first < e) return it;
  if (it != m.begin() && std::prev(it)->second.end > b) return std::prev(it);
  return m.end();
}

// Whether one of r.keys ends right before p (blanks, a ']' of an array
// index and a quote skipped).
bool key_before(const CompiledRule& r, std::string_view text, size_t p) {
  size_t i = p;
  while (i > 0 && (text[i - 1] == ' ' || text[i - 1] == '\t')) --i;
  if (i > 0 && text[i - 1] == ']') --i;
  if (i > 0 && (text[i - 1] == '"' || text[i - 1] == '\'')) --i;
  for (const auto& k : r.keys)
    if (i >= k.size() && iequals(text.substr(i - k.size(), k.size()), k)) return true;
  return false;
}

// The next anchor byte of r at or after from that passes the rule's cheap
// tests (what must follow it, the key before it); text.size() if none.
size_t next_anchor(const CompiledRule& r, std::string_view text, size_t from) {
  for (size_t p = from; p < text.size(); ++p) {
    if (!r.is_anchor[static_cast<unsigned char>(text[p])]) continue;
    if (!r.then.empty() && text.substr(p + 1, r.then.size()) != r.then) continue;
    if (!r.keys.empty() && !key_before(r, text, p)) continue;
    return p;
  }
  return text.size();
}

}  // namespace

struct Detector::Impl {
  std::vector<CompiledRule> rules;
  uint32_t max_pairs = 1;  // ovector size that fits every rule
  ~Impl() {
    for (auto& r : rules) pcre2_code_free(r.code);
  }
};

Detector::~Detector() = default;

const std::vector<std::string>& Detector::builtin_categories() { return kBuiltinCategories; }

Result<std::shared_ptr<const Detector>> Detector::create(const Rules& rules) {
  std::vector<std::string> problems;
  for (const auto& name : rules.disabled)
    if (std::find(kBuiltinCategories.begin(), kBuiltinCategories.end(), name) == kBuiltinCategories.end())
      problems.push_back(format("unknown category '%s' in disabled", name.c_str()));

  std::shared_ptr<Detector> d(new Detector());
  d->impl_ = std::make_unique<Impl>();
  auto& compiled = d->impl_->rules;
  for (const auto& b : kBuiltinRules) {
    if (std::find(rules.disabled.begin(), rules.disabled.end(), b.category) != rules.disabled.end()) continue;
    CompiledRule r;
    r.category = b.category;
    r.rank = b.rank;
    r.check = b.check;
    if (b.anchor.bytes) {
      r.anchored = true;
      r.is_anchor = byte_class(b.anchor.bytes);
      r.is_back = byte_class(b.anchor.back);
      r.is_start = byte_class(b.anchor.starts);
      r.min_back = b.anchor.min_back;
      r.max_back = b.anchor.max_back;
      r.then = b.anchor.then;
      for (std::string_view k = b.anchor.keys ? b.anchor.keys : ""; !k.empty();) {
        size_t bar = std::min(k.find('|'), k.size());
        r.keys.emplace_back(k.substr(0, bar));
        k.remove_prefix(std::min(bar + 1, k.size()));
      }
    }
    if (b.run.lo) {
      r.run = b.run;
      if (b.run.after) r.run_after = byte_class(b.run.after);
      r.run_lead = byte_class(b.run.lead);
    }
    // Rules scanned from anchors or digit runs call PCRE2 on a small window
    // many times: its start-up search for a required byte (the '@' of a
    // URL's userinfo, the '.' of an e-mail domain) would look thousands of
    // bytes ahead on every call, quadratic on text like "a@a@a@...".
    bool windowed = r.anchored || r.run.lo;
    std::string err = compile(r, b.pattern, windowed ? PCRE2_USE_OFFSET_LIMIT | PCRE2_NO_START_OPTIMIZE : 0);
    if (!err.empty()) {  // a bug in the table, reported rather than asserted
      problems.push_back(format("built-in %s pattern: %s", b.category, err.c_str()));
      continue;
    }
    compiled.push_back(std::move(r));
  }
  for (const auto& [name, pattern] : rules.custom) {
    CompiledRule r;
    if (!normalize_category(name, r.category)) {
      problems.push_back(format("bad custom category name '%s' (letters, digits, _ - or space, "
                                "starting with a letter, at most 48)", name.c_str()));
      continue;
    }
    if (pattern.empty()) {
      problems.push_back(format("custom rule '%s': empty pattern", name.c_str()));
      continue;
    }
    r.rank = kRankCustom;
    // User patterns may use UTF-8 literals and \p{..}; invalid UTF-8 in the
    // text must not make them fail.
    std::string err = compile(r, pattern, PCRE2_UTF | PCRE2_MATCH_INVALID_UTF);
    if (!err.empty()) {
      problems.push_back(format("custom rule '%s': invalid pattern /%s/: %s", name.c_str(),
                                pattern.c_str(), err.c_str()));
      continue;
    }
    compiled.push_back(std::move(r));
  }
  if (!problems.empty()) {
    std::string msg = "privacy rules: ";
    for (size_t i = 0; i < problems.size(); ++i) msg += (i ? "; " : "") + problems[i];
    return Status::error(msg);
  }
  for (const auto& r : compiled) {
    uint32_t n = 0;
    pcre2_pattern_info(r.code, PCRE2_INFO_CAPTURECOUNT, &n);
    d->impl_->max_pairs = std::max(d->impl_->max_pairs, n + 1);
  }
  return std::shared_ptr<const Detector>(std::move(d));
}

std::vector<Finding> Detector::find(std::string_view text) const {
  std::vector<Candidate> cands;
  pcre2_match_data* md = pcre2_match_data_create(impl_->max_pairs, nullptr);
  const size_t n = text.size();
  pcre2_match_context* mc = pcre2_match_context_create(nullptr);     // windowed rules
  pcre2_match_context* plain = pcre2_match_context_create(nullptr);  // the others
  pcre2_jit_stack* big_stack = nullptr;
  // The patterns are written not to need much JIT stack, but a match that
  // runs out is retried once with a large stack rather than lost.
  auto match = [&](const CompiledRule& r, size_t start, pcre2_match_context* ctx) {
    auto subject = reinterpret_cast<PCRE2_SPTR>(text.data());
    int rc = pcre2_match(r.code, subject, n, start, 0, md, ctx);
    if (rc == PCRE2_ERROR_JIT_STACKLIMIT) {
      if (!big_stack) {
        big_stack = pcre2_jit_stack_create(64 << 10, 16 << 20, nullptr);
        pcre2_jit_stack_assign(mc, nullptr, big_stack);
        pcre2_jit_stack_assign(plain, nullptr, big_stack);
      }
      rc = pcre2_match(r.code, subject, n, start, 0, md, ctx);
    }
    return rc;
  };
  // Digit runs [begin, end) of the whole text, for the digit-led rules.
  std::vector<std::pair<size_t, size_t>> runs;
  bool want_runs = std::any_of(impl_->rules.begin(), impl_->rules.end(), [](const CompiledRule& r) { return r.run.lo > 0; });
  if (want_runs) {
    runs.reserve(n / 16);
    bool in = false;
    size_t start = 0;
    for (size_t i = 0; i < n; ++i) {
      bool d = static_cast<unsigned char>(text[i] - '0') < 10;
      if (d != in) {
        if (d) start = i;
        else runs.emplace_back(start, i);
        in = d;
      }
    }
    if (in) runs.emplace_back(start, n);
  }
  for (const auto& r : impl_->rules) {
    size_t offset = 0;
    size_t run_index = 0;
    int errors = 0;
    while (offset <= n) {
      int rc;
      if (r.run.lo) {
        // The next run that can be the first digits of a match.
        size_t start = n, limit = 0;
        for (; run_index < runs.size(); ++run_index) {
          auto [rb, re] = runs[run_index];
          if (rb < offset) continue;
          size_t len = re - rb;
          if (len < (size_t)r.run.lo || len > (size_t)r.run.hi) continue;
          if (r.run.after && re < n && !r.run_after[static_cast<unsigned char>(text[re])]) continue;
          start = rb;
          while (start > offset && rb - start < (size_t)r.run.max_lead &&
                 r.run_lead[static_cast<unsigned char>(text[start - 1])])
            --start;
          limit = rb;
          break;
        }
        if (run_index >= runs.size()) break;
        pcre2_set_offset_limit(mc, limit);
        rc = match(r, start, mc);
        if (rc < 0) {
          offset = limit + 1;  // no match starts in [start, limit]
          continue;
        }
      } else if (r.anchored) {
        size_t p = next_anchor(r, text, offset);
        if (p >= n) break;
        size_t s = p;
        while (s > offset && p - s < r.max_back && r.is_back[static_cast<unsigned char>(text[s - 1])]) --s;
        if (p - s < r.min_back && !(s == p && r.is_start[static_cast<unsigned char>(text[p])])) {
          offset = p + 1;
          continue;
        }
        pcre2_set_offset_limit(mc, p);
        rc = match(r, s, mc);
        if (rc < 0) {
          offset = p + 1;  // no match starts in [s, p]
          continue;
        }
      } else {
        rc = match(r, offset, plain);
        if (rc == PCRE2_ERROR_NOMATCH) break;
        if (rc < 0) {  // a resource limit: step over this start rather than give up the rule
          if (++errors > 64) break;
          offset += 1;
          continue;
        }
      }
      PCRE2_SIZE* ov = pcre2_get_ovector_pointer(md);
      size_t ms = ov[0], me = ov[1];
      size_t b = ms, e = me;
      if (r.value_group && (int)r.value_group < rc && ov[2 * r.value_group] != PCRE2_UNSET) {
        b = ov[2 * r.value_group];
        e = ov[2 * r.value_group + 1];
      }
      bool ok = e > b && check(r.check, text, b, e);
      if (ok) {
        cands.push_back({r.rank, false, b, e, &r.category});
      } else if (lookalike_on_reject(r.check)) {
        size_t le = me;
        if (r.check != Check::iban || iban_lookalike_span(text, ms, le))
          cands.push_back({r.rank, true, ms, le, &r.category});
      }
      // After a rejected candidate look again from the next character, so a
      // valid value that starts inside it is not lost.
      size_t next = ok ? std::max(e, ms + 1) : ms + 1;
      if (r.utf)
        while (next < n && (static_cast<unsigned char>(text[next]) & 0xC0) == 0x80) ++next;
      offset = next;
    }
  }
  pcre2_match_context_free(mc);
  pcre2_match_context_free(plain);
  if (big_stack) pcre2_jit_stack_free(big_stack);
  pcre2_match_data_free(md);

  // Higher rank first; at equal rank real findings before look-alikes (a
  // look-alike only holds off strictly lower ranks), then longer first.
  std::sort(cands.begin(), cands.end(), [](const Candidate& a, const Candidate& b) {
    if (a.rank != b.rank) return a.rank > b.rank;
    if (a.lookalike != b.lookalike) return !a.lookalike;
    if (a.end - a.begin != b.end - b.begin) return a.end - a.begin > b.end - b.begin;
    return a.begin < b.begin;
  });
  struct Span {
    size_t end;
    const Candidate* c;
  };
  std::map<size_t, Span> taken, held;  // begin → accepted findings / look-alike spans
  for (const auto& c : cands) {
    if (c.lookalike) {
      if (overlapping(held, c.begin, c.end) == held.end()) held.emplace(c.begin, Span{c.end, &c});
      continue;
    }
    if (overlapping(taken, c.begin, c.end) != taken.end()) continue;
    // Every held span outranks c; one that contains c shields it. (One that
    // only overlaps does not: "+44 20 7946 0958 2023" is a phone even though
    // "7946 0958 2023" is a failed Aadhaar shape.)
    auto h = held.upper_bound(c.begin);
    if (h != held.begin() && std::prev(h)->second.end >= c.end) continue;
    taken.emplace(c.begin, Span{c.end, &c});
  }
  std::vector<Finding> out;
  out.reserve(taken.size());
  for (const auto& [b, s] : taken) out.push_back({*s.c->category, b, s.end});
  return out;
}

}  // namespace slim::privacy
