#include "trainer/data/json.h"

#include <charconv>
#include <system_error>

#include "core/error.h"

namespace pit::data::json {

const char* kind_name(Value::Kind kind) {
  switch (kind) {
    case Value::Kind::null: return "null";
    case Value::Kind::boolean: return "boolean";
    case Value::Kind::number: return "number";
    case Value::Kind::string: return "string";
    case Value::Kind::array: return "array";
    case Value::Kind::object: return "object";
  }
  return "?";
}

namespace {

template <typename T>
const T& get(const std::variant<std::monostate, bool, double, std::string, Array, Object>& v,
             Value::Kind want, Value::Kind have) {
  if (const T* p = std::get_if<T>(&v)) return *p;
  PIT_THROW("JSON: expected a ", kind_name(want), ", found a ", kind_name(have));
}

constexpr int kMaxDepth = 512;  // deeper nesting is refused rather than risking the stack

class Parser {
 public:
  Parser(std::string_view text, std::string_view source) : text_(text), source_(source) {}

  Value document() {
    skip_space();
    Value v = value(0);
    skip_space();
    if (pos_ != text_.size()) fail("unexpected " + describe_here() + " after the JSON value");
    return v;
  }

 private:
  [[noreturn]] void fail(const std::string& what) const {
    size_t line = 1, column = 1;
    for (size_t i = 0; i < pos_ && i < text_.size(); ++i) {
      if (text_[i] == '\n') {
        ++line;
        column = 1;
      } else {
        ++column;
      }
    }
    PIT_THROW("JSON: ", source_, ":", line, ":", column, ": ", what);
  }

  std::string describe_here() const {
    if (pos_ >= text_.size()) return "end of input";
    const char c = text_[pos_];
    if (static_cast<unsigned char>(c) < 0x20 || c == 0x7f)
      return "control character " + std::to_string(static_cast<int>(c));
    return std::string("'") + c + "'";
  }

  bool at_end() const { return pos_ >= text_.size(); }
  char peek() const { return at_end() ? '\0' : text_[pos_]; }

  void skip_space() {
    while (!at_end() && (peek() == ' ' || peek() == '\t' || peek() == '\n' || peek() == '\r'))
      ++pos_;
  }

  void expect(char c, const char* context) {
    if (peek() != c)
      fail(std::string("expected '") + c + "' " + context + ", found " + describe_here());
    ++pos_;
  }

  Value value(int depth) {
    if (depth > kMaxDepth) fail("nesting deeper than 512 levels");
    switch (peek()) {
      case '{': return object(depth);
      case '[': return array(depth);
      case '"': return Value(string());
      case 't': literal("true"); return Value(true);
      case 'f': literal("false"); return Value(false);
      case 'n': literal("null"); return Value();
      default:
        if (peek() == '-' || (peek() >= '0' && peek() <= '9')) return Value(number());
        fail("expected a value, found " + describe_here());
    }
  }

  void literal(std::string_view word) {
    if (text_.substr(pos_, word.size()) != word)
      fail("expected a value, found " + describe_here());
    pos_ += word.size();
  }

  Value array(int depth) {
    ++pos_;  // '['
    Array items;
    skip_space();
    if (peek() == ']') {
      ++pos_;
      return Value(std::move(items));
    }
    for (;;) {
      skip_space();
      items.push_back(value(depth + 1));
      skip_space();
      if (peek() == ']') break;
      expect(',', "or ']' in an array");
    }
    ++pos_;
    return Value(std::move(items));
  }

  Value object(int depth) {
    ++pos_;  // '{'
    Object members;
    skip_space();
    if (peek() == '}') {
      ++pos_;
      return Value(std::move(members));
    }
    for (;;) {
      skip_space();
      if (peek() != '"') fail("expected a member name (a string), found " + describe_here());
      std::string key = string();
      skip_space();
      expect(':', "after a member name");
      skip_space();
      members.emplace_back(std::move(key), value(depth + 1));
      skip_space();
      if (peek() == '}') break;
      expect(',', "or '}' in an object");
    }
    ++pos_;
    return Value(std::move(members));
  }

  double number() {
    const size_t start = pos_;
    auto digits = [&] {
      const size_t from = pos_;
      while (!at_end() && peek() >= '0' && peek() <= '9') ++pos_;
      return pos_ - from;
    };
    if (peek() == '-') ++pos_;
    if (peek() == '0') {
      ++pos_;
    } else if (digits() == 0) {
      fail("expected a digit, found " + describe_here());
    }
    if (peek() == '.') {
      ++pos_;
      if (digits() == 0) fail("expected a digit after '.', found " + describe_here());
    }
    if (peek() == 'e' || peek() == 'E') {
      ++pos_;
      if (peek() == '+' || peek() == '-') ++pos_;
      if (digits() == 0) fail("expected a digit in the exponent, found " + describe_here());
    }
    double out = 0;
    const char* first = text_.data() + start;
    const auto [end, ec] = std::from_chars(first, text_.data() + pos_, out);
    if (ec == std::errc::result_out_of_range) {
      const std::string literal_text(first, pos_ - start);
      pos_ = start;
      fail("number " + literal_text + " is out of the range of a double");
    }
    if (ec != std::errc() || end != text_.data() + pos_) {
      pos_ = start;
      fail("malformed number");
    }
    return out;
  }

