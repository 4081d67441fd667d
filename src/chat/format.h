// Python string formatting as templates see it: str.format() with the
// format-spec mini-language, and printf-style `fmt % args` (also behind the
// `format` filter).
#pragma once

#include <string>
#include <string_view>

#include "chat/ast.h"

namespace slim::jinja {

// escape: the format string is Markup, so plain-string fields are HTML-escaped.
std::string str_format(const std::string& fmt, Args& args, bool escape = false);
std::string percent_format(const std::string& fmt, const Value& args, bool escape = false);
// format(value, spec)
std::string format_value(const Value& v, std::string_view spec);

}  // namespace slim::jinja
