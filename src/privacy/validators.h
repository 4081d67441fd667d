// Checksum and format validators behind the privacy guard's built-in rules.
// The regexes in detector.cpp only find candidates; these decide whether a
// candidate is the real thing, so an order number that fails Luhn or a
// dotted version string stays in the text. Each takes the candidate as it
// appears (separators included where the format allows them) and is a pure
// function, unit-tested on its own.
#pragma once

#include <string>
#include <string_view>

namespace slim::privacy {

// The decimal digits of s, everything else dropped ("4111-1111" → "41111111").
std::string digits_of(std::string_view s);

// Luhn (mod 10) over the digits of s; false when s has fewer than 2 digits.
bool luhn_valid(std::string_view s);

// A payment card: 13-19 digits, Luhn-valid and an issuer prefix that exists
// (Visa, Mastercard, Amex, Discover, Diners, JCB, UnionPay, Maestro, Mir...),
// with the lengths that issuer uses.
bool card_valid(std::string_view s);

// IBAN (spaces allowed): known country, that country's length, alphanumeric
// BBAN, and the ISO 7064 mod-97 check equal to 1.
bool iban_valid(std::string_view s);
// Length of a country's IBAN (0 for a country that has none).
int iban_length(std::string_view country);

// US SSN "AAA-GG-SSSS" (dashes or spaces, or none): area not 000, 666 or
// 9xx, group not 00, serial not 0000, and not one of the publicised
// specimen numbers (078-05-1120, 219-09-9999).
bool ssn_valid(std::string_view s);

// UK National Insurance number "AB123456C" (spaces allowed): HMRC's letter
// rules for the prefix (no D F I Q U V first, no D F I O Q U V second, no
// BG GB KN NK NT TN ZZ) and a suffix A-D.
bool nino_valid(std::string_view s);

// Spanish DNI "12345678Z" / NIE "X1234567L" (optional dash): the check letter.
bool dni_nie_valid(std::string_view s);

// Italian codice fiscale (16 characters, omocodia letters allowed): the
// check character.
bool codice_fiscale_valid(std::string_view s);

// Verhoeff check over the digits of s (Aadhaar numbers carry one).
bool verhoeff_valid(std::string_view s);
// Indian Aadhaar: 12 digits, first digit 2-9, Verhoeff-valid.
bool aadhaar_valid(std::string_view s);

// IPv4 dotted quad: four decimal octets 0-255, no leading zeros ("01").
bool ipv4_valid(std::string_view s);

// IPv6 in full, compressed ("::") or IPv4-suffixed form: eight 1-4 digit hex
// groups, at most one "::" standing for at least one group.
bool ipv6_valid(std::string_view s);

}  // namespace slim::privacy