  unsigned hex4() {
    unsigned v = 0;
    for (int i = 0; i < 4; ++i) {
      const char c = peek();
      unsigned d;
      if (c >= '0' && c <= '9') d = static_cast<unsigned>(c - '0');
      else if (c >= 'a' && c <= 'f') d = static_cast<unsigned>(c - 'a' + 10);
      else if (c >= 'A' && c <= 'F') d = static_cast<unsigned>(c - 'A' + 10);
      else fail("expected 4 hex digits after \\u, found " + describe_here());
      v = v * 16 + d;
      ++pos_;
    }
    return v;
  }

  static void append_utf8(std::string& out, unsigned cp) {
    if (cp < 0x80) {
      out += static_cast<char>(cp);
    } else if (cp < 0x800) {
      out += static_cast<char>(0xC0 | (cp >> 6));
      out += static_cast<char>(0x80 | (cp & 0x3F));
    } else if (cp < 0x10000) {
      out += static_cast<char>(0xE0 | (cp >> 12));
      out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
      out += static_cast<char>(0x80 | (cp & 0x3F));
    } else {
      out += static_cast<char>(0xF0 | (cp >> 18));
      out += static_cast<char>(0x80 | ((cp >> 12) & 0x3F));
      out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
      out += static_cast<char>(0x80 | (cp & 0x3F));
    }
  }

  std::string string() {
    ++pos_;  // '"'
    std::string out;
    for (;;) {
      if (at_end()) fail("unterminated string");
      const char c = text_[pos_];
      if (c == '"') break;
      if (static_cast<unsigned char>(c) < 0x20)
        fail(describe_here() + " inside a string (write it as an escape)");
      ++pos_;
      if (c != '\\') {
        out += c;
        continue;
      }
      const char e = peek();
      ++pos_;
      switch (e) {
        case '"': out += '"'; break;
        case '\\': out += '\\'; break;
        case '/': out += '/'; break;
        case 'b': out += '\b'; break;
        case 'f': out += '\f'; break;
        case 'n': out += '\n'; break;
        case 'r': out += '\r'; break;
        case 't': out += '\t'; break;
        case 'u': {
          unsigned cp = hex4();
          if (cp >= 0xDC00 && cp <= 0xDFFF) fail("a lone low surrogate in a \\u escape");
          if (cp >= 0xD800 && cp <= 0xDBFF) {
            if (text_.substr(pos_, 2) != "\\u") fail("a high surrogate not followed by \\u");
            pos_ += 2;
            const unsigned low = hex4();
            if (low < 0xDC00 || low > 0xDFFF) fail("a high surrogate not followed by a low one");
            cp = 0x10000 + ((cp - 0xD800) << 10) + (low - 0xDC00);
          }
          append_utf8(out, cp);
          break;
        }
        default:
          --pos_;
          fail("unknown escape \\" + describe_here());
      }
    }
    ++pos_;  // closing '"'
    return out;
  }

  std::string_view text_;
  std::string_view source_;
  size_t pos_ = 0;
};

}  // namespace

bool Value::as_bool() const { return get<bool>(v_, Kind::boolean, kind()); }
double Value::as_number() const { return get<double>(v_, Kind::number, kind()); }
const std::string& Value::as_string() const { return get<std::string>(v_, Kind::string, kind()); }
const Array& Value::as_array() const { return get<Array>(v_, Kind::array, kind()); }
const Object& Value::as_object() const { return get<Object>(v_, Kind::object, kind()); }

const Value* Value::find(std::string_view key) const {
  const Object* members = std::get_if<Object>(&v_);
  if (!members) return nullptr;
  for (const auto& [name, value] : *members)
    if (name == key) return &value;
  return nullptr;
}

const Value& Value::at(std::string_view key) const {
  if (const Value* v = find(key)) return *v;
  if (kind() != Kind::object)
    PIT_THROW("JSON: expected an object with member \"", key, "\", found a ", kind_name(kind()));
  PIT_THROW("JSON: the object has no member \"", key, "\"");
}

Value parse(std::string_view text, std::string_view source) {
  return Parser(text, source).document();
}

}  // namespace pit::data::json
