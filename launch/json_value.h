// A JSON value and a strict parser for it, enough to read metrics.jsonl back (convoy report) and
// the traces tests check. Numbers are doubles; nesting is limited, so a hostile file cannot
// exhaust the stack.
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "core/status.h"

namespace convoy {

struct JsonValue {
  struct Member;  // a name and its value (defined below: a pair would need JsonValue complete)
  enum class Kind { kNull, kBool, kNumber, kString, kArray, kObject };
  Kind kind = Kind::kNull;
  bool boolean = false;
  double number = 0;
  std::string text;
  std::vector<JsonValue> items;  // kArray
  std::vector<Member> members;   // kObject, in file order

  // The member named key of an object, or null when absent (or not an object).
  const JsonValue* Find(std::string_view key) const;
  // The member's number, or fallback when it is absent or not a number.
  double Number(std::string_view key, double fallback = 0) const;
  // The member's string, or "" .
  std::string String(std::string_view key) const;
  // The member's numbers (an array of numbers; null entries count as 0), or empty.
  std::vector<double> Numbers(std::string_view key) const;
  std::vector<std::string> Strings(std::string_view key) const;
};

struct JsonValue::Member {
  std::string name;
  JsonValue value;
};

// Parses one JSON text; errors say at which character and what was expected.
StatusOr<JsonValue> ParseJson(std::string_view text);

}  // namespace convoy
