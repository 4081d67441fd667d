// The privacy guard: the PII set (tests/privacy/pii_set.jsonl, written by
// make_pii_set.py) row by row, placeholder numbering across texts, stream
// restoration at every chunk boundary, user rules and disabled categories,
// and each checksum validator on its own.
#include <nlohmann/json.hpp>

#include <fstream>
#include <map>
#include <random>
#include <set>

#include "privacy/redact.h"
#include "privacy/validators.h"
#include "test_util.h"

namespace slim::privacy {
namespace {

std::shared_ptr<const Detector> make_detector(const Rules& rules = {}) {
  auto d = Detector::create(rules);
  EXPECT_TRUE(d.ok()) << d.error();
  return d.ok() ? *d : nullptr;
}

std::shared_ptr<const Detector> default_detector() {
  static auto d = make_detector();
  return d;
}

struct Row {
  std::string prompt;
  std::vector<std::pair<std::string, std::string>> values;  // (category, value)
  std::vector<std::string> lookalikes;
};

std::string pii_set_path() { return std::string(SLIM_SOURCE_DIR) + "/tests/privacy/pii_set.jsonl"; }

std::vector<Row> load_rows(const std::string& path) {
  std::vector<Row> rows;
  std::ifstream f(path);
  std::string line;
  while (std::getline(f, line)) {
    if (line.empty()) continue;
    auto j = nlohmann::json::parse(line);
    Row r;
    r.prompt = j.at("prompt").get<std::string>();
    for (const auto& v : j.at("values")) r.values.emplace_back(v.at("category"), v.at("value"));
    for (const auto& l : j.at("lookalikes")) r.lookalikes.push_back(l.get<std::string>());
    rows.push_back(std::move(r));
  }
  return rows;
}

// Fails the calling test (fatally) when the data file is missing or empty.
#define LOAD_PII_SET(rows)                                                              \
  const std::string pii_path = pii_set_path();                                          \
  ASSERT_TRUE(std::filesystem::exists(pii_path)) << "missing PII test set: " << pii_path; \
  const std::vector<Row> rows = load_rows(pii_path);                                     \
  ASSERT_FALSE(rows.empty()) << "empty PII test set: " << pii_path

// The text as the user would get it back from a remote model that echoes it
// chunk by chunk.
std::string stream_restore(const Redaction& r, std::string_view text, const std::vector<size_t>& sizes) {
  StreamRestorer s(r);
  std::string out;
  size_t pos = 0, k = 0;
  while (pos < text.size()) {
    size_t n = std::min(sizes[k++ % sizes.size()], text.size() - pos);
    out += s.push(text.substr(pos, n));
    pos += n;
  }
  out += s.finish();
  return out;
}

TEST(PiiSet, CoversEveryCategoryWithLookalikes) {
  LOAD_PII_SET(rows);
  EXPECT_GE(rows.size(), 150u);
  std::map<std::string, int> per_category;
  size_t lookalikes = 0;
  for (const auto& r : rows) {
    for (const auto& [cat, v] : r.values) ++per_category[cat];
    lookalikes += r.lookalikes.size();
  }
  EXPECT_GE(lookalikes, 40u);
  for (const auto& cat : Detector::builtin_categories())
    EXPECT_GE(per_category[cat], 5) << "too few rows for category " << cat;
  for (const auto& [cat, n] : per_category)
    EXPECT_NE(std::find(Detector::builtin_categories().begin(), Detector::builtin_categories().end(), cat),
              Detector::builtin_categories().end())
        << "unknown category in the data set: " << cat;
}

TEST(PiiSet, EveryRowRedactsValuesKeepsLookalikesAndRoundTrips) {
  LOAD_PII_SET(rows);
  auto d = default_detector();
  ASSERT_TRUE(d);
  for (const auto& row : rows) {
    SCOPED_TRACE(row.prompt);
    Redaction r(d);
    const std::string red = r.redact(row.prompt);
    for (const auto& [cat, v] : row.values) EXPECT_EQ(red.find(v), std::string::npos) << cat << " value left: " << v << "\n  redacted: " << red;
    for (const auto& l : row.lookalikes) EXPECT_NE(red.find(l), std::string::npos) << "look-alike touched: " << l << "\n  redacted: " << red;
    std::map<std::string, std::set<std::string>> want;
    for (const auto& [cat, v] : row.values) want[cat].insert(v);
    std::map<std::string, int> want_counts;
    for (const auto& [cat, vs] : want) want_counts[cat] = (int)vs.size();
    EXPECT_EQ(r.counts(), want_counts) << "redacted: " << red;
    EXPECT_EQ(r.restore(red), row.prompt);
    EXPECT_EQ(stream_restore(r, red, {1}), row.prompt);
    EXPECT_EQ(stream_restore(r, red, {3, 7, 2}), row.prompt);
  }
}

TEST(PiiSet, FindingsAreSortedAndDisjoint) {
  LOAD_PII_SET(rows);
  auto d = default_detector();
  ASSERT_TRUE(d);
  std::string all;
  for (const auto& row : rows) all += row.prompt + "\n";
  auto found = d->find(all);
  EXPECT_GT(found.size(), 150u);
  for (size_t i = 0; i < found.size(); ++i) {
    EXPECT_LT(found[i].begin, found[i].end);
    EXPECT_LE(found[i].end, all.size());
    if (i > 0) {
      EXPECT_LE(found[i - 1].end, found[i].begin) << "overlap at " << found[i].begin;
    }
  }
}

TEST(Redaction, PlaceholderFormatPerCategory) {
  Redaction r(default_detector());
  std::string red = r.redact(
      "a@example.com +44 20 7946 0958 4111 1111 1111 1111 DE89 3704 0044 0532 0130 00 123-45-6789 "
      "10.0.0.1 password=hunter2 https://u:p@h.example/x");
  EXPECT_EQ(red,
            "[EMAIL_1] [PHONE_1] [CARD_1] [IBAN_1] [NATIONAL_ID_1] [IP_1] password=[SECRET_1] "
            "https://[URL_CREDENTIALS_1]@h.example/x");
}

TEST(Redaction, SameValueSamePlaceholderAcrossTexts) {
  Redaction r(default_detector());
  std::string a = r.redact("Mail bob@example.com and alice@example.com.");
  std::string b = r.redact("Did alice@example.com answer? Also ask carol@example.com and bob@example.com.");
  EXPECT_EQ(a, "Mail [EMAIL_1] and [EMAIL_2].");
  EXPECT_EQ(b, "Did [EMAIL_2] answer? Also ask [EMAIL_3] and [EMAIL_1].");
  EXPECT_EQ(r.counts().at("email"), 3);
  EXPECT_EQ(r.restore(a + b), "Mail bob@example.com and alice@example.com.Did alice@example.com answer? "
                              "Also ask carol@example.com and bob@example.com.");
  Redaction other(default_detector());  // a new request starts over
  EXPECT_EQ(other.redact("carol@example.com"), "[EMAIL_1]");
  EXPECT_TRUE(Redaction(default_detector()).empty());
  EXPECT_FALSE(other.empty());
}

TEST(Redaction, NumberingIsPerCategory) {
  Redaction r(default_detector());
  EXPECT_EQ(r.redact("10.0.0.1 a@b.example 10.0.0.2 c@d.example"), "[IP_1] [EMAIL_1] [IP_2] [EMAIL_2]");
}

TEST(Redaction, LiteralPlaceholderInTheInputIsNotReused) {
  Redaction r(default_detector());
  std::string in = "Earlier answer said [EMAIL_1]; now write to bob@example.com.";
  std::string red = r.redact(in);
  EXPECT_EQ(red, "Earlier answer said [EMAIL_1]; now write to [EMAIL_2].");
  EXPECT_EQ(r.restore(red), in);
}

TEST(Redaction, RestoreLeavesUnknownPlaceholdersAndBrackets) {
  Redaction r(default_detector());
  r.redact("bob@example.com");
  EXPECT_EQ(r.restore("[EMAIL_1] [EMAIL_2] [email_1] [EMAIL_1 [[EMAIL_1]] [](x) ["),
            "bob@example.com [EMAIL_2] [email_1] [EMAIL_1 [bob@example.com] [](x) [");
}

TEST(Redaction, UrlCredentialsWithEmailLikeUserIsOneFinding) {
  auto d = default_detector();
  std::string text = "proxy https://john.doe@example.com:hunter2@proxy.corp.net:8080/ now";
  auto f = d->find(text);
  ASSERT_EQ(f.size(), 1u);
  EXPECT_EQ(f[0].category, "url_credentials");
  EXPECT_EQ(text.substr(f[0].begin, f[0].end - f[0].begin), "john.doe@example.com:hunter2");
}

TEST(Redaction, PemBlockSwallowsEverythingInside) {
  auto d = default_detector();
  std::string pem = "-----BEGIN RSA PRIVATE KEY-----\nMIIE a@b.example 10.0.0.1 password=x\n-----END RSA PRIVATE KEY-----";
  std::string text = "key:\n" + pem + "\nbye c@d.example";
  auto f = d->find(text);
  ASSERT_EQ(f.size(), 2u);
  EXPECT_EQ(f[0].category, "secret");
  EXPECT_EQ(text.substr(f[0].begin, f[0].end - f[0].begin), pem);
  EXPECT_EQ(f[1].category, "email");
}

TEST(Redaction, FailedChecksumShapesShieldTheirInsides) {
  // The bad IBAN holds "0044 0532 0130", a phone shape; it must stay whole.
  auto d = default_detector();
  EXPECT_TRUE(d->find("IBAN DE90 3704 0044 0532 0130 00 bounced").empty());
  // ...but a real phone next to it is still found.
  auto f = d->find("IBAN DE90 3704 0044 0532 0130 00, call 020 7946 0958");
  ASSERT_EQ(f.size(), 1u);
  EXPECT_EQ(f[0].category, "phone");
}

TEST(Redaction, PhoneCutBeforeATrailingNumber) {
  Redaction r(default_detector());
  EXPECT_EQ(r.redact("Call +44 20 7946 0958 2023 was the year"), "Call [PHONE_1] 2023 was the year");
}

TEST(StreamRestorer, EverySplitPointAndByteByByte) {
  Redaction r(default_detector());
  const std::string original = "Reply to bob@example.com and [alice@example.org], call +14155552671; card 4111 1111 1111 1111.";
  const std::string red = r.redact(original);
  ASSERT_NE(red, original);
  // The remote answer: placeholders anywhere, at the start and the very end,
  // an unknown one, look-alikes of the syntax and brackets of prose.
  const std::string answer = "[EMAIL_1] wrote: [x] see [PHONE_1], [EMAIL_9] [CARD_ [EMAIL_2]][CARD_1]. [EMAIL_1]";
  const std::string want = "bob@example.com wrote: [x] see +14155552671, [EMAIL_9] [CARD_ alice@example.org]4111 1111 1111 1111. bob@example.com";
  ASSERT_EQ(r.restore(answer), want);
  for (size_t cut = 0; cut <= answer.size(); ++cut) {
    StreamRestorer s(r);
    std::string out = s.push(std::string_view(answer).substr(0, cut));
    out += s.push(std::string_view(answer).substr(cut));
    out += s.finish();
    EXPECT_EQ(out, want) << "split at " << cut;
  }
  for (size_t a = 0; a <= answer.size(); a += 3)
    for (size_t b = a; b <= answer.size(); b += 5) {
      StreamRestorer s(r);
      std::string out = s.push(std::string_view(answer).substr(0, a));
      out += s.push(std::string_view(answer).substr(a, b - a));
      out += s.push(std::string_view(answer).substr(b));
      out += s.finish();
      EXPECT_EQ(out, want) << "splits at " << a << ", " << b;
    }
  EXPECT_EQ(stream_restore(r, answer, {1}), want);
  EXPECT_EQ(stream_restore(r, red, {1}), original);
  std::mt19937 rng(7);
  for (int i = 0; i < 50; ++i) {
    std::vector<size_t> sizes;
    for (int k = 0; k < 8; ++k) sizes.push_back(1 + rng() % 12);
    EXPECT_EQ(stream_restore(r, answer, sizes), want);
  }
}

TEST(StreamRestorer, HoldsBackOnlyWhatCanBeAPlaceholder) {
  Redaction r(default_detector());
  r.redact("bob@example.com");
  StreamRestorer s(r);
  EXPECT_EQ(s.push("Hello [link](x) and "), "Hello [link](x) and ");  // lower case: not a placeholder
  EXPECT_EQ(s.push("[EMA"), "");
  EXPECT_EQ(s.push("IL_1"), "");
  EXPECT_EQ(s.push("] ok ["), "bob@example.com ok ");
  EXPECT_EQ(s.push("1]"), "[1]");  // labels start with a letter
  EXPECT_EQ(s.push("[EMAIL_"), "");
  EXPECT_EQ(s.finish(), "[EMAIL_");  // an unfinished tail comes out as it is
  EXPECT_EQ(s.finish(), "");
  // A long bracketed run of capitals is released once it is longer than
  // any placeholder.
  StreamRestorer t(r);
  std::string caps = "[" + std::string(kMaxPlaceholderSize + 5, 'A');
  EXPECT_EQ(t.push(caps), caps);
}

TEST(Rules, CustomPatternsGetTheirOwnPlaceholders) {
  auto d = make_detector({{}, {{"employee_id", R"(EMP-\d{6})"}, {"Project Code", R"(PRJ-[A-Z]{3})"}}});
  ASSERT_TRUE(d);
  Redaction r(d);
  std::string red = r.redact("EMP-123456 works on PRJ-ABC with EMP-654321 and EMP-123456; mail a@b.example");
  EXPECT_EQ(red, "[EMPLOYEE_ID_1] works on [PROJECT_CODE_1] with [EMPLOYEE_ID_2] and [EMPLOYEE_ID_1]; mail [EMAIL_1]");
  EXPECT_EQ(r.counts().at("employee_id"), 2);
  EXPECT_EQ(r.counts().at("project_code"), 1);
  EXPECT_EQ(stream_restore(r, red, {1}), r.restore(red));
}

TEST(Rules, CustomValueGroupKeepsTheContext) {
  auto d = make_detector({{}, {{"patient", R"(patient no\. (?<value>\d{5}))"}}});
  ASSERT_TRUE(d);
  Redaction r(d);
  EXPECT_EQ(r.redact("See patient no. 48213 today."), "See patient no. [PATIENT_1] today.");
}

TEST(Rules, CustomPatternsAreUtf8AndSurviveInvalidUtf8) {
  auto d = make_detector({{}, {{"name", "Zoë|Łukasz"}}});
  ASSERT_TRUE(d);
  Redaction r(d);
  EXPECT_EQ(r.redact("Ask Zoë and Łukasz."), "Ask [NAME_1] and [NAME_2].");
  std::string bad = "x\xff\xfe Zoë \xc3";
  EXPECT_EQ(r.redact(bad), "x\xff\xfe [NAME_1] \xc3");
  auto empty_matches = make_detector({{}, {{"maybe", "a*"}}});
  ASSERT_TRUE(empty_matches);
  EXPECT_EQ(Redaction(empty_matches).redact("bbb aa b"), "bbb [MAYBE_1] b");
}

TEST(Rules, DisabledCategoriesStay) {
  auto d = make_detector({{"email", "phone"}, {}});
  ASSERT_TRUE(d);
  Redaction r(d);
  EXPECT_EQ(r.redact("a@b.example +44 20 7946 0958 10.0.0.1"), "a@b.example +44 20 7946 0958 [IP_1]");
  auto all_off = make_detector({Detector::builtin_categories(), {}});
  ASSERT_TRUE(all_off);
  EXPECT_TRUE(all_off->find("a@b.example 10.0.0.1 password=x 4111111111111111").empty());
}

TEST(Rules, UnknownDisabledCategoryIsAnErrorNamingIt) {
  auto d = Detector::create({{"email", "emails", "ssn"}, {}});
  ASSERT_FALSE(d.ok());
  EXPECT_NE(d.error().find("'emails'"), std::string::npos) << d.error();
  EXPECT_NE(d.error().find("'ssn'"), std::string::npos) << d.error();
  EXPECT_EQ(d.error().find("'email'"), std::string::npos) << d.error();
}

TEST(Rules, InvalidRegexIsAnErrorNamingTheRule) {
  auto d = Detector::create({{}, {{"good", "abc"}, {"broken", "(unclosed"}, {"worse", "a{2,1}"}}});
  ASSERT_FALSE(d.ok());
  EXPECT_NE(d.error().find("'broken'"), std::string::npos) << d.error();
  EXPECT_NE(d.error().find("(unclosed"), std::string::npos) << d.error();
  EXPECT_NE(d.error().find("'worse'"), std::string::npos) << d.error();
  EXPECT_EQ(d.error().find("'good'"), std::string::npos) << d.error();
  EXPECT_FALSE(Detector::create({{}, {{"", "abc"}}}).ok());
  EXPECT_FALSE(Detector::create({{}, {{"bad]name", "abc"}}}).ok());
  EXPECT_FALSE(Detector::create({{}, {{"empty", ""}}}).ok());
}

TEST(Rules, BuiltinCategories) {
  EXPECT_EQ(Detector::builtin_categories(),
            (std::vector<std::string>{"email", "phone", "card", "iban", "national_id", "ip", "secret", "url_credentials"}));
  EXPECT_EQ(placeholder_label("national_id"), "NATIONAL_ID");
}

// --- validators ------------------------------------------------------------

TEST(Validators, Luhn) {
  EXPECT_TRUE(luhn_valid("79927398713"));  // the textbook example
  EXPECT_FALSE(luhn_valid("79927398710"));
  EXPECT_TRUE(luhn_valid("4111 1111 1111 1111"));
  EXPECT_FALSE(luhn_valid("4111 1111 1111 1112"));
  EXPECT_TRUE(luhn_valid("00"));
  EXPECT_FALSE(luhn_valid("0"));
  EXPECT_FALSE(luhn_valid(""));
  EXPECT_EQ(digits_of("41-11 a1"), "41111");
}

TEST(Validators, Cards) {
  for (const char* ok : {"4111111111111111", "4222222222222", "5555555555554444", "2223000048410010",
                         "378282246310005", "6011111111111117", "3530111333300000", "30569309025904",
                         "6200000000000005", "5105-1051-0510-5100"})
    EXPECT_TRUE(card_valid(ok)) << ok;
  for (const char* bad : {"4111111111111112",   // Luhn
                          "1234567812345670",   // Luhn-valid, no issuer starts with 1
                          "9783161484100",      // an ISBN-13
                          "411111111111116",    // Luhn-valid Visa with 15 digits
                          "378282246310005002", // Luhn-valid Amex with 18
                          "411111111111"})      // too short
    EXPECT_FALSE(card_valid(bad)) << bad;
}

TEST(Validators, IbanMod97AndCountryLengths) {
  for (const char* ok : {"DE89370400440532013000", "GB82 WEST 1234 5698 7654 32", "FR1420041010050500013M02606",
                         "NL91ABNA0417164300", "BE68539007547034", "CH9300762011623852957", "NO9386011117947",
                         "AT611904300234573201", "ES9121000418450200051332"})
    EXPECT_TRUE(iban_valid(ok)) << ok;
  EXPECT_FALSE(iban_valid("DE88370400440532013000"));   // check digits
  EXPECT_FALSE(iban_valid("DE8937040044053201300"));    // one short for DE
  EXPECT_FALSE(iban_valid("DE893704004405320130000"));  // one long
  EXPECT_FALSE(iban_valid("XX89370400440532013000"));   // no such country
  EXPECT_FALSE(iban_valid("de89370400440532013000"));
  EXPECT_FALSE(iban_valid("GB82 WEST 1234 5698 7654 33"));
  EXPECT_EQ(iban_length("DE"), 22);
  EXPECT_EQ(iban_length("NO"), 15);
  EXPECT_EQ(iban_length("US"), 0);
}

TEST(Validators, SsnRanges) {
  EXPECT_TRUE(ssn_valid("123-45-6789"));
  EXPECT_TRUE(ssn_valid("001-01-0001"));
  EXPECT_TRUE(ssn_valid("899-99-9999"));
  EXPECT_TRUE(ssn_valid("665 12 3456"));
  EXPECT_FALSE(ssn_valid("000-45-6789"));
  EXPECT_FALSE(ssn_valid("666-45-6789"));
  EXPECT_FALSE(ssn_valid("900-45-6789"));
  EXPECT_FALSE(ssn_valid("999-45-6789"));
  EXPECT_FALSE(ssn_valid("123-00-6789"));
  EXPECT_FALSE(ssn_valid("123-45-0000"));
  EXPECT_FALSE(ssn_valid("078-05-1120"));
  EXPECT_FALSE(ssn_valid("12-345-6789"));
  EXPECT_FALSE(ssn_valid("123-45-678"));
}

TEST(Validators, NationalInsuranceNumber) {
  EXPECT_TRUE(nino_valid("AB123456C"));
  EXPECT_TRUE(nino_valid("JG 10 37 63 A"));
  EXPECT_FALSE(nino_valid("DA123456A"));  // D never first
  EXPECT_FALSE(nino_valid("AO123456A"));  // O never second
  EXPECT_FALSE(nino_valid("GB123456A"));  // excluded prefix
  EXPECT_FALSE(nino_valid("NK123456A"));
  EXPECT_FALSE(nino_valid("AB123456E"));  // suffix A-D
  EXPECT_FALSE(nino_valid("AB12345C"));
}

TEST(Validators, SpanishDniAndNie) {
  EXPECT_TRUE(dni_nie_valid("12345678Z"));
  EXPECT_TRUE(dni_nie_valid("12345678-Z"));
  EXPECT_FALSE(dni_nie_valid("12345678A"));
  EXPECT_TRUE(dni_nie_valid("X1234567L"));  // X = 0: 01234567 % 23 = 19 → L
  EXPECT_FALSE(dni_nie_valid("Y1234567L"));
  EXPECT_FALSE(dni_nie_valid("1234567Z"));
}

TEST(Validators, CodiceFiscale) {
  EXPECT_TRUE(codice_fiscale_valid("RSSMRA85T10A562S"));
  EXPECT_TRUE(codice_fiscale_valid("MRTMTT91D08F205J"));
  EXPECT_FALSE(codice_fiscale_valid("RSSMRA85T10A562T"));
  EXPECT_FALSE(codice_fiscale_valid("RSSMRA85T10A562"));
  EXPECT_FALSE(codice_fiscale_valid("rssmra85t10a562s"));
}

TEST(Validators, VerhoeffAndAadhaar) {
  EXPECT_TRUE(verhoeff_valid("2363"));  // 236 with its check digit 3
  EXPECT_FALSE(verhoeff_valid("2364"));
  EXPECT_FALSE(verhoeff_valid("3263"));  // a transposition is caught
  EXPECT_TRUE(aadhaar_valid("2345 6789 0124"));
  EXPECT_FALSE(aadhaar_valid("2345 6789 0125"));
  EXPECT_FALSE(aadhaar_valid("1234 5678 9012"));  // never starts with 0 or 1
  EXPECT_FALSE(aadhaar_valid("2345 6789 012"));
}

TEST(Validators, Ipv4) {
  for (const char* ok : {"0.0.0.0", "255.255.255.255", "192.168.1.10", "8.8.8.8", "10.0.0.1"})
    EXPECT_TRUE(ipv4_valid(ok)) << ok;
  for (const char* bad : {"256.0.0.1", "999.1.1.1", "1.2.3", "1.2.3.4.5", "01.2.3.4", "1.2.3.04", "1..2.3",
                          "1.2.3.4.", ".1.2.3", "1234.1.1.1", "a.b.c.d", ""})
    EXPECT_FALSE(ipv4_valid(bad)) << bad;
}

TEST(Validators, Ipv6) {
  for (const char* ok : {"::1", "1::", "2001:db8::1", "2001:0db8:85a3:0000:0000:8a2e:0370:7334", "fe80::1ff:fe23:4567:890a",
                         "1:2:3:4:5:6:7:8", "1:2:3:4:5:6:7::", "::2:3:4:5:6:7:8", "::ffff:192.0.2.128",
                         "1:2:3:4:5:6:1.2.3.4", "2606:4700:4700::1111", "FD00::ABCD"})
    EXPECT_TRUE(ipv6_valid(ok)) << ok;
  for (const char* bad : {"::", ":1", "1:", "1:2:3:4:5:6:7", "1:2:3:4:5:6:7:8:9", "1::2::3", "12345::1", "g::1",
                          "1:2:3:4:5:6:7:1.2.3.4", "::1.2.3", "12:30:45", "00:1A:2B:3C:4D:5E", "1:2:3:4:5:6:7:8::",
                          ":::1", ""})
    EXPECT_FALSE(ipv6_valid(bad)) << bad;
}

}  // namespace
}  // namespace slim::privacy
