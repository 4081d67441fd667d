// GgufValue / GgufArray helpers.
#include "gguf/gguf.h"

namespace slim {

const char* gguf_type_name(GgufType t) {
  switch (t) {
    case GgufType::UINT8: return "u8";
    case GgufType::INT8: return "i8";
    case GgufType::UINT16: return "u16";
    case GgufType::INT16: return "i16";
    case GgufType::UINT32: return "u32";
    case GgufType::INT32: return "i32";
    case GgufType::FLOAT32: return "f32";
    case GgufType::BOOL: return "bool";
    case GgufType::STRING: return "str";
    case GgufType::ARRAY: return "arr";
    case GgufType::UINT64: return "u64";
    case GgufType::INT64: return "i64";
    case GgufType::FLOAT64: return "f64";
  }
  return "?";
}

GgufValue GgufValue::array_of(GgufArray a) {
  GgufValue x;
  x.type = GgufType::ARRAY;
  x.arr = std::make_shared<GgufArray>(std::move(a));
  return x;
}

static bool type_is_int(GgufType t) {
  switch (t) {
    case GgufType::UINT8: case GgufType::INT8: case GgufType::UINT16: case GgufType::INT16:
    case GgufType::UINT32: case GgufType::INT32: case GgufType::UINT64: case GgufType::INT64:
    case GgufType::BOOL:
      return true;
    default:
      return false;
  }
}

bool GgufValue::is_int() const { return type_is_int(type); }
bool GgufValue::is_float() const { return type == GgufType::FLOAT32 || type == GgufType::FLOAT64; }

bool GgufValue::operator==(const GgufValue& o) const {
  if (type != o.type) return false;
  if (is_int()) return i == o.i;
  if (is_float()) return f == o.f || (f != f && o.f != o.f);
  if (type == GgufType::STRING) return s == o.s;
  if (!arr || !o.arr) return arr == o.arr;
  return *arr == *o.arr;
}

size_t GgufArray::size() const {
  if (type_is_int(elem_type)) return ints.size();
  if (elem_type == GgufType::FLOAT32 || elem_type == GgufType::FLOAT64) return floats.size();
  if (elem_type == GgufType::STRING) return strings.size();
  return arrays.size();
}

bool GgufArray::operator==(const GgufArray& o) const {
  return elem_type == o.elem_type && ints == o.ints && floats == o.floats &&
         strings == o.strings && arrays == o.arrays;
}

}  // namespace slim
