// Parser: tokens to syntax tree, following jinja2's grammar and operator
// precedence (filters bind tighter than arithmetic, `~` tighter than `+`,
// `**` is left-associative, `not x is y` negates the test).
#pragma once

#include <memory>
#include <string_view>

#include "chat/ast.h"

namespace slim::jinja {

// Throws Error{syntax} with the offset of the offending token.
std::unique_ptr<Program> parse_program(std::string_view source);

}  // namespace slim::jinja
