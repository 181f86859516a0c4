#include "launch/flags.h"

#include <sstream>

namespace convoy {

Flags::Flags(std::string command, std::string summary, std::vector<FlagSpec> specs)
    : command_(std::move(command)), summary_(std::move(summary)), specs_(std::move(specs)) {
  for (const auto& s : specs_) values_[s.name] = s.boolean ? "false" : s.default_value;
}

std::string Flags::Usage() const {
  std::ostringstream out;
  out << "usage: convoy " << command_ << " [flags]\n" << summary_ << "\n\nflags:\n";
  for (const auto& s : specs_) {
    std::string head = "  --" + s.name + (s.boolean ? "" : " VALUE");
    out << head << std::string(head.size() < 26 ? 26 - head.size() : 1, ' ') << s.help;
    if (s.required) out << " (required)";
    if (!s.default_value.empty()) out << " (default " << s.default_value << ")";
    out << "\n";
  }
  return out.str();
}

Status Flags::Parse(int argc, char** argv) {
  for (int i = 0; i < argc; ++i) {
    std::string arg = argv[i];
    if (arg == "--help" || arg == "-h") {
      help_ = true;
      return Status::Ok();
    }
    if (arg.rfind("--", 0) != 0) {
      positional_.push_back(arg);
      continue;
    }
    std::string name = arg.substr(2), value;
    const size_t eq = name.find('=');
    const bool inline_value = eq != std::string::npos;
    if (inline_value) value = name.substr(eq + 1), name = name.substr(0, eq);
    const FlagSpec* spec = nullptr;
    for (const auto& s : specs_)
      if (s.name == name) spec = &s;
    if (!spec) {
      std::string known;
      for (const auto& s : specs_) known += " --" + s.name;
      return InvalidInput("convoy " + command_ + ": unknown flag --" + name + "; known flags:" + known +
                          " (see --help)");
    }
    if (spec->boolean) {
      values_[name] = inline_value ? value : "true";
      continue;
    }
    if (!inline_value) {
      if (i + 1 >= argc) return InvalidInput("convoy " + command_ + ": flag --" + name + " needs a value");
      value = argv[++i];
    }
    values_[name] = value;
  }
  for (const auto& s : specs_)
    if (s.required && values_[s.name].empty())
      return InvalidInput("convoy " + command_ + ": --" + s.name + " is required (" + s.help + "); see --help");
  return Status::Ok();
}

namespace {

// value parsed whole by parse (std::stoi, std::stod), or the error naming the flag.
template <typename T, typename Parse>
StatusOr<T> ParseWhole(const std::string& command, const std::string& name, const std::string& value, Parse parse,
                       const char* expected) {
  try {
    size_t used = 0;
    const T parsed = parse(value, &used);
    if (used == value.size()) return parsed;
  } catch (const std::exception&) {
  }
  return InvalidInput("convoy " + command + ": --" + name + " expects " + expected + ", found '" + value + "'");
}

}  // namespace

StatusOr<int> Flags::GetInt(const std::string& name) const {
  return ParseWhole<int>(
      command_, name, values_.at(name), [](const std::string& v, size_t* used) { return std::stoi(v, used); },
      "a whole number");
}

StatusOr<double> Flags::GetDouble(const std::string& name) const {
  return ParseWhole<double>(
      command_, name, values_.at(name), [](const std::string& v, size_t* used) { return std::stod(v, used); },
      "a number");
}

}  // namespace convoy
