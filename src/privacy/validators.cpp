// Checksum and format validators of the privacy guard (see validators.h).
#include "privacy/validators.h"

#include <array>
#include <cstdint>

namespace slim::privacy {
namespace {

bool is_digit(char c) { return c >= '0' && c <= '9'; }
bool is_upper(char c) { return c >= 'A' && c <= 'Z'; }
bool is_hex(char c) { return is_digit(c) || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F'); }

// The leading n digits of d as a number (d has at least n digits).
int prefix(const std::string& d, int n) {
  int v = 0;
  for (int i = 0; i < n; ++i) v = v * 10 + (d[i] - '0');
  return v;
}

// s without the characters in drop.
std::string without(std::string_view s, std::string_view drop) {
  std::string out;
  out.reserve(s.size());
  for (char c : s)
    if (drop.find(c) == std::string_view::npos) out += c;
  return out;
}

struct IbanCountry {
  char code[3];
  int length;
};

// ISO 13616 lengths from the SWIFT IBAN registry. Territories that use
// their parent's IBAN (French overseas departments use FR...) need no row.
constexpr IbanCountry kIbanCountries[] = {
    {"AD", 24}, {"AE", 23}, {"AL", 28}, {"AT", 20}, {"AZ", 28}, {"BA", 20}, {"BE", 16},
    {"BG", 22}, {"BH", 22}, {"BI", 27}, {"BR", 29}, {"BY", 28}, {"CH", 21}, {"CR", 22},
    {"CY", 28}, {"CZ", 24}, {"DE", 22}, {"DJ", 27}, {"DK", 18}, {"DO", 28}, {"EE", 20},
    {"EG", 29}, {"ES", 24}, {"FI", 18}, {"FK", 18}, {"FO", 18}, {"FR", 27}, {"GB", 22},
    {"GE", 22}, {"GI", 23}, {"GL", 18}, {"GR", 27}, {"GT", 28}, {"HR", 21}, {"HU", 28},
    {"IE", 22}, {"IL", 23}, {"IQ", 23}, {"IS", 26}, {"IT", 27}, {"JO", 30}, {"KW", 30},
    {"KZ", 20}, {"LB", 28}, {"LC", 32}, {"LI", 21}, {"LT", 20}, {"LU", 20}, {"LV", 21},
    {"LY", 25}, {"MC", 27}, {"MD", 24}, {"ME", 22}, {"MK", 19}, {"MN", 20}, {"MR", 27},
    {"MT", 31}, {"MU", 30}, {"NI", 28}, {"NL", 18}, {"NO", 15}, {"OM", 23}, {"PK", 24},
    {"PL", 28}, {"PS", 29}, {"PT", 25}, {"QA", 29}, {"RO", 24}, {"RS", 22}, {"RU", 33},
    {"SA", 24}, {"SC", 31}, {"SD", 18}, {"SE", 24}, {"SI", 19}, {"SK", 24}, {"SM", 27},
    {"SO", 23}, {"ST", 25}, {"SV", 28}, {"TL", 23}, {"TN", 24}, {"TR", 26}, {"UA", 29},
    {"VA", 22}, {"VG", 24}, {"XK", 20}, {"YE", 30},
};

}  // namespace

std::string digits_of(std::string_view s) {
  std::string d;
  d.reserve(s.size());
  for (char c : s)
    if (is_digit(c)) d += c;
  return d;
}

bool luhn_valid(std::string_view s) {
  std::string d = digits_of(s);
  if (d.size() < 2) return false;
  int sum = 0;
  bool twice = false;  // every second digit from the right is doubled
  for (size_t i = d.size(); i-- > 0;) {
    int v = d[i] - '0';
    if (twice) {
      v *= 2;
      if (v > 9) v -= 9;
    }
    sum += v;
    twice = !twice;
  }
  return sum % 10 == 0;
}

bool card_valid(std::string_view s) {
  std::string d = digits_of(s);
  int n = (int)d.size();
  if (n < 13 || n > 19 || !luhn_valid(d)) return false;
  int p1 = prefix(d, 1), p2 = prefix(d, 2), p4 = prefix(d, 4);
  auto len_in = [n](int lo, int hi) { return n >= lo && n <= hi; };
  switch (p1) {
    case 4:  // Visa
      return n == 13 || n == 16 || n == 19;
    case 2:  // Mastercard 2-series, Mir
      return (p4 >= 2221 && p4 <= 2720 && n == 16) || (p4 >= 2200 && p4 <= 2204 && len_in(16, 19));
    case 3:
      if (p2 == 34 || p2 == 37) return n == 15;                          // Amex
      if (p2 == 30 || p2 == 36 || p2 == 38 || p2 == 39) return len_in(14, 19);  // Diners
      if (p4 >= 3528 && p4 <= 3589) return len_in(16, 19);               // JCB
      return false;
    case 5:
      if (p2 >= 51 && p2 <= 55) return n == 16;  // Mastercard
      return p2 == 50 || p2 >= 56;               // Maestro
    case 6:  // Discover, UnionPay, Maestro, RuPay: all lengths in range
      return true;
    default:  // 0, 1 (UATP), 7, 8, 9: not issued to people or not cards
      return false;
  }
}

int iban_length(std::string_view country) {
  for (const auto& c : kIbanCountries)
    if (country == c.code) return c.length;
  return 0;
}

bool iban_valid(std::string_view s) {
  std::string v = without(s, " ");
  if (v.size() < 15 || iban_length(std::string_view(v).substr(0, 2)) != (int)v.size()) return false;
  if (!is_digit(v[2]) || !is_digit(v[3])) return false;
  for (char c : v)
    if (!is_digit(c) && !is_upper(c)) return false;
  // Move the country code and check digits to the end, letters become
  // 10..35, and the number must be 1 mod 97 (ISO 7064 MOD 97-10); reduced
  // digit by digit so no big integers are needed.
  int rem = 0;
  for (size_t k = 0; k < v.size(); ++k) {
    char c = v[(k + 4) % v.size()];
    if (is_digit(c)) {
      rem = (rem * 10 + (c - '0')) % 97;
    } else {
      int x = c - 'A' + 10;
      rem = (rem * 100 + x) % 97;
    }
  }
  return rem == 1;
}

bool ssn_valid(std::string_view s) {
  // AAA-GG-SSSS with one kind of separator, or nine bare digits.
  if (s.size() == 11) {
    char sep = s[3];
    if ((sep != '-' && sep != ' ') || s[6] != sep) return false;
    for (size_t i : {0, 1, 2, 4, 5, 7, 8, 9, 10})
      if (!is_digit(s[i])) return false;
  } else if (s.size() != 9 || digits_of(s).size() != 9) {
    return false;
  }
  std::string d = digits_of(s);
  int area = prefix(d, 3), group = prefix(d.substr(3), 2), serial = prefix(d.substr(5), 4);
  if (area == 0 || area == 666 || area >= 900) return false;
  if (group == 0 || serial == 0) return false;
  // Specimen numbers printed on a wallet insert and in an advertisement:
  // never issued to anyone, widely used as examples.
  if (d == "078051120" || d == "219099999") return false;
  return true;
}

bool nino_valid(std::string_view s) {
  std::string v = without(s, " ");
  if (v.size() != 9) return false;
  char a = v[0], b = v[1];
  if (!is_upper(a) || !is_upper(b)) return false;
  for (int i = 2; i < 8; ++i)
    if (!is_digit(v[i])) return false;
  if (v[8] < 'A' || v[8] > 'D') return false;
  if (std::string_view("DFIQUV").find(a) != std::string_view::npos) return false;
  if (std::string_view("DFIOQUV").find(b) != std::string_view::npos) return false;
  std::string_view p(v.data(), 2);
  for (std::string_view bad : {"BG", "GB", "KN", "NK", "NT", "TN", "ZZ"})
    if (p == bad) return false;
  return true;
}

bool dni_nie_valid(std::string_view s) {
  std::string v = without(s, "- ");
  if (v.size() != 9 || !is_upper(v[8])) return false;
  // NIE: the leading X/Y/Z stands for 0/1/2 and the rest is a DNI.
  if (v[0] == 'X' || v[0] == 'Y' || v[0] == 'Z') v[0] = char('0' + (v[0] - 'X'));
  for (int i = 0; i < 8; ++i)
    if (!is_digit(v[i])) return false;
  static constexpr char kLetters[] = "TRWAGMYFPDXBNJZSQVHLCKE";
  return kLetters[prefix(v, 8) % 23] == v[8];
}

bool codice_fiscale_valid(std::string_view s) {
  if (s.size() != 16) return false;
  // Value of a character in an odd (1st, 3rd, ...) position; digits map like
  // the letter with the same index (0 like A, 1 like B, ...).
  static constexpr int kOdd[26] = {1, 0, 5, 7, 9, 13, 15, 17, 19, 21, 2, 4, 18,
                                   20, 11, 3, 6, 8, 12, 14, 16, 10, 22, 25, 24, 23};
  int sum = 0;
  for (int i = 0; i < 15; ++i) {
    char c = s[i];
    int idx;
    if (is_digit(c)) idx = c - '0';
    else if (is_upper(c)) idx = c - 'A';
    else return false;
    sum += (i % 2 == 0) ? kOdd[idx] : idx;
  }
  return is_upper(s[15]) && s[15] == char('A' + sum % 26);
}

bool verhoeff_valid(std::string_view s) {
  // Multiplication in the dihedral group D5, the position permutation, as
  // in Verhoeff's scheme.
  static constexpr uint8_t kD[10][10] = {
      {0, 1, 2, 3, 4, 5, 6, 7, 8, 9}, {1, 2, 3, 4, 0, 6, 7, 8, 9, 5},
      {2, 3, 4, 0, 1, 7, 8, 9, 5, 6}, {3, 4, 0, 1, 2, 8, 9, 5, 6, 7},
      {4, 0, 1, 2, 3, 9, 5, 6, 7, 8}, {5, 9, 8, 7, 6, 0, 4, 3, 2, 1},
      {6, 5, 9, 8, 7, 1, 0, 4, 3, 2}, {7, 6, 5, 9, 8, 2, 1, 0, 4, 3},
      {8, 7, 6, 5, 9, 3, 2, 1, 0, 4}, {9, 8, 7, 6, 5, 4, 3, 2, 1, 0}};
  static constexpr uint8_t kP[8][10] = {
      {0, 1, 2, 3, 4, 5, 6, 7, 8, 9}, {1, 5, 7, 6, 2, 8, 3, 0, 9, 4},
      {5, 8, 0, 3, 7, 9, 6, 1, 4, 2}, {8, 9, 1, 6, 0, 4, 3, 5, 2, 7},
      {9, 4, 5, 3, 1, 2, 6, 8, 7, 0}, {4, 2, 8, 6, 5, 7, 3, 9, 0, 1},
      {2, 7, 9, 3, 8, 0, 6, 4, 1, 5}, {7, 0, 4, 6, 9, 1, 3, 2, 5, 8}};
  std::string d = digits_of(s);
  if (d.size() < 2) return false;
  int c = 0;
  for (size_t i = 0; i < d.size(); ++i) c = kD[c][kP[i % 8][d[d.size() - 1 - i] - '0']];
  return c == 0;
}

bool aadhaar_valid(std::string_view s) {
  std::string d = digits_of(s);
  return d.size() == 12 && d[0] >= '2' && verhoeff_valid(d);
}

bool ipv4_valid(std::string_view s) {
  int parts = 0;
  size_t i = 0;
  while (true) {
    size_t start = i;
    int v = 0;
    while (i < s.size() && is_digit(s[i]) && i - start < 4) v = v * 10 + (s[i++] - '0');
    size_t len = i - start;
    if (len == 0 || len > 3 || v > 255 || (len > 1 && s[start] == '0')) return false;
    ++parts;
    if (i == s.size()) break;
    if (s[i] != '.' || parts == 4) return false;
    ++i;
  }
  return parts == 4;
}

bool ipv6_valid(std::string_view s) {
  // Groups before and after the "::" (if any); an IPv4 suffix counts as two.
  int groups = 0;
  bool compressed = false;
  size_t i = 0;
  if (s.size() >= 2 && s[0] == ':' && s[1] == ':') {
    compressed = true;
    i = 2;
    if (i == s.size()) return false;  // "::" alone is not worth redacting, and is C++ scope syntax
  } else if (!s.empty() && s[0] == ':') {
    return false;
  }
  while (i < s.size()) {
    size_t start = i;
    while (i < s.size() && is_hex(s[i]) && i - start < 5) ++i;
    size_t len = i - start;
    if (i < s.size() && s[i] == '.') {  // dotted IPv4 tail: must be the last piece
      if (!ipv4_valid(s.substr(start))) return false;
      groups += 2;
      i = s.size();
      break;
    }
    if (len == 0 || len > 4) return false;
    ++groups;
    if (i == s.size()) break;
    if (s[i] != ':') return false;
    ++i;
    if (i < s.size() && s[i] == ':') {
      if (compressed) return false;  // a second "::"
      compressed = true;
      ++i;
      if (i == s.size()) break;  // trailing "::"
    } else if (i == s.size()) {
      return false;  // a single trailing ':'
    }
  }
  return compressed ? groups <= 7 : groups == 8;
}

}  // namespace slim::privacy
