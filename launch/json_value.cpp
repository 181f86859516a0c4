#include "launch/json_value.h"

#include <charconv>
#include <cstdlib>

namespace convoy {
namespace {

constexpr int kMaxDepth = 64;

class Parser {
 public:
  explicit Parser(std::string_view text) : s_(text) {}

  StatusOr<JsonValue> Document() {
    JsonValue v;
    RETURN_IF_ERROR(Value(v, 0));
    SkipSpace();
    if (at_ != s_.size()) return Fail("the end of the text");
    return v;
  }

 private:
  Status Fail(const std::string& expected) const {
    std::string found = "the end";
    if (at_ < s_.size()) found = {'\'', s_[at_], '\''};
    return InvalidInput("character " + std::to_string(at_ + 1) + ": expected " + expected + ", found " + found);
  }
  void SkipSpace() {
    while (at_ < s_.size() && (s_[at_] == ' ' || s_[at_] == '\t' || s_[at_] == '\n' || s_[at_] == '\r')) ++at_;
  }
  bool Take(char c) {
    SkipSpace();
    if (at_ < s_.size() && s_[at_] == c) {
      ++at_;
      return true;
    }
    return false;
  }
  bool Word(std::string_view w) {
    if (s_.substr(at_, w.size()) != w) return false;
    at_ += w.size();
    return true;
  }

  Status Value(JsonValue& v, int depth) {
    if (depth > kMaxDepth) return Fail("at most " + std::to_string(kMaxDepth) + " levels of nesting");
    SkipSpace();
    if (at_ >= s_.size()) return Fail("a value");
    const char c = s_[at_];
    if (c == '{') return Object(v, depth);
    if (c == '[') return Array(v, depth);
    if (c == '"') {
      v.kind = JsonValue::Kind::kString;
      return String(v.text);
    }
    if (Word("null")) return Status::Ok();
    for (const bool b : {true, false})
      if (Word(b ? "true" : "false")) {
        v.kind = JsonValue::Kind::kBool;
        v.boolean = b;
        return Status::Ok();
      }
    return Number(v);
  }

  Status Number(JsonValue& v) {
    const char* begin = s_.data() + at_;
    const char* end = s_.data() + s_.size();
    if (begin < end && *begin == '+') return Fail("a value");  // from_chars would not, JSON does not
    const auto [stop, ec] = std::from_chars(begin, end, v.number);
    if (ec != std::errc() || stop == begin) return Fail("a value");
    v.kind = JsonValue::Kind::kNumber;
    at_ += static_cast<size_t>(stop - begin);
    return Status::Ok();
  }

  Status String(std::string& out) {
    ++at_;  // the opening quote
    while (at_ < s_.size() && s_[at_] != '"') {
      char c = s_[at_++];
      if (static_cast<unsigned char>(c) < 0x20) return Fail("no control character inside a string");
      if (c != '\\') {
        out += c;
        continue;
      }
      if (at_ >= s_.size()) break;
      c = s_[at_++];
      switch (c) {
        case 'n':
          out += '\n';
          break;
        case 't':
          out += '\t';
          break;
        case 'r':
          out += '\r';
          break;
        case 'b':
          out += '\b';
          break;
        case 'f':
          out += '\f';
          break;
        case 'u': {
          unsigned code = 0;
          if (at_ + 4 > s_.size() || std::from_chars(s_.data() + at_, s_.data() + at_ + 4, code, 16).ec != std::errc())
            return Fail("4 hex digits after \\u");
          at_ += 4;
          // Our writer escapes only control characters; others are kept as UTF-8 (BMP only).
          if (code < 0x80) {
            out += static_cast<char>(code);
          } else if (code < 0x800) {
            out += static_cast<char>(0xc0 | (code >> 6));
            out += static_cast<char>(0x80 | (code & 0x3f));
          } else {
            out += static_cast<char>(0xe0 | (code >> 12));
            out += static_cast<char>(0x80 | ((code >> 6) & 0x3f));
            out += static_cast<char>(0x80 | (code & 0x3f));
          }
          break;
        }
        default:
          out += c;  // \" \\ \/
      }
    }
    if (at_ >= s_.size()) return Fail("'\"' closing the string");
    ++at_;
    return Status::Ok();
  }

  Status Array(JsonValue& v, int depth) {
    ++at_;
    v.kind = JsonValue::Kind::kArray;
    if (Take(']')) return Status::Ok();
    do {
      RETURN_IF_ERROR(Value(v.items.emplace_back(), depth + 1));
    } while (Take(','));
    return Take(']') ? Status::Ok() : Fail("',' or ']'");
  }

  Status Object(JsonValue& v, int depth) {
    ++at_;
    v.kind = JsonValue::Kind::kObject;
    if (Take('}')) return Status::Ok();
    do {
      SkipSpace();
      if (at_ >= s_.size() || s_[at_] != '"') return Fail("a quoted member name");
      auto& [key, value] = v.members.emplace_back();
      RETURN_IF_ERROR(String(key));
      if (!Take(':')) return Fail("':'");
      RETURN_IF_ERROR(Value(value, depth + 1));
    } while (Take(','));
    return Take('}') ? Status::Ok() : Fail("',' or '}'");
  }

  std::string_view s_;
  size_t at_ = 0;
};

}  // namespace

const JsonValue* JsonValue::Find(std::string_view key) const {
  for (const auto& [name, value] : members)
    if (name == key) return &value;
  return nullptr;
}

double JsonValue::Number(std::string_view key, double fallback) const {
  const JsonValue* v = Find(key);
  return v && v->kind == Kind::kNumber ? v->number : fallback;
}

std::string JsonValue::String(std::string_view key) const {
  const JsonValue* v = Find(key);
  return v && v->kind == Kind::kString ? v->text : "";
}

std::vector<double> JsonValue::Numbers(std::string_view key) const {
  std::vector<double> out;
  if (const JsonValue* v = Find(key); v && v->kind == Kind::kArray)
    for (const JsonValue& item : v->items) out.push_back(item.kind == Kind::kNumber ? item.number : 0.0);
  return out;
}

std::vector<std::string> JsonValue::Strings(std::string_view key) const {
  std::vector<std::string> out;
  if (const JsonValue* v = Find(key); v && v->kind == Kind::kArray)
    for (const JsonValue& item : v->items) out.push_back(item.text);
  return out;
}

StatusOr<JsonValue> ParseJson(std::string_view text) { return Parser(text).Document(); }

}  // namespace convoy
