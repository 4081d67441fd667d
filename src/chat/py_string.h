// Python `str` semantics on UTF-8 std::string: code points, whitespace,
// case mapping, strip/split/find, repr and float repr. Templates index and
// measure strings by code point, never by byte, because jinja2 runs on
// Python strings.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace slim::jinja {

// Decodes one code point at s[i] and advances i. An invalid byte decodes to
// itself (0x80..0xFF) so that any byte string round-trips.
uint32_t next_code_point(std::string_view s, size_t& i);
void append_utf8(std::string& out, uint32_t cp);
bool is_ascii(std::string_view s);
size_t code_point_count(std::string_view s);
// Byte offset of every code point, plus s.size() at the end.
std::vector<size_t> code_point_offsets(std::string_view s);
std::vector<std::string> code_points(std::string_view s);

bool py_isspace(uint32_t cp);
bool py_isalnum(uint32_t cp);
bool py_isalpha(uint32_t cp);
bool py_isdigit(uint32_t cp);
bool py_is_cased(uint32_t cp);
bool py_islower_cp(uint32_t cp);
bool py_isupper_cp(uint32_t cp);
bool py_isprintable(uint32_t cp);
uint32_t py_to_upper(uint32_t cp);
uint32_t py_to_lower(uint32_t cp);

std::string py_upper(std::string_view s);
std::string py_lower(std::string_view s);
std::string py_swapcase(std::string_view s);
std::string py_capitalize(std::string_view s);
std::string py_title(std::string_view s);  // str.title()
bool py_islower(std::string_view s);
bool py_isupper(std::string_view s);

// chars == nullopt strips whitespace, as Python does.
std::string py_strip(std::string_view s, const std::optional<std::string>& chars, bool left, bool right);
// sep == nullopt splits on runs of whitespace. maxsplit < 0: no limit.
std::vector<std::string> py_split(std::string_view s, const std::optional<std::string>& sep, int64_t maxsplit);
std::vector<std::string> py_rsplit(std::string_view s, const std::optional<std::string>& sep, int64_t maxsplit);
std::vector<std::string> py_splitlines(std::string_view s, bool keepends);
std::string py_replace(std::string_view s, std::string_view old, std::string_view repl, int64_t count);
// Code-point index of sub in s[start:end] (Python slice bounds), or -1.
int64_t py_find(std::string_view s, std::string_view sub, std::optional<int64_t> start,
                std::optional<int64_t> end, bool reverse);
int64_t py_count(std::string_view s, std::string_view sub, std::optional<int64_t> start,
                 std::optional<int64_t> end);

std::string py_repr_string(std::string_view s);
// float.__repr__: shortest round-trip digits, '1.0', '1e+16', 'inf', 'nan'.
std::string py_float_repr(double d);

}  // namespace slim::jinja
